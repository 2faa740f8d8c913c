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

/// One image (raw values, `[channels][height][width]`) as a batch of one, checked against the
/// model's image size.
fn image_batch(model: &PixelRnn, image: &[u8], op: &'static str, device: &Device) -> Result<Tensor<4, Int>> {
    let spec = model.image();
    if image.len() != spec.dims() {
        return Err(Error::Shape { op, expected: format!("{} sub-pixels", spec.dims()), got: image.len().to_string() });
    }
    let values = image.iter().map(|&v| v as i32).collect::<Vec<_>>();
    Ok(Tensor::from_data(TensorData::new(values, [1, spec.channels, spec.height, spec.width]), device))
}

/// The class `label` of a conditional model's image as a batch of one, checked.
fn label_batch(model: &PixelRnn, label: Option<u8>, device: &Device) -> Result<Option<Tensor<1, Int>>> {
    model.check_labels(label.as_ref().map(std::slice::from_ref), 1)?;
    Ok(label.map(|l| Tensor::from_data(TensorData::new(vec![l as i32], [1]), device)))
}

/// Scores one image (raw values, `[channels][height][width]`), given its class `label` when
/// the model is class-conditional.
pub fn score(model: &PixelRnn, image: &[u8], label: Option<u8>, device: &Device) -> Result<Score> {
    let spec = model.image();
    let t = image_batch(model, image, "score", device)?;
    let labels = label_batch(model, label, device)?;
    let nll: Vec<f32> = nll_per_subpixel(model.distribution(), model.logits_given(t.clone(), labels), t)
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

/// The model's predictive distribution at one pixel of an image: for each colour channel, the
/// probability of every value given everything before it in the raster order (the paper's
/// softmax figure, §3.4).
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Pixel row.
    pub row: usize,
    /// Pixel column.
    pub col: usize,
    /// The image's value in each channel there.
    pub values: Vec<u8>,
    /// `[channel][value]` probabilities (binary images: `[1 - p, p]`).
    pub probabilities: Vec<Vec<f64>>,
}

/// The predictive distribution of every channel at pixel `(row, col)` of `image` (raw values,
/// `[channels][height][width]`), conditioned on the image's own preceding sub-pixels.
pub fn distribution(
    model: &PixelRnn,
    image: &[u8],
    label: Option<u8>,
    (row, col): (usize, usize),
    device: &Device,
) -> Result<Distribution> {
    let spec = model.image();
    if row >= spec.height || col >= spec.width {
        return Err(Error::Config(format!(
            "pixel ({row}, {col}) is outside the {}x{} image (rows and columns count from 0)",
            spec.height, spec.width
        )));
    }
    let t = image_batch(model, image, "distribution", device)?;
    // [1, channels * per, height, width] -> the logits at (row, col), channel blocks in order.
    let distribution = model.distribution();
    let per = distribution.params_per_subpixel();
    let labels = label_batch(model, label, device)?;
    let at: Vec<f32> = model
        .logits_given(t, labels)
        .slice([0..1, 0..spec.channels * per, row..row + 1, col..col + 1])
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 logits");
    let plane = spec.height * spec.width;
    let values: Vec<u8> = (0..spec.channels).map(|c| image[c * plane + row * spec.width + col]).collect();
    let probabilities = at
        .chunks(per)
        .enumerate()
        .map(|(channel, logits)| {
            let mut p = Vec::with_capacity(distribution.values());
            distribution.probabilities(logits, &values[..channel], 1.0, &mut p);
            p
        })
        .collect();
    Ok(Distribution { row, col, values, probabilities })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageSet;
    use crate::eval::per_image_nll;
    use crate::image_spec::ImageSpec;
    use crate::models::{Architecture, ModelConfig, OutputHead, Preset};

    #[test]
    fn total_equals_eval_nll_and_layout_is_channel_fastest() {
        let spec = ImageSpec { channels: 3, height: 4, width: 5, levels: 256 };
        let device = Device::flex();
        let model = ModelConfig::preset(Preset::Tiny, Architecture::RowLstm, spec).unwrap().init(&device, 1).unwrap();
        let image: Vec<u8> = (0..spec.dims()).map(|i| (i * 41 % 256) as u8).collect();
        let s = score(&model, &image, None, &device).unwrap();
        let set = ImageSet { channels: 3, height: 4, width: 5, levels: 256, pixels: image.clone(), labels: None };
        let eval = per_image_nll(&model, &set, None, 1, &device, &mut |_, _| {}).unwrap()[0];
        assert!((s.nll_nats - eval).abs() <= 1e-4 * eval.abs(), "{} vs {eval}", s.nll_nats);
        assert_eq!(s.per_subpixel_nats.len(), 60);
        // Changing sub-pixel (row 1, col 2, G) changes its own NLL entry first of all.
        let mut other = image.clone();
        let (plane, idx) = (20, (5 + 2) * 3 + 1);
        other[plane + 5 + 2] = other[plane + 5 + 2].wrapping_add(100);
        let t = score(&model, &other, None, &device).unwrap();
        let first_diff = (0..60).find(|&i| s.per_subpixel_nats[i] != t.per_subpixel_nats[i]);
        assert_eq!(first_diff, Some(idx));
    }

    #[test]
    fn the_distribution_at_a_pixel_gives_each_subpixel_its_own_nll() {
        let rgb = ImageSpec { channels: 3, height: 4, width: 5, levels: 256 };
        for (spec, output) in [
            (rgb, OutputHead::Softmax),
            (ImageSpec { channels: 1, height: 4, width: 5, levels: 2 }, OutputHead::Softmax),
            (rgb, OutputHead::Mixture { components: 3 }),
        ] {
            let device = Device::flex();
            let mut config = ModelConfig::preset(Preset::Tiny, Architecture::PixelCnn, spec).unwrap();
            config.output = output;
            let model = config.init(&device, 2).unwrap();
            let image: Vec<u8> = (0..spec.dims()).map(|i| (i * 37 % spec.levels) as u8).collect();
            let s = score(&model, &image, None, &device).unwrap();
            let d = distribution(&model, &image, None, (2, 3), &device).unwrap();
            for (c, probs) in d.probabilities.iter().enumerate() {
                assert_eq!(probs.len(), spec.levels);
                assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                let nll = -probs[d.values[c] as usize].ln();
                let expected = s.per_subpixel_nats[(2 * 5 + 3) * spec.channels + c];
                assert!((nll - expected).abs() < 1e-4 * expected.max(1.0), "channel {c}: {nll} vs {expected}");
            }
            let e = distribution(&model, &image, None, (4, 0), &device).unwrap_err().to_string();
            assert!(e.contains("outside the 4x5 image"), "{e}");
        }
    }
}
