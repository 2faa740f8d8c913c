//! The three PixelRNN models behind one type, [`PixelRnn`]: a 7x7 mask A convolution, L layers
//! of the chosen architecture, optional learnable skip connections, and the output stack.

pub mod conditioning;
pub mod config;
mod cost;
pub mod diagonal_bilstm;
pub mod gated_pixel_cnn;
mod incremental;
pub mod parameters;
pub mod pixel_cnn;
pub mod row_lstm;
pub mod specs;
pub(crate) mod step;

use burn::prelude::*;

pub use config::{Architecture, DiagonalPadding, ModelConfig, OutputHead, Preset};
use diagonal_bilstm::{DiagonalBiLstmLayer, DiagonalBiLstmLayerConfig};
use gated_pixel_cnn::{GatedLayer, GatedLayerConfig, VerticalStack, VerticalStackConfig};
pub use incremental::{Incremental, IncrementalState};
use pixel_cnn::{ResidualBlock, ResidualBlockConfig};
use row_lstm::{RowLstmLayer, RowLstmLayerConfig};
use step::Stepped;

use crate::distribution::OutputDistribution;
use crate::error::Error;
use crate::error::Result;
use crate::image_spec::{scale_input, ImageSpec};
use crate::likelihood::nll_nats;
use crate::masks::{contiguous_groups, MaskType};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{MaskedConv2d, MaskedConv2dConfig};
use crate::nn::output::{OutputStack, OutputStackConfig};
use conditioning::ClassEmbedding;

/// `x + y` when the layer has a residual connection (§3.3), else `y`.
pub(crate) fn residual(x: Tensor<4>, y: Tensor<4>, on: bool) -> Tensor<4> {
    if on {
        x + y
    } else {
        y
    }
}

/// One layer of any of the three architectures; each maps 2h -> 2h. Each variant is a
/// [`step::Stepped`] layer: its `forward` and its step form (how to add one: [`step`]).
// A model holds a handful of layers, all of one variant: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub(crate) enum Layer {
    /// A PixelCNN residual block.
    PixelCnn(ResidualBlock),
    /// A Row LSTM layer.
    RowLstm(RowLstmLayer),
    /// A Diagonal BiLSTM layer.
    DiagonalBilstm(DiagonalBiLstmLayer),
    /// A Gated PixelCNN horizontal layer (its input: the trunk and the vertical stack's
    /// pre-activations of the layer, concatenated).
    Gated(GatedLayer),
}

impl Layer {
    /// # Shapes
    /// - `x`: `[batch, 2h, height, width]` (Gated PixelCNN: `[batch, 2h + 4h, height, width]`,
    ///   the trunk and its vertical pre-activations) -> `[batch, 2h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Layer::PixelCnn(layer) => Stepped::forward(layer, x),
            Layer::RowLstm(layer) => Stepped::forward(layer, x),
            Layer::DiagonalBilstm(layer) => Stepped::forward(layer, x),
            Layer::Gated(layer) => Stepped::forward(layer, x),
        }
    }
}

impl ModelConfig {
    /// Builds the model with weights drawn from `seed` (the same on every backend).
    pub fn init(&self, device: &Device, seed: u64) -> Result<PixelRnn> {
        self.validate()?;
        let mut rng = InitRng::new(seed);
        let rng = &mut rng;
        let g = self.image.channels;
        let h = self.hidden_channels;
        let k = self.first_kernel;
        let input =
            MaskedConv2dConfig::same([k, k], Some(MaskType::A), contiguous_groups(g, g), contiguous_groups(2 * h, g))
                .init(device, rng);
        let layers = (0..self.num_layers)
            .map(|_| match self.architecture {
                Architecture::PixelCnn => Layer::PixelCnn(
                    ResidualBlockConfig {
                        hidden_channels: h,
                        kernel: self.cnn_kernel,
                        colour_groups: g,
                        residual: self.residual,
                    }
                    .init(device, rng),
                ),
                Architecture::RowLstm => Layer::RowLstm(
                    RowLstmLayerConfig {
                        hidden_channels: h,
                        kernel_width: self.row_kernel,
                        colour_groups: g,
                        residual: self.residual,
                        learned_initial_state: self.learned_initial_state,
                    }
                    .init(device, rng),
                ),
                Architecture::DiagonalBilstm => Layer::DiagonalBilstm(
                    DiagonalBiLstmLayerConfig {
                        hidden_channels: h,
                        colour_groups: g,
                        residual: self.residual,
                        padding: self.diagonal_padding,
                    }
                    .init(device, rng),
                ),
                Architecture::GatedPixelCnn => Layer::Gated(
                    GatedLayerConfig {
                        hidden_channels: h,
                        kernel: self.cnn_kernel,
                        colour_groups: g,
                        residual: self.residual,
                    }
                    .init(device, rng),
                ),
            })
            .collect();
        let skips = if self.skip {
            (0..self.num_layers).map(|_| MaskedConv2dConfig::pointwise(2 * h, 2 * h, g).init(device, rng)).collect()
        } else {
            Vec::new()
        };
        let output = OutputStackConfig {
            input_channels: 2 * h,
            hidden_channels: self.output_hidden_channels,
            output_channels: self.output_channels(),
            colour_groups: g,
        }
        .init(device, rng);
        // Drawn last, so that the other architectures' weights from a seed are what they were.
        let vertical = (self.architecture == Architecture::GatedPixelCnn).then(|| {
            VerticalStackConfig {
                image_channels: g,
                width: 2 * h,
                first_kernel: k,
                kernel: self.cnn_kernel,
                layers: self.num_layers,
            }
            .init(device, rng)
        });
        let conditioning = self.classes.map(|classes| ClassEmbedding::new(self.num_layers + 1, classes, 2 * h, device));
        Ok(PixelRnn {
            input,
            layers,
            skips,
            output,
            vertical,
            conditioning,
            image: self.image,
            distribution: self.distribution(),
        })
    }
}

/// A PixelCNN, Row LSTM or Diagonal BiLSTM network (Table 1), or a Gated PixelCNN.
#[derive(Module, Debug)]
pub struct PixelRnn {
    /// First layer: k x k (7x7) mask A convolution, C -> 2h.
    pub(crate) input: MaskedConv2d,
    /// The L layers.
    pub(crate) layers: Vec<Layer>,
    /// Learnable skip connections (1x1 mask B, 2h -> 2h), one per layer; empty when disabled.
    pub(crate) skips: Vec<MaskedConv2d>,
    /// ReLU - 1x1 - ReLU - 1x1 to the logits.
    pub(crate) output: OutputStack,
    /// Gated PixelCNN's vertical stack (its other architectures have none).
    pub(crate) vertical: Option<VerticalStack>,
    /// A conditional model's class embedding.
    pub(crate) conditioning: Option<ClassEmbedding>,
    /// The images this model is built for.
    #[module(skip)]
    pub(crate) image: ImageSpec,
    /// What the output stack's parameters describe.
    #[module(skip)]
    pub(crate) distribution: OutputDistribution,
}

impl PixelRnn {
    /// Logits of every sub-pixel's conditional distribution. A class-conditional model's class
    /// embedding is left out (see [`Self::forward_given`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`, scaled (see [`crate::image_spec::scale_input`])
    /// - returns `[batch, channels * params_per_subpixel, height, width]`; channel `c`'s
    ///   parameters are the contiguous block `c`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_given(x, None, None)
    }

    /// [`Self::forward`] with training-time dropout on every layer's output: `Some((p, key))`
    /// zeroes each value with probability `p`, by masks drawn from `key` ([`crate::nn::dropout`]).
    // Deviation: PixelCNN++ drops inside its gated residual block, before the second
    // convolution; here every layer's output is dropped (what the next layer and the skip
    // connection see), the one place common to the three architectures.
    ///
    /// # Shapes
    /// As [`Self::forward`].
    pub fn forward_with(&self, x: Tensor<4>, dropout: Option<(f64, u64)>) -> Tensor<4> {
        self.forward_given(x, None, dropout)
    }

    /// [`Self::forward_with`] of a class-conditional model given each image's class:
    /// the class embedding ([`conditioning`]) is added to the trunk before every layer and
    /// before the output stack; `labels` is ignored by an unconditional model.
    ///
    /// # Shapes
    /// - `x`: as [`Self::forward`]; `labels`: `[batch]`, each below the model's classes
    /// - returns as [`Self::forward`]
    pub fn forward_given(
        &self,
        x: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        dropout: Option<(f64, u64)>,
    ) -> Tensor<4> {
        let embedding = self.conditioning.as_ref().zip(labels);
        let condition = |t: Tensor<4>, place: usize| match &embedding {
            Some((table, labels)) => t + table.at(place, labels.clone()),
            None => t,
        };
        let links = self.vertical.as_ref().map(|v| v.forward(x.clone())); // L x [batch, 4h, height, width]
        let mut x = self.input.forward(x); // [batch, 2h, height, width]
        let mut skip_sum: Option<Tensor<4>> = None;
        for (index, layer) in self.layers.iter().enumerate() {
            x = condition(x, index);
            x = match &links {
                Some(links) => layer.forward(Tensor::cat(vec![x, links[index].clone()], 1)),
                None => layer.forward(x),
            }; // [batch, 2h, height, width]
            if let Some((probability, key)) = dropout {
                x = crate::nn::dropout::dropout(x, probability, crate::nn::dropout::mix(key ^ index as u64));
            }
            if let Some(skip) = self.skips.get(index) {
                let s = skip.forward(x.clone());
                skip_sum = Some(match skip_sum {
                    Some(sum) => sum + s,
                    None => s,
                });
            }
        }
        self.output.forward(condition(skip_sum.unwrap_or(x), self.layers.len()))
    }

    /// The images this model is built for.
    pub fn image(&self) -> ImageSpec {
        self.image
    }

    /// The output distribution of its sub-pixels.
    pub fn distribution(&self) -> OutputDistribution {
        self.distribution
    }

    /// Logits for a batch of raw images.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]` integers -> logits as [`Self::forward`]
    pub fn logits(&self, images: Tensor<4, Int>) -> Tensor<4> {
        self.forward(scale_input(&self.image, images))
    }

    /// Exact NLL of each image in nats (an unconditional model's; see [`Self::nll_given`]).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]` integers -> `[batch]`
    pub fn nll(&self, images: Tensor<4, Int>) -> Tensor<1> {
        nll_nats(self.distribution, self.logits(images.clone()), images)
    }

    /// The number of classes of a class-conditional model.
    pub fn classes(&self) -> Option<usize> {
        self.conditioning.as_ref().map(ClassEmbedding::classes)
    }

    /// Checks that `labels` (one per image, or none) are what this model needs: a conditional
    /// model needs one label below its classes per image, an unconditional one none.
    pub fn check_labels(&self, labels: Option<&[u8]>, images: usize) -> Result<()> {
        match (self.classes(), labels) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(Error::Config("the model is not class-conditional: it takes no class label".into())),
            (Some(classes), None) => Err(Error::Config(format!(
                "the model is class-conditional ({classes} classes): it needs each image's class label"
            ))),
            (Some(classes), Some(labels)) => {
                if labels.len() != images {
                    return Err(Error::Config(format!("{} class labels for {images} images", labels.len())));
                }
                match labels.iter().find(|&&l| l as usize >= classes) {
                    Some(l) => Err(Error::Config(format!("class {l} is outside the model's 0..{}", classes - 1))),
                    None => Ok(()),
                }
            }
        }
    }

    /// Logits given each image's class (`labels` as [`Self::forward_given`]).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]` integers, `labels`: `[batch]`
    pub fn logits_given(&self, images: Tensor<4, Int>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        self.forward_given(scale_input(&self.image, images), labels, None)
    }

    /// Exact NLL of each image in nats given its class: -log p(x | y) for a conditional model.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]` integers, `labels`: `[batch]` -> `[batch]`
    pub fn nll_given(&self, images: Tensor<4, Int>, labels: Option<Tensor<1, Int>>) -> Tensor<1> {
        nll_nats(self.distribution, self.logits_given(images.clone(), labels), images)
    }

    /// [`Self::nll_given`] with training-time dropout (see [`Self::forward_with`]); `None` is
    /// `nll_given`.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]` integers, `labels`: `[batch]` -> `[batch]`
    pub fn nll_with_dropout(
        &self,
        images: Tensor<4, Int>,
        labels: Option<Tensor<1, Int>>,
        dropout: Option<(f64, u64)>,
    ) -> Tensor<1> {
        let logits = self.forward_given(scale_input(&self.image, images.clone()), labels, dropout);
        nll_nats(self.distribution, logits, images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Architecture, Preset};

    #[test]
    fn dropout_changes_only_what_training_asks_for_and_is_a_function_of_its_key() {
        let image = ImageSpec { channels: 1, height: 6, width: 6, levels: 2 };
        let device = Device::flex();
        for architecture in Architecture::ALL {
            let model = ModelConfig::preset(Preset::Tiny, architecture, image).unwrap().init(&device, 4).unwrap();
            let images = Tensor::<4, Int>::from_data(
                TensorData::new((0..72).map(|i| (i * 7 % 3 == 0) as i64).collect::<Vec<_>>(), [2, 1, 6, 6]),
                &device,
            );
            let values = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
            let plain = values(model.nll(images.clone()));
            assert_eq!(values(model.nll_with_dropout(images.clone(), None, None)), plain);
            assert_eq!(values(model.nll_with_dropout(images.clone(), None, Some((0.0, 5)))), plain);
            let a = values(model.nll_with_dropout(images.clone(), None, Some((0.5, 5))));
            assert_ne!(a, plain, "{architecture:?}: dropout on");
            assert_eq!(values(model.nll_with_dropout(images.clone(), None, Some((0.5, 5)))), a, "same key, same NLL");
            assert_ne!(values(model.nll_with_dropout(images.clone(), None, Some((0.5, 6)))), a, "another key");
            assert_eq!(values(model.nll(images)), plain, "evaluation is untouched");
        }
    }
}
