//! Diagonal BiLSTM (van den Oord et al. 2016, §3.2, Fig. 3/4; <https://arxiv.org/abs/1601.06759>):
//! two [`DiagonalLstm`] scans, left-to-right on the map and right-to-left on its mirror image;
//! the right-to-left output is shifted down one row before the two are added, so that every
//! pixel sees all pixels above it and to its left, and nothing after it — no blind spot.

use burn::prelude::*;

use crate::image_spec::ImageSpec;
use crate::models::residual;
use crate::models::step::{StepForm, Stepped};
use crate::nn::diagonal_lstm::{
    DiagonalLstm, DiagonalLstmConfig, DiagonalLstmState, DiagonalLstmStep, DiagonalPadding, ScanDirection,
};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map::{residual_at, PositionMap};
use crate::nn::skew::{mirror, shift_down};

/// Configuration of a [`DiagonalBiLstmLayer`].
#[derive(Debug, Clone)]
pub struct DiagonalBiLstmLayerConfig {
    /// h; the layer maps 2h -> 2h.
    pub hidden_channels: usize,
    /// Colour channels of the data.
    pub colour_groups: usize,
    /// Whether the identity is added.
    pub residual: bool,
    /// What the skewed map's padding holds.
    pub padding: DiagonalPadding,
}

impl DiagonalBiLstmLayerConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> DiagonalBiLstmLayer {
        let h = self.hidden_channels;
        let g = self.colour_groups;
        let direction =
            DiagonalLstmConfig { input_channels: 2 * h, hidden_channels: h, colour_groups: g, padding: self.padding };
        let left_to_right = direction.init(device, rng);
        let right_to_left = direction.init(device, rng);
        let projection = MaskedConv2dConfig::pointwise(h, 2 * h, g).init(device, rng);
        DiagonalBiLstmLayer { left_to_right, right_to_left, projection, residual: self.residual }
    }
}

/// Both scanning directions, the shift down, the 1x1 projection h -> 2h and the identity.
#[derive(Module, Debug)]
pub struct DiagonalBiLstmLayer {
    /// Scans the map left to right.
    pub(crate) left_to_right: DiagonalLstm,
    /// Scans the mirrored map (i.e. right to left).
    pub(crate) right_to_left: DiagonalLstm,
    /// 1x1 mask B, h -> 2h.
    pub(crate) projection: MaskedConv2d,
    /// Whether the identity is added.
    pub(crate) residual: bool,
}

impl DiagonalBiLstmLayer {
    /// The sum of both directions, before projection.
    ///
    /// # Shapes
    /// - `x`: `[batch, 2h, height, width]`
    /// - returns `[batch, h, height, width]`
    pub fn hidden(&self, x: Tensor<4>) -> Tensor<4> {
        let left = self.left_to_right.forward(x.clone()); // [batch, h, height, width]
        let right = mirror(self.right_to_left.forward(mirror(x))); // [batch, h, height, width]

        // §3.2: the right-to-left state at (i, j) has seen (i, j+1..); shifting it down one row
        // leaves row i with only rows < i of it.
        left + shift_down(right)
    }

    /// # Shapes
    /// - `x`: `[batch, 2h, height, width]` -> same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.projection.forward(self.hidden(x.clone())); // [batch, 2h, height, width]
        residual(x, y, self.residual)
    }
}

/// The step form of a [`DiagonalBiLstmLayer`], for the incremental engine. The left-to-right
/// state at (r, c) reads (r, c - 1) and (r - 1, c); the right-to-left states of row r - 1 are
/// computed, right to left, when row r starts: possible because the shift down (§3.2) only ever
/// reads them from the previous row.
#[derive(Debug, Clone)]
pub(crate) struct DiagonalBiLstmLayerStep {
    left_to_right: DiagonalLstmStep,
    right_to_left: DiagonalLstmStep,
    projection: ConvAtPosition,
    residual: bool,
}

/// What a [`DiagonalBiLstmLayerStep`] keeps of one image: the layer's inputs so far and both
/// directions' states.
#[derive(Debug, Clone)]
pub(crate) struct DiagonalBiLstmLayerState {
    inputs: PositionMap,
    left: DiagonalLstmState,
    right: DiagonalLstmState,
}

impl DiagonalBiLstmLayerState {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.inputs.bytes() + self.left.bytes() + self.right.bytes()
    }
}

impl Stepped for DiagonalBiLstmLayer {
    type Step = DiagonalBiLstmLayerStep;

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }

    /// The step form (see [`DiagonalBiLstmLayerStep`]) for images of `image`'s height.
    fn step_form(&self, image: ImageSpec) -> DiagonalBiLstmLayerStep {
        let height = image.height;
        DiagonalBiLstmLayerStep {
            left_to_right: self.left_to_right.step_form(ScanDirection::LeftToRight, height),
            right_to_left: self.right_to_left.step_form(ScanDirection::RightToLeft, height),
            projection: self.projection.at_position(),
            residual: self.residual,
        }
    }
}

impl StepForm for DiagonalBiLstmLayerStep {
    type State = DiagonalBiLstmLayerState;

    /// A fresh state for `height x width` images.
    fn state(&self, height: usize, width: usize) -> DiagonalBiLstmLayerState {
        DiagonalBiLstmLayerState {
            inputs: PositionMap::new(height, width, self.projection.out_channels()),
            left: self.left_to_right.state(height, width),
            right: self.right_to_left.state(height, width),
        }
    }

    /// Before row `r`'s first position: the right-to-left scan of the finished row r - 1.
    fn start_row(&self, state: &mut DiagonalBiLstmLayerState, r: usize) {
        if r == 0 {
            return;
        }
        for c in (0..state.inputs.width()).rev() {
            self.right_to_left.step(&mut state.right, r - 1, c, state.inputs.at(r - 1, c));
        }
    }

    /// [`DiagonalBiLstmLayer::forward`] at (r, c); the earlier positions must be done.
    ///
    /// # Shapes
    /// - `x`: `[2h]` -> `[2h]`
    fn step(&self, state: &mut DiagonalBiLstmLayerState, r: usize, c: usize, x: &[f32]) -> Vec<f32> {
        state.inputs.at_mut(r, c).copy_from_slice(x);
        let mut hidden = self.left_to_right.step(&mut state.left, r, c, x).to_vec(); // [h]

        // §3.2: the right-to-left map shifted down one row.
        if r > 0 {
            hidden.iter_mut().zip(state.right.hidden(r - 1, c)).for_each(|(a, b)| *a += b);
        }
        residual_at(x, self.projection.pointwise(&hidden), self.residual) // [2h]
    }

    fn bytes(state: &DiagonalBiLstmLayerState) -> usize {
        state.bytes()
    }
}
