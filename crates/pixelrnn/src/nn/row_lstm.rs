//! The Row LSTM layer (§3.1, Eq. 3): processes the image one row at a time, top to bottom;
//! each row's state is computed from the row above with a one-dimensional convolution, which
//! gives the layer a triangular receptive field.

use burn::module::Param;
use burn::prelude::*;

use crate::kernels::lstm_cell_cpu;
use crate::masks::{contiguous_groups, gate_groups, MaskType};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{host_values, ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map::PositionMap;
use crate::nn::scan::{lstm_scan, ScanFn, Steps};

/// Configuration of a [`RowLstm`].
#[derive(Debug, Clone)]
pub struct RowLstmConfig {
    /// Channels of the input map (2h in the paper).
    pub input_channels: usize,
    /// Hidden (and cell) channels h.
    pub hidden_channels: usize,
    /// Width k of the input-to-state and state-to-state kernels (k x 1 along the row; paper: 3).
    pub kernel_width: usize,
    /// Colour channels of the data (1 or 3): the number of colour groups.
    pub colour_groups: usize,
    /// Learn h_0 and c_0; `false` starts every scan from zeros.
    pub learned_initial_state: bool,
}

impl RowLstmConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> RowLstm {
        let h = self.hidden_channels;
        let g = self.colour_groups;
        let k = self.kernel_width;
        // K^is: mask B along the row: the current pixel (own colour group and earlier) and the
        // k/2 pixels to its left.
        let input_to_state = MaskedConv2dConfig::same(
            [1, k],
            Some(MaskType::B),
            contiguous_groups(self.input_channels, g),
            gate_groups(h, 4, g),
        )
        .init(device, rng);
        // K^ss: unmasked over the previous row (all of it lies before the current row).
        let state_to_state =
            MaskedConv2dConfig::same([1, k], None, contiguous_groups(h, g), gate_groups(h, 4, g)).init(device, rng);
        RowLstm {
            input_to_state,
            state_to_state,
            initial_hidden: Param::from_tensor(Tensor::zeros([1, h, 1, 1], device)),
            initial_cell: Param::from_tensor(Tensor::zeros([1, h, 1, 1], device)),
            hidden_channels: h,
            learned_initial_state: self.learned_initial_state,
        }
    }
}

/// One Row LSTM layer (without the residual projection, which the model adds).
#[derive(Module, Debug)]
pub struct RowLstm {
    /// Input-to-state convolution K^is (1 x k, mask B), applied to the whole map at once.
    pub(crate) input_to_state: MaskedConv2d,
    /// State-to-state convolution K^ss (1 x k, unmasked) over the previous row's hidden state.
    pub(crate) state_to_state: MaskedConv2d,
    /// Learned initial hidden state h_0, broadcast over batch and width, `[1, h, 1, 1]`.
    pub(crate) initial_hidden: Param<Tensor<4>>,
    /// Learned initial cell state c_0, `[1, h, 1, 1]`.
    pub(crate) initial_cell: Param<Tensor<4>>,
    /// h, the hidden (and cell) channels of the LSTM.
    pub(crate) hidden_channels: usize,
    /// Whether h_0 and c_0 are used (else zeros; the parameters then stay at zero, unused).
    #[module(skip)]
    pub(crate) learned_initial_state: bool,
}

impl RowLstm {
    /// # Shapes
    /// - `x`: `[batch, input_channels, height, width]`
    /// - returns the hidden states `[batch, h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_with(x, lstm_scan)
    }

    /// [`Self::forward`] with the scan `scan` (the op, or its composed reference in tests).
    fn forward_with(&self, x: Tensor<4>, scan: ScanFn) -> Tensor<4> {
        let h = self.hidden_channels;
        // Eq. (3): the input-to-state part for the whole map at once (K^is, mask B, along the
        // row), then the rows scanned top to bottom with K^ss over the row above.
        let gates = self.input_to_state.forward(x); // [batch, 4h, height, width]

        // Deviation: the paper does not say what the row above the first one holds; h_0 and
        // c_0 are learned (one vector each, the same at every column) unless the config says
        // zeros (the PyTorch twin's choice).
        let initial = if self.learned_initial_state {
            Tensor::cat(vec![self.initial_cell.val(), self.initial_hidden.val()], 1).reshape([2 * h])
        } else {
            Tensor::zeros([2 * h], &gates.device())
        };
        scan(gates, Steps::Rows, &self.state_to_state, initial) // [batch, h, height, width]
    }
}

/// The step form of a [`RowLstm`]: the state at one position from the finished row above
/// (Eq. 3), for the incremental engine.
#[derive(Debug, Clone)]
pub(crate) struct RowLstmStep {
    input_to_state: ConvAtPosition,
    state_to_state: ConvAtPosition,
    /// h_0 and c_0, `[h]` each.
    initial_hidden: Vec<f32>,
    initial_cell: Vec<f32>,
}

/// What a [`RowLstmStep`] keeps of one image: the layer's inputs so far and the hidden and cell
/// states of the previous and the current row, `[1][width][h]` each.
#[derive(Debug, Clone)]
pub(crate) struct RowLstmState {
    inputs: PositionMap,
    previous_hidden: PositionMap,
    previous_cell: PositionMap,
    hidden: PositionMap,
    cell: PositionMap,
}

impl RowLstmState {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        [&self.inputs, &self.previous_hidden, &self.previous_cell, &self.hidden, &self.cell]
            .iter()
            .map(|m| m.bytes())
            .sum()
    }
}

impl RowLstm {
    /// h_0 or c_0 on the host, `[h]`: zeros when they are not learned.
    fn initial_value(&self, initial: &Param<Tensor<4>>) -> Vec<f32> {
        let values = host_values(initial.val());
        if self.learned_initial_state {
            values
        } else {
            vec![0.0; values.len()]
        }
    }

    /// The step form (see [`RowLstmStep`]).
    pub(crate) fn step_form(&self) -> RowLstmStep {
        RowLstmStep {
            input_to_state: self.input_to_state.at_position(),
            state_to_state: self.state_to_state.at_position(),
            initial_hidden: self.initial_value(&self.initial_hidden),
            initial_cell: self.initial_value(&self.initial_cell),
        }
    }
}

impl RowLstmStep {
    /// A fresh state for `height x width` images with `input_channels`-channel inputs.
    pub(crate) fn state(&self, height: usize, width: usize, input_channels: usize) -> RowLstmState {
        let h = self.initial_hidden.len();
        let row = || PositionMap::new(1, width, h);
        RowLstmState {
            inputs: PositionMap::new(height, width, input_channels),
            previous_hidden: row(),
            previous_cell: row(),
            hidden: row(),
            cell: row(),
        }
    }

    /// Before row `r`'s first position: the finished row becomes the previous one (row 0 reads
    /// the learned initial state).
    pub(crate) fn start_row(&self, state: &mut RowLstmState, r: usize) {
        if r == 0 {
            for c in 0..state.previous_hidden.width() {
                state.previous_hidden.at_mut(0, c).copy_from_slice(&self.initial_hidden);
                state.previous_cell.at_mut(0, c).copy_from_slice(&self.initial_cell);
            }
        } else {
            std::mem::swap(&mut state.previous_hidden, &mut state.hidden);
            std::mem::swap(&mut state.previous_cell, &mut state.cell);
        }
    }

    /// The hidden state at (r, c), `[h]`, from the layer's input there, `x` `[input_channels]`.
    pub(crate) fn step<'s>(&self, state: &'s mut RowLstmState, r: usize, c: usize, x: &[f32]) -> &'s [f32] {
        state.inputs.at_mut(r, c).copy_from_slice(x);
        let gates = self.input_to_state.out_channels();
        let (mut input_gates, mut state_gates) = (vec![0.0; gates], vec![0.0; gates]);
        // K^is (1 x k, mask B) on this row's inputs; K^ss (1 x k) on the row above.
        let inputs = &state.inputs;
        self.input_to_state.apply(&mut input_gates, |dy, dx| inputs.offset(r, c, dy, dx));
        let above = &state.previous_hidden;
        self.state_to_state.apply(&mut state_gates, |_, dx| above.offset(0, c, 0, dx));
        let (cell, hidden) = (state.cell.at_mut(0, c), &mut vec![0.0; self.initial_hidden.len()]);
        lstm_cell_cpu::step(&input_gates, &state_gates, Some(state.previous_cell.at(0, c)), cell, hidden);
        state.hidden.at_mut(0, c).copy_from_slice(hidden);
        state.hidden.at(0, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_learned_initial_state_the_scan_starts_from_zeros() {
        let device = Device::flex();
        let config = RowLstmConfig {
            input_channels: 4,
            hidden_channels: 2,
            kernel_width: 3,
            colour_groups: 1,
            learned_initial_state: false,
        };
        let mut layer = config.init(&device, &mut InitRng::new(3));
        let x = Tensor::<4>::from_data(
            TensorData::new((0..2 * 4 * 3 * 5).map(|v| (v % 7) as f32 / 3.0 - 1.0).collect::<Vec<f32>>(), [2, 4, 3, 5]),
            &device,
        );
        let before = layer.forward(x.clone()).into_data();
        layer.initial_hidden = Param::from_tensor(Tensor::ones([1, 2, 1, 1], &device));
        layer.initial_cell = Param::from_tensor(Tensor::ones([1, 2, 1, 1], &device));
        assert_eq!(layer.forward(x.clone()).into_data(), before, "h_0 and c_0 are not read");
        assert_eq!(layer.step_form().initial_hidden, vec![0.0; 2]);
        layer.learned_initial_state = true;
        assert_ne!(layer.forward(x).into_data(), before, "and are read when learned");
    }
    use crate::kernels::lstm_scan::test_support::{assert_all_close, data, output_and_gradients};
    use crate::nn::scan::lstm_scan_composed;

    #[test]
    fn the_one_operation_scan_equals_the_stepwise_scan_in_values_and_gradients() {
        // Kernel widths 3 and 5, binary and RGB groups, several shapes, more than one task of
        // images (9 = 4 + 4 + 1).
        for (batch, channels, hidden, k, groups, height, width) in
            [(1, 4, 2, 3, 1, 3, 3), (3, 6, 3, 3, 3, 4, 6), (2, 4, 4, 5, 1, 5, 2), (9, 2, 2, 3, 1, 3, 4)]
        {
            let config = RowLstmConfig {
                input_channels: channels,
                hidden_channels: hidden,
                kernel_width: k,
                colour_groups: groups,
                learned_initial_state: true,
            };
            for device in [Device::flex(), Device::flex().autodiff()] {
                let run = |stepwise: bool| {
                    let mut layer = config.init(&device, &mut InitRng::new(5));
                    // Non-zero learned initial states, so that their gradients are tested too.
                    let init = |v: f32| Param::from_tensor(Tensor::<4>::full([1, hidden, 1, 1], v, &device));
                    layer.initial_hidden = init(0.3);
                    layer.initial_cell = init(-0.2);
                    let forward = |x| layer.forward_with(x, if stepwise { lstm_scan_composed } else { lstm_scan });
                    output_and_gradients([batch, channels, height, width], &device, forward, |grads| {
                        vec![
                            data(layer.input_to_state.weight.grad(grads).unwrap()),
                            data(layer.state_to_state.weight.grad(grads).unwrap()),
                            data(layer.state_to_state.bias.grad(grads).unwrap()),
                            data(layer.initial_hidden.grad(grads).unwrap()),
                            data(layer.initial_cell.grad(grads).unwrap()),
                        ]
                    })
                };
                let names = ["output", "d x", "d K^is", "d K^ss", "d K^ss bias", "d h_0", "d c_0"];
                let case = format!("{batch}x{channels}x{height}x{width}, h {hidden}, k {k}, g {groups}");
                assert_all_close(run(false), run(true), &names, &case);
            }
        }
    }
}
