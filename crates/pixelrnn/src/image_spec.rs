//! The images a model is built for ([`ImageSpec`]) and how they enter the network: the one
//! type that data, models, likelihood and sampling all share (a leaf: it imports nothing from
//! the rest of the crate but the error type). What the output predicts of them is
//! [`crate::distribution::OutputDistribution`]'s.
//!
//! Input scaling (documented once, used everywhere): binary data enters the network as its raw
//! `{0, 1}` values; multi-level data (`levels` > 2) is scaled to `[-1, 1]` by
//! `2 v / (levels - 1) - 1`. Targets are always the raw integer values.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The images a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Colour channels: 1 (grey / binary) or 3 (RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Values per sub-pixel: 2 for binary data (sigmoid output), 256 for natural images
    /// (256-way softmax).
    pub levels: usize,
}

/// `CxHxW, L levels`: how messages name an image shape.
impl std::fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}, {} levels", self.channels, self.height, self.width, self.levels)
    }
}

impl ImageSpec {
    /// Binary data: one sigmoid logit per sub-pixel.
    pub fn is_binary(&self) -> bool {
        self.levels == 2
    }

    /// D, the number of sub-pixels of one image (the "dim" of bits/dim).
    pub fn dims(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Checks that the spec is one the models support.
    pub fn validate(&self) -> Result<()> {
        if !(self.channels == 1 || self.channels == 3) {
            return Err(Error::Config(format!("images must have 1 or 3 channels, got {}", self.channels)));
        }
        if self.height == 0 || self.width == 0 {
            return Err(Error::Config(format!("empty image size {}x{}", self.height, self.width)));
        }
        if self.height > 16384 || self.width > 16384 {
            return Err(Error::Config(format!(
                "image size {}x{} is beyond the limit of 16384",
                self.height, self.width
            )));
        }
        if !(2..=65536).contains(&self.levels) {
            return Err(Error::Config(format!("levels must be in 2..=65536, got {}", self.levels)));
        }
        Ok(())
    }
}

/// The network input for a batch of raw images.
///
/// # Shapes
/// - `images`: `[batch, channels, height, width]` integers in `0..levels`
/// - returns the same shape, as floats (see the module docs for the scaling)
pub fn scale_input(spec: &ImageSpec, images: Tensor<4, Int>) -> Tensor<4> {
    let (scale, offset) = input_affine(spec);
    images.float().mul_scalar(scale).add_scalar(offset)
}

/// The input scaling as `input = scale * value + offset`: `(1, 0)` for binary data,
/// `(2 / (levels - 1), -1)` otherwise. The one definition, shared by [`scale_input`] and the
/// models' incremental form.
pub fn input_affine(spec: &ImageSpec) -> (f32, f32) {
    if spec.is_binary() {
        (1.0, 0.0)
    } else {
        (2.0 / (spec.levels - 1) as f32, -1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_maps_levels_to_unit_interval() {
        let device = Device::flex();
        let spec = ImageSpec { channels: 1, height: 1, width: 3, levels: 256 };
        let images = Tensor::<4, Int>::from_data(TensorData::new(vec![0i64, 255, 51], [1, 1, 1, 3]), &device);
        let v: Vec<f32> = scale_input(&spec, images).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v[0], -1.0);
        assert_eq!(v[1], 1.0);
        assert!((v[2] - (-0.6)).abs() < 1e-6);
    }
}
