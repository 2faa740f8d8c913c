//! The Row LSTM layer (§3.1, Eq. 3): processes the image one row at a time, top to bottom;
//! each row's state is computed from the row above with a one-dimensional convolution, which
//! gives the layer a triangular receptive field.

use burn::module::Param;
use burn::prelude::*;

use crate::masks::{contiguous_groups, gate_groups, MaskType};
use crate::nn::contiguous::contiguous;
use crate::nn::flex_values::runs_cpu_kernels;
use crate::nn::init::InitRng;
use crate::nn::lstm_cell::lstm_cell;
use crate::nn::lstm_scan::{lstm_scan, ScanShape};
use crate::nn::masked_conv::{MaskedConv2d, MaskedConv2dConfig};
use crate::nn::ops::steps_along;
use crate::nn::rows::take_rows;

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
        }
    }
}

/// One Row LSTM layer (without the residual projection, which the model adds).
#[derive(Module, Debug)]
pub struct RowLstm {
    /// Input-to-state convolution K^is (1 x k, mask B), applied to the whole map at once.
    pub input_to_state: MaskedConv2d,
    /// State-to-state convolution K^ss (1 x k, unmasked) over the previous row's hidden state.
    pub state_to_state: MaskedConv2d,
    /// Learned initial hidden state h_0, broadcast over batch and width, `[1, h, 1, 1]`.
    pub initial_hidden: Param<Tensor<4>>,
    /// Learned initial cell state c_0, `[1, h, 1, 1]`.
    pub initial_cell: Param<Tensor<4>>,
    /// h.
    pub hidden_channels: usize,
}

impl RowLstm {
    /// # Shapes
    /// - `x`: `[batch, input_channels, height, width]`
    /// - returns the hidden states `[batch, h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, height, width] = x.dims();
        let h = self.hidden_channels;
        if runs_cpu_kernels(&x) {
            // The scan as one operation on the CPU kernels (`lstm_scan`): the rows as steps,
            // each image's row a `1 x width` map that K^ss (1 x k, same padding) maps onto itself.
            let geometry = self.state_to_state.tap_geometry(0);
            if let Some(shape) = ScanShape::new(h, batch, [1, width], height, geometry, None) {
                // Step-major: [height, 4h, batch, width].
                let gates = contiguous(self.input_to_state.forward(x).permute([2, 1, 0, 3]));
                let (weight, bias) = self.state_to_state.prepare().parts();
                let initial = Tensor::cat(vec![self.initial_cell.val(), self.initial_hidden.val()], 1).reshape([2 * h]);
                let hidden = lstm_scan(gates, weight, bias, initial, shape); // [height, h, batch, width]
                return contiguous(hidden.permute([2, 1, 0, 3])); // [batch, h, height, width]
            }
        }
        self.forward_stepwise(x)
    }

    /// [`Self::forward`] row by row in tensor operations (every backend; the reference the
    /// one-operation scan is tested against).
    ///
    /// # Shapes
    /// - `x`: `[batch, input_channels, height, width]`
    /// - returns the hidden states `[batch, h, height, width]`
    pub fn forward_stepwise(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, height, width] = x.dims();
        let h = self.hidden_channels;
        // The scan runs channel-major (`[channels, batch, 1, width]` per row), so each row's
        // state-to-state convolution is one matrix product over all batch * width positions.
        let gates = self.input_to_state.forward(x).swap_dims(0, 1); // [4h, batch, height, width]

        // The state is [cell | hidden] along dimension 0, as `lstm_cell` takes it.
        let initial =
            Tensor::cat(vec![self.initial_cell.val(), self.initial_hidden.val()], 1).reshape([2 * h, 1, 1, 1]);
        let mut state = Tensor::<4>::zeros([2 * h, batch, 1, width], &gates.device()) + initial;
        let state_to_state = self.state_to_state.prepare();
        let mut hidden = take_rows(state.clone(), h, h); // [h, batch, 1, width]
        let mut rows = Vec::with_capacity(height);
        for row_gates in steps_along(gates, 2) {
            // row_gates: [4h, batch, 1, width]
            state = lstm_cell(row_gates, state_to_state.forward_channel_major(hidden), state); // [2h, batch, 1, width]
            hidden = take_rows(state.clone(), h, h);
            rows.push(hidden.clone());
        }
        Tensor::cat(rows, 2).swap_dims(0, 1) // [batch, h, height, width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::lstm_scan::test_support::{assert_all_close, data, output_and_gradients};

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
            };
            for device in [Device::flex(), Device::flex().autodiff()] {
                let run = |stepwise: bool| {
                    let mut layer = config.init(&device, &mut InitRng::new(5));
                    // Non-zero learned initial states, so that their gradients are tested too.
                    let init = |v: f32| Param::from_tensor(Tensor::<4>::full([1, hidden, 1, 1], v, &device));
                    layer.initial_hidden = init(0.3);
                    layer.initial_cell = init(-0.2);
                    let forward = |x| if stepwise { layer.forward_stepwise(x) } else { layer.forward(x) };
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
