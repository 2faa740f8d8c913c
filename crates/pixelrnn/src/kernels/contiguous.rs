//! `contiguous`: a tensor's values laid out in row-major order in memory, as a Burn backend
//! extension on the CPU (`flex`) backend, where permutes and slices are strided views.
//!
//! Why: the LSTM scans read one step (row or column) of the gate map per iteration. Laid out
//! step-major and contiguous once, every step is a plain slice of memory; left as a strided
//! view, every step was gathered element by element (measured: a third of the Diagonal BiLSTM's
//! inference time in the fused cell's input copies).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;
use burn::tensor::DType;

use crate::kernels::flex_values::runs_cpu_kernels;
use crate::kernels::strided_copy::to_row_major;

/// Backends whose tensors can be made contiguous on request.
#[backend_extension(Flex, Autodiff)]
pub trait ContiguousBackend: Backend {
    /// The same values, contiguous in row-major order.
    fn contiguous(tensor: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl ContiguousBackend for Flex {
    fn contiguous(tensor: FlexTensor) -> FlexTensor {
        to_contiguous(&tensor)
    }
}

/// The tensor itself when already contiguous; a blocked copy (`strided_copy`) for f32 views
/// whose last dimension is strided; else the backend's own copy (measured faster when rows are
/// already contiguous: the Row LSTM's row-major steps).
fn to_contiguous(tensor: &FlexTensor) -> FlexTensor {
    let layout = tensor.layout();
    let rows_contiguous = layout.strides().last().is_none_or(|&stride| stride == 1);
    if tensor.is_contiguous() || rows_contiguous || tensor.dtype() != DType::F32 {
        return tensor.to_contiguous();
    }
    let shape = layout.shape().clone();
    let values = to_row_major(tensor.storage::<f32>(), &shape, layout.strides(), layout.start_offset());
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl<C: CheckpointStrategy> ContiguousBackend for Autodiff<Flex, C> {
    fn contiguous(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
        let (tensor, node) = tensor.into_parts();
        match Identity.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((), to_contiguous(&tensor)),
            OpsKind::UnTracked(prep) => prep.finish(to_contiguous(&tensor)),
        }
    }
}

/// The derivative of a change of layout: the gradient passes through unchanged.
#[derive(Debug)]
struct Identity;

impl Backward<Flex, 1> for Identity {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<Flex>(parent.id, grad);
        }
    }
}

/// `x` with its values contiguous in memory on the CPU backend (f32); `x` itself elsewhere
/// (where the backend decides layouts).
///
/// # Shapes
/// - `x`: any -> same
pub fn contiguous<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !runs_cpu_kernels(&x) {
        return x;
    }
    Tensor::from_dispatch(<Dispatch as ContiguousBackend>::contiguous(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_and_passes_gradients_through() {
        let device = Device::flex().autodiff();
        let x =
            Tensor::<2>::from_data(TensorData::new((0..6).map(|v| v as f32).collect(), [2, 3]), &device).require_grad();
        let y = contiguous(x.clone().swap_dims(0, 1)); // [3, 2]
        assert_eq!(y.to_data(), x.clone().swap_dims(0, 1).to_data());
        let weights = Tensor::<2>::from_data(TensorData::new((1..7).map(|v| v as f32).collect(), [3, 2]), &device);
        let grads = (y * weights.clone()).sum().backward();
        assert_eq!(x.grad(&grads).expect("tracked").into_data(), weights.swap_dims(0, 1).into_data());
    }
}
