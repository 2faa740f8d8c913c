//! The Diagonal BiLSTM's skew and unskew (§3.2, Fig. 3) as one Burn backend extension on the
//! CPU (`flex`) backend: a shear that moves row `r` of every map `r` places right (skew) or left
//! (unskew), one pass each way, the derivative of each being the other.
//!
//! Why not the composed form (pad, reshape, narrow): on `flex` the padding was built as a
//! host-side tensor of zeros and each step of the chain, forward and backward, was a copy of
//! the whole map (measured: `TensorData::full` alone was 3% of M4's training step).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;

use crate::kernels::flex_values::{from_values, runs_cpu_kernels, values};
use crate::kernels::par_blocks::{blocks_per_task, par_blocks};

/// Which way the rows move, and the width of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shear {
    /// `true`: row `r` moves right by `r` (skew); `false`: left by `r` (unskew).
    pub right: bool,
    /// Width of the output; values moved past it are dropped, places nothing moves into are 0.
    pub out_width: usize,
}

/// Backends with a one-pass shear.
#[backend_extension(Flex, Autodiff)]
pub trait ShearBackend: Backend {
    /// See [`shear`].
    fn shear(x: FloatTensor<Self>, shear: Shear) -> FloatTensor<Self>;
}

impl ShearBackend for Flex {
    fn shear(x: FlexTensor, shear: Shear) -> FlexTensor {
        forward(&x, shear)
    }
}

impl<C: CheckpointStrategy> ShearBackend for Autodiff<Flex, C> {
    fn shear(x: FloatTensor<Self>, shear: Shear) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match ShearDerivative.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                // The way back: the other direction, to the input's width.
                let back = Shear { right: !shear.right, out_width: dims4(&x)[3] };
                prep.finish(back, forward(&x, shear))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, shear)),
        }
    }
}

#[derive(Debug)]
struct ShearDerivative;

impl Backward<Flex, 1> for ShearDerivative {
    /// The shear that takes the output's gradient back to the input's.
    type State = Shear;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        grads.register::<Flex>(parent.id, forward(&grad, ops.state));
    }
}

fn dims4(x: &FlexTensor) -> [usize; 4] {
    x.shape().dims::<4>()
}

fn forward(x: &FlexTensor, shear: Shear) -> FlexTensor {
    let [d0, d1, height, width] = dims4(x);
    let output = shear_rows(&values(x), [d0, d1, height, width], shear);
    from_values(output, Shape::new([d0, d1, height, shear.out_width]))
}

/// The loop over row-major values `[d0, d1, height, width]` -> `[d0, d1, height, out_width]`,
/// in parallel over the `d0 * d1` maps: output row `r` holds input row `r` from column `r`
/// (right) or input row `r` from its column `r` on (left), zeros elsewhere.
fn shear_rows(x: &[f32], [d0, d1, height, width]: [usize; 4], shear: Shear) -> Vec<f32> {
    let out_width = shear.out_width;
    let plane = height * out_width;
    par_blocks(d0 * d1 * plane, plane, blocks_per_task(plane), |p, out| {
        let input = &x[p * height * width..][..height * width];
        for r in 0..height {
            // (first output column, first input column) of the run row r copies.
            let (to, from) = if shear.right { (r, 0) } else { (0, r) };
            if to >= out_width || from >= width {
                continue;
            }
            let len = (out_width - to).min(width - from);
            out[r * out_width + to..][..len].copy_from_slice(&input[r * width + from..][..len]);
        }
    })
}

/// Moves row `r` of every map `r` places right or left (see [`Shear`]); zeros where nothing
/// lands. Tensors that do not go to the CPU kernels are handed to `composed` instead: the
/// same computation in Burn tensor operations ([`crate::nn::skew::skew_composed`],
/// [`crate::nn::skew::unskew_composed`]).
///
/// # Shapes
/// - `x`: `[d0, d1, height, width]` -> `[d0, d1, height, shear.out_width]`
pub(crate) fn shear(x: Tensor<4>, shear: Shear, composed: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
    if !runs_cpu_kernels(&x) {
        return composed(x);
    }
    Tensor::from_dispatch(<Dispatch as ShearBackend>::shear(x.into_dispatch(), shear))
}
