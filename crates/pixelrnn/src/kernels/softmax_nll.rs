//! The negative log-likelihood of a 256-way softmax per sub-pixel (§5.1, "Discrete softmax"),
//! fused into one operation on the CPU backend (a Burn backend extension with a hand-written
//! derivative): -log p(t) = logsumexp(z) - z_t.
//!
//! Why: composed of Burn ops (log-softmax, gather, neg) it is about a dozen passes over the
//! logits, the largest tensor of an RGB model (256 per sub-pixel), with libm's scalar `exp`;
//! fused it is two passes forward and one backward, with the vectorised `exp` of `fast_math`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rayon::prelude::*;

use crate::kernels::fast_math::{dispatched, exp};
use crate::kernels::flex_values::{from_values, runs_cpu_kernels, values};
use crate::kernels::par_blocks::par_blocks;

/// Backends with a fused softmax negative log-likelihood.
#[backend_extension(Flex, Autodiff)]
pub trait SoftmaxNllBackend: Backend {
    /// See [`softmax_nll`].
    fn softmax_nll(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self>;
}

impl SoftmaxNllBackend for Flex {
    fn softmax_nll(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        forward(&logits, &targets).0
    }
}

impl<C: CheckpointStrategy> SoftmaxNllBackend for Autodiff<Flex, C> {
    fn softmax_nll(logits: FloatTensor<Self>, targets: FlexTensor) -> FloatTensor<Self> {
        let (logits, node) = logits.into_parts();
        match SoftmaxNllDerivative.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (nll, log_normaliser, targets) = forward(&logits, &targets);
                prep.finish((logits, log_normaliser, targets), nll)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&logits, &targets).0),
        }
    }
}

#[derive(Debug)]
struct SoftmaxNllDerivative;

impl Backward<Flex, 1> for SoftmaxNllDerivative {
    /// (logits, logsumexp per sub-pixel, targets).
    type State = (FlexTensor, Vec<f32>, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let (logits, log_normaliser, targets) = ops.state;
        let [_, _, levels, height, width] = logits.shape().dims::<5>();
        let grad_logits =
            kernels::backward(&values(&logits), &log_normaliser, &targets, &values(&grad), levels, height * width);
        grads.register::<Flex>(parent.id, from_values(grad_logits, logits.shape()));
    }
}

/// (nll `[b, c, h, w]`, logsumexp per sub-pixel, targets as indices).
fn forward(logits: &FlexTensor, targets: &FlexTensor) -> (FlexTensor, Vec<f32>, Vec<usize>) {
    let [batch, channels, levels, height, width] = logits.shape().dims::<5>();
    let targets: Vec<usize> = targets
        .clone()
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("targets are integers")
        .into_iter()
        .map(|t| usize::try_from(t).ok().filter(|&t| t < levels).expect("targets lie in 0..levels"))
        .collect();
    let (nll, log_normaliser) = kernels::forward(&values(logits), &targets, levels, height * width);
    (from_values(nll, Shape::new([batch, channels, height, width])), log_normaliser, targets)
}

/// -log softmax(logits)\[target\] per sub-pixel.
///
/// # Shapes
/// - `logits`: `[batch, channels, levels, height, width]`
/// - `targets`: `[batch, channels, height, width]`, integers in `0..levels`
/// - returns `[batch, channels, height, width]`, in nats
pub fn softmax_nll(logits: Tensor<5>, targets: Tensor<4, Int>) -> Tensor<4> {
    if !runs_cpu_kernels(&logits) {
        return softmax_nll_composed(logits, targets);
    }
    Tensor::from_dispatch(<Dispatch as SoftmaxNllBackend>::softmax_nll(logits.into_dispatch(), targets.into_dispatch()))
}

/// [`softmax_nll`] composed of Burn tensor operations: runs on every backend.
pub fn softmax_nll_composed(logits: Tensor<5>, targets: Tensor<4, Int>) -> Tensor<4> {
    let [batch, channels, height, width] = targets.dims();
    let index = targets.reshape([batch, channels, 1, height, width]);
    log_softmax(logits, 2).gather(2, index).reshape([batch, channels, height, width]).neg()
}

/// The loops over row-major f32 slices: logits `[groups, levels, positions]` (groups = batch x
/// channels, positions = height x width), so each level's row is contiguous over positions and
/// the loops vectorise across positions. Groups run in parallel.
mod kernels {
    use super::*;

    /// (nll `[groups, positions]`, logsumexp `[groups, positions]`).
    pub(super) fn forward(logits: &[f32], targets: &[usize], levels: usize, positions: usize) -> (Vec<f32>, Vec<f32>) {
        let plane = levels * positions;
        let mut nll = vec![0.0; targets.len()];
        let mut log_normaliser = vec![0.0; targets.len()];
        nll.par_chunks_mut(positions.max(1))
            .zip(log_normaliser.par_chunks_mut(positions.max(1)))
            .zip(targets.par_chunks(positions.max(1)))
            .enumerate()
            .for_each(|(group, ((nll, lse), targets))| {
                forward_group(&logits[group * plane..][..plane], targets, nll, lse);
            });
        (nll, log_normaliser)
    }

    /// One group: `z` `[levels, positions]`; `targets`, `nll`, `lse` `[positions]`.
    #[inline(always)]
    fn forward_group_loops(z: &[f32], targets: &[usize], nll: &mut [f32], lse: &mut [f32]) {
        let positions = lse.len();
        let levels = z.len() / positions.max(1);
        // Max over levels, then the sum of exponentials below it (no overflow).
        lse.copy_from_slice(&z[..positions]);
        for l in 1..levels {
            for (m, &v) in lse.iter_mut().zip(&z[l * positions..][..positions]) {
                *m = m.max(v);
            }
        }
        let mut sum = vec![0.0f32; positions];
        for l in 0..levels {
            for ((s, &v), &m) in sum.iter_mut().zip(&z[l * positions..][..positions]).zip(lse.iter()) {
                *s += exp(v - m);
            }
        }
        for p in 0..positions {
            lse[p] += sum[p].ln();
            nll[p] = lse[p] - z[targets[p] * positions + p];
        }
    }
    dispatched!(forward_group, forward_group_loops, (
        z: &[f32], targets: &[usize], nll: &mut [f32], lse: &mut [f32]
    ));

    /// d nll / d logits = grad * (softmax - one_hot(target)).
    pub(super) fn backward(
        logits: &[f32],
        log_normaliser: &[f32],
        targets: &[usize],
        grad: &[f32],
        levels: usize,
        positions: usize,
    ) -> Vec<f32> {
        let plane = levels * positions;
        par_blocks(logits.len(), plane, 1, |group, out| {
            let at = group * positions;
            backward_group(
                &logits[group * plane..][..plane],
                &log_normaliser[at..][..positions],
                &targets[at..][..positions],
                &grad[at..][..positions],
                out,
            );
        })
    }

    /// One group: `z`, `out` `[levels, positions]`; `lse`, `targets`, `grad` `[positions]`.
    #[inline(always)]
    fn backward_group_loops(z: &[f32], lse: &[f32], targets: &[usize], grad: &[f32], out: &mut [f32]) {
        let positions = lse.len();
        let (grad, targets) = (&grad[..positions], &targets[..positions]);
        for (out, z) in out.chunks_exact_mut(positions.max(1)).zip(z.chunks_exact(positions.max(1))) {
            for p in 0..positions {
                out[p] = grad[p] * exp(z[p] - lse[p]);
            }
        }
        for p in 0..positions {
            out[targets[p] * positions + p] -= grad[p];
        }
    }
    dispatched!(backward_group, backward_group_loops, (
        z: &[f32], lse: &[f32], targets: &[usize], grad: &[f32], out: &mut [f32]
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(dims: [usize; 5], device: &Device) -> Tensor<5> {
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|v| ((v * 7919) % 1009) as f32 / 50.0 - 10.0).collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    fn targets([batch, channels, levels, height, width]: [usize; 5], device: &Device) -> Tensor<4, Int> {
        let n = batch * channels * height * width;
        let values: Vec<i64> = (0..n).map(|v| ((v * 31 + 3) % levels) as i64).collect();
        Tensor::from_data(TensorData::new(values, [batch, channels, height, width]), device)
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{what}[{k}]: fused {x} vs composed {y}");
        }
    }

    #[test]
    fn fused_equals_log_softmax_and_gather() {
        let device = Device::flex();
        for dims in [[2, 3, 256, 4, 5], [1, 1, 4, 1, 1], [3, 1, 7, 2, 3]] {
            let (z, t) = (logits(dims, &device), targets(dims, &device));
            let fused = softmax_nll(z.clone(), t.clone()).into_data().try_to_vec::<f32>().unwrap();
            let composed = softmax_nll_composed(z, t).into_data().try_to_vec::<f32>().unwrap();
            assert_close(&fused, &composed, &format!("nll {dims:?}"));
        }
    }

    #[test]
    fn fused_gradient_equals_autodiff_through_the_composition() {
        let device = Device::flex().autodiff();
        let dims = [2, 3, 16, 3, 4];
        let gradient = |f: fn(Tensor<5>, Tensor<4, Int>) -> Tensor<4>| {
            let z = logits(dims, &device).require_grad();
            let nll = f(z.clone(), targets(dims, &device));
            let weights = Tensor::<4>::from_data(
                TensorData::new((0..nll.shape().num_elements()).map(|v| v as f32 / 10.0).collect(), nll.dims()),
                &device,
            );
            let grads = (nll * weights).sum().backward();
            z.grad(&grads).expect("tracked").into_data().try_to_vec::<f32>().unwrap()
        };
        assert_close(&gradient(softmax_nll), &gradient(softmax_nll_composed), "d logits");
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let device = Device::flex();
        let z = Tensor::<5>::from_data(TensorData::new(vec![1e30f32, -1e30, 0.0, 80.0], [1, 1, 4, 1, 1]), &device);
        let t = Tensor::<4, Int>::from_data(TensorData::new(vec![0i64], [1, 1, 1, 1]), &device);
        let nll: f32 = softmax_nll(z, t).into_scalar();
        assert!(nll.is_finite() && nll.abs() < 1e-3, "{nll}");
    }
}
