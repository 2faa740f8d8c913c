//! Exact NLL of one image and of each of its sub-pixels: where an image is surprising.

use burn::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::likelihood::{bits_per_dim, nll_per_subpixel};
use crate::models::PixelRnn;

/// The `score --json` object.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Total NLL in nats.
    pub nll_nats: f64,
    /// Bits/dim.
    pub bits_per_dim: f64,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Channels.
    pub channels: usize,
    /// NLL of every sub-pixel in nats, raster order, channel fastest:
    /// index = (row * width + col) * channels + channel.
    pub per_subpixel_nats: Vec<f64>,
}

impl Score {
    /// NLL per pixel (summed over channels), `[height][width]`.
    pub fn per_pixel(&self) -> Vec<f64> {
        self.per_subpixel_nats.chunks(self.channels).map(|c| c.iter().sum()).collect()
    }
}

/// Scores one image (raw values, `[channels][height][width]`).
pub fn score(model: &PixelRnn, image: &[u8], device: &Device) -> Result<Score> {
    let spec = model.image();
    if image.len() != spec.dims() {
        return Err(Error::Shape {
            op: "score",
            expected: format!("{} sub-pixels", spec.dims()),
            got: image.len().to_string(),
        });
    }
    let t = Tensor::<4, Int>::from_data(
        TensorData::new(
            image.iter().map(|&v| v as i32).collect::<Vec<_>>(),
            [1, spec.channels, spec.height, spec.width],
        ),
        device,
    );
    let nll: Vec<f32> = nll_per_subpixel(&spec, model.logits(t.clone()), t)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 NLL"); // [channels][height][width]
    let plane = spec.height * spec.width;
    let per_subpixel_nats: Vec<f64> =
        (0..spec.dims()).map(|i| nll[(i % spec.channels) * plane + i / spec.channels] as f64).collect();
    let total: f64 = per_subpixel_nats.iter().sum();
    Ok(Score {
        nll_nats: total,
        bits_per_dim: bits_per_dim(total, spec.dims()),
        height: spec.height,
        width: spec.width,
        channels: spec.channels,
        per_subpixel_nats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageSet;
    use crate::eval::per_image_nll;
    use crate::image_spec::ImageSpec;
    use crate::models::{Architecture, ModelConfig, Preset};

    #[test]
    fn total_equals_eval_nll_and_layout_is_channel_fastest() {
        let spec = ImageSpec { channels: 3, height: 4, width: 5, levels: 256 };
        let device = Device::flex();
        let model = ModelConfig::preset(Preset::Tiny, Architecture::RowLstm, spec).unwrap().init(&device, 1).unwrap();
        let image: Vec<u8> = (0..spec.dims()).map(|i| (i * 41 % 256) as u8).collect();
        let s = score(&model, &image, &device).unwrap();
        let set = ImageSet { channels: 3, height: 4, width: 5, levels: 256, pixels: image.clone(), labels: None };
        let eval = per_image_nll(&model, &set, None, 1, &device, &mut |_, _| {}).unwrap()[0];
        assert!((s.nll_nats - eval).abs() <= 1e-4 * eval.abs(), "{} vs {eval}", s.nll_nats);
        assert_eq!(s.per_subpixel_nats.len(), 60);
        // Changing sub-pixel (row 1, col 2, G) changes its own NLL entry first of all.
        let mut other = image.clone();
        let (plane, idx) = (20, (5 + 2) * 3 + 1);
        other[plane + 5 + 2] = other[plane + 5 + 2].wrapping_add(100);
        let t = score(&model, &other, &device).unwrap();
        let first_diff = (0..60).find(|&i| s.per_subpixel_nats[i] != t.per_subpixel_nats[i]);
        assert_eq!(first_diff, Some(idx));
    }
}
