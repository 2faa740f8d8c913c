//! The model's incremental form: the network evaluated one position at a time with per-layer
//! caches, built from the same layers as [`PixelRnn::forward`] (each layer's step form lives
//! beside its `forward`). What sampling, completion and any other autoregressive use drive
//! the model through.
//!
//! Generating sub-pixel (r, c, ch) needs every layer's output at (r, c) only, and each layer's
//! output there depends on earlier positions that are already cached, so one position costs
//! work proportional to the layers' kernels, not to the image:
//! - PixelCNN: the k x k masked convolutions read cached maps of earlier positions;
//! - Row LSTM: the state of row r at column c reads the finished row r - 1 (Eq. 3);
//! - Diagonal BiLSTM: the left-to-right state at (r, c) reads (r, c - 1) and (r - 1, c); the
//!   right-to-left states of row r - 1 are computed when row r starts.
//!
//! A colour pixel's channels cost one pass in all ([`Incremental::channel_logits_at`]): channel
//! `ch`'s logits need colour group `ch` of every stage, which the masks (§3.4) keep blind to the
//! channels from `ch` on at this pixel, so each call computes that group alone
//! ([`crate::models::step::StepForm::step_groups`]) and keeps every stage's output at the pixel
//! for the next group to read.
//!
//! ```
//! use burn::prelude::*;
//! use pixelrnn::image_spec::ImageSpec;
//! use pixelrnn::models::{Architecture, ModelConfig, Preset};
//!
//! let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
//! let model = ModelConfig::preset(Preset::Tiny, Architecture::RowLstm, image).unwrap().init(&Device::flex(), 1).unwrap();
//! let incremental = model.incremental();
//! let mut state = incremental.state();
//! let logits = incremental.logits_at(&mut state, 0, 0); // p(x_1): nothing observed yet
//! state.set_value(0, 0, 0, 1); // then x_1 = 1
//! assert_eq!(logits.len(), 1);
//! ```

use std::borrow::Cow;

use crate::distribution::OutputDistribution;
use crate::image_spec::{input_affine, ImageSpec};
use crate::masks::Groups;
use crate::models::conditioning::HostEmbedding;
use crate::models::gated_pixel_cnn::{VerticalStackState, VerticalStackStep};
use crate::models::step::{DynState, DynStep, Stepped};
use crate::models::{Layer, PixelRnn};
use crate::nn::masked_conv::ConvAtPosition;
use crate::nn::output::OutputStackStep;
use crate::nn::position_map::PositionMap;

impl Layer {
    /// The layer's step form, its state type erased ([`crate::models::step`]).
    fn step_form(&self, image: ImageSpec) -> Box<dyn DynStep> {
        match self {
            Layer::PixelCnn(layer) => Box::new(Stepped::step_form(layer, image)),
            Layer::RowLstm(layer) => Box::new(Stepped::step_form(layer, image)),
            Layer::DiagonalBilstm(layer) => Box::new(Stepped::step_form(layer, image)),
            Layer::Gated(layer) => Box::new(Stepped::step_form(layer, image)),
        }
    }
}

/// A [`PixelRnn`] in its step form, on the host: the weights are copied once, and each image
/// being generated keeps an [`IncrementalState`].
#[derive(Debug, Clone)]
pub struct Incremental {
    image: ImageSpec,
    distribution: OutputDistribution,
    input: ConvAtPosition,
    layers: Vec<Box<dyn DynStep>>,
    skips: Vec<ConvAtPosition>,
    output: OutputStackStep,
    vertical: Option<VerticalStackStep>,
    conditioning: Option<HostEmbedding>,
}

/// The caches of one image for an [`Incremental`] model: its inputs so far and what each layer
/// keeps.
#[derive(Debug, Clone)]
pub struct IncrementalState {
    canvas: PositionMap,
    /// The input scaling `(scale, offset)` of the model's images ([`input_affine`]).
    affine: (f32, f32),
    layers: Vec<Box<dyn DynState>>,
    /// Gated PixelCNN's vertical stack.
    vertical: Option<VerticalStackState>,
    /// The class of the image (a conditional model's).
    label: Option<usize>,
    /// The row being generated.
    row: Option<usize>,
    /// Every stage's output at the position being computed.
    here: Here,
}

/// What each stage of the network holds at the position being computed, kept between the
/// calls that compute a colour image's groups one at a time
/// ([`Incremental::channel_logits_at`]): a group's outputs read the lower groups' outputs of
/// the stage before.
#[derive(Debug, Clone)]
struct Here {
    /// The position, and the colour groups computed there with the current inputs (those
    /// below `done`).
    at: Option<(usize, usize)>,
    done: usize,
    /// The first convolution's output, `[2h]`.
    input: Vec<f32>,
    /// Each layer's output, `[layers][2h]`.
    layers: Vec<Vec<f32>>,
    /// Each skip connection's output, `[layers][2h]` (none without skips).
    skips: Vec<Vec<f32>>,
    /// The output stack's hidden layer, `[d]`.
    hidden: Vec<f32>,
    /// The logits, `[channels * logits_per_subpixel]`.
    logits: Vec<f32>,
}

impl PixelRnn {
    /// The model's step form (see [`Incremental`]).
    pub fn incremental(&self) -> Incremental {
        Incremental {
            image: self.image,
            distribution: self.distribution,
            input: self.input.at_position(),
            layers: self.layers.iter().map(|layer| layer.step_form(self.image)).collect(),
            skips: self.skips.iter().map(|skip| skip.at_position()).collect(),
            output: self.output.step_form(),
            vertical: self.vertical.as_ref().map(|v| v.step_form()),
            conditioning: self.conditioning.as_ref().map(|c| c.host()),
        }
    }
}

impl IncrementalState {
    /// Bytes held: what each image being generated or coded costs in memory.
    pub fn bytes(&self) -> usize {
        self.canvas.bytes()
            + self.layers.iter().map(|layer| layer.bytes()).sum::<usize>()
            + self.vertical.as_ref().map_or(0, VerticalStackState::bytes)
    }

    /// Sets the class the image is generated or coded under (a conditional model's; without
    /// it the class embedding is left out, as [`crate::models::PixelRnn::forward`] does).
    pub fn set_label(&mut self, label: usize) {
        self.label = Some(label);
    }

    /// Sets sub-pixel (r, c, ch) to the raw `value` (`0..levels`), scaled as the network's
    /// input ([`input_affine`]).
    pub fn set_value(&mut self, r: usize, c: usize, ch: usize, value: u8) {
        let (scale, offset) = self.affine;
        self.canvas.at_mut(r, c)[ch] = value as f32 * scale + offset;
        if self.here.at == Some((r, c)) {
            // The groups above `ch` see it at their own pixel (masks A and B); those up to it do not.
            self.here.done = self.here.done.min(ch + 1);
        }
    }
}

impl Incremental {
    /// The images the model is built for.
    pub fn image(&self) -> ImageSpec {
        self.image
    }

    /// The output distribution of its sub-pixels.
    pub fn distribution(&self) -> OutputDistribution {
        self.distribution
    }

    /// The caches of one fresh image (every input zero).
    pub fn state(&self) -> IncrementalState {
        let ImageSpec { channels, height, width, .. } = self.image;
        let trunk = self.input.out_channels(); // 2h
        let (d, out) = self.output.widths();
        IncrementalState {
            canvas: PositionMap::new(height, width, channels),
            affine: input_affine(&self.image),
            layers: self.layers.iter().map(|layer| layer.state(height, width)).collect(),
            vertical: self.vertical.as_ref().map(|v| v.state(height, width)),
            label: None,
            row: None,
            here: Here {
                at: None,
                done: 0,
                input: vec![0.0; trunk],
                layers: vec![vec![0.0; trunk]; self.layers.len()],
                skips: vec![vec![0.0; trunk]; self.skips.len()],
                hidden: vec![0.0; d],
                logits: vec![0.0; out],
            },
        }
    }

    /// [`PixelRnn::forward`] at (r, c): the logits of every channel there,
    /// `[channels * logits_per_subpixel]` (channel `ch`'s the contiguous block `ch`), given the
    /// inputs before (r, c) in raster order and those of the lower channels at (r, c).
    ///
    /// # Panics
    /// Positions must be visited in raster order; a position may be visited again (once per
    /// channel, after setting the channel just drawn).
    pub fn logits_at(&self, state: &mut IncrementalState, r: usize, c: usize) -> Vec<f32> {
        self.compute(state, r, c, Groups::all(self.image.channels)).to_vec()
    }

    /// The logits of channel `ch` at (r, c), `[logits_per_subpixel]`: the block `ch` of
    /// [`Incremental::logits_at`], to the bit, computing only what channel `ch` needs. A colour
    /// image's channels at a pixel asked in order (0, then 1 after setting 0, ...) cost one pass
    /// of the network in all, not one each: every stage computes the outputs of colour group
    /// `ch` alone, reading the lower groups' from the calls before (§3.4's masks make group
    /// `ch` independent of the channels from `ch` on at its own pixel). Asked out of that order,
    /// the groups below `ch` are computed again first. Before the next position, a pixel's last
    /// channel must have been asked (or the pixel computed by [`Incremental::logits_at`], as for
    /// an observed pixel): the later positions read every group of it. The label
    /// ([`IncrementalState::set_label`]) is set before the first position.
    ///
    /// # Panics
    /// As [`Incremental::logits_at`].
    pub fn channel_logits_at<'s>(&self, state: &'s mut IncrementalState, r: usize, c: usize, ch: usize) -> &'s [f32] {
        let channels = self.image.channels;
        assert!(ch < channels, "channel {ch} of a {channels}-channel image");
        let start = if state.here.at == Some((r, c)) { state.here.done.min(ch) } else { 0 };
        let per = self.distribution.params_per_subpixel();
        &self.compute(state, r, c, Groups { start, end: ch + 1, of: channels })[ch * per..(ch + 1) * per]
    }

    /// Every stage's outputs of colour groups `groups` at (r, c) (the lower groups' done at
    /// (r, c) with the current inputs); the logits, of which the groups' blocks are new.
    fn compute<'s>(&self, state: &'s mut IncrementalState, r: usize, c: usize, groups: Groups) -> &'s [f32] {
        if state.row != Some(r) {
            assert!(
                c == 0 && state.row.map_or(r == 0, |previous| previous + 1 == r),
                "positions must be visited in raster order"
            );
            for (layer, layer_state) in self.layers.iter().zip(&mut state.layers) {
                layer.start_row(layer_state.as_mut(), r);
            }
            if let (Some(vertical), Some(vertical_state)) = (&self.vertical, &mut state.vertical) {
                vertical.start_row(vertical_state, &state.canvas, r);
            }
            state.row = Some(r);
        }
        let here = &mut state.here;
        let canvas = &state.canvas;
        self.input.apply_groups(&mut here.input, groups, |dy, dx| canvas.offset(r, c, dy, dx)); // [2h]
        let embedding = self.conditioning.as_ref().zip(state.label);
        for (index, (layer, layer_state)) in self.layers.iter().zip(&mut state.layers).enumerate() {
            let (before, from) = here.layers.split_at_mut(index);
            let out = &mut from[0]; // [2h]
            let previous = before.last().unwrap_or(&here.input); // [2h]
            let mut x = Cow::Borrowed(previous.as_slice());
            if let Some((table, label)) = embedding {
                table.add(index, label, x.to_mut());
            }
            if let Some(vertical) = &state.vertical {
                x.to_mut().extend_from_slice(vertical.at(index, c)); // [2h + 4h]
            }
            layer.step_groups(layer_state.as_mut(), r, c, &x, groups, out);
            if let Some(skip) = self.skips.get(index) {
                skip.pointwise_groups(&mut here.skips[index], groups, out);
            }
        }
        let mut top = match here.skips.split_first() {
            Some((first, rest)) => {
                let mut sum = first.clone();
                for s in rest {
                    sum.iter_mut().zip(s).for_each(|(a, b)| *a += b);
                }
                Cow::Owned(sum)
            }
            None => Cow::Borrowed(here.layers.last().unwrap_or(&here.input).as_slice()),
        }; // [2h]
        if let Some((table, label)) = embedding {
            table.add(self.layers.len(), label, top.to_mut());
        }
        self.output.step_groups(&top, groups, &mut here.hidden, &mut here.logits);
        here.at = Some((r, c));
        here.done = groups.end;
        &here.logits
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use crate::image_spec::ImageSpec;
    use crate::models::{Architecture, DiagonalPadding, ModelConfig, OutputHead, Preset};

    #[test]
    fn the_incremental_form_equals_the_network_at_every_position() {
        let specs = [
            ImageSpec { channels: 1, height: 5, width: 6, levels: 2 },
            ImageSpec { channels: 3, height: 4, width: 5, levels: 256 },
            ImageSpec { channels: 1, height: 4, width: 3, levels: 256 },
        ];
        for architecture in Architecture::ALL {
            for image in specs {
                let mixture =
                    if image.is_binary() { OutputHead::Softmax } else { OutputHead::Mixture { components: 2 } };
                for (residual, skip, padding, output, classes) in [
                    (true, true, DiagonalPadding::Zero, OutputHead::Softmax, None),
                    (false, false, DiagonalPadding::Zero, OutputHead::Softmax, None),
                    (true, false, DiagonalPadding::Bias, mixture, None),
                    (true, true, DiagonalPadding::Bias, OutputHead::Softmax, Some(3)),
                ] {
                    let mut config = ModelConfig::preset(Preset::Tiny, architecture, image).unwrap();
                    (config.residual, config.skip, config.diagonal_padding) = (residual, skip, padding);
                    (config.output, config.classes) = (output, classes);
                    let mut model = config.init(&Device::flex(), 11).unwrap();
                    let device = Device::flex();
                    let label = classes.map(|_| {
                        // A trained-looking embedding (it starts at zero), class 2 of 3.
                        let table = model.conditioning.as_mut().unwrap();
                        let dims = table.table.val().dims();
                        let n = dims.iter().product::<usize>();
                        let values: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
                        table.table =
                            burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(values, dims), &device));
                        2usize
                    });
                    let values: Vec<i32> = (0..image.dims()).map(|i| ((i * 7919 + 13) % image.levels) as i32).collect();
                    let shape = [1, image.channels, image.height, image.width];
                    let batch = Tensor::<4, Int>::from_data(TensorData::new(values.clone(), shape), &device);
                    let labels =
                        label.map(|l| Tensor::<1, Int>::from_data(TensorData::new(vec![l as i32], [1]), &device));
                    let expected: Vec<f32> =
                        model.logits_given(batch.clone(), labels).into_data().convert::<f32>().try_to_vec().unwrap();
                    if label.is_some() {
                        let other = Tensor::<1, Int>::from_data(TensorData::new(vec![0], [1]), &device);
                        let unconditioned: Vec<f32> =
                            model.logits_given(batch, Some(other)).into_data().convert::<f32>().try_to_vec().unwrap();
                        assert_ne!(unconditioned, expected, "the class changes the prediction");
                    }
                    let incremental = model.incremental();
                    let mut state = incremental.state();
                    if let Some(label) = label {
                        state.set_label(label);
                    }
                    // Driven one channel at a time, as sampling and the codec do.
                    let mut by_channel = state.clone();
                    let per = incremental.distribution().params_per_subpixel();
                    let plane = image.height * image.width;
                    for r in 0..image.height {
                        for c in 0..image.width {
                            for ch in 0..image.channels {
                                let v = values[ch * plane + r * image.width + c];
                                state.set_value(r, c, ch, v as u8);
                            }
                            let got = incremental.logits_at(&mut state, r, c);
                            let value = |ch: usize| values[ch * plane + r * image.width + c] as u8;
                            let what = format!("{architecture:?} {image:?} {output:?} at ({r},{c})");
                            if (r + c) % 3 != 2 {
                                // In order: each channel asked, then set.
                                for ch in 0..image.channels {
                                    let block = incremental.channel_logits_at(&mut by_channel, r, c, ch);
                                    let bits = |l: &[f32]| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                                    assert_eq!(
                                        bits(block),
                                        bits(&got[ch * per..(ch + 1) * per]),
                                        "{what} channel {ch}"
                                    );
                                    by_channel.set_value(r, c, ch, value(ch));
                                }
                            } else {
                                // Out of order: the lower channels set first, the last asked, then
                                // the first again (the groups below are computed anew).
                                let last = image.channels - 1;
                                for ch in 0..last {
                                    by_channel.set_value(r, c, ch, value(ch));
                                }
                                for ch in [last, 0] {
                                    let block = incremental.channel_logits_at(&mut by_channel, r, c, ch).to_vec();
                                    assert_eq!(
                                        block,
                                        got[ch * per..(ch + 1) * per],
                                        "{what} channel {ch}, out of order"
                                    );
                                }
                                by_channel.set_value(r, c, last, value(last));
                            }
                            assert_eq!(got.len(), image.channels * incremental.distribution().params_per_subpixel());
                            for (o, g) in got.iter().enumerate() {
                                let e = expected[o * plane + r * image.width + c];
                                assert!(
                                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                                    "{architecture:?} {image:?} residual={residual} skip={skip} {padding:?} at ({r},{c}) logit {o}: step form {g} vs network {e}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "raster order")]
    fn positions_out_of_raster_order_are_refused() {
        let image = ImageSpec { channels: 1, height: 3, width: 3, levels: 2 };
        let model =
            ModelConfig::preset(Preset::Tiny, Architecture::PixelCnn, image).unwrap().init(&Device::flex(), 1).unwrap();
        let incremental = model.incremental();
        let mut state = incremental.state();
        incremental.logits_at(&mut state, 1, 0);
    }
}
