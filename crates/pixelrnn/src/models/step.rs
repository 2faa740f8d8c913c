//! One way to add a layer: its tensor `forward` and, beside it, its step form, tied by the
//! traits here and held together by one generic test.
//!
//! A layer's step form ([`StepForm`]) computes the layer's output at one position (r, c) from
//! its input there and what it cached of earlier positions (its own [`StepForm::State`]), so
//! that sampling and the codec cost work proportional to the kernels, not to the image
//! ([`crate::models::Incremental`]). [`Stepped`] joins a layer's `forward` to its step form;
//! the test `every_layer_steps_as_it_forwards` runs each layer both ways on random weights and
//! inputs.
//!
//! Adding a layer: write its module with `forward` ([`Stepped::forward`]) and its step form
//! (a type implementing [`StepForm`]), add its variant to [`crate::models::Layer`] (one arm in
//! `forward` and one in `step_form`), and one line in `every_layer_steps_as_it_forwards`. The
//! model-level test (`incremental::tests`) and the causality proofs then cover it too.

use std::any::Any;
use std::fmt::Debug;

use burn::prelude::*;

use crate::image_spec::ImageSpec;
use crate::masks::Groups;

/// A layer evaluated one position at a time, in raster order.
pub(crate) trait StepForm: Clone + Debug + Send + Sync + 'static {
    /// What the layer keeps of one image between positions.
    type State: Clone + Debug + Send + 'static;

    /// A fresh state for `height x width` images.
    fn state(&self, height: usize, width: usize) -> Self::State;

    /// Before row `r`'s first position (what a layer computes once per row).
    fn start_row(&self, _state: &mut Self::State, _r: usize) {}

    /// The layer's output at (r, c) from its input `x` there; the earlier positions must be
    /// done.
    ///
    /// # Shapes
    /// - `x`: `[in_channels]` -> `[out_channels]`
    fn step(&self, state: &mut Self::State, r: usize, c: usize, x: &[f32]) -> Vec<f32>;

    /// [`StepForm::step`] for the outputs of colour groups `groups` only, written into `out`
    /// (`[out_channels]`; its other groups' outputs may be left as they are): how a colour
    /// image's sub-pixels are generated one channel at a time, each call computing the groups
    /// the channel needs ([`crate::models::Incremental::channel_logits_at`]).
    ///
    /// At (r, c), `x` holds the input of every group below `groups.end`, and the calls come
    /// with `groups.start` at 0 or at the previous call's `groups.end` (the lower groups' inputs
    /// unchanged since); the other groups of `x` hold anything finite. A layer that keeps no
    /// per-group form computes every group (this default), which is right as well.
    ///
    /// # Shapes
    /// - `x`: `[in_channels]`, `out`: `[out_channels]`
    fn step_groups(&self, state: &mut Self::State, r: usize, c: usize, x: &[f32], groups: Groups, out: &mut [f32]) {
        let _ = groups;
        out.copy_from_slice(&self.step(state, r, c, x));
    }

    /// Bytes `state` holds.
    fn bytes(state: &Self::State) -> usize;
}

/// A layer with its tensor forward and its step form: what every [`crate::models::Layer`]
/// variant is.
pub(crate) trait Stepped {
    /// The step form.
    type Step: StepForm;

    /// The layer on whole images.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, height, width]` -> `[batch, out_channels, height, width]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;

    /// The step form for images of `image`'s size (weights copied to the host once).
    fn step_form(&self, image: ImageSpec) -> Self::Step;
}

/// A step form whose state type is erased: what a model holds for a layer of any kind.
pub(crate) trait DynStep: Debug + Send + Sync {
    /// [`StepForm::state`], boxed.
    fn state(&self, height: usize, width: usize) -> Box<dyn DynState>;
    /// [`StepForm::start_row`].
    fn start_row(&self, state: &mut dyn DynState, r: usize);
    /// [`StepForm::step_groups`].
    fn step_groups(&self, state: &mut dyn DynState, r: usize, c: usize, x: &[f32], groups: Groups, out: &mut [f32]);
    /// A copy.
    fn clone_box(&self) -> Box<dyn DynStep>;
}

/// A layer's state with its type erased.
pub(crate) trait DynState: Debug + Send {
    /// For the step form that made it to find its own type again.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// [`StepForm::bytes`].
    fn bytes(&self) -> usize;
    /// A copy.
    fn clone_box(&self) -> Box<dyn DynState>;
}

/// The state of step form `S`, erased.
#[derive(Debug, Clone)]
struct StateOf<S: StepForm>(S::State);

impl<S: StepForm> DynState for StateOf<S> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn bytes(&self) -> usize {
        S::bytes(&self.0)
    }
    fn clone_box(&self) -> Box<dyn DynState> {
        Box::new(self.clone())
    }
}

/// `S`'s own state inside `state`, which `S` made.
fn own<S: StepForm>(state: &mut dyn DynState) -> &mut S::State {
    &mut state.as_any_mut().downcast_mut::<StateOf<S>>().expect("a layer's state is made by the same layer").0
}

impl<S: StepForm> DynStep for S {
    fn state(&self, height: usize, width: usize) -> Box<dyn DynState> {
        Box::new(StateOf::<S>(StepForm::state(self, height, width)))
    }
    fn start_row(&self, state: &mut dyn DynState, r: usize) {
        StepForm::start_row(self, own::<S>(state), r);
    }
    fn step_groups(&self, state: &mut dyn DynState, r: usize, c: usize, x: &[f32], groups: Groups, out: &mut [f32]) {
        StepForm::step_groups(self, own::<S>(state), r, c, x, groups, out);
    }
    fn clone_box(&self) -> Box<dyn DynStep> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn DynStep> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl Clone for Box<dyn DynState> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::models::diagonal_bilstm::DiagonalBiLstmLayerConfig;
    use crate::models::gated_pixel_cnn::GatedLayerConfig;
    use crate::models::pixel_cnn::ResidualBlockConfig;
    use crate::models::row_lstm::RowLstmLayerConfig;
    use crate::models::DiagonalPadding;
    use crate::nn::init::InitRng;

    /// `layer` on a random `[1, channels, height, width]` input, both ways: its step form at
    /// every position in raster order equals its forward there.
    fn check<L: Stepped>(layer: &L, channels: usize, image: ImageSpec, what: &str) {
        let (height, width) = (image.height, image.width);
        let values: Vec<f32> =
            (0..channels * height * width).map(|i| ((i * 7919 + 17) % 211) as f32 / 105.0 - 1.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, channels, height, width]), &Device::flex());
        let y: Vec<f32> = layer.forward(x).into_data().convert::<f32>().try_to_vec().unwrap();
        let out_channels = y.len() / (height * width);
        let step = layer.step_form(image);
        let mut state = StepForm::state(&step, height, width);
        let plane = height * width;
        for r in 0..height {
            StepForm::start_row(&step, &mut state, r);
            for c in 0..width {
                let at: Vec<f32> = (0..channels).map(|k| values[k * plane + r * width + c]).collect();
                let got = StepForm::step(&step, &mut state, r, c, &at);
                assert_eq!(got.len(), out_channels, "{what}");
                for (k, g) in got.iter().enumerate() {
                    let e = y[k * plane + r * width + c];
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{what} at ({r},{c}) channel {k}: step {g}, forward {e}"
                    );
                }
            }
        }
        assert!(S::<L>::bytes(&state) > 0, "{what}: a state holds something");
        // One colour group at a time (`step_groups`), the higher groups of the trunk's input
        // stale (anything finite), gives the bits of `step` for each group.
        let of = image.channels;
        let (mut whole, mut grouped) = (StepForm::state(&step, height, width), StepForm::state(&step, height, width));
        let mut out = vec![0.0; out_channels];
        for r in 0..height {
            StepForm::start_row(&step, &mut whole, r);
            StepForm::start_row(&step, &mut grouped, r);
            for c in 0..width {
                let at: Vec<f32> = (0..channels).map(|k| values[k * plane + r * width + c]).collect();
                let want = StepForm::step(&step, &mut whole, r, c, &at);
                for g in 0..of {
                    let groups = Groups { start: g, end: g + 1, of };
                    let mut stale = at.clone();
                    let above = Groups { start: g + 1, end: of, of }.span(out_channels);
                    stale[above].iter_mut().for_each(|v| *v = 7.25);
                    StepForm::step_groups(&step, &mut grouped, r, c, &stale, groups, &mut out);
                    for k in groups.span(out_channels) {
                        assert_eq!(out[k].to_bits(), want[k].to_bits(), "{what} at ({r},{c}) group {g} channel {k}");
                    }
                }
            }
        }
    }

    /// The step form type of `L` (for its `bytes`).
    type S<L> = <L as Stepped>::Step;

    #[test]
    fn every_layer_steps_as_it_forwards() {
        let device = Device::flex();
        let mut rng = InitRng::new(5);
        for (colour_groups, channels) in [(1, 8), (3, 12)] {
            let h = channels / 2;
            let image = ImageSpec { channels: colour_groups, height: 4, width: 5, levels: 256 };
            for residual in [true, false] {
                let block = ResidualBlockConfig { hidden_channels: h, kernel: 3, colour_groups, residual }
                    .init(&device, &mut rng);
                check(&block, channels, image, "PixelCNN residual block");
                for learned_initial_state in [true, false] {
                    let row = RowLstmLayerConfig {
                        hidden_channels: h,
                        kernel_width: 3,
                        colour_groups,
                        residual,
                        learned_initial_state,
                    }
                    .init(&device, &mut rng);
                    check(&row, channels, image, "Row LSTM layer");
                }
                let gated =
                    GatedLayerConfig { hidden_channels: h, kernel: 3, colour_groups, residual }.init(&device, &mut rng);
                check(&gated, channels + 2 * channels, image, "Gated PixelCNN layer");
                for padding in [DiagonalPadding::Zero, DiagonalPadding::Bias] {
                    let diagonal = DiagonalBiLstmLayerConfig { hidden_channels: h, colour_groups, residual, padding }
                        .init(&device, &mut rng);
                    check(&diagonal, channels, image, "Diagonal BiLSTM layer");
                }
            }
        }
    }
}
