//! Model configuration and the named presets (paper settings per dataset, `tiny` for tests).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The three architectures of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// §3.5: masked convolutions only.
    PixelCnn,
    /// §3.1: row-by-row LSTM, triangular receptive field.
    RowLstm,
    /// §3.2: diagonal bidirectional LSTM, full receptive field.
    DiagonalBilstm,
}

impl Architecture {
    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::PixelCnn => "pixel-cnn",
            Architecture::RowLstm => "row-lstm",
            Architecture::DiagonalBilstm => "diagonal-bilstm",
        }
    }
}

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

impl ImageSpec {
    /// Binary data: one sigmoid logit per sub-pixel.
    pub fn is_binary(&self) -> bool {
        self.levels == 2
    }

    /// D, the number of sub-pixels of one image (the "dim" of bits/dim).
    pub fn dims(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Logits per sub-pixel: 1 (sigmoid) or `levels` (softmax).
    pub fn logits_per_subpixel(&self) -> usize {
        if self.is_binary() {
            1
        } else {
            self.levels
        }
    }

    /// Checks that the spec is one the models support.
    pub fn validate(&self) -> Result<()> {
        if !(self.channels == 1 || self.channels == 3) {
            return Err(Error::Config(format!("images must have 1 or 3 channels, got {}", self.channels)));
        }
        if self.height == 0 || self.width == 0 {
            return Err(Error::Config(format!("empty image size {}x{}", self.height, self.width)));
        }
        if !(2..=65536).contains(&self.levels) {
            return Err(Error::Config(format!("levels must be in 2..=65536, got {}", self.levels)));
        }
        Ok(())
    }
}

/// The full description of a model; saved with every run so the model can be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Which of the three models.
    pub architecture: Architecture,
    /// The images it models.
    pub image: ImageSpec,
    /// L: number of residual blocks / LSTM layers after the first masked convolution.
    pub num_layers: usize,
    /// h: each layer maps 2h -> 2h.
    pub hidden_channels: usize,
    /// d: width of the output stack's hidden 1x1 layer (Table 1: 32 MNIST, 1024 natural images).
    pub output_hidden_channels: usize,
    /// Kernel of the first, mask A, convolution (7).
    pub first_kernel: usize,
    /// Kernel of the PixelCNN blocks' masked convolution (3).
    pub cnn_kernel: usize,
    /// k of the Row LSTM's k x 1 kernels (3).
    pub row_kernel: usize,
    /// Residual connections (§3.3, Table 2).
    pub residual: bool,
    /// Learnable skip connections from every layer to the output (§3.3, Table 2).
    pub skip: bool,
}

/// The names accepted by [`ModelConfig::preset`].
pub const PRESETS: &[&str] = &["tiny", "small", "mnist", "cifar10", "imagenet32", "imagenet64"];

impl ModelConfig {
    /// A preset for `architecture` on images of `image`:
    /// - `tiny`: 2 layers, h = 6, d = 12 — trains a few steps in seconds (tests, smoke runs);
    /// - `small`: 4 layers, h = 16, d = 32 — minutes on a laptop CPU on 28x28 data;
    /// - `mnist`: the paper's binarized-MNIST model (Table 4: Diagonal BiLSTM, 7 layers, h = 16);
    ///   other architectures get the same depth and width;
    /// - `cifar10`: Table 5: PixelCNN 15 layers, Row LSTM 12, Diagonal BiLSTM 12, all h = 128;
    /// - `imagenet32`: Table 6: Row LSTM 12 layers, h = 384;
    /// - `imagenet64`: Table 6: Row LSTM 4 layers, h = 512, without residual connections.
    ///
    /// d defaults to 32 for binary data and 1024 otherwise (Table 1) except for `tiny`/`small`.
    pub fn preset(name: &str, architecture: Architecture, image: ImageSpec) -> Result<Self> {
        image.validate()?;
        let paper_d = if image.is_binary() { 32 } else { 1024 };
        let (num_layers, hidden_channels, d, residual) = match name {
            "tiny" => (2, 6, 12, true),
            "small" => (4, 16, 32, true),
            "mnist" => (7, 16, paper_d, true),
            "cifar10" => match architecture {
                Architecture::PixelCnn => (15, 128, paper_d, true),
                _ => (12, 128, paper_d, true),
            },
            "imagenet32" => (12, 384, paper_d, true),
            "imagenet64" => (4, 512, paper_d, false),
            other => {
                return Err(Error::Config(format!(
                    "unknown preset '{other}' (expected one of: {})",
                    PRESETS.join(", ")
                )))
            }
        };
        let config = Self {
            architecture,
            image,
            num_layers,
            hidden_channels,
            output_hidden_channels: d,
            first_kernel: 7,
            cnn_kernel: 3,
            row_kernel: 3,
            residual,
            skip: true,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration; every model is built from a validated config.
    pub fn validate(&self) -> Result<()> {
        self.image.validate()?;
        let c = self.image.channels;
        let odd = |k: usize| k % 2 == 1;
        if self.hidden_channels < c || self.output_hidden_channels < c {
            return Err(Error::Config(format!(
                "hidden ({}) and output ({}) widths must be at least the number of colour channels ({c}), so that every colour group has a unit",
                self.hidden_channels, self.output_hidden_channels
            )));
        }
        if !(odd(self.first_kernel) && odd(self.cnn_kernel) && odd(self.row_kernel)) {
            return Err(Error::Config(format!(
                "masked kernels must be odd, got first {} cnn {} row {}",
                self.first_kernel, self.cnn_kernel, self.row_kernel
            )));
        }
        Ok(())
    }

    /// Number of logit channels of the output: `channels * logits_per_subpixel`.
    pub fn output_channels(&self) -> usize {
        self.image.channels * self.image.logits_per_subpixel()
    }
}
