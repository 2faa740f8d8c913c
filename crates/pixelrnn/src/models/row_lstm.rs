//! Row LSTM (van den Oord et al. 2016, §3.1, Eq. 3, Fig. 5 right;
//! <https://arxiv.org/abs/1601.06759>): a [`RowLstm`] layer followed by a 1x1 projection back
//! to 2h and the residual connection.

use burn::prelude::*;

use crate::image_spec::ImageSpec;
use crate::models::residual;
use crate::models::step::{StepForm, Stepped};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map::residual_at;
use crate::nn::row_lstm::{RowLstm, RowLstmConfig, RowLstmState, RowLstmStep};

/// Configuration of a [`RowLstmLayer`].
#[derive(Debug, Clone)]
pub struct RowLstmLayerConfig {
    /// h; the layer maps 2h -> 2h.
    pub hidden_channels: usize,
    /// k of the k x 1 kernels (paper: 3).
    pub kernel_width: usize,
    /// Colour channels of the data.
    pub colour_groups: usize,
    /// Whether the identity is added (Fig. 5 right).
    pub residual: bool,
    /// Learn h_0 and c_0 (else the scan starts from zeros).
    pub learned_initial_state: bool,
}

impl RowLstmLayerConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> RowLstmLayer {
        let h = self.hidden_channels;
        let g = self.colour_groups;
        let lstm = RowLstmConfig {
            input_channels: 2 * h,
            hidden_channels: h,
            kernel_width: self.kernel_width,
            colour_groups: g,
            learned_initial_state: self.learned_initial_state,
        }
        .init(device, rng);
        let projection = MaskedConv2dConfig::pointwise(h, 2 * h, g).init(device, rng);
        RowLstmLayer { lstm, projection, residual: self.residual }
    }
}

/// Row LSTM + 1x1 projection h -> 2h (+ identity).
#[derive(Module, Debug)]
pub struct RowLstmLayer {
    /// The recurrent part.
    pub(crate) lstm: RowLstm,
    /// 1x1 mask B, h -> 2h.
    pub(crate) projection: MaskedConv2d,
    /// Whether the identity is added.
    pub(crate) residual: bool,
}

impl RowLstmLayer {
    /// # Shapes
    /// - `x`: `[batch, 2h, height, width]` -> same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.projection.forward(self.lstm.forward(x.clone())); // [batch, 2h, height, width]
        residual(x, y, self.residual)
    }
}

/// The step form of a [`RowLstmLayer`], for the incremental engine.
#[derive(Debug, Clone)]
pub(crate) struct RowLstmLayerStep {
    lstm: RowLstmStep,
    projection: ConvAtPosition,
    residual: bool,
}

impl Stepped for RowLstmLayer {
    type Step = RowLstmLayerStep;

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }

    /// The step form (see [`RowLstmLayerStep`]).
    fn step_form(&self, _image: ImageSpec) -> RowLstmLayerStep {
        RowLstmLayerStep {
            lstm: self.lstm.step_form(),
            projection: self.projection.at_position(),
            residual: self.residual,
        }
    }
}

impl StepForm for RowLstmLayerStep {
    type State = RowLstmState;

    /// A fresh state for `height x width` images.
    fn state(&self, height: usize, width: usize) -> RowLstmState {
        self.lstm.state(height, width, self.projection.out_channels())
    }

    /// Before row `r`'s first position.
    fn start_row(&self, state: &mut RowLstmState, r: usize) {
        self.lstm.start_row(state, r);
    }

    /// [`RowLstmLayer::forward`] at (r, c); the earlier positions must be done.
    ///
    /// # Shapes
    /// - `x`: `[2h]` -> `[2h]`
    fn step(&self, state: &mut RowLstmState, r: usize, c: usize, x: &[f32]) -> Vec<f32> {
        let hidden = self.lstm.step(state, r, c, x); // [h]
        residual_at(x, self.projection.pointwise(hidden), self.residual) // [2h]
    }

    fn bytes(state: &RowLstmState) -> usize {
        state.bytes()
    }
}
