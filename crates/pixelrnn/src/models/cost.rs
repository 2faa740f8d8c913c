//! What one image costs a model: the multiply-accumulates (MACs) of its convolutions, counting
//! only the weights their masks leave visible, the work any implementation of the model must do
//! (a 7x7 mask A on one colour group: 24 of 49 taps; a 3x3 mask B: 5 of 9; a 1x1 with R->G->B
//! groups: 6 of 9 channel blocks). Every convolution of these models is applied once per pixel:
//! the LSTMs' state-to-state convolutions too (row by row, or column by column on the skewed
//! map, once per cell). Element-wise work (gates, activations, the output distribution's NLL)
//! is not counted. `pixelrnn bench` divides the achieved rate of these MACs by the machine's
//! FMA peak ([`crate::kernels::fma_peak`]).

use super::{Layer, PixelRnn};
use crate::nn::masked_conv::MaskedConv2d;

impl PixelRnn {
    /// Every convolution of the model.
    fn convolutions(&self) -> Vec<&MaskedConv2d> {
        let mut all = vec![&self.input];
        for layer in &self.layers {
            match layer {
                Layer::PixelCnn(b) => all.extend([&b.reduce, &b.spatial, &b.expand]),
                Layer::RowLstm(l) => all.extend([&l.lstm.input_to_state, &l.lstm.state_to_state, &l.projection]),
                Layer::DiagonalBilstm(l) => all.extend([
                    &l.left_to_right.input_to_state,
                    &l.left_to_right.state_to_state,
                    &l.right_to_left.input_to_state,
                    &l.right_to_left.state_to_state,
                    &l.projection,
                ]),
                Layer::Gated(g) => all.extend([&g.horizontal, &g.link, &g.out]),
            }
        }
        all.extend(&self.skips);
        all.extend([&self.output.hidden, &self.output.logits]);
        if let Some(vertical) = &self.vertical {
            all.push(&vertical.input);
            all.extend(&vertical.convs);
        }
        all
    }

    /// Forward multiply-accumulates of the model's convolutions for one image (visible weights
    /// only; see the module docs). A training step costs about three times this per image
    /// (forward, the gradient of the input, the gradient of the weights).
    pub fn forward_macs_per_image(&self) -> u64 {
        let pixels = (self.image.height * self.image.width) as u64;
        self.convolutions().iter().map(|conv| conv.visible_weights() as u64 * pixels).sum()
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use crate::models::specs::Spec;

    #[test]
    fn m1_costs_what_its_masks_leave_visible() {
        let model = Spec::M1.model_config().init(&Device::flex(), 0).unwrap();
        // h = 32, 7 blocks, output width 64, one channel, no skips (docs/bench-specs.md):
        // 7x7 mask A 1 -> 64: 24 taps; per block 1x1 64 -> 32, 3x3 mask B 32 -> 32 (5 taps),
        // 1x1 32 -> 64; output 1x1 64 -> 64 and 64 -> 1.
        let per_pixel = 24 * 64 + 7 * (64 * 32 + 5 * 32 * 32 + 32 * 64) + 64 * 64 + 64;
        assert_eq!(model.forward_macs_per_image(), per_pixel * 28 * 28);
    }

    #[test]
    fn colour_groups_and_every_architecture_are_counted() {
        // M2 (RGB): the 1x1 convolutions see 6 of 9 channel blocks (mask B over R, G, B), the 7x7
        // mask A 24 taps with 3 of 9 blocks at its centre; every spec costs something.
        for spec in [Spec::M2, Spec::M3, Spec::M4, Spec::M5, Spec::M6] {
            let model = spec.model_config().init(&Device::flex(), 0).unwrap();
            let macs = model.forward_macs_per_image();
            let dense: u64 = model.num_params() as u64 * (model.image.height * model.image.width) as u64;
            assert!(macs > 0 && macs < dense, "{}: {macs} of at most {dense}", spec.name());
        }
    }
}
