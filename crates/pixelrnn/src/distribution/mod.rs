//! The output distribution of one sub-pixel (Table 1's output layer, §5.1): the one place that
//! knows how the output stack's parameters are laid out and what they mean, for the tensor NLL
//! of training and evaluation and for the host-side probabilities that the sampler, the codec
//! and `score` use.
//!
//! - [`OutputDistribution::Bernoulli`] (binary images): one logit per sub-pixel,
//!   p(1) = sigmoid(logit);
//! - [`OutputDistribution::Categorical`] (`levels` > 2): a softmax over `levels` logits per
//!   sub-pixel (the paper's 256-way softmax);
//! - [`OutputDistribution::LogisticMixture`] (`levels` > 2): PixelCNN++'s discretized logistic
//!   mixture ([`logistic_mixture`]), whose channels also read the values already known at the
//!   same pixel.
//!
//! Layout: channel `c`'s parameters are the contiguous block `c` of the output's channels
//! (`[batch, channels * params_per_subpixel, height, width]`), so that the mask-B output
//! convolutions give channel `c` only what may condition it (R -> G -> B, §3.4).
//!
//! The probabilities are computed in f64 with an `exp` of our own ([`exp`]: IEEE-754
//! additions, multiplications, divisions and exact roundings only), so that the encoder and the
//! decoder of the codec agree to the bit on every machine, and sampling is the same everywhere.

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::image_spec::ImageSpec;
use crate::kernels::softmax_nll::softmax_nll;

pub mod logistic_mixture;

pub use crate::kernels::exact_exp::{exp, exp_many};

/// What the output stack's parameters of one sub-pixel describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputDistribution {
    /// Binary values: one logit, p(1) = sigmoid(logit).
    Bernoulli,
    /// `levels` values: a softmax over `levels` logits.
    Categorical {
        /// The number of values (256 for 8-bit images).
        levels: usize,
    },
    /// `levels` values: a mixture of `components` discretized logistics
    /// ([`logistic_mixture`]) on images of `channels`.
    LogisticMixture {
        /// Mixture components K.
        components: usize,
        /// The number of values (256 for 8-bit images).
        levels: usize,
        /// Colour channels (each channel's means read the channels before it).
        channels: usize,
    },
}

impl OutputDistribution {
    /// The distribution a model of `image` predicts: Bernoulli for binary images, else a
    /// softmax over the image's levels.
    pub fn of(image: &ImageSpec) -> Self {
        if image.levels == 2 {
            Self::Bernoulli
        } else {
            Self::Categorical { levels: image.levels }
        }
    }

    /// Parameters per sub-pixel: 1 (a logit), `levels` (logits) or the mixture's
    /// ([`logistic_mixture::params_per_subpixel`]).
    pub fn params_per_subpixel(&self) -> usize {
        match *self {
            Self::Bernoulli => 1,
            Self::Categorical { levels } => levels,
            Self::LogisticMixture { components, channels, .. } => {
                logistic_mixture::params_per_subpixel(components, channels)
            }
        }
    }

    /// The values a sub-pixel can take.
    pub fn values(&self) -> usize {
        match *self {
            Self::Bernoulli => 2,
            Self::Categorical { levels } | Self::LogisticMixture { levels, .. } => levels,
        }
    }

    /// The NLL of every sub-pixel in nats, -log p(x_i | x_<i).
    ///
    /// # Shapes
    /// - `params`: `[batch, channels * params_per_subpixel, height, width]`
    /// - `images`: `[batch, channels, height, width]` (raw integer values)
    /// - returns `[batch, channels, height, width]`
    pub fn nll_per_subpixel(&self, params: Tensor<4>, images: Tensor<4, Int>) -> Tensor<4> {
        let [batch, channels, height, width] = images.dims();
        match *self {
            Self::Bernoulli => {
                let target = images.float();
                // -log p = softplus(l) - t * l, written stably as max(l, 0) - t l + log(1 + e^{-|l|}).
                relu(params.clone()) - params.clone() * target + params.abs().neg().exp().log1p()
            }
            Self::Categorical { levels } => {
                let logits = params.reshape([batch, channels, levels, height, width]);
                softmax_nll(logits, images) // [batch, channels, height, width]
            }
            Self::LogisticMixture { components, levels, .. } => {
                logistic_mixture::nll_per_subpixel(params, images, components, levels)
            }
        }
    }

    /// The probabilities of one sub-pixel's values from its parameters `params`
    /// (`[params_per_subpixel]`) and the raw values `previous` of the channels before it at the
    /// same pixel (its channel is `previous.len()`; only the mixture reads them), with every
    /// logit divided by `temperature` (1: the model's distribution; the mixture also widens its
    /// scales by it); written into `out` (`[values]`).
    pub fn probabilities(&self, params: &[f32], previous: &[u8], temperature: f64, out: &mut Vec<f64>) {
        debug_assert_eq!(params.len(), self.params_per_subpixel());
        out.clear();
        match *self {
            Self::Bernoulli => {
                let l = params[0] as f64 / temperature;
                // sigmoid without overflow: 1 / (1 + e^-l) for l >= 0, e^l / (1 + e^l) otherwise.
                let p1 = if l >= 0.0 {
                    1.0 / (1.0 + exp(-l))
                } else {
                    let e = exp(l);
                    e / (1.0 + e)
                };
                out.extend([1.0 - p1, p1]);
            }
            Self::Categorical { .. } => {
                out.extend(params.iter().map(|&l| l as f64 / temperature));
                let max = out.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l));
                out.iter_mut().for_each(|l| *l -= max);
                exp_many(out);
                let sum: f64 = out.iter().sum();
                out.iter_mut().for_each(|p| *p /= sum);
            }
            Self::LogisticMixture { components, levels, .. } => {
                logistic_mixture::probabilities(params, previous, components, levels, temperature, out)
            }
        }
    }

    /// A value drawn with the uniform draw `u` in [0, 1), from `params` at `temperature`:
    /// Bernoulli 1 when `u < p(1)`; otherwise the value whose cumulative probability first
    /// exceeds `u` (inverse CDF). `previous` as [`Self::probabilities`]; `scratch` holds the
    /// probabilities.
    /// The mixture draws its component first ([`logistic_mixture::draw`]): the same
    /// distribution, without computing every value's probability.
    pub fn draw(&self, params: &[f32], previous: &[u8], temperature: f64, u: f64, scratch: &mut Vec<f64>) -> u8 {
        if let Self::LogisticMixture { components, levels, .. } = *self {
            return logistic_mixture::draw(params, previous, components, levels, temperature, u);
        }
        self.probabilities(params, previous, temperature, scratch);
        if *self == Self::Bernoulli {
            return (u < scratch[1]) as u8;
        }
        let mut cumulative = 0.0;
        for (k, p) in scratch.iter().enumerate() {
            cumulative += p;
            if u < cumulative {
                return k as u8;
            }
        }
        (scratch.len() - 1) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_case_has_its_layout_and_probabilities_that_sum_to_one() {
        let binary = OutputDistribution::of(&ImageSpec { channels: 1, height: 2, width: 2, levels: 2 });
        let rgb = OutputDistribution::of(&ImageSpec { channels: 3, height: 2, width: 2, levels: 256 });
        assert_eq!((binary, binary.params_per_subpixel(), binary.values()), (OutputDistribution::Bernoulli, 1, 2));
        assert_eq!(
            (rgb, rgb.params_per_subpixel(), rgb.values()),
            (OutputDistribution::Categorical { levels: 256 }, 256, 256)
        );
        let mut p = Vec::new();
        binary.probabilities(&[2.0], &[], 1.0, &mut p);
        assert!((p[1] - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-15 && (p[0] + p[1] - 1.0).abs() < 1e-15);
        binary.probabilities(&[-800.0], &[], 1.0, &mut p);
        assert_eq!(p, vec![1.0, 0.0], "no overflow far out");
        let logits: Vec<f32> = (0..256).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
        rgb.probabilities(&logits, &[], 1.0, &mut p);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let best = (0..256).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        assert_eq!((0..256).fold(0, |b, i| if p[i] > p[b] { i } else { b }), best);
        // A high temperature flattens the distribution.
        let mut flat = Vec::new();
        rgb.probabilities(&logits, &[], 100.0, &mut flat);
        assert!(flat[best] < p[best]);
    }

    #[test]
    fn draws_follow_the_inverse_cdf_and_the_temperature() {
        let mut s = Vec::new();
        let (two, bernoulli) = (OutputDistribution::Categorical { levels: 4 }, OutputDistribution::Bernoulli);
        assert_eq!(two.draw(&[0.0, 0.0, 10.0, 0.0], &[], 1.0, 0.5, &mut s), 2);
        let even = OutputDistribution::Categorical { levels: 2 };
        assert_eq!(even.draw(&[0.0, 0.0], &[], 1.0, 0.25, &mut s), 0);
        assert_eq!(even.draw(&[0.0, 0.0], &[], 1.0, 0.75, &mut s), 1);
        assert_eq!(bernoulli.draw(&[2.0], &[], 1.0, 0.8, &mut s), 1); // sigmoid(2) = 0.88
        assert_eq!(bernoulli.draw(&[2.0], &[], 10.0, 0.8, &mut s), 0); // sigmoid(0.2) = 0.55
    }
}
