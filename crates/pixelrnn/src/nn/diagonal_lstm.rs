//! One direction of the Diagonal BiLSTM (§3.2, Fig. 3): the map is skewed so that each
//! diagonal becomes a column, the columns are scanned left to right, and the result unskewed.
//! The state of pixel (i, j) then depends on (i, j-1) and (i-1, j): a receptive field that
//! covers everything above-left.

use burn::prelude::*;

use crate::kernels::lstm_cell_cpu;
use crate::masks::{contiguous_groups, gate_groups, MaskType};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{host_values, ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map::PositionMap;
use crate::nn::scan::{lstm_scan, ScanFn, Steps};
use crate::nn::skew::{skew, unskew};

/// Configuration of a [`DiagonalLstm`].
#[derive(Debug, Clone)]
pub struct DiagonalLstmConfig {
    /// Channels of the input map (2h).
    pub input_channels: usize,
    /// Hidden (and cell) channels h.
    pub hidden_channels: usize,
    /// Colour channels of the data (1 or 3).
    pub colour_groups: usize,
    /// What the skewed map's padding holds.
    pub padding: DiagonalPadding,
}

/// What the positions of the skewed map outside the image hold (the paper does not say).
/// `Default` is what a config written before this setting existed meant (`Zero`); new models
/// are built with `Bias` (see `ModelConfig::preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DiagonalPadding {
    /// A zero state: the image is scanned with a zero boundary (pixelrnn's first choice; it
    /// learns about 1.5 nats/image less per step on binarized MNIST, see BENCHMARKS.md).
    #[default]
    Zero,
    /// The states the LSTM computes there from the input-to-state bias alone, as when the
    /// input-to-state convolution is applied after the skew (the PyTorch twin's choice, and
    /// the default of new models). They do not depend on the image, and reach the first pixel
    /// of every row below the first.
    Bias,
}

impl DiagonalLstmConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> DiagonalLstm {
        let h = self.hidden_channels;
        let g = self.colour_groups;
        // K^is: 1x1 mask B (§3.2).
        let input_to_state = MaskedConv2dConfig::same(
            [1, 1],
            Some(MaskType::B),
            contiguous_groups(self.input_channels, g),
            gate_groups(h, 4, g),
        )
        .init(device, rng);
        // K^ss: 2x1 over the previous column (skewed space): rows i-1 and i. The map is padded
        // with one zero row on top so that output row i reads input rows i-1 (tap 0) and i (tap 1).
        let mut state_to_state = MaskedConv2dConfig::same([2, 1], None, contiguous_groups(h, g), gate_groups(h, 4, g));
        state_to_state.padding = [1, 0, 0, 0];
        DiagonalLstm {
            input_to_state,
            state_to_state: state_to_state.init(device, rng),
            hidden_channels: h,
            padding: self.padding,
        }
    }
}

/// One scanning direction (left to right) of the Diagonal BiLSTM.
#[derive(Module, Debug)]
pub struct DiagonalLstm {
    /// K^is, 1x1 mask B.
    pub(crate) input_to_state: MaskedConv2d,
    /// K^ss, 2x1 unmasked, column-wise.
    pub(crate) state_to_state: MaskedConv2d,
    /// h, the hidden (and cell) channels of each direction.
    pub(crate) hidden_channels: usize,
    /// What the skewed map's padding holds.
    #[module(skip)]
    pub(crate) padding: DiagonalPadding,
}

impl DiagonalLstm {
    /// # Shapes
    /// - `x`: `[batch, input_channels, height, width]`
    /// - returns the hidden states `[batch, h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_with(x, lstm_scan)
    }

    /// [`Self::forward`] with the scan `scan` (the op, or its composed reference in tests).
    fn forward_with(&self, x: Tensor<4>, scan: ScanFn) -> Tensor<4> {
        let [_, _, _, width] = x.dims();
        let h = self.hidden_channels;
        // The 1x1 input-to-state commutes with the skew; applying it first avoids computing it
        // on the padding (where the input is zero: K^is gives its bias there).
        let gates = self.input_to_state.forward(x); // [batch, 4h, height, width]
        let gates = match self.padding {
            DiagonalPadding::Zero => skew(gates), // [batch, 4h, height, width + height - 1]
            DiagonalPadding::Bias => {
                let bias = self.input_to_state.bias.val().reshape([1, 4 * h, 1, 1]);
                skew(gates - bias.clone()) + bias // [batch, 4h, height, width + height - 1]
            }
        };
        let initial = Tensor::<1>::zeros([2 * h], &gates.device());
        let steps = Steps::SkewedColumns { width, zero_outside: self.padding == DiagonalPadding::Zero };
        let hidden = scan(gates, steps, &self.state_to_state, initial); // [batch, h, height, width + height - 1]
        unskew(hidden, width) // [batch, h, height, width]
    }
}

/// Which way a [`DiagonalLstmStep`] scans the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanDirection {
    /// (i, j) follows (i, j - 1): the map as it is.
    LeftToRight,
    /// (i, j) follows (i, j + 1): the mirrored map, as the Diagonal BiLSTM's second direction.
    RightToLeft,
}

/// The step form of a [`DiagonalLstm`]: the state at one pixel from the previous step of the
/// scan, i.e. the pixel before it on its row and the pixel above it, for the incremental engine.
#[derive(Debug, Clone)]
pub(crate) struct DiagonalLstmStep {
    input_to_state: ConvAtPosition,
    state_to_state: ConvAtPosition,
    direction: ScanDirection,
    /// With [`DiagonalPadding::Bias`]: per row r, the (hidden, cell) state of the padding
    /// position the scan reads before the row's first pixel (skewed position (r, r - 1)); row 0
    /// reads none.
    boundary: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

/// What a [`DiagonalLstmStep`] keeps of one image: the hidden and cell states of every pixel,
/// `[height][width][h]` each, zero outside the image (the zero boundary of the forward pass).
#[derive(Debug, Clone)]
pub(crate) struct DiagonalLstmState {
    hidden: PositionMap,
    cell: PositionMap,
}

impl DiagonalLstmState {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.hidden.bytes() + self.cell.bytes()
    }

    /// The hidden state at (r, c), `[h]`.
    pub(crate) fn hidden(&self, r: usize, c: usize) -> &[f32] {
        self.hidden.at(r, c)
    }
}

impl DiagonalLstm {
    /// The step form (see [`DiagonalLstmStep`]) for images `height` rows high, scanning in
    /// `direction`.
    pub(crate) fn step_form(&self, direction: ScanDirection, height: usize) -> DiagonalLstmStep {
        let mut step = DiagonalLstmStep {
            input_to_state: self.input_to_state.at_position(),
            state_to_state: self.state_to_state.at_position(),
            direction,
            boundary: vec![None; height],
        };
        if self.padding == DiagonalPadding::Bias {
            step.boundary = step.padding_states(&host_values(self.input_to_state.bias.val()), height);
        }
        step
    }
}

impl DiagonalLstmStep {
    /// The states of the skewed padding left of the image (positions (r, t) with t < r, which
    /// read only each other and K^is's bias), and of it the one before each row's first pixel.
    fn padding_states(&self, bias: &[f32], height: usize) -> Vec<Option<(Vec<f32>, Vec<f32>)>> {
        let h = bias.len() / 4;
        // column[r]: the state at (r, t - 1) of the previous column, for the rows r > t - 1.
        let mut column: Vec<Option<(Vec<f32>, Vec<f32>)>> = vec![None; height];
        let mut boundary = vec![None; height];
        for t in 0..height.saturating_sub(1) {
            let mut next = vec![None; height];
            for r in t + 1..height {
                let mut state_gates = vec![0.0; 4 * h];
                // K^ss reads (r - 1, t - 1) (tap dy = -1) and (r, t - 1) (tap dy = 0).
                self.state_to_state.apply(&mut state_gates, |dy, _| {
                    let row = if dy < 0 { r.checked_sub(1)? } else { r };
                    column[row].as_ref().map(|(hidden, _)| &hidden[..])
                });
                let (mut cell, mut hidden) = (vec![0.0; h], vec![0.0; h]);
                let cell_before = column[r].as_ref().map(|(_, c)| &c[..]);
                lstm_cell_cpu::step(bias, &state_gates, cell_before, &mut cell, &mut hidden);
                if t + 1 == r {
                    boundary[r] = Some((hidden.clone(), cell.clone()));
                }
                next[r] = Some((hidden, cell));
            }
            column = next;
        }
        boundary
    }

    /// A fresh state for `height x width` images.
    pub(crate) fn state(&self, height: usize, width: usize) -> DiagonalLstmState {
        let h = self.input_to_state.out_channels() / 4;
        DiagonalLstmState { hidden: PositionMap::new(height, width, h), cell: PositionMap::new(height, width, h) }
    }

    /// The hidden state at (r, c), `[h]`, from the layer's input there, `x` `[input_channels]`;
    /// the pixel before it in the scan's direction and the pixel above must be done.
    pub(crate) fn step<'s>(&self, state: &'s mut DiagonalLstmState, r: usize, c: usize, x: &[f32]) -> &'s [f32] {
        // In skewed space the previous column holds, at row i - 1, the pixel above and, at row i,
        // the pixel before on the row: K^ss's taps dy = -1 and dy = 0.
        let before = match self.direction {
            ScanDirection::LeftToRight => -1,
            ScanDirection::RightToLeft => 1,
        };
        let gates = self.input_to_state.out_channels();
        let (mut input_gates, mut state_gates) = (vec![0.0; gates], vec![0.0; gates]);
        self.input_to_state.apply(&mut input_gates, |_, _| Some(x));
        let hidden = &state.hidden;
        // Before the row's first pixel: the padding, zero or (with bias padding) its state.
        let padding = self.boundary.get(r).and_then(Option::as_ref);
        self.state_to_state.apply(&mut state_gates, |dy, _| {
            if dy < 0 {
                hidden.offset(r, c, -1, 0)
            } else {
                hidden.offset(r, c, 0, before).or(padding.map(|(h, _)| &h[..]))
            }
        });
        let (mut new_cell, mut new_hidden) = (vec![0.0; gates / 4], vec![0.0; gates / 4]);
        let cell_before = state.cell.offset(r, c, 0, before).or(padding.map(|(_, c)| &c[..]));
        lstm_cell_cpu::step(&input_gates, &state_gates, cell_before, &mut new_cell, &mut new_hidden);
        state.cell.at_mut(r, c).copy_from_slice(&new_cell);
        state.hidden.at_mut(r, c).copy_from_slice(&new_hidden);
        state.hidden.at(r, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lstm_scan::test_support::{assert_all_close, data, output_and_gradients};
    use crate::nn::scan::lstm_scan_composed;

    #[test]
    fn the_one_operation_scan_equals_the_stepwise_scan_in_values_and_gradients() {
        // Binary and RGB groups; square, wide and tall maps; one image, several, and more than
        // one task of images (9 = 4 + 4 + 1).
        // Both paddings: zero, and the states the bias drives there.
        let cases =
            [(1, 4, 2, 1, 3, 3), (3, 6, 3, 3, 4, 6), (2, 4, 4, 1, 7, 2), (4, 2, 1, 1, 1, 5), (9, 2, 2, 1, 3, 4)];
        for (padding, (batch, channels, hidden, groups, height, width)) in
            [DiagonalPadding::Zero, DiagonalPadding::Bias].into_iter().flat_map(|p| cases.map(|c| (p, c)))
        {
            let config = DiagonalLstmConfig {
                input_channels: channels,
                hidden_channels: hidden,
                colour_groups: groups,
                padding,
            };
            for device in [Device::flex(), Device::flex().autodiff()] {
                let run = |stepwise: bool| {
                    let layer = config.init(&device, &mut InitRng::new(11));
                    let forward = |x| layer.forward_with(x, if stepwise { lstm_scan_composed } else { lstm_scan });
                    output_and_gradients([batch, channels, height, width], &device, forward, |grads| {
                        vec![
                            data(layer.input_to_state.weight.grad(grads).unwrap()),
                            data(layer.input_to_state.bias.grad(grads).unwrap()),
                            data(layer.state_to_state.weight.grad(grads).unwrap()),
                            data(layer.state_to_state.bias.grad(grads).unwrap()),
                        ]
                    })
                };
                let names = ["output", "d x", "d K^is", "d K^is bias", "d K^ss", "d K^ss bias"];
                let case = format!("{batch}x{channels}x{height}x{width}, h {hidden}, g {groups}, {padding:?}");
                assert_all_close(run(false), run(true), &names, &case);
            }
        }
    }
}
