//! `take_rows`: a range of indices along the first dimension (a view), as a Burn backend
//! extension on the CPU (`flex`) backend whose derivative writes the gradient once into a fresh
//! zero-filled buffer.
//!
//! Why not `narrow`: its derivative on `flex` allocates the zero gradient through the backend's
//! `empty` (filled, then copied into an aligned buffer) and writes the slice through a
//! general strided assignment; the LSTM scans take several such slices per step (the step's
//! gates, the hidden half of the state), and those copies were a fifth of the Diagonal
//! BiLSTM's training step (measured).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;

use crate::kernels::contiguous::contiguous;
use crate::kernels::flex_values::{from_values, runs_cpu_kernels, values};

/// Backends with a cheap first-dimension slice.
#[backend_extension(Flex, Autodiff)]
pub trait RowsBackend: Backend {
    /// See [`take_rows`].
    fn take_rows(x: FloatTensor<Self>, start: usize, len: usize) -> FloatTensor<Self>;
}

impl RowsBackend for Flex {
    fn take_rows(x: FlexTensor, start: usize, len: usize) -> FlexTensor {
        x.narrow(0, start, len)
    }
}

impl<C: CheckpointStrategy> RowsBackend for Autodiff<Flex, C> {
    fn take_rows(x: FloatTensor<Self>, start: usize, len: usize) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match TakeRowsDerivative.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.shape(), start), x.narrow(0, start, len)),
            OpsKind::UnTracked(prep) => prep.finish(x.narrow(0, start, len)),
        }
    }
}

#[derive(Debug)]
struct TakeRowsDerivative;

impl Backward<Flex, 1> for TakeRowsDerivative {
    /// (the input's shape, the first index taken).
    type State = (Shape, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let (shape, start) = ops.state;
        let per_index = shape.num_elements() / shape[0].max(1);
        let mut full = vec![0.0; shape.num_elements()];
        let grad = values(&grad);
        full[start * per_index..][..grad.len()].copy_from_slice(&grad);
        grads.register::<Flex>(parent.id, from_values(full, shape));
    }
}

/// Indices `start..start + len` of `x`'s first dimension (`narrow` off the CPU kernels' path).
///
/// # Shapes
/// - `x`: `[d0, ..]` -> `[len, ..]`
pub fn take_rows<const D: usize>(x: Tensor<D>, start: usize, len: usize) -> Tensor<D> {
    if !runs_cpu_kernels(&x) {
        return x.narrow(0, start, len);
    }
    Tensor::from_dispatch(<Dispatch as RowsBackend>::take_rows(x.into_dispatch(), start, len))
}

/// Every index of dimension `dim` as its own slice of size 1, in order.
///
/// `x` is first laid out step-major and contiguous (one copy), so that every step is a plain
/// slice of memory: the fused LSTM cell reads it in place, and under autodiff each step's
/// gradient is one contiguous write (measured: the strided writes were the largest cost of the
/// Diagonal BiLSTM's backward pass). Why not `narrow` on `x` in the loop: under autodiff the
/// backward of each `narrow` writes a full-size gradient of `x`, so n single-step slices cost n
/// full copies of `x`. Cutting `x` into about sqrt(n) blocks first, then each block into steps,
/// costs about 2 sqrt(n) full copies instead.
///
/// # Shapes
/// - `x`: `[d0, d1, d2, d3]` -> `x.dims()[dim]` tensors with that dimension of size 1, lazily
pub fn steps_along(x: Tensor<4>, dim: usize) -> Box<dyn Iterator<Item = Tensor<4>>> {
    let mut step_shape = x.dims();
    let n = step_shape[dim];
    step_shape[dim] = 1;
    let block = ((n as f64).sqrt().ceil() as usize).max(1);
    let x = contiguous(x.movedim(dim, 0)); // [n, ..the other three dims in order]
    Box::new((0..n).step_by(block).flat_map(move |start| {
        let len = block.min(n - start);
        let chunk = take_rows(x.clone(), start, len);
        // Moving a dimension of size 1 does not move any value: a reshape says the same.
        (0..len).map(move |i| take_rows(chunk.clone(), i, 1).reshape(step_shape))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_narrow_in_values_and_gradients() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let data = TensorData::new((0..60).map(|v| v as f32 - 20.0).collect(), [5, 3, 4]);
            let run = |take: fn(Tensor<3>, usize, usize) -> Tensor<3>| {
                let x = Tensor::<3>::from_data(data.clone(), &device);
                let x = if device.is_autodiff() { x.require_grad() } else { x };
                // A transposed input and a slice of a slice, as the scans take them.
                let y = take(take(x.clone().swap_dims(0, 1).swap_dims(0, 1), 1, 3), 1, 2);
                let weights = Tensor::<3>::from_data(
                    TensorData::new((0..24).map(|v| v as f32 / 3.0).collect(), [2, 3, 4]),
                    &device,
                );
                let values = y.clone().into_data();
                let grad = device.is_autodiff().then(|| {
                    let grads = (y * weights).sum().backward();
                    x.grad(&grads).expect("tracked").into_data()
                });
                (values, grad)
            };
            let narrow = |x: Tensor<3>, start, len| x.narrow(0, start, len);
            assert_eq!(run(take_rows), run(narrow));
        }
    }

    #[test]
    fn steps_along_returns_every_index_in_order() {
        let x = Tensor::<4>::from_data(
            TensorData::new((0..42).map(|v| v as f32).collect::<Vec<f32>>(), [1, 2, 3, 7]),
            &Device::flex(),
        );
        let steps: Vec<_> = steps_along(x.clone(), 3).collect();
        assert_eq!(steps.len(), 7);
        for (i, s) in steps.into_iter().enumerate() {
            assert_eq!(s.into_data(), x.clone().narrow(3, i, 1).into_data());
        }
    }
}
