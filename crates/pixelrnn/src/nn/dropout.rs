//! Dropout (Srivastava et al. 2014) with masks that are a pure function of a key: the same key
//! gives the same mask on every backend, so a training run with dropout is reproduced exactly by
//! its seed and resumed exactly from its step (the key is derived from both; see
//! [`crate::train`]). PixelCNN++ (Salimans et al. 2017) uses p = 0.5 on CIFAR-10.
//!
//! Training only: evaluation, sampling, scoring and the codec never call it.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::error::{Error, Result};

/// SplitMix64's output function: a well-mixed 64-bit value from any counter.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Checks a dropout probability: a number in [0, 1).
pub fn check_probability(probability: f64) -> Result<()> {
    if !(probability.is_finite() && (0.0..1.0).contains(&probability)) {
        return Err(Error::Config(format!(
            "the dropout probability must be a number in [0, 1), e.g. 0.5; got {probability}"
        )));
    }
    Ok(())
}

/// The keep-mask of `count` values for `key`, already scaled by `1 / (1 - probability)` (so the
/// expected value of the output equals the input): element `i` is kept when the top 53 bits of
/// `mix(key + i)` read as a number in [0, 1) are at least `probability`.
pub fn keep_mask(count: usize, probability: f64, key: u64) -> Vec<f32> {
    let scale = (1.0 / (1.0 - probability)) as f32;
    (0..count as u64)
        .map(|i| {
            let u = (mix(key.wrapping_add(i.wrapping_mul(0x2545_F491_4F6C_DD1D))) >> 11) as f64 / (1u64 << 53) as f64;
            if u >= probability {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

/// `x` with each value zeroed with `probability` and the rest scaled by `1 / (1 - probability)`.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` -> same
pub fn dropout(x: Tensor<4>, probability: f64, key: u64) -> Tensor<4> {
    if probability == 0.0 {
        return x;
    }
    let shape = x.shape();
    let mask = keep_mask(shape.num_elements(), probability, key);
    let mask = Tensor::<4>::from_data(TensorData::new(mask, shape), &x.device());
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_a_function_of_its_key_and_keeps_the_expected_fraction() {
        let a = keep_mask(100_000, 0.5, 7);
        assert_eq!(a, keep_mask(100_000, 0.5, 7), "same key, same mask");
        assert_ne!(a, keep_mask(100_000, 0.5, 8), "another key, another mask");
        let kept = a.iter().filter(|&&v| v > 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.5).abs() < 0.01, "{kept}");
        assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
        let light = keep_mask(100_000, 0.1, 7);
        let kept = light.iter().filter(|&&v| v > 0.0).count() as f64 / light.len() as f64;
        assert!((kept - 0.9).abs() < 0.01, "{kept}");
        assert!(keep_mask(1000, 0.0, 3).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        for p in [0.0, 0.5, 0.99] {
            check_probability(p).unwrap();
        }
        for p in [1.0, -0.1, f64::NAN, f64::INFINITY] {
            assert!(check_probability(p).unwrap_err().to_string().contains("[0, 1)"), "{p}");
        }
    }

    #[test]
    fn dropout_zeroes_and_rescales_and_zero_probability_is_the_identity() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([2, 3, 4, 5], &device);
        let same: Vec<f32> = dropout(x.clone(), 0.0, 1).into_data().try_to_vec().unwrap();
        assert!(same.iter().all(|&v| v == 1.0));
        let dropped: Vec<f32> = dropout(x, 0.25, 1).into_data().try_to_vec().unwrap();
        assert!(dropped.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        assert!(dropped.contains(&0.0));
    }
}
