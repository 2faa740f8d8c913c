//! Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
//! Decoders", §2.1-2.2, Fig. 2; <https://arxiv.org/abs/1606.05328>): two stacks of
//! convolutions that together see every pixel above and to the left, without the PixelCNN's
//! blind spot, with gated units tanh(W_f * x) . sigmoid(W_g * x).
//!
//! - The **vertical stack** ([`VerticalStack`]) sees whole rows above the pixel: its first
//!   convolution reads the image through a k x k kernel whose rows above the centre only are
//!   visible ([`MaskType::Above`], the paper's down-shift), each later one reads the previous
//!   vertical map through a kernel whose rows above and centre row are visible
//!   ([`MaskType::Vertical`]), so the map at row r always describes rows < r. No colour groups:
//!   every channel of the rows above is known.
//! - The **horizontal stack** ([`GatedLayer`]) is the model's trunk (what the skip connections
//!   and the output stack read): each layer adds to its 1 x k mask-B convolution of the row
//!   (with the R -> G -> B colour groups) a 1x1 convolution of the vertical stack's
//!   pre-activations at the same position, gates the sum, and adds a 1x1 mask-B projection of
//!   the gate to its input (residual; the vertical stack has none, as in the paper).
//!
//! Deviation: the first horizontal map is the paper's (PixelRNN's) 7x7 mask-A convolution of
//! the image shared by every architecture here (it also reads the 3 rows above), where Gated
//! PixelCNN's first horizontal convolution reads the row only.

use burn::prelude::*;

use crate::image_spec::ImageSpec;
use crate::masks::{contiguous_groups, gate_groups, Groups, MaskType};
use crate::models::residual;
use crate::models::step::{StepForm, Stepped};
use crate::nn::init::InitRng;
use crate::nn::masked_conv::{ConvAtPosition, MaskedConv2d, MaskedConv2dConfig};
use crate::nn::position_map::{residual_into, PositionMap};

/// tanh(a) . sigmoid(b) of the two halves `[a | b]` of `x` along the channels.
///
/// # Shapes
/// - `x`: `[batch, 2n, height, width]` -> `[batch, n, height, width]`
fn gate(x: Tensor<4>) -> Tensor<4> {
    crate::kernels::gated_unit::gated_unit(x)
}

/// [`gate`] at one position: `[2n]` -> `[n]`.
fn gate_at(x: &[f32]) -> Vec<f32> {
    let n = x.len() / 2;
    x[..n].iter().zip(&x[n..]).map(|(&a, &b)| gate_one(a, b)).collect()
}

/// One unit of [`gate`]: tanh(a) . sigmoid(b), with the fused unit's arithmetic
/// (`kernels::fast_math`), so that the step form computes what `gate` computes, as the
/// sampler's fast == naive bar needs.
#[inline]
fn gate_one(a: f32, b: f32) -> f32 {
    use crate::kernels::fast_math::{sigmoid, tanh};
    tanh(a) * sigmoid(b)
}

/// Configuration of a [`VerticalStack`].
#[derive(Debug, Clone)]
pub struct VerticalStackConfig {
    /// Colour channels of the images (its input).
    pub image_channels: usize,
    /// Width 2h of each vertical map.
    pub width: usize,
    /// Kernel of the first convolution (the image; 7).
    pub first_kernel: usize,
    /// Kernel of the later convolutions (3).
    pub kernel: usize,
    /// Number of layers L: one pre-activation map per horizontal layer.
    pub layers: usize,
}

impl VerticalStackConfig {
    /// Builds the stack.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> VerticalStack {
        let (k1, k, w) = (self.first_kernel, self.kernel, self.width);
        let dense = |n| vec![0; n];
        let input = MaskedConv2dConfig::same([k1, k1], Some(MaskType::Above), dense(self.image_channels), dense(w))
            .init(device, rng);
        let convs = (0..self.layers)
            .map(|_| {
                MaskedConv2dConfig::same([k, k], Some(MaskType::Vertical), dense(w), dense(2 * w)).init(device, rng)
            })
            .collect();
        VerticalStack { input, convs }
    }
}

/// The vertical stack: the image's rows above each pixel, as one pre-activation map per
/// horizontal layer.
#[derive(Module, Debug)]
pub struct VerticalStack {
    /// k x k, rows above the centre: C -> 2h.
    pub(crate) input: MaskedConv2d,
    /// Per layer, 3 x 3 rows above and centre row: 2h -> 4h (the gate's two halves).
    pub(crate) convs: Vec<MaskedConv2d>,
}

impl VerticalStack {
    /// The pre-activations of every layer, `v_0 = input(x)`, `p_l = conv_l(v_l)`,
    /// `v_(l+1) = gate(p_l)`; each `p_l` at row r describes the image's rows < r.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]` (the scaled image)
    /// - returns L maps `[batch, 4h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut v = self.input.forward(x); // [batch, 2h, height, width]
        let mut out = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            let p = conv.forward(v); // [batch, 4h, height, width]
            v = gate(p.clone());
            out.push(p);
        }
        out
    }

    /// The step form (see [`VerticalStackStep`]).
    pub(crate) fn step_form(&self) -> VerticalStackStep {
        VerticalStackStep {
            input: self.input.at_position(),
            convs: self.convs.iter().map(|c| c.at_position()).collect(),
        }
    }
}

/// The step form of a [`VerticalStack`]: since its maps at row r describe rows < r only, it
/// computes a whole row at once, when the row starts, and the horizontal layers read it.
#[derive(Debug, Clone)]
pub(crate) struct VerticalStackStep {
    input: ConvAtPosition,
    convs: Vec<ConvAtPosition>,
}

/// What a [`VerticalStackStep`] keeps of one image: every vertical map `v_l` (the 3 x 3
/// convolutions read the row above) and the current row's pre-activations `p_l`.
#[derive(Debug, Clone)]
pub(crate) struct VerticalStackState {
    /// `v_l`, `[height][width][2h]` each.
    maps: Vec<PositionMap>,
    /// `p_l` of the current row, `[1][width][4h]` each.
    row: Vec<PositionMap>,
}

impl VerticalStackState {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.maps.iter().chain(&self.row).map(PositionMap::bytes).sum()
    }

    /// Layer `l`'s pre-activations at column `c` of the current row, `[4h]`.
    pub(crate) fn at(&self, l: usize, c: usize) -> &[f32] {
        self.row[l].at(0, c)
    }
}

impl VerticalStackStep {
    /// A fresh state for `height x width` images.
    pub(crate) fn state(&self, height: usize, width: usize) -> VerticalStackState {
        let w = self.input.out_channels();
        VerticalStackState {
            maps: self.convs.iter().map(|_| PositionMap::new(height, width, w)).collect(),
            row: self.convs.iter().map(|c| PositionMap::new(1, width, c.out_channels())).collect(),
        }
    }

    /// Computes row `r` of every map from `canvas` (the scaled image, `[height][width][C]`),
    /// whose rows < r must be complete.
    pub(crate) fn start_row(&self, state: &mut VerticalStackState, canvas: &PositionMap, r: usize) {
        let width = canvas.width();
        if let Some(first) = state.maps.first_mut() {
            for c in 0..width {
                self.input.apply(first.at_mut(r, c), |dy, dx| canvas.offset(r, c, dy, dx));
            }
        }
        for (l, conv) in self.convs.iter().enumerate() {
            for c in 0..width {
                let map = &state.maps[l];
                let p = state.row[l].at_mut(0, c);
                conv.apply(p, |dy, dx| map.offset(r, c, dy, dx));
            }
            if let Some(next) = state.maps.get_mut(l + 1) {
                for c in 0..width {
                    next.at_mut(r, c).copy_from_slice(&gate_at(state.row[l].at(0, c)));
                }
            }
        }
    }
}

/// Configuration of a [`GatedLayer`].
#[derive(Debug, Clone)]
pub struct GatedLayerConfig {
    /// h: the horizontal stack is 2h wide, its gate 4h.
    pub hidden_channels: usize,
    /// Width k of the 1 x k horizontal convolution (3).
    pub kernel: usize,
    /// Colour channels of the data (1 or 3).
    pub colour_groups: usize,
    /// Add the input to the output (the paper's residual on the horizontal stack).
    pub residual: bool,
}

impl GatedLayerConfig {
    /// Builds the layer.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> GatedLayer {
        let (w, g) = (2 * self.hidden_channels, self.colour_groups);
        let gates = gate_groups(w, 2, g);
        GatedLayer {
            horizontal: MaskedConv2dConfig::same(
                [1, self.kernel],
                Some(MaskType::B),
                contiguous_groups(w, g),
                gates.clone(),
            )
            .init(device, rng),
            // The vertical pre-activations describe rows above: every gate may read all of them.
            link: MaskedConv2dConfig::same([1, 1], None, vec![0; 2 * w], gates).init(device, rng),
            out: MaskedConv2dConfig::pointwise(w, w, g).init(device, rng),
            residual: self.residual,
        }
    }
}

/// One horizontal layer of Gated PixelCNN (Fig. 2, right half).
#[derive(Module, Debug)]
pub struct GatedLayer {
    /// 1 x k mask B along the row: 2h -> 4h.
    pub(crate) horizontal: MaskedConv2d,
    /// 1x1 from the vertical stack's pre-activations: 4h -> 4h.
    pub(crate) link: MaskedConv2d,
    /// 1x1 mask B of the gate: 2h -> 2h.
    pub(crate) out: MaskedConv2d,
    /// Whether the input is added.
    pub(crate) residual: bool,
}

impl GatedLayer {
    /// `h + out(gate(horizontal(h) + link(p)))`.
    ///
    /// # Shapes
    /// - `x`: `[batch, 2h + 4h, height, width]`: the horizontal map `h` then the vertical
    ///   pre-activations `p` of this layer
    /// - returns `[batch, 2h, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let w = channels / 3;
        let h = x.clone().slice([0..batch, 0..w, 0..height, 0..width]);
        let p = x.slice([0..batch, w..channels, 0..height, 0..width]);
        let pre = self.horizontal.forward(h.clone()) + self.link.forward(p); // [batch, 4h, height, width]
        let y = self.out.forward(gate(pre)); // [batch, 2h, height, width]
        residual(h, y, self.residual)
    }
}

/// The step form of a [`GatedLayer`].
#[derive(Debug, Clone)]
pub(crate) struct GatedLayerStep {
    horizontal: ConvAtPosition,
    link: ConvAtPosition,
    out: ConvAtPosition,
    residual: bool,
}

/// What a [`GatedLayerStep`] keeps of one image: its input `h` at every position so far (the
/// 1 x k convolution reads the row to the left).
#[derive(Debug, Clone)]
pub(crate) struct GatedLayerState {
    inputs: PositionMap,
    /// The gate's output at the position being computed, `[2h]`: what the groups computed
    /// later there read of the earlier ones ([`StepForm::step_groups`]).
    gated: Vec<f32>,
}

impl Stepped for GatedLayer {
    type Step = GatedLayerStep;

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }

    fn step_form(&self, _image: ImageSpec) -> GatedLayerStep {
        GatedLayerStep {
            horizontal: self.horizontal.at_position(),
            link: self.link.at_position(),
            out: self.out.at_position(),
            residual: self.residual,
        }
    }
}

impl StepForm for GatedLayerStep {
    type State = GatedLayerState;

    fn state(&self, height: usize, width: usize) -> GatedLayerState {
        let w = self.out.out_channels();
        GatedLayerState { inputs: PositionMap::new(height, width, w), gated: vec![0.0; w] }
    }

    /// [`GatedLayer::forward`] at (r, c): every group of [`StepForm::step_groups`] (one group
    /// holding every channel).
    ///
    /// # Shapes
    /// - `x`: `[2h + 4h]` (as [`GatedLayer::forward`]) -> `[2h]`
    fn step(&self, state: &mut GatedLayerState, r: usize, c: usize, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; x.len() / 3]; // [2h]
        self.step_groups(state, r, c, x, Groups::all(1), &mut out);
        out
    }

    /// [`GatedLayerStep::step`] for `groups` only: both halves of the gate's pre-activations for
    /// these groups, their gate, and the projection of the gate's groups so far.
    ///
    /// # Shapes
    /// - `x`: `[2h + 4h]`, `out`: `[2h]`
    fn step_groups(&self, state: &mut GatedLayerState, r: usize, c: usize, x: &[f32], groups: Groups, out: &mut [f32]) {
        let w = x.len() / 3;
        let (h, p) = x.split_at(w);
        state.inputs.at_mut(r, c).copy_from_slice(h);
        let span = groups.span(w);
        let mut pre = vec![0.0; 2 * w]; // [4h]: [a | b]
        let mut link = vec![0.0; 2 * w];
        let map = &state.inputs;
        for half in [0, w] {
            let columns = half + span.start..half + span.end;
            self.horizontal.apply_columns(&mut pre, columns.clone(), |dy, dx| map.offset(r, c, dy, dx));
            self.link.apply_columns(&mut link, columns, |_, _| Some(p));
        }
        for k in (span.start..span.end).chain(w + span.start..w + span.end) {
            pre[k] += link[k];
        }
        for k in span.clone() {
            state.gated[k] = gate_one(pre[k], pre[w + k]);
        }
        let mut y = vec![0.0; w]; // [2h]
        self.out.pointwise_groups(&mut y, groups, &state.gated);
        residual_into(out, h, &y, self.residual, span);
    }

    fn bytes(state: &GatedLayerState) -> usize {
        state.inputs.bytes() + state.gated.len() * std::mem::size_of::<f32>()
    }
}
