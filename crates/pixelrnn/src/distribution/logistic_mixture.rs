//! The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017, §2.1-2.2): each
//! sub-pixel's value is a mixture of K logistic distributions on [-1, 1], discretized into the
//! image's `levels` bins of width 2 / (levels - 1), the first and last bins taking the tails.
//! The mean of channel `c`'s components moves linearly with the values already known at the
//! same pixel (the R -> G -> B dependence of §2.2): mu_c,k + sum_{j<c} tanh(a_c,j,k) x_j.
//!
//! Layout of one sub-pixel's parameters (`P = K * (3 + channels - 1)` values, the block of its
//! channel; see [`crate::distribution`]):
//! `[K mixture logits | K means | K log-scales | (channels - 1) x K coefficients]`, the
//! coefficient block `j` scaling the value of channel `j`; channel `c` reads blocks `j < c`
//! only (the red channel's coefficients receive no gradient).
//! Deviation from PixelCNN++: every channel has its own mixture weights (here the masked
//! network already gives channel `c` the values of channels `< c`), so p(x) factorizes over
//! sub-pixels exactly as for the softmax and every consumer (sampler, codec, `score`) handles
//! the mixture one sub-pixel at a time.
//!
//! Log-scales are clamped below at [`MIN_LOG_SCALE`] (PixelCNN++'s -7). The tensor NLL is
//! written in log space for every bin (no difference of two sigmoids is ever formed), so it is
//! finite and exact to float precision at 0, at `levels - 1` and in the far tails.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};

use super::{exp, exp_many};

/// PixelCNN++'s lower bound of the log-scales.
pub const MIN_LOG_SCALE: f64 = -7.0;

/// The most mixture components a model may have.
pub const MAX_COMPONENTS: usize = 64;

/// The parameters per sub-pixel of a `components`-way mixture on images of `channels`.
pub fn params_per_subpixel(components: usize, channels: usize) -> usize {
    components * (3 + channels.saturating_sub(1))
}

/// log(1 + e^x), stable everywhere.
fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// log(e^d - 1) for d > 0: ln d + d / 2 below 1e-3 (its series), d + log(1 - e^-d) above;
/// each branch sees only inputs where it is finite, so no NaN reaches the gradients.
fn log_expm1<const D: usize>(d: Tensor<D>) -> Tensor<D> {
    const SMALL: f64 = 1e-3;
    let small = d.clone().lower_elem(SMALL);
    let below = d.clone().clamp_max(SMALL);
    let above = d.clamp_min(SMALL);
    let series = below.clone().log() + below / 2.0;
    let exact = above.clone() + above.neg().exp().neg().log1p();
    exact.mask_where(small, series)
}

/// The NLL of every sub-pixel in nats.
///
/// # Shapes
/// - `params`: `[batch, channels * P, height, width]` (the module's layout)
/// - `images`: `[batch, channels, height, width]` (raw values `0..levels`)
/// - returns `[batch, channels, height, width]`
pub fn nll_per_subpixel(params: Tensor<4>, images: Tensor<4, Int>, components: usize, levels: usize) -> Tensor<4> {
    let [batch, channels, height, width] = images.dims();
    let k = components;
    let device = params.device();
    let p = params.reshape([batch, channels, params_per_subpixel(k, channels), height, width]);
    let block = |i: usize| p.clone().slice([0..batch, 0..channels, i * k..(i + 1) * k, 0..height, 0..width]);
    let (logits, means, log_scales) = (block(0), block(1), block(2).clamp_min(MIN_LOG_SCALE));
    // The values on [-1, 1]: x * 2 / (levels - 1) - 1.
    let top = (levels - 1) as f64;
    let x = images.clone().float() * (2.0 / top) - 1.0; // [batch, channels, height, width]
    let mut mean = means; // [batch, channels, K, height, width]
    for j in 0..channels.saturating_sub(1) {
        // Only channels c > j read channel j.
        let later: Vec<f32> = (0..channels).map(|c| (c > j) as u8 as f32).collect();
        let later = Tensor::<5>::from_data(TensorData::new(later, [1, channels, 1, 1, 1]), &device);
        let xj = x.clone().slice([0..batch, j..j + 1, 0..height, 0..width]).unsqueeze_dim::<5>(2);
        mean = mean + block(3 + j).tanh() * xj * later;
    }
    let centered = x.unsqueeze_dim::<5>(2) - mean; // [batch, channels, K, height, width]
    let inverse = log_scales.clone().neg().exp();
    let half = 1.0 / top;
    let upper = inverse.clone() * (centered.clone() + half); // the bin's upper edge, standardized
    let lower = inverse.clone() * (centered - half);
    // log F(upper) for the first bin, log(1 - F(lower)) for the last, and in between
    // log(sigmoid(u) - sigmoid(l)) = l + log(e^(u - l) - 1) - softplus(u) - softplus(l).
    let first = softplus(upper.clone().neg()).neg();
    let last = softplus(lower.clone()).neg();
    let middle = lower.clone() + log_expm1(inverse * (2.0 * half)) - softplus(upper) - softplus(lower);
    let values = images.unsqueeze_dim::<5>(2).expand([batch, channels, k, height, width]);
    let log_mass =
        middle.mask_where(values.clone().equal_elem(0), first).mask_where(values.equal_elem(top as i64), last);
    let joint = log_mass + log_softmax(logits, 2); // [batch, channels, K, height, width]
    let max = joint.clone().max_dim(2).detach();
    let log_p = (joint - max.clone()).exp().sum_dim(2).log() + max; // [batch, channels, 1, height, width]
    log_p.neg().reshape([batch, channels, height, width])
}

/// tanh(y) from [`exp`] only (deterministic on every machine).
fn tanh(y: f64) -> f64 {
    let e = exp(-2.0 * y.abs());
    ((1.0 - e) / (1.0 + e)).copysign(y)
}

/// sigmoid(z) and 1 - sigmoid(z), each computed without cancellation, given `e` = e^-|z|
/// ([`exp`]).
fn sigmoid_from(z: f64, e: f64) -> (f64, f64) {
    let (big, small) = (1.0 / (1.0 + e), e / (1.0 + e));
    if z >= 0.0 {
        (big, small)
    } else {
        (small, big)
    }
}

/// The mixture weights of one sub-pixel (softmax of its logits divided by `temperature`).
fn weights(params: &[f32], components: usize, temperature: f64) -> Vec<f64> {
    let logits: Vec<f64> = params[..components].iter().map(|&l| l as f64 / temperature).collect();
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l));
    let mut weights: Vec<f64> = logits.iter().map(|&l| exp(l - max)).collect();
    let total: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= total);
    weights
}

/// Component `i`'s mean (shifted by the channels before it at the same pixel, `previous`) and
/// inverse scale (divided by `temperature`), in the scaled value space [-1, 1].
fn component(params: &[f32], previous: &[u8], components: usize, i: usize, top: f64, temperature: f64) -> (f64, f64) {
    let k = components;
    let mut mean = params[k + i] as f64;
    for (j, &v) in previous.iter().enumerate() {
        mean += tanh(params[(3 + j) * k + i] as f64) * (v as f64 * (2.0 / top) - 1.0);
    }
    let log_scale = (params[2 * k + i] as f64).max(MIN_LOG_SCALE);
    // 1 / scale = e^-log_scale, from exp of a non-positive argument.
    let inverse = if log_scale >= 0.0 { exp(-log_scale) } else { 1.0 / exp(log_scale) } / temperature;
    (mean, inverse)
}

/// The probabilities of the `levels` values of one sub-pixel of channel `previous.len()`
/// from its parameters (the module's layout) and the raw values of the channels before it at
/// the same pixel. `temperature` divides the mixture logits and multiplies the scales.
/// Written into `out` (`[levels]`), normalized to sum to 1.
pub fn probabilities(
    params: &[f32],
    previous: &[u8],
    components: usize,
    levels: usize,
    temperature: f64,
    out: &mut Vec<f64>,
) {
    let top = (levels - 1) as f64;
    out.clear();
    out.resize(levels, 0.0);
    // Per component: e^-|z| at the levels - 1 inner edges, all at once ([`exp_many`]), then
    // each edge's (F, 1 - F) from it ([`sigmoid_from`]).
    let edges = levels - 1;
    let (mut stack, mut heap) = ([0.0; 2 * 255], Vec::new());
    let scratch = if edges <= 255 {
        &mut stack[..2 * edges]
    } else {
        heap.resize(2 * edges, 0.0);
        &mut heap[..]
    };
    let (z, e) = scratch.split_at_mut(edges);
    for (i, &weight) in weights(params, components, temperature).iter().enumerate() {
        let (mean, inverse) = component(params, previous, components, i, top, temperature);
        for (v, (z, e)) in z.iter_mut().zip(e.iter_mut()).enumerate() {
            // (v scaled to [-1, 1], plus half a bin: the expression the codec's files were
            // written with, kept bit for bit.)
            *z = inverse * (v as f64 * (2.0 / top) - 1.0 + 1.0 / top - mean);
            *e = -z.abs();
        }
        exp_many(e);
        // The mass of bin v: F(edge v) - F(edge v - 1), with the CDF's complement where the
        // bin lies right of the mean, so that no probability is lost to cancellation.
        let mut below = (0.0, 1.0); // (F, 1 - F) at the previous edge: -infinity
        for (v, p) in out.iter_mut().enumerate() {
            let edge = if v + 1 == levels { (1.0, 0.0) } else { sigmoid_from(z[v], e[v]) };
            let mass = if edge.0 <= 0.5 { edge.0 - below.0 } else { below.1 - edge.1 };
            *p += weight * mass.max(0.0);
            below = edge;
        }
    }
    let sum: f64 = out.iter().sum();
    out.iter_mut().for_each(|p| *p /= sum);
}

/// A value of one sub-pixel drawn with the uniform `u` in [0, 1), from the distribution of
/// [`probabilities`] in O(K) rather than O(K x levels): the component first, by `u`'s place
/// among the cumulative mixture weights, then the value, by the inverse CDF of that
/// component's logistic at `u`'s place within the component's share, rounded to the bin it
/// falls in (the end bins take the tails). One uniform per sub-pixel, as every draw.
pub fn draw(params: &[f32], previous: &[u8], components: usize, levels: usize, temperature: f64, u: f64) -> u8 {
    let top = (levels - 1) as f64;
    let weights = weights(params, components, temperature);
    let mut start = 0.0;
    let mut chosen = components - 1;
    for (i, &w) in weights.iter().enumerate() {
        if u < start + w {
            chosen = i;
            break;
        }
        start += w;
    }
    let inner = ((u - start) / weights[chosen]).clamp(0.0, 1.0);
    let (mean, inverse) = component(params, previous, components, chosen, top, temperature);
    // The logistic's quantile: mean + logit(inner) * scale (infinite at 0 and 1: the end bins).
    let x = mean + (inner.ln() - (1.0 - inner).ln()) / inverse;
    // Bin v holds (edge v - 1, edge v] with edge v = (2v + 1) / top - 1.
    let v = (((x + 1.0) * top - 1.0) / 2.0).ceil();
    if v.is_nan() {
        return 0;
    }
    v.clamp(0.0, top) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters for K components and 3 channels, varied and sometimes extreme.
    fn params(k: usize, seed: usize) -> Vec<f32> {
        (0..params_per_subpixel(k, 3))
            .map(|i| {
                let t = ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0;
                match i / k {
                    0 => (t - 0.5) * 8.0,                                    // logits
                    1 => (t - 0.5) * 2.6,                                    // means, a little beyond [-1, 1]
                    2 => [-9.0, -6.0, -3.0, -1.0, 0.5, 3.0][(i + seed) % 6], // log-scales, one below the clamp
                    _ => (t - 0.5) * 3.0,                                    // coefficients
                }
            })
            .collect()
    }

    /// The probabilities one exp at a time, as the codec's first files were written: the
    /// batched exps must give the same bits.
    fn probabilities_one_exp_at_a_time(
        params: &[f32],
        previous: &[u8],
        components: usize,
        levels: usize,
        temperature: f64,
    ) -> Vec<f64> {
        let top = (levels - 1) as f64;
        let mut out = vec![0.0; levels];
        for (i, &weight) in weights(params, components, temperature).iter().enumerate() {
            let (mean, inverse) = component(params, previous, components, i, top, temperature);
            let mut below = (0.0, 1.0);
            for (v, p) in out.iter_mut().enumerate() {
                let edge = if v + 1 == levels {
                    (1.0, 0.0)
                } else {
                    let z = inverse * (v as f64 * (2.0 / top) - 1.0 + 1.0 / top - mean);
                    sigmoid_from(z, exp(-z.abs()))
                };
                let mass = if edge.0 <= 0.5 { edge.0 - below.0 } else { below.1 - edge.1 };
                *p += weight * mass.max(0.0);
                below = edge;
            }
        }
        let sum: f64 = out.iter().sum();
        out.iter_mut().for_each(|p| *p /= sum);
        out
    }

    #[test]
    fn batched_exps_give_the_bits_of_one_exp_at_a_time() {
        for seed in 0..12 {
            for (k, levels, channel, temperature) in
                [(5, 256, 0, 1.0), (4, 256, 2, 0.8), (3, 2, 1, 1.0), (10, 16, 1, 1.3)]
            {
                let theta = params(k, seed);
                let previous = [(seed * 97 % levels) as u8, (seed * 31 % levels) as u8];
                let mut got = Vec::new();
                probabilities(&theta, &previous[..channel], k, levels, temperature, &mut got);
                let want = probabilities_one_exp_at_a_time(&theta, &previous[..channel], k, levels, temperature);
                let bits = |v: &[f64]| v.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "seed {seed}, K {k}, levels {levels}");
            }
        }
    }

    #[test]
    fn draws_follow_the_probabilities() {
        // Uniforms on a fine even grid: each value's share of the draws is its probability, up
        // to the grid's resolution (each component's share of [0, 1) is mapped monotonically).
        let n = 400_000;
        for (seed, temperature) in [(0, 1.0), (3, 1.0), (5, 0.7), (7, 1.6)] {
            for (k, levels, channel) in [(4, 256, 0), (4, 256, 2), (3, 2, 1), (1, 16, 0)] {
                let theta = params(k, seed);
                let previous = [(seed * 97 % levels) as u8, (seed * 31 % levels) as u8];
                let mut p = Vec::new();
                probabilities(&theta, &previous[..channel], k, levels, temperature, &mut p);
                let mut counts = vec![0usize; levels];
                for i in 0..n {
                    let u = (i as f64 + 0.5) / n as f64;
                    counts[draw(&theta, &previous[..channel], k, levels, temperature, u) as usize] += 1;
                }
                for (v, (&c, &q)) in counts.iter().zip(&p).enumerate() {
                    let share = c as f64 / n as f64;
                    assert!(
                        (share - q).abs() <= 2e-4 + 1e-3 * q,
                        "seed {seed} K={k} levels {levels} value {v}: drawn {share}, p {q}"
                    );
                }
            }
        }
        // The ends of [0, 1) give the end values' tails, never a value outside the range.
        let theta = params(2, 1);
        for u in [0.0, 1e-300, 1.0 - 1e-16] {
            assert!((draw(&theta, &[], 2, 256, 1.0, u) as usize) < 256);
        }
    }

    #[test]
    fn probabilities_sum_to_one_and_match_the_tensor_nll_at_every_value_and_edge() {
        let device = Device::flex();
        let (k, levels) = (4, 256);
        for seed in 0..6 {
            let theta = params(k, seed);
            let previous = [(seed * 97 % 256) as u8, (seed * 31 % 256) as u8];
            for channel in 0..3 {
                let mut p = Vec::new();
                probabilities(&theta, &previous[..channel], k, levels, 1.0, &mut p);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(p.iter().all(|&q| q >= 0.0));
                // The tensor NLL of every value of this channel, the others fixed.
                let per = params_per_subpixel(k, 3);
                let mut all = vec![0.0f32; 3 * per];
                all[channel * per..(channel + 1) * per].copy_from_slice(&theta);
                let batch: Vec<i64> = (0..levels)
                    .flat_map(|v| {
                        (0..3).map(
                            move |c| if c == channel { v as i64 } else { previous.get(c).copied().unwrap_or(0) as i64 },
                        )
                    })
                    .collect();
                let images = Tensor::<4, Int>::from_data(TensorData::new(batch, [levels, 3, 1, 1]), &device);
                let all =
                    Tensor::<4>::from_data(TensorData::new(all, [1, 3 * per, 1, 1]), &device).repeat_dim(0, levels);
                let nll: Vec<f32> = nll_per_subpixel(all, images, k, levels)
                    .slice([0..levels, channel..channel + 1, 0..1, 0..1])
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap();
                for v in 0..levels {
                    assert!(nll[v].is_finite(), "seed {seed} channel {channel} value {v}: {}", nll[v]);
                    if p[v] > 1e-6 {
                        let host = -p[v].ln();
                        assert!(
                            (nll[v] as f64 - host).abs() < 2e-4 * (1.0 + host),
                            "seed {seed} channel {channel} value {v}: tensor {} vs host {host}",
                            nll[v]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_sharp_component_puts_its_mass_on_its_bin_and_the_tails_on_the_edges() {
        let (k, levels) = (1, 256);
        let mut p = Vec::new();
        // The sharpest component (log-scale -7) on a bin's centre: the logistic's mass within
        // half a bin, +-e^7 / 255 standard units, ~0.973; a half on each edge bin's inner side.
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        let reach = 7f64.exp() / 255.0;
        let mean = (100.0 * 2.0 / 255.0 - 1.0) as f32;
        probabilities(&[0.0, mean, -7.0], &[], k, levels, 1.0, &mut p);
        assert!((p[100] - (sigmoid(reach) - sigmoid(-reach))).abs() < 1e-5, "{}", p[100]);
        // The clamp: a log-scale below -7 is -7.
        let mut clamped = Vec::new();
        probabilities(&[0.0, mean, -30.0], &[], k, levels, 1.0, &mut clamped);
        assert_eq!(clamped, p);
        // Mean far right of the range: everything in the last bin; far left: the first.
        probabilities(&[0.0, 5.0, -7.0], &[], k, levels, 1.0, &mut p);
        assert!(p[255] > 0.999);
        probabilities(&[0.0, -5.0, -7.0], &[], k, levels, 1.0, &mut p);
        assert!(p[0] > 0.999);
        // The coefficient on an earlier channel moves the mean: red at 255 pulls green up to
        // the edge (mass of the last bin: sigmoid(reach)), red at 0 down.
        let mut theta = vec![0.0f32; params_per_subpixel(1, 3)];
        theta[2] = -7.0;
        theta[3] = 20.0; // tanh = 1: mean = 0 + x_red
        probabilities(&theta, &[255], 1, levels, 1.0, &mut p);
        assert!((p[255] - sigmoid(reach)).abs() < 1e-5, "{}", p[255]);
        probabilities(&theta, &[0], 1, levels, 1.0, &mut p);
        assert!((p[0] - sigmoid(reach)).abs() < 1e-5, "{}", p[0]);
        // Without red (the red channel itself), the coefficients are not read.
        probabilities(&theta, &[], 1, levels, 1.0, &mut p);
        assert!(p[127] + p[128] > 0.99);
        // A higher temperature widens the distribution.
        probabilities(&[0.0, mean, -3.0], &[], k, levels, 1.0, &mut p);
        let sharp = p[100];
        probabilities(&[0.0, mean, -3.0], &[], k, levels, 3.0, &mut p);
        assert!(p[100] < sharp);
    }

    #[test]
    fn the_tensor_nll_has_finite_gradients_everywhere() {
        let device = Device::flex().autodiff();
        let k = 3;
        let per = params_per_subpixel(k, 3);
        let theta: Vec<f32> = (0..4).flat_map(|s| params(k, s).into_iter().take(per)).collect();
        let theta: Vec<f32> = theta.into_iter().cycle().take(2 * 3 * per * 2).collect();
        let params = Tensor::<4>::from_data(TensorData::new(theta, [2, 3 * per, 1, 2]), &device).require_grad();
        let images = Tensor::<4, Int>::from_data(
            TensorData::new(vec![0i64, 255, 128, 3, 254, 0, 255, 255, 1, 0, 77, 200], [2, 3, 1, 2]),
            &device,
        );
        let nll = nll_per_subpixel(params.clone(), images, k, 256);
        let grads = nll.sum().backward();
        let g: Vec<f32> = params.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert!(g.iter().any(|&v| v != 0.0));
    }
}
