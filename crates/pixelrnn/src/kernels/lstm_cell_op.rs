//! The fused LSTM cell as a Burn backend extension on the CPU (`flex`) backend, with its
//! hand-written derivative under autodiff. One operation per scan step in place of the
//! fifteen or so tensor operations (and their autodiff records) that Eq. (3) takes in plain tensor
//! code; the loops are in `lstm_cell_cpu`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Flex, TensorMetadata};

use crate::kernels::flex_values::{from_values, values};
use crate::kernels::lstm_cell_cpu;

/// Backends with a fused LSTM cell.
#[backend_extension(Flex, Autodiff)]
pub trait LstmCellBackend: Backend {
    /// Eq. (3) on channel-major maps: `input_gates` and `state_gates` `[4h, ..]` (o, f, i, g
    /// pre-activations, summed), `state` `[2h, ..]` (cell, hidden); returns the new state.
    fn lstm_cell(
        input_gates: FloatTensor<Self>,
        state_gates: FloatTensor<Self>,
        state: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl LstmCellBackend for Flex {
    fn lstm_cell(input_gates: FlexTensor, state_gates: FlexTensor, state: FlexTensor) -> FlexTensor {
        forward(&input_gates, &state_gates, &state, false).0
    }
}

impl<C: CheckpointStrategy> LstmCellBackend for Autodiff<Flex, C> {
    fn lstm_cell(
        input_gates: FloatTensor<Self>,
        state_gates: FloatTensor<Self>,
        state: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (input_gates, input_node) = input_gates.into_parts();
        let (state_gates, state_gates_node) = state_gates.into_parts();
        let (state, state_node) = state.into_parts();
        match LstmCellDerivative.prepare::<C>([input_node, state_gates_node, state_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (new_state, activations) = forward(&input_gates, &state_gates, &state, true);
                let activations = activations.expect("activations are kept when asked for");
                prep.finish((activations, state, new_state.clone()), new_state)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&input_gates, &state_gates, &state, false).0),
        }
    }
}

/// The backward step: parents (input gates, state gates, previous state).
#[derive(Debug)]
struct LstmCellDerivative;

impl Backward<Flex, 3> for LstmCellDerivative {
    /// (gate activations `[4h, ..]`, previous state, new state).
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [input_node, state_gates_node, state_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (activations, state_before, state_after) = ops.state;
        let (grad_gates, grad_state) = lstm_cell_cpu::backward(
            &values(&activations),
            &values(&state_before),
            &values(&state_after),
            &values(&grad),
        );
        let grad_gates = from_values(grad_gates, activations.shape());
        if let Some(node) = state_node {
            grads.register::<Flex>(node.id, from_values(grad_state, state_before.shape()));
        }
        // The two gate inputs are summed, so they receive the same gradient.
        if let Some(node) = state_gates_node {
            grads.register::<Flex>(node.id, grad_gates.clone());
        }
        if let Some(node) = input_node {
            grads.register::<Flex>(node.id, grad_gates);
        }
    }
}

/// The new state and, when asked for, the gate activations, as `flex` tensors.
fn forward(
    input_gates: &FlexTensor,
    state_gates: &FlexTensor,
    state: &FlexTensor,
    keep_activations: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    let (new_state, activations) =
        lstm_cell_cpu::forward(&values(input_gates), &values(state_gates), &values(state), keep_activations);
    (from_values(new_state, state.shape()), activations.map(|a| from_values(a, input_gates.shape())))
}
