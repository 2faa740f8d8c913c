//! The benchmark models M1-M6 (`docs/bench-specs.md`) as model configs: what `bench`, the
//! PyTorch twin's interop and the parity harness share (they are models, so they live here,
//! below everything that uses them).

use crate::image_spec::ImageSpec;
use crate::models::{Architecture, DiagonalPadding, ModelConfig, OutputHead};

/// One of the benchmark specs (docs/bench-specs.md): M1-M4 the paper's models (with a PyTorch
/// twin), M5-M6 the successors' parts (Gated PixelCNN, logistic mixture; their twin is
/// `python/pixelrnn/twin.py`'s `NativeModel`, in this crate's native layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Spec {
    /// PixelCNN, binary 1x28x28, h = 32, 7 blocks, batch 32.
    M1,
    /// PixelCNN, RGB 3x32x32, h = 64, 7 blocks, 256-way softmax, batch 16.
    M2,
    /// Row LSTM, binary 1x28x28, h = 32, one layer, batch 32.
    M3,
    /// Diagonal BiLSTM, binary 1x28x28, h = 16, one layer, batch 32.
    M4,
    /// Gated PixelCNN, RGB 3x32x32, h = 32, 7 layers, 256-way softmax, batch 16.
    M5,
    /// M2 with PixelCNN++'s discretized logistic mixture of 10 in place of the softmax.
    M6,
}

impl Spec {
    /// `m1`..`m4`.
    pub fn name(self) -> &'static str {
        match self {
            Spec::M1 => "m1",
            Spec::M2 => "m2",
            Spec::M3 => "m3",
            Spec::M4 => "m4",
            Spec::M5 => "m5",
            Spec::M6 => "m6",
        }
    }

    /// The spec's batch size.
    pub fn batch(self) -> usize {
        if self.rgb() {
            16
        } else {
            32
        }
    }

    /// Whether its images are RGB (M2, M5, M6).
    pub fn rgb(self) -> bool {
        matches!(self, Spec::M2 | Spec::M5 | Spec::M6)
    }

    /// The model: the spec's depth and width, output width d = 2h, no skip connections.
    pub fn model_config(self) -> ModelConfig {
        let binary = ImageSpec { channels: 1, height: 28, width: 28, levels: 2 };
        let rgb = ImageSpec { channels: 3, height: 32, width: 32, levels: 256 };
        let (arch, image, layers, h) = match self {
            Spec::M1 => (Architecture::PixelCnn, binary, 7, 32),
            Spec::M2 | Spec::M6 => (Architecture::PixelCnn, rgb, 7, 64),
            Spec::M3 => (Architecture::RowLstm, binary, 1, 32),
            Spec::M4 => (Architecture::DiagonalBilstm, binary, 1, 16),
            Spec::M5 => (Architecture::GatedPixelCnn, rgb, 7, 32),
        };
        ModelConfig {
            architecture: arch,
            image,
            num_layers: layers,
            hidden_channels: h,
            output_hidden_channels: 2 * h,
            first_kernel: 7,
            cnn_kernel: 3,
            row_kernel: 3,
            residual: true,
            skip: false,
            // The spec starts each Row LSTM scan from a zero state.
            learned_initial_state: self != Spec::M3,
            // The spec's twin applies the input-to-state convolution after the skew.
            diagonal_padding: if self == Spec::M4 { DiagonalPadding::Bias } else { DiagonalPadding::Zero },
            output: if self == Spec::M6 { OutputHead::Mixture { components: 10 } } else { OutputHead::Softmax },
            classes: None,
        }
    }
}
