//! Model configuration and the named presets (paper settings per dataset, `tiny` for tests).

use serde::{Deserialize, Serialize};

use crate::distribution::logistic_mixture::MAX_COMPONENTS;
use crate::distribution::OutputDistribution;
use crate::error::{Error, Result};
use crate::image_spec::ImageSpec;
use crate::models::conditioning::MAX_CLASSES;
pub use crate::nn::diagonal_lstm::DiagonalPadding;

/// The three architectures of the paper, and the successors' Gated PixelCNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// §3.5: masked convolutions only.
    PixelCnn,
    /// §3.1: row-by-row LSTM, triangular receptive field.
    RowLstm,
    /// §3.2: diagonal bidirectional LSTM, full receptive field.
    DiagonalBilstm,
    /// Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
    /// Decoders"): vertical and horizontal stacks (no blind spot), gated units.
    GatedPixelCnn,
}

impl Architecture {
    /// Every architecture.
    pub const ALL: [Architecture; 4] =
        [Architecture::PixelCnn, Architecture::RowLstm, Architecture::DiagonalBilstm, Architecture::GatedPixelCnn];

    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::PixelCnn => "pixel-cnn",
            Architecture::RowLstm => "row-lstm",
            Architecture::DiagonalBilstm => "diagonal-bilstm",
            Architecture::GatedPixelCnn => "gated-pixel-cnn",
        }
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
    /// Row LSTM: learn the state the first row's scan starts from (h_0, c_0); `false` starts
    /// from zeros, as the PyTorch twin and the benchmark spec M3 do. Runs written before this
    /// setting existed learned it.
    #[serde(default = "learned_by_default")]
    pub learned_initial_state: bool,
    /// Diagonal BiLSTM: what the skewed map's padding holds (§3.2 does not say): the presets
    /// use the bias-driven states; runs written before this setting existed held it at zero
    /// (and still do when loaded).
    #[serde(default)]
    pub diagonal_padding: DiagonalPadding,
    /// The output distribution; runs written before this setting existed have the paper's.
    /// Not written when it is the paper's, so that the config of every model that existed
    /// before serializes (and hashes, see `codec::format::config_digest`) as it did.
    #[serde(default, skip_serializing_if = "OutputHead::is_softmax")]
    pub output: OutputHead,
    /// Class-conditional on this many labels ([`crate::models::conditioning`]); `None`
    /// (runs written before this setting existed): unconditional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
}

/// What the output stack predicts for each sub-pixel ([`crate::distribution`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputHead {
    /// The paper's (§5.1): a sigmoid for binary images, a softmax over the levels otherwise.
    #[default]
    Softmax,
    /// PixelCNN++'s discretized logistic mixture of `components` (images of more than 2 levels).
    Mixture {
        /// Mixture components K (PixelCNN++: 10).
        components: usize,
    },
}

impl OutputHead {
    /// Whether it is the paper's output (the default).
    pub fn is_softmax(&self) -> bool {
        *self == OutputHead::Softmax
    }
}

fn learned_by_default() -> bool {
    true
}

/// The named model sizes (see [`ModelConfig::preset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// 2 layers, h = 6, d = 12: trains a few steps in seconds (tests, smoke runs).
    Tiny,
    /// 4 layers, h = 16, d = 32: minutes on a laptop CPU on 28x28 data.
    Small,
    /// Table 4's binarized-MNIST model: 7 layers, h = 16 (every architecture).
    Mnist,
    /// Table 5: PixelCNN 15 layers, Row LSTM and Diagonal BiLSTM 12, h = 128.
    Cifar10,
    /// Table 6: 12 layers, h = 384.
    Imagenet32,
    /// Table 6: 4 layers, h = 512, without residual connections.
    Imagenet64,
    /// The recipe of `pretrained/cifar10`, the successors' model at this machine's scale
    /// (two CPU cores): 6 layers, h = 48, d = 128, with PixelCNN++'s discretized logistic
    /// mixture of 5 as its output on natural images (train with `--lr 0.002 --ema 0.9995`).
    Cifar10Cpu,
}

impl Preset {
    /// Every preset, in the order shown to users.
    pub const ALL: [Preset; 7] = [
        Preset::Tiny,
        Preset::Small,
        Preset::Mnist,
        Preset::Cifar10,
        Preset::Imagenet32,
        Preset::Imagenet64,
        Preset::Cifar10Cpu,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
            Preset::Mnist => "mnist",
            Preset::Cifar10 => "cifar10",
            Preset::Imagenet32 => "imagenet32",
            Preset::Imagenet64 => "imagenet64",
            Preset::Cifar10Cpu => "cifar10-cpu",
        }
    }

    /// The output distribution the preset has unless one is given: the logistic mixture of 5
    /// for `cifar10-cpu` on natural images; the paper's softmax (a sigmoid on binary images)
    /// otherwise.
    pub fn output(self, image: &ImageSpec) -> OutputHead {
        match self {
            Preset::Cifar10Cpu if !image.is_binary() => OutputHead::Mixture { components: 5 },
            _ => OutputHead::Softmax,
        }
    }

    /// Images per training step unless set: 8 (`tiny`), 32 (`small`), 16 for the paper
    /// presets (our choice: the paper does not give its batch size).
    pub fn default_batch_size(self) -> usize {
        match self {
            Preset::Tiny => 8,
            Preset::Small => 32,
            _ => 16,
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ModelConfig {
    /// The model `preset` (see [`Preset`]) for `architecture` on images of `image`, with the
    /// preset's output distribution ([`Preset::output`]); see [`Self::preset_with_output`].
    pub fn preset(preset: Preset, architecture: Architecture, image: ImageSpec) -> Result<Self> {
        Self::preset_with_output(preset, architecture, image, preset.output(&image))
    }

    /// The model `preset` with the output distribution `output`. d (the output stack's width)
    /// in the paper presets is 32 for binary data and 1024 for the 256-way softmax (Table 1);
    /// with the logistic mixture, whose few parameters per sub-pixel need no 1024-wide stack,
    /// it is 2h (the width of the residual stream). Every preset has the paper's kernels (7x7
    /// first layer, 3x3 PixelCNN, k = 3 Row LSTM) and skip connections.
    pub fn preset_with_output(
        preset: Preset,
        architecture: Architecture,
        image: ImageSpec,
        output: OutputHead,
    ) -> Result<Self> {
        image.validate()?;
        let (num_layers, hidden_channels, residual) = match preset {
            Preset::Tiny => (2, 6, true),
            Preset::Small => (4, 16, true),
            Preset::Mnist => (7, 16, true),
            Preset::Cifar10 => match architecture {
                Architecture::PixelCnn | Architecture::GatedPixelCnn => (15, 128, true),
                _ => (12, 128, true),
            },
            Preset::Imagenet32 => (12, 384, true),
            Preset::Imagenet64 => (4, 512, false),
            Preset::Cifar10Cpu => (6, 48, true),
        };
        let paper_d = match output {
            _ if image.is_binary() => 32,
            OutputHead::Softmax => 1024,
            OutputHead::Mixture { .. } => 2 * hidden_channels,
        };
        let d = match preset {
            Preset::Tiny => 12,
            Preset::Small => 32,
            Preset::Cifar10Cpu => 128,
            _ => paper_d,
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
            learned_initial_state: true,
            // Measured: the bias-driven padding learns 1.5 nats/image better per step than the
            // zero padding (BENCHMARKS.md, learning parity).
            diagonal_padding: DiagonalPadding::Bias,
            output,
            classes: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration; every model is built from a validated config.
    pub fn validate(&self) -> Result<()> {
        self.image.validate()?;
        if self.hidden_channels > MAX_WIDTH || self.output_hidden_channels > MAX_WIDTH || self.num_layers > MAX_LAYERS {
            return Err(Error::Config(format!(
                "widths are at most {MAX_WIDTH} and depth at most {MAX_LAYERS} layers, got h={} d={} L={}",
                self.hidden_channels, self.output_hidden_channels, self.num_layers
            )));
        }
        let c = self.image.channels;
        let odd = |k: usize| k % 2 == 1;
        if self.hidden_channels < c || self.output_hidden_channels < c {
            return Err(Error::Config(format!(
                "hidden ({}) and output ({}) widths must be at least the number of colour channels ({c}), so that every colour group has a unit",
                self.hidden_channels, self.output_hidden_channels
            )));
        }
        let kernels = [self.first_kernel, self.cnn_kernel, self.row_kernel];
        if kernels.iter().any(|&k| k > MAX_KERNEL) {
            return Err(Error::Config(format!(
                "masked kernels are at most {MAX_KERNEL} wide, got first {} cnn {} row {}",
                self.first_kernel, self.cnn_kernel, self.row_kernel
            )));
        }
        if !(odd(self.first_kernel) && odd(self.cnn_kernel) && odd(self.row_kernel)) {
            return Err(Error::Config(format!(
                "masked kernels must be odd, got first {} cnn {} row {}",
                self.first_kernel, self.cnn_kernel, self.row_kernel
            )));
        }
        if let Some(classes) = self.classes {
            if !(2..=MAX_CLASSES).contains(&classes) {
                return Err(Error::Config(format!(
                    "a conditional model has 2 to {MAX_CLASSES} classes, got {classes}"
                )));
            }
        }
        if let OutputHead::Mixture { components } = self.output {
            if self.image.is_binary() {
                return Err(Error::Config(
                    "the logistic mixture models images of more than 2 levels; binary images have the sigmoid output"
                        .into(),
                ));
            }
            if !(1..=MAX_COMPONENTS).contains(&components) {
                return Err(Error::Config(format!(
                    "the logistic mixture needs 1 to {MAX_COMPONENTS} components, got {components}"
                )));
            }
        }
        Ok(())
    }

    /// The output distribution of this model's sub-pixels.
    pub fn distribution(&self) -> OutputDistribution {
        match self.output {
            OutputHead::Softmax => OutputDistribution::of(&self.image),
            OutputHead::Mixture { components } => OutputDistribution::LogisticMixture {
                components,
                levels: self.image.levels,
                channels: self.image.channels,
            },
        }
    }

    /// A rough lower bound of the memory (bytes) that training at `batch` images per step takes:
    /// weights, gradients and Adam's two moments, plus the activations kept for the backward
    /// pass (about 30 values of width h per position and layer, and the logits). Saturating:
    /// absurd sizes give `u64::MAX`, never a wrap.
    pub fn training_bytes(&self, batch: usize) -> u64 {
        let (h, d, l) = (self.hidden_channels as u64, self.output_hidden_channels as u64, self.num_layers as u64);
        let c = self.image.channels as u64;
        let out = self.output_channels() as u64;
        let k2 = (self.first_kernel as u64).saturating_mul(self.first_kernel as u64);
        let params = l
            .saturating_mul(h.saturating_mul(h).saturating_mul(20))
            .saturating_add(c.saturating_mul(h.saturating_mul(2)).saturating_mul(k2))
            .saturating_add(h.saturating_mul(2).saturating_mul(d))
            .saturating_add(d.saturating_mul(out));
        let positions = (batch as u64).saturating_mul(self.image.height as u64).saturating_mul(self.image.width as u64);
        let per_position = l.saturating_mul(h).saturating_mul(30).saturating_add(out.saturating_mul(3));
        params.saturating_mul(16).saturating_add(positions.saturating_mul(per_position).saturating_mul(4))
    }

    /// A rough lower bound of the memory (bytes) that a forward pass at `batch` images takes
    /// (evaluation, `bench` of inference): the weights, and per position the activations of one
    /// layer at a time (the LSTM gates and states, about 12 values of width h) beside the
    /// running trunk and the logits. Saturating, as [`Self::training_bytes`].
    pub fn inference_bytes(&self, batch: usize) -> u64 {
        let (h, d) = (self.hidden_channels as u64, self.output_hidden_channels as u64);
        let out = self.output_channels() as u64;
        let positions = (batch as u64).saturating_mul(self.image.height as u64).saturating_mul(self.image.width as u64);
        let per_position = h.saturating_mul(12).saturating_add(d).saturating_add(out.saturating_mul(3));
        let weights = self.training_bytes(0) / 4; // training keeps weights, gradients, two moments
        weights.saturating_add(positions.saturating_mul(per_position).saturating_mul(4))
    }

    /// Number of channels of the output: `channels * params_per_subpixel`.
    pub fn output_channels(&self) -> usize {
        self.image.channels.saturating_mul(self.distribution().params_per_subpixel())
    }
}

/// The widest masked kernel a config may ask for (first, PixelCNN and Row LSTM kernels): far
/// beyond the paper's 7, and small enough that no kernel's weights can exhaust memory (a
/// config or an imported file's metadata claiming a 100,001-wide kernel is refused before
/// anything is allocated).
pub const MAX_KERNEL: usize = 63;

/// The widest layer a config may ask for (hidden or output width).
pub const MAX_WIDTH: usize = 4096;
/// The most layers a config may ask for.
pub const MAX_LAYERS: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused_and_estimated_without_overflow() {
        let base = ModelConfig::preset(Preset::Mnist, Architecture::PixelCnn, BINARY).unwrap();
        for config in [
            ModelConfig { hidden_channels: MAX_WIDTH + 1, ..base.clone() },
            ModelConfig { output_hidden_channels: usize::MAX, ..base.clone() },
            ModelConfig { num_layers: MAX_LAYERS + 1, ..base.clone() },
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("at most 4096") && err.contains("1024 layers"), "{err}");
        }
        let huge = ModelConfig { hidden_channels: usize::MAX, num_layers: usize::MAX, ..base.clone() };
        assert_eq!(huge.training_bytes(usize::MAX), u64::MAX);
        let small = base.training_bytes(16);
        assert!(small > 1 << 20 && small < 1 << 30, "{small}");
        assert!(base.training_bytes(32) > small);
        assert_eq!(huge.inference_bytes(usize::MAX), u64::MAX);
        let forward = base.inference_bytes(16);
        assert!(forward > 0 && forward < small && base.inference_bytes(32) > forward, "{forward} vs {small}");
    }

    const BINARY: ImageSpec = ImageSpec { channels: 1, height: 28, width: 28, levels: 2 };
    const RGB: ImageSpec = ImageSpec { channels: 3, height: 32, width: 32, levels: 256 };
    const ARCHITECTURES: [Architecture; 4] = Architecture::ALL;

    fn size(config: &ModelConfig) -> (usize, usize, usize, bool) {
        (config.num_layers, config.hidden_channels, config.output_hidden_channels, config.residual)
    }

    #[test]
    fn paper_presets_match_the_paper_tables() {
        // Table 4 (binarized MNIST): Diagonal BiLSTM, 7 layers, h = 16; Table 1: d = 32 for MNIST.
        let mnist = ModelConfig::preset(Preset::Mnist, Architecture::DiagonalBilstm, BINARY).unwrap();
        assert_eq!(size(&mnist), (7, 16, 32, true));
        assert_eq!(mnist.output_channels(), 1, "one sigmoid logit per binary sub-pixel");
        // Table 5 (CIFAR-10): PixelCNN 15 layers, the LSTMs 12, h = 128; Table 1: d = 1024.
        let cifar = |a| size(&ModelConfig::preset(Preset::Cifar10, a, RGB).unwrap());
        assert_eq!(cifar(Architecture::PixelCnn), (15, 128, 1024, true));
        assert_eq!(cifar(Architecture::RowLstm), (12, 128, 1024, true));
        assert_eq!(cifar(Architecture::DiagonalBilstm), (12, 128, 1024, true));
        assert_eq!(ModelConfig::preset(Preset::Cifar10, Architecture::RowLstm, RGB).unwrap().output_channels(), 768);
        // Table 6 (ImageNet): 32x32 12 layers h = 384; 64x64 4 layers h = 512 without residuals.
        let imagenet = |p, side| {
            let image = ImageSpec { height: side, width: side, ..RGB };
            size(&ModelConfig::preset(p, Architecture::RowLstm, image).unwrap())
        };
        assert_eq!(imagenet(Preset::Imagenet32, 32), (12, 384, 1024, true));
        assert_eq!(imagenet(Preset::Imagenet64, 64), (4, 512, 1024, false));
    }

    #[test]
    fn the_output_stack_is_sized_for_the_output_distribution() {
        let mixture = OutputHead::Mixture { components: 10 };
        // The paper's d = 1024 feeds the 256-way softmax; the mixture's stack is 2h wide.
        let with = |preset, output| {
            size(&ModelConfig::preset_with_output(preset, Architecture::PixelCnn, RGB, output).unwrap())
        };
        assert_eq!(with(Preset::Cifar10, OutputHead::Softmax), (15, 128, 1024, true));
        assert_eq!(with(Preset::Cifar10, mixture), (15, 128, 256, true));
        assert_eq!(with(Preset::Imagenet32, mixture), (12, 384, 768, true));
        assert_eq!(with(Preset::Tiny, mixture), (2, 6, 12, true), "the small presets keep their d");
        // Binary images have one logit per sub-pixel whatever is asked for: d = 32.
        let binary =
            ModelConfig::preset_with_output(Preset::Mnist, Architecture::PixelCnn, BINARY, OutputHead::Softmax);
        assert_eq!(size(&binary.unwrap()), (7, 16, 32, true));
        // cifar10-cpu: the pretrained CIFAR-10 recipe, the mixture of 5 unless told otherwise.
        let cpu = ModelConfig::preset(Preset::Cifar10Cpu, Architecture::PixelCnn, RGB).unwrap();
        assert_eq!((size(&cpu), cpu.output), ((6, 48, 128, true), OutputHead::Mixture { components: 5 }));
        let cpu_softmax =
            ModelConfig::preset_with_output(Preset::Cifar10Cpu, Architecture::PixelCnn, RGB, OutputHead::Softmax);
        assert_eq!(cpu_softmax.unwrap().output, OutputHead::Softmax);
        assert_eq!(
            ModelConfig::preset(Preset::Cifar10Cpu, Architecture::PixelCnn, BINARY).unwrap().output,
            OutputHead::Softmax
        );
        assert_eq!(serde_json::to_string(&Preset::Cifar10Cpu).unwrap(), "\"cifar10-cpu\"");
    }

    #[test]
    fn every_preset_has_the_paper_kernels_and_skips_and_is_valid() {
        for preset in Preset::ALL {
            for architecture in ARCHITECTURES {
                for image in [BINARY, RGB] {
                    let config = ModelConfig::preset(preset, architecture, image).unwrap();
                    assert_eq!((config.first_kernel, config.cnn_kernel, config.row_kernel), (7, 3, 3), "{preset}");
                    assert!(config.skip, "{preset}");
                    config.validate().unwrap();
                }
            }
            assert!(preset.default_batch_size() >= 1);
        }
        assert_eq!(Preset::Tiny.name(), "tiny");
        assert_eq!(serde_json::to_string(&Preset::Imagenet64).unwrap(), "\"imagenet64\"");
    }

    #[test]
    fn configs_the_models_cannot_build_are_refused() {
        let good = ModelConfig::preset(Preset::Tiny, Architecture::RowLstm, RGB).unwrap();
        let refused = |config: ModelConfig, words: &str| {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(words), "{err}");
        };
        refused(ModelConfig { first_kernel: 6, ..good.clone() }, "must be odd");
        refused(ModelConfig { first_kernel: 100_001, ..good.clone() }, "at most 63 wide");
        refused(ModelConfig { cnn_kernel: MAX_KERNEL + 2, ..good.clone() }, "at most 63 wide");
        refused(ModelConfig { row_kernel: 2, ..good.clone() }, "must be odd");
        refused(ModelConfig { hidden_channels: 2, ..good.clone() }, "at least the number of colour channels");
        refused(ModelConfig { output_hidden_channels: 1, ..good.clone() }, "at least the number of colour channels");
        refused(ModelConfig { image: ImageSpec { channels: 2, ..RGB }, ..good.clone() }, "1 or 3 channels");
        refused(ModelConfig { image: ImageSpec { height: 0, ..RGB }, ..good.clone() }, "empty image");
        refused(ModelConfig { image: ImageSpec { levels: 1, ..RGB }, ..good.clone() }, "levels");
        let mixture = |components| ModelConfig { output: OutputHead::Mixture { components }, ..good.clone() };
        refused(mixture(0), "1 to 64 components, got 0");
        refused(mixture(65), "1 to 64 components, got 65");
        refused(ModelConfig { image: BINARY, ..mixture(5) }, "binary images have the sigmoid");
        refused(ModelConfig { classes: Some(1), ..good.clone() }, "2 to 1000 classes, got 1");
        refused(ModelConfig { classes: Some(1001), ..good.clone() }, "2 to 1000 classes, got 1001");
        assert_eq!(
            mixture(5).output_channels(),
            3 * 5 * 5,
            "K logits, means, log-scales and 2 K coefficients per channel"
        );
        assert!(ModelConfig::preset(Preset::Tiny, Architecture::PixelCnn, ImageSpec { channels: 4, ..RGB }).is_err());
    }
}
