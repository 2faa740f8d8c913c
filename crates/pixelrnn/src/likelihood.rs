//! Exact negative log-likelihood of images under a model's logits (§2, §5.1): the one place
//! where nats and bits/dim are computed.
//! Targets are always the raw integer values (the network's input scaling is
//! [`crate::image_spec::scale_input`]).

use burn::prelude::*;

use crate::distribution::OutputDistribution;

/// The NLL of every sub-pixel in nats, -log p(x_i | x_<i), under the model's output
/// distribution ([`OutputDistribution`]: sigmoid for binary data, softmax or logistic mixture
/// otherwise).
///
/// # Shapes
/// - `logits`: `[batch, channels * params_per_subpixel, height, width]`
/// - `images`: `[batch, channels, height, width]`
/// - returns `[batch, channels, height, width]`
pub fn nll_per_subpixel(distribution: OutputDistribution, logits: Tensor<4>, images: Tensor<4, Int>) -> Tensor<4> {
    distribution.nll_per_subpixel(logits, images)
}

/// The exact NLL of each image in nats: the sum over all sub-pixels of -log p(x_i | x_<i).
///
/// # Shapes
/// - `logits`: `[batch, channels * params_per_subpixel, height, width]`
/// - `images`: `[batch, channels, height, width]`
/// - returns `[batch]`
pub fn nll_nats(distribution: OutputDistribution, logits: Tensor<4>, images: Tensor<4, Int>) -> Tensor<1> {
    let [batch, channels, height, width] = images.dims();
    nll_per_subpixel(distribution, logits, images)
        .reshape([batch, channels * height * width])
        .sum_dim(1)
        .reshape([batch])
}

/// Bits per dimension of an NLL given in nats per image of `dims` sub-pixels:
/// `nats / (dims * ln 2)`.
pub fn bits_per_dim(nats_per_image: f64, dims: usize) -> f64 {
    nats_per_image / (dims as f64 * std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_spec::ImageSpec;

    #[test]
    fn uniform_logits_give_eight_bits_per_dim_rgb() {
        let device = Device::flex();
        let spec = ImageSpec { channels: 3, height: 4, width: 5, levels: 256 };
        let logits = Tensor::<4>::zeros([2, 3 * 256, 4, 5], &device);
        let images = Tensor::<4, Int>::from_data(
            TensorData::new((0..120).map(|v| (v * 37 % 256) as i64).collect::<Vec<_>>(), [2, 3, 4, 5]),
            &device,
        );
        let nats: Vec<f32> =
            nll_nats(OutputDistribution::of(&spec), logits, images).into_data().try_to_vec::<f32>().unwrap();
        for n in nats {
            let bpd = bits_per_dim(n as f64, spec.dims());
            assert!((bpd - 8.0).abs() < 1e-5, "uniform 256-way softmax must be 8 bits/dim, got {bpd}");
        }
    }

    #[test]
    fn uniform_logits_give_784_ln2_nats_binary() {
        let device = Device::flex();
        let spec = ImageSpec { channels: 1, height: 28, width: 28, levels: 2 };
        let logits = Tensor::<4>::zeros([3, 1, 28, 28], &device);
        let images = Tensor::<4, Int>::from_data(
            TensorData::new((0..3 * 784).map(|v| (v % 3 == 0) as i64).collect::<Vec<_>>(), [3, 1, 28, 28]),
            &device,
        );
        let nats: Vec<f32> =
            nll_nats(OutputDistribution::of(&spec), logits, images).into_data().try_to_vec::<f32>().unwrap();
        let expected = 784.0 * std::f64::consts::LN_2;
        for n in nats {
            assert!((n as f64 - expected).abs() < 1e-3, "expected {expected}, got {n}");
            assert!((bits_per_dim(n as f64, 784) - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn binary_nll_matches_closed_form() {
        let device = Device::flex();
        let spec = ImageSpec { channels: 1, height: 1, width: 2, levels: 2 };
        let logits = Tensor::<4>::from_data(TensorData::new(vec![2.0f32, -30.0], [1, 1, 1, 2]), &device);
        let images = Tensor::<4, Int>::from_data(TensorData::new(vec![1i64, 1], [1, 1, 1, 2]), &device);
        let n: f32 = nll_nats(OutputDistribution::of(&spec), logits, images).into_scalar();
        let expected = (1.0 + (-2.0f64).exp()).ln() + (1.0 + 30.0f64.exp()).ln();
        assert!((n as f64 - expected).abs() < 1e-4, "{n} vs {expected}");
    }

    #[test]
    fn categorical_picks_the_target_logit() {
        let device = Device::flex();
        let spec = ImageSpec { channels: 1, height: 1, width: 1, levels: 4 };
        let logits = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 1.0, 2.0, 3.0], [1, 4, 1, 1]), &device);
        let images = Tensor::<4, Int>::from_data(TensorData::new(vec![2i64], [1, 1, 1, 1]), &device);
        let n: f32 = nll_nats(OutputDistribution::of(&spec), logits, images).into_scalar();
        let z: f64 = (0..4).map(|v| (v as f64).exp()).sum();
        assert!((n as f64 - (z.ln() - 2.0)).abs() < 1e-5);
    }
}
