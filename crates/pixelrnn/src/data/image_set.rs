//! In-memory image sets: raw `u8` sub-pixels, `[count, channels, height, width]`, the same
//! footprint as the files (plus nothing).

use std::path::PathBuf;

use burn::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::image_spec::ImageSpec;

/// A set of same-sized images with optional class labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Channels (1 or 3).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Values per sub-pixel: 2 (binary) or 256.
    pub levels: usize,
    /// All sub-pixels, `[count, channels, height, width]` row-major, each `< levels`.
    pub pixels: Vec<u8>,
    /// One class label per image, when the format has them.
    pub labels: Option<Vec<u8>>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_size().max(1)
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sub-pixels per image.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The model-side description of these images.
    pub fn spec(&self) -> ImageSpec {
        ImageSpec { channels: self.channels, height: self.height, width: self.width, levels: self.levels }
    }

    /// Image `index`'s sub-pixels, `[channels, height, width]`.
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.image_size();
        &self.pixels[index * n..(index + 1) * n]
    }

    /// Images `range` as a new set (labels kept).
    pub fn slice(&self, range: std::ops::Range<usize>) -> ImageSet {
        let n = self.image_size();
        ImageSet {
            pixels: self.pixels[range.start * n..range.end * n].to_vec(),
            labels: self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
            ..*self
        }
    }

    /// Images per class label (empty when the set has no labels).
    pub fn class_counts(&self) -> Vec<usize> {
        let Some(labels) = &self.labels else { return Vec::new() };
        let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        let mut counts = vec![0; classes];
        for &l in labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The images at `indices` as an integer tensor.
    ///
    /// # Shapes
    /// - returns `[indices.len(), channels, height, width]`
    pub fn batch(&self, indices: &[usize], device: &Device) -> Tensor<4, Int> {
        let mut data = Vec::with_capacity(indices.len() * self.image_size());
        for &i in indices {
            data.extend(self.image(i).iter().map(|&v| v as i32));
        }
        Tensor::from_data(TensorData::new(data, [indices.len(), self.channels, self.height, self.width]), device)
    }

    /// The class labels of images `indices`, when the set has labels.
    ///
    /// # Shapes
    /// - returns `[indices.len()]`
    pub fn label_batch(&self, indices: &[usize], device: &Device) -> Option<Tensor<1, Int>> {
        let labels = self.labels.as_ref()?;
        let data: Vec<i32> = indices.iter().map(|&i| labels[i] as i32).collect();
        Some(Tensor::from_data(TensorData::new(data, [indices.len()]), device))
    }

    /// Concatenates sets of the same image shape.
    pub fn concat(parts: Vec<ImageSet>, what: impl Into<PathBuf>) -> Result<ImageSet> {
        let mut parts = parts.into_iter();
        let mut first = parts.next().ok_or_else(|| Error::dataset(what.into(), "no images found"))?;
        for part in parts {
            first.pixels.extend(part.pixels);
            match (&mut first.labels, part.labels) {
                (Some(a), Some(b)) => a.extend(b),
                _ => first.labels = None,
            }
        }
        Ok(first)
    }
}

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images.
    Train,
    /// Held-out images for model selection.
    Valid,
    /// Test images: the figures reported.
    Test,
}

impl Split {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

/// The splits of a loaded dataset, with the files they came from.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training images.
    pub train: ImageSet,
    /// Validation images, if the dataset has (or was given) a validation split.
    pub valid: Option<ImageSet>,
    /// Test images, if present.
    pub test: Option<ImageSet>,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// How the splits were made (e.g. "valid = last 10000 images of train").
    pub notes: Vec<String>,
}

impl Splits {
    /// One split, or a clear error if the dataset does not have it.
    pub fn get(&self, split: Split) -> Result<&ImageSet> {
        match split {
            Split::Train => Some(&self.train),
            Split::Valid => self.valid.as_ref(),
            Split::Test => self.test.as_ref(),
        }
        .ok_or_else(|| {
            let hint = if split == Split::Test { "; evaluate --split valid instead" } else { "" };
            Error::Config(format!("this dataset has no {} split ({}){hint}", split.name(), self.notes.join("; ")))
        })
    }

    /// Holds out the last `count` training images as the validation split.
    pub fn hold_out(mut self, count: usize) -> Result<Self> {
        if count == 0 {
            return Ok(self);
        }
        let n = self.train.len();
        if count >= n {
            return Err(Error::Config(format!("cannot hold out {count} validation images from {n} training images")));
        }
        self.valid = Some(self.train.slice(n - count..n));
        self.train = self.train.slice(0..n - count);
        self.notes.push(format!("valid = last {count} images of the training files"));
        Ok(self)
    }
}
