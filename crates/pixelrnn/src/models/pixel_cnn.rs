//! PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.5, Table 1,
//! Fig. 5 left; <https://arxiv.org/abs/1601.06759>): a stack of masked convolutions with a
//! bounded receptive field and a blind spot, in residual blocks.

use burn::prelude::*;

use crate::image_spec::ImageSpec;
use crate::models::residual;
use crate::models::step::{StepForm, Stepped};
use burn::tensor::activation::relu;

use crate::masks::{contiguous_groups, Groups, MaskType};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map::{relu as relu_at, residual_into, PositionMap};

/// Configuration of a [`ResidualBlock`].
#[derive(Debug, Clone)]
pub struct ResidualBlockConfig {
    /// h: the block maps 2h -> h -> h -> 2h.
    pub hidden_channels: usize,
    /// Kernel of the middle masked convolution (paper: 3).
    pub kernel: usize,
    /// Colour channels of the data (1 or 3).
    pub colour_groups: usize,
    /// Add the identity (Fig. 5); off for the "no residual" cells of Table 2.
    pub residual: bool,
}

impl ResidualBlockConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> ResidualBlock {
        let h = self.hidden_channels;
        let g = self.colour_groups;
        let groups = |c| contiguous_groups(c, g);
        ResidualBlock {
            reduce: MaskedConv2dConfig::pointwise(2 * h, h, g).init(device, rng),
            spatial: MaskedConv2dConfig::same([self.kernel, self.kernel], Some(MaskType::B), groups(h), groups(h))
                .init(device, rng),
            expand: MaskedConv2dConfig::pointwise(h, 2 * h, g).init(device, rng),
            residual: self.residual,
        }
    }
}

/// Fig. 5 (left): x + \[ReLU, 1x1 2h->h, ReLU, kxk mask B h->h, ReLU, 1x1 h->2h\](x).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// 1x1, 2h -> h (mask B: with RGB groups it is not dense).
    pub(crate) reduce: MaskedConv2d,
    /// k x k mask B, h -> h.
    pub(crate) spatial: MaskedConv2d,
    /// 1x1, h -> 2h.
    pub(crate) expand: MaskedConv2d,
    /// Whether the identity is added.
    pub(crate) residual: bool,
}

impl ResidualBlock {
    /// # Shapes
    /// - `x`: `[batch, 2h, height, width]` -> same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.reduce.forward(relu(x.clone())); // [batch, h, height, width]
        let y = self.spatial.forward(relu(y)); // [batch, h, height, width]
        let y = self.expand.forward(relu(y)); // [batch, 2h, height, width]
        residual(x, y, self.residual)
    }
}

/// The step form of a [`ResidualBlock`]: the block's output at one position, for the
/// incremental engine.
#[derive(Debug, Clone)]
pub(crate) struct ResidualBlockStep {
    reduce: ConvAtPosition,
    spatial: ConvAtPosition,
    expand: ConvAtPosition,
    residual: bool,
}

/// What a [`ResidualBlockStep`] keeps of one image: `relu(reduce(relu(x)))` at every position so
/// far, what the k x k convolution reads, `[height][width][h]`.
#[derive(Debug, Clone)]
pub(crate) struct ResidualBlockState {
    reduced: PositionMap,
    /// The k x k convolution's output at the position being computed, `[h]`: what the groups
    /// computed later there read of the earlier ones ([`StepForm::step_groups`]).
    spatial: Vec<f32>,
}

impl ResidualBlockState {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.reduced.bytes() + self.spatial.len() * std::mem::size_of::<f32>()
    }
}

impl Stepped for ResidualBlock {
    type Step = ResidualBlockStep;

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }

    /// The step form (see [`ResidualBlockStep`]).
    fn step_form(&self, _image: ImageSpec) -> ResidualBlockStep {
        ResidualBlockStep {
            reduce: self.reduce.at_position(),
            spatial: self.spatial.at_position(),
            expand: self.expand.at_position(),
            residual: self.residual,
        }
    }
}

impl StepForm for ResidualBlockStep {
    type State = ResidualBlockState;

    /// A fresh state for `height x width` images.
    fn state(&self, height: usize, width: usize) -> ResidualBlockState {
        let h = self.reduce.out_channels();
        ResidualBlockState { reduced: PositionMap::new(height, width, h), spatial: vec![0.0; h] }
    }

    /// [`ResidualBlock::forward`] at (r, c); the earlier positions must be done: every group of
    /// [`StepForm::step_groups`] (one group holding every channel).
    ///
    /// # Shapes
    /// - `x`: `[2h]` -> `[2h]`
    fn step(&self, state: &mut ResidualBlockState, r: usize, c: usize, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; x.len()]; // [2h]
        self.step_groups(state, r, c, x, Groups::all(1), &mut out);
        out
    }

    /// [`ResidualBlockStep::step`] for `groups` only: each convolution computes those groups'
    /// outputs, reading the lower groups' from the map and `state.spatial`.
    ///
    /// # Shapes
    /// - `x`: `[2h]`, `out`: `[2h]`
    fn step_groups(
        &self,
        state: &mut ResidualBlockState,
        r: usize,
        c: usize,
        x: &[f32],
        groups: Groups,
        out: &mut [f32],
    ) {
        let here = state.reduced.at_mut(r, c); // [h]
        self.reduce.pointwise_groups(here, groups, &relu_at(x));
        let reduced = groups.span(here.len());
        for v in &mut here[reduced] {
            *v = v.max(0.0);
        }
        let map = &state.reduced;
        self.spatial.apply_groups(&mut state.spatial, groups, |dy, dx| map.offset(r, c, dy, dx));
        let mut y = vec![0.0; out.len()]; // [2h]
        self.expand.pointwise_groups(&mut y, groups, &relu_at(&state.spatial));
        residual_into(out, x, &y, self.residual, groups.span(out.len()));
    }

    fn bytes(state: &ResidualBlockState) -> usize {
        state.bytes()
    }
}
