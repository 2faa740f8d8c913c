//! Sequential sampling and image completion (§2: p(x) = prod_i p(x_i | x_<i)): sub-pixels
//! are drawn in raster order, R then G then B within a pixel.
//!
//! Two samplers, identical by construction up to float rounding (a test checks they give the
//! same images for the same seed):
//! - **fast** (default): the model's incremental form ([`crate::models::Incremental`])
//!   evaluates the network one position at a time with per-layer caches, so a sub-pixel costs
//!   work proportional to what it can influence;
//! - **naive** (the reference): one full forward pass over the whole image per sub-pixel, as
//!   public PixelCNN code does.
//!
//! Random draws come from ChaCha8 seeded with the request's seed, one draw per generated
//! sub-pixel per image in raster order, so the same seed gives the same images.

use burn::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::image_spec::ImageSpec;
use crate::models::IncrementalState;
use crate::models::PixelRnn;

/// Which sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// Incremental evaluation with caches (default).
    Fast,
    /// One full forward pass per sub-pixel (reference).
    Naive,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Starting images, `[count][channels][height][width]` raw values; sub-pixels before
    /// `first_free` are observed and never altered.
    pub images: Vec<u8>,
    /// Number of images.
    pub count: usize,
    /// Index (raster order, channel fastest) of the first sub-pixel to sample.
    pub first_free: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Softmax / sigmoid temperature (> 0; 1 = the model's distribution).
    pub temperature: f64,
    /// Each image's class, for a class-conditional model (none for the others).
    pub labels: Option<Vec<u8>>,
}

impl Generation {
    /// `count` fresh samples.
    pub fn samples(spec: &ImageSpec, count: usize, seed: u64, temperature: f64) -> Self {
        Self { images: vec![0; count * spec.dims()], count, first_free: 0, seed, temperature, labels: None }
    }

    /// Completions of `images` keeping their top `observed_rows` rows.
    pub fn completions(spec: &ImageSpec, images: Vec<u8>, observed_rows: usize, seed: u64, temperature: f64) -> Self {
        let count = images.len() / spec.dims().max(1);
        Self { images, count, first_free: observed_rows * spec.width * spec.channels, seed, temperature, labels: None }
    }

    /// `samples` completions of each of `originals` (images one after another), keeping their top
    /// `observed_rows` rows: each image repeated `samples` times in a row, and with it its class
    /// from `labels` (one per original, for a class-conditional model).
    pub fn completions_of(
        spec: &ImageSpec,
        originals: &[u8],
        samples: usize,
        labels: Option<&[u8]>,
        observed_rows: usize,
        seed: u64,
        temperature: f64,
    ) -> Self {
        let starts = originals
            .chunks(spec.dims().max(1))
            .flat_map(|o| std::iter::repeat_n(o.iter().copied(), samples).flatten());
        let request = Self::completions(spec, starts.collect(), observed_rows, seed, temperature);
        match labels {
            Some(labels) => request.with_labels(labels.iter().flat_map(|&l| std::iter::repeat_n(l, samples)).collect()),
            None => request,
        }
    }

    /// The same request under each image's class `labels` (a class-conditional model's).
    pub fn with_labels(self, labels: Vec<u8>) -> Self {
        Self { labels: Some(labels), ..self }
    }
}

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Generates the free sub-pixels of `request` and returns the images (same layout).
/// `progress(done, total)` counts generated sub-pixels per image.
pub fn generate(
    model: &PixelRnn,
    request: &Generation,
    sampler: Sampler,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u8>> {
    generate_streamed(model, request, sampler, device, progress, &mut |_, _| true)
}

/// [`generate`], telling `row_done(row, images)` the images as they stand after each image
/// row is complete (what a server streams); `row_done` returning `false` stops the generation
/// ([`Error::Cancelled`]: a client gone, a time limit passed). The draws are those of
/// [`generate`]: the same seed gives the same images.
pub fn generate_streamed(
    model: &PixelRnn,
    request: &Generation,
    sampler: Sampler,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
    row_done: &mut dyn FnMut(usize, &[u8]) -> bool,
) -> Result<Vec<u8>> {
    let spec = model.image();
    let (ch_count, height, width) = (spec.channels, spec.height, spec.width);
    let dims = spec.dims();
    if request.count == 0 {
        return Err(Error::Config("nothing to generate: the image count must be at least 1".into()));
    }
    if request.images.len() != request.count * dims {
        return Err(Error::Shape {
            op: "generate",
            expected: format!("{} x {dims} sub-pixels", request.count),
            got: request.images.len().to_string(),
        });
    }
    if !(request.temperature > 0.0 && request.temperature.is_finite()) {
        return Err(Error::Config(format!("temperature must be a positive number, got {}", request.temperature)));
    }
    model.check_labels(request.labels.as_deref(), request.count)?;
    if request.first_free > dims {
        return Err(Error::Config(format!("first free sub-pixel {} beyond the image ({dims})", request.first_free)));
    }
    let mut images = request.images.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let distribution = model.distribution();
    let mut scratch = Vec::with_capacity(distribution.values());
    let total = dims - request.first_free;
    let plane = height * width;
    let incremental = (sampler == Sampler::Fast).then(|| model.incremental());
    let mut states: Vec<IncrementalState> =
        incremental.as_ref().map_or_else(Vec::new, |m| (0..request.count).map(|_| m.state()).collect());
    if let Some(labels) = &request.labels {
        states.iter_mut().zip(labels).for_each(|(state, &label)| state.set_label(label as usize));
    }
    let mut done = 0;
    for r in 0..height {
        for c in 0..width {
            let pixel = r * width + c;
            let observed_channels = request.first_free.saturating_sub(pixel * ch_count).min(ch_count);
            if let Some(incremental) = &incremental {
                for (n, state) in states.iter_mut().enumerate() {
                    for ch in 0..observed_channels {
                        state.set_value(r, c, ch, images[n * dims + ch * plane + pixel]);
                    }
                }
                if observed_channels == ch_count {
                    // Observed pixel: only the caches are needed.
                    states.par_iter_mut().for_each(|state| {
                        incremental.logits_at(state, r, c);
                    });
                    continue;
                }
            } else if observed_channels == ch_count {
                continue;
            }
            for ch in observed_channels..ch_count {
                let logits: Vec<Vec<f32>> = match &incremental {
                    Some(incremental) => states
                        .par_iter_mut()
                        .map(|state| incremental.channel_logits_at(state, r, c, ch).to_vec())
                        .collect(),
                    None => naive_logits(model, &images, request.labels.as_deref(), (r, c, ch), device),
                };
                for (n, l) in logits.iter().enumerate() {
                    let previous: Vec<u8> = (0..ch).map(|j| images[n * dims + j * plane + pixel]).collect();
                    let v = distribution.draw(l, &previous, request.temperature, uniform(&mut rng), &mut scratch);
                    images[n * dims + ch * plane + pixel] = v;
                    if let Some(state) = states.get_mut(n) {
                        state.set_value(r, c, ch, v);
                    }
                }
                done += 1;
                progress(done, total);
            }
        }
        if !row_done(r, &images) {
            return Err(Error::Cancelled(format!("generation stopped after row {r}")));
        }
    }
    Ok(images)
}

/// The logits of sub-pixel (r, c, ch) of every image (under its class `labels`) from one full
/// forward pass.
fn naive_logits(
    model: &PixelRnn,
    images: &[u8],
    labels: Option<&[u8]>,
    (r, c, ch): (usize, usize, usize),
    device: &Device,
) -> Vec<Vec<f32>> {
    let spec = model.image();
    let count = images.len() / spec.dims();
    let per = model.distribution().params_per_subpixel();
    let data: Vec<i32> = images.iter().map(|&v| v as i32).collect();
    let batch =
        Tensor::<4, Int>::from_data(TensorData::new(data, [count, spec.channels, spec.height, spec.width]), device);
    let labels = labels.map(|l| {
        Tensor::<1, Int>::from_data(TensorData::new(l.iter().map(|&v| v as i32).collect::<Vec<_>>(), [count]), device)
    });
    let logits = model.logits_given(batch, labels).slice([0..count, ch * per..(ch + 1) * per, r..r + 1, c..c + 1]);
    let flat: Vec<f32> = logits.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 logits");
    flat.chunks(per).map(|x| x.to_vec()).collect()
}

#[cfg(test)]
mod tests;
