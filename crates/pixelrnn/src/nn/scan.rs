//! Eq. (3) scanned over a map, step by step: along the rows (Row LSTM, §3.1) or along the
//! skewed map's columns, i.e. the image's diagonals (Diagonal LSTM, §3.2). The one call the
//! LSTM layers make after their input-to-state convolution; it chooses its own path: one
//! operation on the CPU kernels ([`crate::kernels::lstm_scan`]) or, on every other backend and
//! as the reference that operation is tested against, [`lstm_scan_composed`].

use std::sync::Arc;

use burn::prelude::*;

use crate::kernels::contiguous::contiguous;
use crate::kernels::flex_values::runs_cpu_kernels;
use crate::kernels::lstm_cell::lstm_cell;
use crate::kernels::lstm_scan::{lstm_scan as lstm_scan_fused, ScanShape};
use crate::kernels::rows::{steps_along, take_rows};
use crate::nn::masked_conv::MaskedConv2d;
use crate::nn::skew::skew;

/// The signature of [`lstm_scan`] and [`lstm_scan_composed`].
pub(crate) type ScanFn = fn(Tensor<4>, Steps, &MaskedConv2d, Tensor<1>) -> Tensor<4>;

/// What a step of the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Steps {
    /// Each row is a step (Row LSTM): the state everywhere, starting from the initial state.
    Rows,
    /// Each column of a skewed map of an image `width` pixels wide is a step (Diagonal LSTM).
    SkewedColumns {
        /// Width of the image before the skew.
        width: usize,
        /// Skewed positions outside the image hold a zero state ([`crate::nn::diagonal_lstm::DiagonalPadding::Zero`]);
        /// else their states are computed like the others'.
        zero_outside: bool,
    },
}

impl Steps {
    /// The dimension of `[batch, channels, height, width]` the steps run along.
    fn dim(self) -> usize {
        match self {
            Steps::Rows => 2,
            Steps::SkewedColumns { .. } => 3,
        }
    }
}

/// The hidden states of Eq. (3) scanned along `steps`: at each step, the gates are `gates`'
/// slice (K^is * x) plus K^ss (`state_to_state`) applied to the previous step's hidden state,
/// and the state is updated by the LSTM cell. The state before the first step is `initial`.
///
/// # Shapes
/// - `gates`: `[batch, 4h, height, width]` (o, f, i, g pre-activations)
/// - `initial`: `[2h]`, the cell then the hidden state, the same at every position
/// - returns `[batch, h, height, width]`
pub(crate) fn lstm_scan(
    gates: Tensor<4>,
    steps: Steps,
    state_to_state: &MaskedConv2d,
    initial: Tensor<1>,
) -> Tensor<4> {
    if runs_cpu_kernels(&gates) {
        if let Some(shape) = fused_shape(&gates, steps, state_to_state) {
            // Step-major, the other spatial dimension last: [steps, 4h, batch, length].
            let d = steps.dim();
            let order = [d, 1, 0, 5 - d];
            let step_major = contiguous(gates.permute(order));
            let (weight, bias) = state_to_state.prepare().parts();
            let hidden = lstm_scan_fused(step_major, weight, bias, initial, shape); // [steps, h, batch, length]
            let mut back = [0; 4];
            order.iter().enumerate().for_each(|(position, &dim)| back[dim] = position);
            return contiguous(hidden.permute(back)); // [batch, h, height, width]
        }
    }
    lstm_scan_composed(gates, steps, state_to_state, initial)
}

/// The one-operation scan's sizes, or `None` when K^ss does not map a step onto itself (then
/// the composed scan runs).
fn fused_shape(gates: &Tensor<4>, steps: Steps, state_to_state: &MaskedConv2d) -> Option<ScanShape> {
    let [batch, gates_channels, height, width] = gates.dims();
    let h = gates_channels / 4;
    let geometry = state_to_state.tap_geometry(0);
    match steps {
        // Each image's row a `1 x width` map that K^ss (1 x k, same padding) maps onto itself.
        Steps::Rows => ScanShape::new(h, batch, [1, width], height, geometry, None),
        // Each image's column a `height x 1` map that K^ss (2x1, one zero row on top) maps onto
        // itself.
        Steps::SkewedColumns { zero_outside: false, .. } => {
            ScanShape::new(h, batch, [height, 1], width, geometry, None)
        }
        Steps::SkewedColumns { width: image_width, zero_outside: true } => {
            let inside = (0..width)
                .flat_map(|t| (0..height).map(move |r| if t >= r && t - r < image_width { 1.0 } else { 0.0 }))
                .collect();
            ScanShape::new(h, batch, [height, 1], width, geometry, Some(Arc::new(inside)))
        }
    }
}

/// [`lstm_scan`] step by step in Burn tensor operations: every backend, and the reference the
/// one-operation scan is tested against.
///
/// # Shapes
/// As [`lstm_scan`].
pub(crate) fn lstm_scan_composed(
    gates: Tensor<4>,
    steps: Steps,
    state_to_state: &MaskedConv2d,
    initial: Tensor<1>,
) -> Tensor<4> {
    let [batch, gates_channels, height, width] = gates.dims();
    let h = gates_channels / 4;
    let d = steps.dim();
    let device = gates.device();
    // The scan runs channel-major (`[channels, batch, ..]`), so each step's state-to-state
    // convolution is one matrix product over all positions of the step.
    let gates = gates.swap_dims(0, 1); // [4h, batch, height, width]
    let mut step_dims = [2 * h, batch, height, width];
    step_dims[d] = 1;
    // The state is [cell | hidden] along dimension 0, as `lstm_cell` takes it.
    let mut state = Tensor::<4>::zeros(step_dims, &device) + initial.reshape([2 * h, 1, 1, 1]);
    let mut hidden = take_rows(state.clone(), h, h); // [h, batch, ..step]

    // 1 where a skewed position lies inside the image.
    let inside = match steps {
        Steps::Rows => None,
        Steps::SkewedColumns { zero_outside: false, .. } => None,
        Steps::SkewedColumns { width: image_width, zero_outside: true } => {
            Some(skew(Tensor::<4>::ones([1, 1, height, image_width], &device))) // [1, 1, height, width]
        }
    };
    let state_to_state = state_to_state.prepare();
    let mut outputs = Vec::with_capacity(step_dims[d]);
    for (index, step_gates) in steps_along(gates, d).enumerate() {
        // step_gates: [4h, batch, ..step]
        state = lstm_cell(step_gates, state_to_state.forward_channel_major(hidden), state); // [2h, batch, ..step]
        if let Some(inside) = &inside {
            // DiagonalPadding::Zero (the paper does not say what the skewed padding holds): its
            // states are held at zero, so the image is scanned with a zero boundary (K^ss's
            // bias would otherwise make the padding non-zero and leak a constant into column 0).
            state = state * inside.clone().narrow(3, index, 1);
        }
        hidden = take_rows(state.clone(), h, h);
        outputs.push(hidden.clone());
    }
    Tensor::cat(outputs, d).swap_dims(0, 1) // [batch, h, height, width]
}
