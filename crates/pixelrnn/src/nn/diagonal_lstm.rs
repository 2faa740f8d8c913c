//! One direction of the Diagonal BiLSTM (§3.2, Fig. 3): the map is skewed so that each
//! diagonal becomes a column, the columns are scanned left to right, and the result unskewed.
//! The state of pixel (i, j) then depends on (i, j-1) and (i-1, j): a receptive field that
//! covers everything above-left.

use burn::prelude::*;

use crate::masks::{contiguous_groups, gate_groups, MaskType};
use crate::nn::contiguous::contiguous;
use crate::nn::flex_values::runs_cpu_kernels;
use crate::nn::init::InitRng;
use crate::nn::lstm_cell::lstm_cell;
use crate::nn::lstm_scan::{lstm_scan, ScanShape};
use crate::nn::masked_conv::{MaskedConv2d, MaskedConv2dConfig};
use crate::nn::ops::{skew, steps_along, unskew};
use crate::nn::rows::take_rows;

/// Configuration of a [`DiagonalLstm`].
#[derive(Debug, Clone)]
pub struct DiagonalLstmConfig {
    /// Channels of the input map (2h).
    pub input_channels: usize,
    /// Hidden (and cell) channels h.
    pub hidden_channels: usize,
    /// Colour channels of the data (1 or 3).
    pub colour_groups: usize,
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
        DiagonalLstm { input_to_state, state_to_state: state_to_state.init(device, rng), hidden_channels: h }
    }
}

/// One scanning direction (left to right) of the Diagonal BiLSTM.
#[derive(Module, Debug)]
pub struct DiagonalLstm {
    /// K^is, 1x1 mask B.
    pub input_to_state: MaskedConv2d,
    /// K^ss, 2x1 unmasked, column-wise.
    pub state_to_state: MaskedConv2d,
    /// h.
    pub hidden_channels: usize,
}

impl DiagonalLstm {
    /// # Shapes
    /// - `x`: `[batch, input_channels, height, width]`
    /// - returns the hidden states `[batch, h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, height, width] = x.dims();
        let h = self.hidden_channels;
        if runs_cpu_kernels(&x) {
            // The scan as one operation on the CPU kernels (`lstm_scan`): the skewed columns as
            // steps, each image's column a `height x 1` map that K^ss (2x1, one zero row on top)
            // maps onto itself.
            let columns = width + height - 1;
            let inside = (0..columns)
                .flat_map(|t| (0..height).map(move |r| if t >= r && t - r < width { 1.0 } else { 0.0 }))
                .collect();
            let geometry = self.state_to_state.tap_geometry(0);
            if let Some(shape) =
                ScanShape::new(h, batch, [height, 1], columns, geometry, Some(std::sync::Arc::new(inside)))
            {
                // Step-major: [columns, 4h, batch, height].
                let gates = contiguous(skew(self.input_to_state.forward(x)).permute([3, 1, 0, 2]));
                let (weight, bias) = self.state_to_state.prepare().parts();
                let initial = Tensor::<1>::zeros([2 * h], &gates.device());
                let hidden = lstm_scan(gates, weight, bias, initial, shape); // [columns, h, batch, height]
                let skewed = contiguous(hidden.permute([2, 1, 3, 0])); // [batch, h, height, columns]
                return unskew(skewed, width);
            }
        }
        self.forward_stepwise(x)
    }

    /// [`Self::forward`] column by column in tensor operations (every backend; the reference
    /// the one-operation scan is tested against).
    ///
    /// # Shapes
    /// - `x`: `[batch, input_channels, height, width]`
    /// - returns the hidden states `[batch, h, height, width]`
    pub fn forward_stepwise(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, height, width] = x.dims();
        let h = self.hidden_channels;
        // The 1x1 input-to-state commutes with the skew; applying it first avoids computing it
        // on the padding.
        // The scan runs channel-major (`[channels, batch, height, 1]` per column), so each
        // column's state-to-state convolution is one matrix product over all positions.
        let gates = skew(self.input_to_state.forward(x)).swap_dims(0, 1); // [4h, batch, height, width + height - 1]
        let columns = width + height - 1;
        let device = gates.device();
        // The state is [cell | hidden] along dimension 0, as `lstm_cell` takes it.
        let mut state = Tensor::<4>::zeros([2 * h, batch, height, 1], &device);
        let mut hidden = take_rows(state.clone(), h, h); // [h, batch, height, 1]

        // 1 where a skewed position lies inside the image. States outside are held at zero, so
        // the image is scanned with a zero boundary (K^ss's bias would otherwise make the
        // padding positions non-zero and leak a constant into column 0).
        let inside = skew(Tensor::<4>::ones([1, 1, height, width], &device)); // [1, 1, height, columns]
        let mut outputs = Vec::with_capacity(columns);
        let state_to_state = self.state_to_state.prepare();
        for (column, column_gates) in steps_along(gates, 3).enumerate() {
            // column_gates: [4h, batch, height, 1]
            let new_state = lstm_cell(column_gates, state_to_state.forward_channel_major(hidden), state); // [2h, batch, height, 1]
            state = new_state * inside.clone().narrow(3, column, 1);
            hidden = take_rows(state.clone(), h, h);
            outputs.push(hidden.clone());
        }
        // Stacked step-major (each column one contiguous copy), then laid out image-major in
        // one blocked copy: concatenating along the width wrote one value per row per column.
        let columns_first = Tensor::stack::<5>(outputs, 0).reshape([columns, h, batch, height]);
        let skewed = contiguous(columns_first.permute([2, 1, 3, 0])); // [batch, h, height, columns]
        unskew(skewed, width) // [batch, h, height, width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::lstm_scan::test_support::{assert_all_close, data, output_and_gradients};

    #[test]
    fn the_one_operation_scan_equals_the_stepwise_scan_in_values_and_gradients() {
        // Binary and RGB groups; square, wide and tall maps; one image, several, and more than
        // one task of images (9 = 4 + 4 + 1).
        for (batch, channels, hidden, groups, height, width) in
            [(1, 4, 2, 1, 3, 3), (3, 6, 3, 3, 4, 6), (2, 4, 4, 1, 7, 2), (4, 2, 1, 1, 1, 5), (9, 2, 2, 1, 3, 4)]
        {
            let config =
                DiagonalLstmConfig { input_channels: channels, hidden_channels: hidden, colour_groups: groups };
            for device in [Device::flex(), Device::flex().autodiff()] {
                let run = |stepwise: bool| {
                    let layer = config.init(&device, &mut InitRng::new(11));
                    let forward = |x| if stepwise { layer.forward_stepwise(x) } else { layer.forward(x) };
                    output_and_gradients([batch, channels, height, width], &device, forward, |grads| {
                        vec![
                            data(layer.input_to_state.weight.grad(grads).unwrap()),
                            data(layer.state_to_state.weight.grad(grads).unwrap()),
                            data(layer.state_to_state.bias.grad(grads).unwrap()),
                        ]
                    })
                };
                let names = ["output", "d x", "d K^is", "d K^ss", "d K^ss bias"];
                let case = format!("{batch}x{channels}x{height}x{width}, h {hidden}, g {groups}");
                assert_all_close(run(false), run(true), &names, &case);
            }
        }
    }
}
