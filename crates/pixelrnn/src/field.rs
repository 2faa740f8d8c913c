//! Dependency fields (the paper's Figure 4): where a model looks when it predicts one
//! sub-pixel, measured as the gradient of that sub-pixel's logits with respect to every input
//! sub-pixel. A zero gradient means no path: PixelCNN's blind spot, the Row LSTM's triangle,
//! the Diagonal BiLSTM's whole context (§3.1, §3.2, Figure 4).

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::image_spec::{scale_input, ImageSpec};
use crate::models::PixelRnn;

/// The gradient magnitudes of one sub-pixel's logits with respect to the input.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencyField {
    /// The model's images.
    pub image: ImageSpec,
    /// The predicted sub-pixel: row, column, channel.
    pub target: (usize, usize, usize),
    /// |d logits(target) / d input| per input sub-pixel, `[channels][height][width]`.
    pub magnitude: Vec<f32>,
}

impl DependencyField {
    /// The input sub-pixels `(row, col, channel)` the target depends on (non-zero gradient), in
    /// raster order, channel fastest.
    pub fn dependencies(&self) -> Vec<(usize, usize, usize)> {
        let ImageSpec { channels, height, width, .. } = self.image;
        let mut out = Vec::new();
        for r in 0..height {
            for c in 0..width {
                for ch in 0..channels {
                    if self.magnitude[(ch * height + r) * width + c] != 0.0 {
                        out.push((r, c, ch));
                    }
                }
            }
        }
        out
    }
}

/// A fixed pseudo-random image of `image` (raw values in `0..levels`, `[channels, height,
/// width]`): the input the field is measured at, so that no unit is dead by accident.
pub fn probe_image(image: &ImageSpec) -> Vec<i64> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..image.dims())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % image.levels as u64) as i64
        })
        .collect()
}

/// The dependency field of sub-pixel `(row, col, channel)` of `model` (on an autodiff
/// device), measured at `raw` (`[channels, height, width]` values in `0..levels`).
pub fn dependency_field(
    model: &PixelRnn,
    raw: &[i64],
    target: (usize, usize, usize),
    device: &Device,
) -> Result<DependencyField> {
    Ok(dependency_fields(model, raw, &[target], device)?.remove(0))
}

/// The dependency fields of several target sub-pixels at once (one batch, one backward pass):
/// [`dependency_field`] for each. Each of a target's logits is weighted by a distinct factor
/// so that no two cancel.
pub fn dependency_fields(
    model: &PixelRnn,
    raw: &[i64],
    targets: &[(usize, usize, usize)],
    device: &Device,
) -> Result<Vec<DependencyField>> {
    let image = model.image();
    let ImageSpec { channels, height, width, .. } = image;
    if let Some(&(row, col, channel)) = targets.iter().find(|&&(r, c, ch)| r >= height || c >= width || ch >= channels)
    {
        return Err(Error::Config(format!(
            "pixel ({row}, {col}) channel {channel} is outside the model's {height}x{width} images with {channels} channel(s)"
        )));
    }
    if raw.len() != image.dims() {
        return Err(Error::Config(format!("{} input values, the model's images have {}", raw.len(), image.dims())));
    }
    let (batch, per, n) = (targets.len(), model.distribution().params_per_subpixel(), image.dims());
    let images: Vec<i64> = (0..batch).flat_map(|_| raw.iter().copied()).collect();
    let images = Tensor::<4, Int>::from_data(TensorData::new(images, [batch, channels, height, width]), device);
    let x = scale_input(&image, images).require_grad();
    let logits = model.forward(x.clone()); // [batch, channels * per, height, width]
    let mut select = vec![0.0f32; batch * channels * per * height * width];
    for (b, &(row, col, channel)) in targets.iter().enumerate() {
        for k in 0..per {
            select[((b * channels * per + channel * per + k) * height + row) * width + col] =
                1.0 + 0.37 * ((k * 7919) % 13) as f32;
        }
    }
    let select = Tensor::<4>::from_data(TensorData::new(select, [batch, channels * per, height, width]), device);
    let grads = (logits * select).sum().backward();
    let grad = x.grad(&grads).ok_or_else(|| Error::Config("the model was not built on an autodiff device".into()))?;
    let magnitude = grad.abs().into_data().try_to_vec::<f32>().map_err(|e| Error::Config(format!("{e:?}")))?;
    Ok(targets
        .iter()
        .enumerate()
        .map(|(b, &target)| DependencyField { image, target, magnitude: magnitude[b * n..(b + 1) * n].to_vec() })
        .collect())
}

/// The field as an RGB picture `[3, height, width]` (planar): the target red, each input
/// sub-pixel's pixel grey by its largest gradient on a log scale (white = strongest, dark blue
/// = no dependency).
pub fn render(field: &DependencyField) -> Vec<u8> {
    let ImageSpec { channels, height, width, .. } = field.image;
    let n = height * width;
    let per_pixel: Vec<f32> =
        (0..n).map(|p| (0..channels).map(|ch| field.magnitude[ch * n + p]).fold(0.0, f32::max)).collect();
    let positive = || per_pixel.iter().copied().filter(|&v| v > 0.0);
    let (lo, hi) = (positive().fold(f32::INFINITY, f32::min).ln(), positive().fold(0.0, f32::max).ln());
    let mut rgb = vec![0u8; 3 * n];
    for (p, &v) in per_pixel.iter().enumerate() {
        let (r, g, b) = if p == field.target.0 * width + field.target.1 {
            (230, 40, 40)
        } else if v > 0.0 {
            let t = if hi > lo { (v.ln() - lo) / (hi - lo) } else { 1.0 };
            let level = (60.0 + 195.0 * t).round() as u8;
            (level, level, level)
        } else {
            (20, 24, 60)
        };
        rgb[p] = r;
        rgb[n + p] = g;
        rgb[2 * n + p] = b;
    }
    rgb
}
