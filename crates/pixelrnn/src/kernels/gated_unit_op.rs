//! The fused gated unit (`gated_unit`) as a Burn backend extension on the CPU (`flex`) backend,
//! with its hand-written derivative under autodiff, and its loops: one vectorised pass over
//! memory each way (see `fast_math`), split across rayon threads when large.
//!
//! Layout: `x` `[batch, 2n, height, width]` row-major, so each image holds its `a` half then its
//! `b` half, each `m = n * height * width` values; `y` `[batch, n, height, width]`.
//! Derivative: dy/da = sigmoid(b) (1 - tanh(a)^2), dy/db = tanh(a) sigmoid(b) (1 - sigmoid(b)),
//! recomputed from the kept input (cheaper to keep than the two activations).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Flex, TensorMetadata};
use burn::prelude::Shape;
use rayon::prelude::*;

use crate::kernels::fast_math::{sigmoid, tanh};
use crate::kernels::flex_values::{from_values, values};

/// Elements per rayon task: below this a loop runs on the calling thread.
const CHUNK: usize = 16 * 1024;

/// Backends with a fused gated unit.
#[backend_extension(Flex, Autodiff)]
pub trait GatedUnitBackend: Backend {
    /// tanh(a) * sigmoid(b) of the channel halves of `x` `[batch, 2n, h, w]` -> `[batch, n, h, w]`.
    fn gated_unit(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl GatedUnitBackend for Flex {
    fn gated_unit(x: FlexTensor) -> FlexTensor {
        forward(&x)
    }
}

impl<C: CheckpointStrategy> GatedUnitBackend for Autodiff<Flex, C> {
    fn gated_unit(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match GatedUnitDerivative.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = forward(&x);
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x)),
        }
    }
}

/// The backward step: one parent (the input).
#[derive(Debug)]
struct GatedUnitDerivative;

impl Backward<Flex, 1> for GatedUnitDerivative {
    /// The input `x`.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node {
            let x = ops.state;
            let (dims, m) = halves(&x.shape());
            let mut dx = vec![0.0; 2 * m * dims[0]];
            let (xs, dys) = (values(&x), values(&grad));
            if m > 0 {
                dx.par_chunks_mut(2 * m).enumerate().for_each(|(image, dx)| {
                    let (da, db) = dx.split_at_mut(m);
                    let (a, b) = xs[image * 2 * m..(image + 1) * 2 * m].split_at(m);
                    let dy = &dys[image * m..(image + 1) * m];
                    da.par_chunks_mut(CHUNK).zip(db.par_chunks_mut(CHUNK)).enumerate().for_each(|(k, (da, db))| {
                        let at = k * CHUNK;
                        simd::backward(&a[at..], &b[at..], &dy[at..], da, db);
                    });
                });
            }
            grads.register::<Flex>(node.id, from_values(dx, x.shape()));
        }
    }
}

/// `y` of [`GatedUnitBackend::gated_unit`].
fn forward(x: &FlexTensor) -> FlexTensor {
    let ([batch, channels, height, width], m) = halves(&x.shape());
    let mut y = vec![0.0; m * batch];
    let xs = values(x);
    if m > 0 {
        y.par_chunks_mut(m).enumerate().for_each(|(image, y)| {
            let (a, b) = xs[image * 2 * m..(image + 1) * 2 * m].split_at(m);
            y.par_chunks_mut(CHUNK).enumerate().for_each(|(k, y)| {
                let at = k * CHUNK;
                simd::forward(&a[at..], &b[at..], y);
            });
        });
    }
    from_values(y, Shape::new([batch, channels / 2, height, width]))
}

/// The input's dims and `m`, the values of one image's half; panics on an odd channel count.
fn halves(shape: &Shape) -> ([usize; 4], usize) {
    let dims: [usize; 4] = shape.dims();
    let [_, channels, height, width] = dims;
    assert!(channels % 2 == 0, "gated unit: the channels ({channels}) must split into two halves");
    (dims, channels / 2 * height * width)
}

/// The loops, compiled once per instruction set and chosen at run time (AVX-512, AVX2, or the
/// baseline). The arithmetic is the same in every version.
mod simd {
    use super::{sigmoid, tanh};
    use crate::kernels::fast_math::dispatched;

    #[inline(always)]
    fn forward_loop(a: &[f32], b: &[f32], y: &mut [f32]) {
        let n = y.len();
        let (a, b) = (&a[..n], &b[..n]);
        for j in 0..n {
            y[j] = tanh(a[j]) * sigmoid(b[j]);
        }
    }

    #[inline(always)]
    fn backward_loop(a: &[f32], b: &[f32], dy: &[f32], da: &mut [f32], db: &mut [f32]) {
        let n = da.len();
        let (a, b, dy, db) = (&a[..n], &b[..n], &dy[..n], &mut db[..n]);
        for j in 0..n {
            let (t, s) = (tanh(a[j]), sigmoid(b[j]));
            da[j] = dy[j] * s * (1.0 - t * t);
            db[j] = dy[j] * t * s * (1.0 - s);
        }
    }

    dispatched!(forward, forward_loop, (a: &[f32], b: &[f32], y: &mut [f32]));
    dispatched!(backward, backward_loop, (a: &[f32], b: &[f32], dy: &[f32], da: &mut [f32], db: &mut [f32]));
}
