//! Diagonal BiLSTM (van den Oord et al. 2016, §3.2, Fig. 3/4; <https://arxiv.org/abs/1601.06759>):
//! two [`DiagonalLstm`] scans, left-to-right on the map and right-to-left on its mirror image;
//! the right-to-left output is shifted down one row before the two are added, so that every
//! pixel sees all pixels above it and to its left, and nothing after it — no blind spot.

use burn::prelude::*;

use crate::models::residual;
use crate::nn::diagonal_lstm::{DiagonalLstm, DiagonalLstmConfig};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{MaskedConv2d, MaskedConv2dConfig};
use crate::nn::ops::{mirror, shift_down};

/// Configuration of a [`DiagonalBiLstmLayer`].
#[derive(Debug, Clone)]
pub struct DiagonalBiLstmLayerConfig {
    /// h; the layer maps 2h -> 2h.
    pub hidden_channels: usize,
    /// Colour channels of the data.
    pub colour_groups: usize,
    /// Whether the identity is added.
    pub residual: bool,
}

impl DiagonalBiLstmLayerConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> DiagonalBiLstmLayer {
        let h = self.hidden_channels;
        let g = self.colour_groups;
        let direction = DiagonalLstmConfig { input_channels: 2 * h, hidden_channels: h, colour_groups: g };
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
    pub left_to_right: DiagonalLstm,
    /// Scans the mirrored map (i.e. right to left).
    pub right_to_left: DiagonalLstm,
    /// 1x1 mask B, h -> 2h.
    pub projection: MaskedConv2d,
    /// Whether the identity is added.
    pub residual: bool,
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
