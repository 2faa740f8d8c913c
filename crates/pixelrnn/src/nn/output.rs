//! The output stack of Table 1: ReLU, 1x1 mask B (2h -> d), ReLU, 1x1 mask B (d -> out).

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::masks::Groups;
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map;

/// Configuration of an [`OutputStack`].
#[derive(Debug, Clone)]
pub struct OutputStackConfig {
    /// Channels coming in (2h).
    pub input_channels: usize,
    /// Width d of the hidden 1x1 layer (paper: 32 for MNIST, 1024 for natural images).
    pub hidden_channels: usize,
    /// Logits out: C for sigmoid outputs, C * 256 for softmax outputs (channel c's logits are
    /// the contiguous block c, i.e. colour group c).
    pub output_channels: usize,
    /// Colour channels of the data (1 or 3).
    pub colour_groups: usize,
}

impl OutputStackConfig {
    /// Builds the stack.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> OutputStack {
        let g = self.colour_groups;
        let hidden = MaskedConv2dConfig::pointwise(self.input_channels, self.hidden_channels, g).init(device, rng);
        let logits = MaskedConv2dConfig::pointwise(self.hidden_channels, self.output_channels, g).init(device, rng);
        OutputStack { hidden, logits }
    }
}

/// ReLU - 1x1 - ReLU - 1x1, both convolutions mask B.
#[derive(Module, Debug)]
pub struct OutputStack {
    /// 2h -> d.
    pub(crate) hidden: MaskedConv2d,
    /// d -> out.
    pub(crate) logits: MaskedConv2d,
}

impl OutputStack {
    /// # Shapes
    /// - `x`: `[batch, 2h, height, width]`
    /// - returns `[batch, out, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.hidden.forward(relu(x)); // [batch, d, height, width]
        self.logits.forward(relu(x)) // [batch, out, height, width]
    }
}

/// The step form of an [`OutputStack`]: the logits at one position.
#[derive(Debug, Clone)]
pub(crate) struct OutputStackStep {
    hidden: ConvAtPosition,
    logits: ConvAtPosition,
}

impl OutputStack {
    /// The step form (see [`OutputStackStep`]).
    pub(crate) fn step_form(&self) -> OutputStackStep {
        OutputStackStep { hidden: self.hidden.at_position(), logits: self.logits.at_position() }
    }
}

impl OutputStackStep {
    /// The logits at one position, for colour groups `groups` only (ReLU, 1x1, ReLU, 1x1): `hidden` (`[d]`) keeps the
    /// hidden layer at the position across the calls that compute its groups one by one
    /// ([`crate::nn::masked_conv::ConvAtPosition::apply_groups`]); `logits`' other groups are
    /// left as they are.
    ///
    /// # Shapes
    /// - `x`: `[2h]`, `hidden`: `[d]`, `logits`: `[out]`
    pub(crate) fn step_groups(&self, x: &[f32], groups: Groups, hidden: &mut [f32], logits: &mut [f32]) {
        self.hidden.pointwise_groups(hidden, groups, &position_map::relu(x));
        self.logits.pointwise_groups(logits, groups, &position_map::relu(hidden));
    }

    /// Width of the hidden layer (d) and number of logits.
    pub(crate) fn widths(&self) -> (usize, usize) {
        (self.hidden.out_channels(), self.logits.out_channels())
    }
}
