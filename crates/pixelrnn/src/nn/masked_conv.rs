//! Masked 2-D convolution (§3.4): the kernel is multiplied by a constant visibility mask in
//! every forward pass, so no optimizer update can open a masked tap.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::kernels::conv_product::conv_product;
use crate::kernels::shifted_taps::{shifted_taps, TapGeometry};
use crate::masks::{allowed_f32, contiguous_groups, Groups, MaskType};
use crate::nn::init::InitRng;

/// Configuration of a [`MaskedConv2d`].
#[derive(Debug, Clone)]
pub struct MaskedConv2dConfig {
    /// Kernel `[height, width]`; both odd for masked kernels, except the 2x1 state-to-state.
    pub kernel: [usize; 2],
    /// `None` for an ordinary (all-visible) convolution.
    pub mask_type: Option<MaskType>,
    /// Colour group of every input channel (its length is the number of input channels).
    pub in_groups: Vec<usize>,
    /// Colour group of every output channel (its length is the number of output channels).
    pub out_groups: Vec<usize>,
    /// Zero padding `[top, bottom, left, right]`.
    pub padding: [usize; 4],
}

impl MaskedConv2dConfig {
    /// A kernel with "same" padding (`kh / 2`, `kw / 2` on each side).
    pub fn same(
        kernel: [usize; 2],
        mask_type: Option<MaskType>,
        in_groups: Vec<usize>,
        out_groups: Vec<usize>,
    ) -> Self {
        let [kh, kw] = kernel;
        Self { kernel, mask_type, in_groups, out_groups, padding: [kh / 2, kh / 2, kw / 2, kw / 2] }
    }

    /// A 1x1 mask B convolution between contiguous colour groups: the pointwise layer of
    /// every model (projections, skips, output stack, PixelCNN's reduce/expand).
    pub fn pointwise(in_channels: usize, out_channels: usize, colour_groups: usize) -> Self {
        Self::same(
            [1, 1],
            Some(MaskType::B),
            contiguous_groups(in_channels, colour_groups),
            contiguous_groups(out_channels, colour_groups),
        )
    }

    /// Builds the layer. Weights and bias are drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    /// (PyTorch's default for convolutions); masked weights are stored but never used.
    pub fn init(&self, device: &Device, rng: &mut InitRng) -> MaskedConv2d {
        let [kh, kw] = self.kernel;
        let (cin, cout) = (self.in_groups.len(), self.out_groups.len());
        // Deviation: the paper does not give its initialisation; this is PyTorch's default for
        // convolutions, with the fan-in of the whole kernel (masked taps included), so that the
        // PyTorch twins start from the same distribution.
        let bound = 1.0 / ((cin * kh * kw) as f32).sqrt();
        let shape = [cout, cin, kh, kw];
        let weight = Tensor::<4>::from_data(TensorData::new(rng.uniform(cout * cin * kh * kw, bound), shape), device);
        let bias = Tensor::<1>::from_data(TensorData::new(rng.uniform(cout, bound), [cout]), device);
        let visible = allowed_f32(self.mask_type, self.kernel, &self.in_groups, &self.out_groups);
        let plane = cin * kh * kw;
        let taps = (0..kh * kw)
            .filter(|&t| (0..cout * cin).any(|oi| visible[oi / cin * plane + oi % cin * kh * kw + t] != 0.0))
            .map(|t| [t / kw, t % kw])
            .collect();
        let allowed = Tensor::<4>::from_data(TensorData::new(visible, shape), device);
        MaskedConv2d {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
            allowed,
            padding: self.padding,
            taps,
        }
    }
}

/// A 2-D convolution whose kernel is masked by a constant `allowed` tensor (1 = visible).
#[derive(Module, Debug)]
pub struct MaskedConv2d {
    /// Kernel `[out, in, kh, kw]`.
    pub(crate) weight: Param<Tensor<4>>,
    /// Bias `[out]`.
    pub(crate) bias: Param<Tensor<1>>,
    /// Visibility of every kernel weight, `[out, in, kh, kw]`; a constant, never trained.
    pub(crate) allowed: Tensor<4>,
    /// Zero padding `[top, bottom, left, right]`.
    pub(crate) padding: [usize; 4],
    /// Kernel positions `[dy, dx]` holding at least one visible weight, row-major (derived
    /// from `allowed`; mask A 7x7: 24 of 49, mask B 3x3: 5 of 9).
    #[module(skip)]
    pub(crate) taps: Vec<[usize; 2]>,
}

/// A [`MaskedConv2d`] whose visible taps' weights are gathered (see [`MaskedConv2d::prepare`]).
pub struct PreparedConv<'a> {
    conv: &'a MaskedConv2d,
    /// `[out, taps * in]`
    weight: Tensor<2>,
    /// `[out]`
    bias: Tensor<1>,
}

impl PreparedConv<'_> {
    /// Same result as [`MaskedConv2d::forward`]: the input shifted once per visible tap,
    /// `[batch, taps*in, h*w]`, times the gathered weight.
    ///
    /// # Shapes
    /// - `x`: `[batch, in, height, width]` -> `[batch, out, height + top + bottom - kh + 1, width + left + right - kw + 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, _, _] = x.dims();
        let (stacked, [out, k, oh, ow]) = self.stacked_taps(x, 1);
        let columns = stacked.reshape([batch, k, oh * ow]); // [batch, taps*in, h*w]
        let y = conv_product(self.weight.clone(), columns, self.bias.clone());
        y.reshape([batch, out, oh, ow])
    }

    /// [`Self::forward`] on a channel-major map: the scans keep their states as
    /// `[channels, batch, height, width]`, so each step is one matrix product over all
    /// batch * height * width positions instead of one small product per image.
    ///
    /// # Shapes
    /// - `x`: `[in, batch, height, width]` -> `[out, batch, height + top + bottom - kh + 1, width + left + right - kw + 1]`
    pub fn forward_channel_major(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, batch, _, _] = x.dims();
        let (stacked, [out, k, oh, ow]) = self.stacked_taps(x, 0);
        let columns = stacked.reshape([k, batch * oh * ow]); // [taps*in, batch*h*w]
        let y = self.weight.clone().matmul(columns) + self.bias.clone().reshape([out, 1]);
        y.reshape([out, batch, oh, ow])
    }

    /// The gathered weight `[out, taps * in]` (tap-major, the taps of
    /// [`MaskedConv2d::tap_geometry`]) and the bias `[out]`, for a kernel that runs the products
    /// itself (`lstm_scan`).
    pub(crate) fn parts(&self) -> (Tensor<2>, Tensor<1>) {
        (self.weight.clone(), self.bias.clone())
    }

    /// The input padded, shifted once per visible tap and stacked tap-major along
    /// `channel_dim`; also returns `[out, taps * in, output height, output width]`.
    ///
    /// # Shapes
    /// - `x`: `[d0, d1, height, width]` with the channels in `channel_dim` (0 or 1)
    fn stacked_taps(&self, x: Tensor<4>, channel_dim: usize) -> (Tensor<4>, [usize; 4]) {
        let [out, _, _, _] = self.conv.weight.val().dims();
        let geometry = self.conv.tap_geometry(channel_dim);
        let [d0, d1, oh, ow] = geometry.output_dims(x.dims());
        let stacked = shifted_taps(x, &geometry); // [d0, d1, oh, ow], taps * channels in channel_dim
        (stacked, [out, [d0, d1][channel_dim], oh, ow])
    }
}

impl MaskedConv2d {
    /// Which shifted copies of the input the visible taps read (kernel, padding, taps in the
    /// gathered weight's order), for a map with its channels in `channel_dim` (0 or 1).
    pub fn tap_geometry(&self, channel_dim: usize) -> TapGeometry {
        let [_, _, kh, kw] = self.weight.val().dims();
        TapGeometry { taps: self.taps.clone(), kernel: [kh, kw], padding: self.padding, channel_dim }
    }

    /// The number of kernel weights the mask leaves visible.
    pub(crate) fn visible_weights(&self) -> usize {
        host_values(self.allowed.clone()).iter().filter(|&&v| v != 0.0).count()
    }

    /// The kernel actually applied: weights times the visibility mask.
    pub fn effective_weight(&self) -> Tensor<4> {
        self.weight.val() * self.allowed.clone()
    }

    /// # Shapes
    /// - `x`: `[batch, in, height, width]`
    /// - returns `[batch, out, height + top + bottom - kh + 1, width + left + right - kw + 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [out, _, kh, kw] = self.weight.val().dims();
        // Measured (BENCHMARKS.md): with gradients, a 1x1 kernel as a matrix product trains
        // M1 1.8x faster than the backend's convolution; without, the convolution is faster.
        if [kh, kw] == [1, 1] && self.padding == [0; 4] && x.device().is_autodiff() {
            return self.forward_pointwise(x, out);
        }
        // Measured (BENCHMARKS.md): every larger kernel as one matrix product over its visible
        // taps only (skipping those a dense convolution multiplies by zero) beats the backend's
        // dense convolution, with or without gradients (M2 train 1.4x).
        if kh * kw > 1 && !self.taps.is_empty() {
            return self.prepare().forward(x);
        }
        self.forward_dense(x)
    }

    /// The backend's dense convolution of the masked kernel (the reference the other paths are
    /// tested against).
    pub fn forward_dense(&self, x: Tensor<4>) -> Tensor<4> {
        let [top, bottom, left, right] = self.padding;
        let symmetric = top == bottom && left == right;
        let (x, pad) = if symmetric {
            (x, [top, left])
        } else {
            (x.pad((left, right, top, bottom), burn::tensor::ops::PadMode::Constant(0.0)), [0, 0])
        };
        conv2d(x, self.effective_weight(), Some(self.bias.val()), ConvOptions::new([1, 1], pad, [1, 1], 1))
    }

    /// The kernel's visible taps gathered once, for a scan that applies the same kernel at
    /// every step (the LSTMs' state-to-state convolution): the gather and its backward then
    /// run once per forward pass instead of once per step.
    pub fn prepare(&self) -> PreparedConv<'_> {
        let [out, channels, kh, kw] = self.weight.val().dims();
        let k = self.taps.len() * channels;
        let index: Vec<i64> = self.taps.iter().map(|&[dy, dx]| (dy * kw + dx) as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [self.taps.len()]), &self.weight.val().device());
        let weight = self
            .effective_weight()
            .permute([0, 2, 3, 1])
            .reshape([out, kh * kw, channels])
            .select(1, index)
            .reshape([out, k]); // [out, taps*in], tap-major like the shifted input
        PreparedConv { conv: self, weight, bias: self.bias.val() }
    }

    /// A 1x1 convolution as one batched matrix product, `W [1, out, in] x X [batch, in, h*w]`:
    /// no im2col copy, and the most common layer of every model.
    fn forward_pointwise(&self, x: Tensor<4>, out: usize) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let weight = self.effective_weight().reshape([out, channels]); // [out, in]
        let x = x.reshape([batch, channels, height * width]); // [batch, in, h*w]
        let y = conv_product(weight, x, self.bias.val()); // [batch, out, h*w]
        y.reshape([batch, out, height, width])
    }
}

/// A [`MaskedConv2d`] at one output position, on the host: its step form, which the layers'
/// steps (and so the incremental engine) apply at the position being generated. Only the
/// visible taps are kept.
#[derive(Debug, Clone)]
pub(crate) struct ConvAtPosition {
    /// Input channels.
    cin: usize,
    /// Output channels.
    cout: usize,
    /// Offsets `(dy, dx)` of the input read by each visible tap, relative to the output position.
    taps: Vec<(isize, isize)>,
    /// The masked kernel of the visible taps, `[tap][in][out]` (outputs innermost: the
    /// product runs across them in SIMD lanes).
    weight: Vec<f32>,
    /// `[out]`.
    bias: Vec<f32>,
    /// The tap at offset (0, 0), if visible, and for each output the end of the inputs it sees
    /// there (a mask's centre rule: later inputs have zero weight for that output).
    centre: Option<Centre>,
}

/// The visible centre tap of a [`ConvAtPosition`]: which tap it is, and the inputs each output
/// sees there.
#[derive(Debug, Clone)]
struct Centre {
    /// Its index among the visible taps.
    tap: usize,
    /// For each output, the end of the inputs it sees at the centre, `[out]`.
    seen: Vec<usize>,
    /// The largest of `seen`: what every output together sees (`apply`'s bound).
    all: usize,
}

impl Centre {
    /// The end of the inputs that the outputs `columns` see at the centre.
    fn seen_by(&self, columns: std::ops::Range<usize>) -> usize {
        if columns.len() == self.seen.len() {
            self.all
        } else {
            self.seen[columns].iter().copied().max().unwrap_or(0)
        }
    }
}

/// A tensor's values on the host.
pub(crate) fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data")
}

impl MaskedConv2d {
    /// The step form: this convolution at one position (see [`ConvAtPosition`]).
    pub(crate) fn at_position(&self) -> ConvAtPosition {
        let [cout, cin, kh, kw] = self.weight.val().dims();
        let w = host_values(self.effective_weight());
        let [top, _, left, _] = self.padding;
        let mut taps = Vec::with_capacity(self.taps.len());
        let mut weight = Vec::with_capacity(self.taps.len() * cout * cin);
        let allowed = host_values(self.allowed.clone());
        let mut centre = None;
        for &[ky, kx] in &self.taps {
            if (ky, kx) == (top, left) {
                let seen = |o: usize| {
                    (0..cin).rev().find(|&i| allowed[((o * cin + i) * kh + ky) * kw + kx] != 0.0).map_or(0, |i| i + 1)
                };
                let seen: Vec<usize> = (0..cout).map(seen).collect();
                centre = Some(Centre { tap: taps.len(), all: seen.iter().copied().max().unwrap_or(0), seen });
            }
            taps.push((ky as isize - top as isize, kx as isize - left as isize));
            for i in 0..cin {
                for o in 0..cout {
                    weight.push(w[((o * cin + i) * kh + ky) * kw + kx]);
                }
            }
        }
        ConvAtPosition { cin, cout, taps, weight, bias: host_values(self.bias.val()), centre }
    }
}

impl ConvAtPosition {
    /// Output channels.
    pub(crate) fn out_channels(&self) -> usize {
        self.cout
    }

    /// `out = bias + sum over taps of W_tap . read(dy, dx)`; `read` returns `None` outside the
    /// map (zero padding). Each tap's dot product is summed in input order and then added to
    /// `out`, the same bits as one output at a time ([`crate::kernels::position_product`]).
    /// Every output of [`ConvAtPosition::apply_columns`].
    ///
    /// # Shapes
    /// - `out`: `[out]`; `read(dy, dx)`: `[in]`
    pub(crate) fn apply<'a>(&self, out: &mut [f32], read: impl Fn(isize, isize) -> Option<&'a [f32]>) {
        self.apply_columns(out, 0..self.cout, read);
    }

    /// [`ConvAtPosition::apply`] for the outputs of colour groups `groups` only
    /// ([`Groups::span`]); `out`'s other outputs are left as they are. At the centre tap only
    /// the inputs these outputs see are read (those of their own and lower groups, for a mask),
    /// so the others may hold anything finite: a colour image's groups computed one at a time
    /// ([`crate::models::Incremental::channel_logits_at`]). The same bits as `apply` for these
    /// outputs, up to the sign of an exact zero sum.
    ///
    /// # Shapes
    /// - `out`: `[out]`; `read(dy, dx)`: `[in]`
    pub(crate) fn apply_groups<'a>(
        &self,
        out: &mut [f32],
        groups: Groups,
        read: impl Fn(isize, isize) -> Option<&'a [f32]>,
    ) {
        self.apply_columns(out, groups.span(self.cout), read);
    }

    /// [`ConvAtPosition::apply`] for the outputs `columns` only (as
    /// [`ConvAtPosition::apply_groups`], for a map whose groups are not one contiguous block,
    /// such as a gate's halves).
    ///
    /// # Shapes
    /// - `out`: `[out]`; `read(dy, dx)`: `[in]`
    pub(crate) fn apply_columns<'a>(
        &self,
        out: &mut [f32],
        columns: std::ops::Range<usize>,
        read: impl Fn(isize, isize) -> Option<&'a [f32]>,
    ) {
        if columns.is_empty() {
            return;
        }
        out[columns.clone()].copy_from_slice(&self.bias[columns.clone()]);
        let mut sums = Vec::new();
        for (t, &(dy, dx)) in self.taps.iter().enumerate() {
            if let Some(x) = read(dy, dx) {
                let inputs = match &self.centre {
                    Some(centre) if centre.tap == t => centre.seen_by(columns.clone()),
                    _ => self.cin,
                };
                let w = &self.weight[t * self.cout * self.cin..(t + 1) * self.cout * self.cin];
                crate::kernels::position_product::accumulate_columns(
                    &mut out[columns.clone()],
                    w,
                    self.cout,
                    columns.start,
                    &x[..inputs],
                    &mut sums,
                );
            }
        }
    }

    /// [`ConvAtPosition::pointwise`] for the outputs of `groups` only, into `out`
    /// ([`ConvAtPosition::apply_groups`]).
    ///
    /// # Shapes
    /// - `out`: `[out]`; `x`: `[in]`
    pub(crate) fn pointwise_groups(&self, out: &mut [f32], groups: Groups, x: &[f32]) {
        self.apply_groups(out, groups, |_, _| Some(x));
    }

    /// A 1x1 convolution at one position.
    ///
    /// # Shapes
    /// - `x`: `[in]` -> `[out]`
    pub(crate) fn pointwise(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.cout];
        self.apply(&mut out, |_, _| Some(x));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointwise_matmul_path_equals_the_convolution() {
        let config = MaskedConv2dConfig::pointwise(6, 9, 3);
        let x: Vec<f32> = (0..2 * 6 * 4 * 5).map(|v| ((v * 37) % 23) as f32 / 7.0 - 1.5).collect();
        let run = |device: &Device| -> Vec<f32> {
            let conv = config.init(device, &mut InitRng::new(4));
            let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 6, 4, 5]), device);
            conv.forward(x).into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
        };
        let plain = run(&Device::flex()); // convolution
        let tracked = run(&Device::flex().autodiff()); // matrix product
        for (a, b) in plain.iter().zip(&tracked) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn taps_and_channel_major_paths_equal_the_dense_convolution() {
        use crate::masks::MaskType::{A, B};
        let configs = [
            MaskedConv2dConfig::same([7, 7], Some(A), contiguous_groups(3, 3), contiguous_groups(6, 3)),
            MaskedConv2dConfig::same([3, 3], Some(B), contiguous_groups(6, 3), contiguous_groups(6, 3)),
            MaskedConv2dConfig::same([1, 3], Some(B), contiguous_groups(2, 1), contiguous_groups(8, 1)),
            MaskedConv2dConfig::same([1, 3], None, vec![0; 4], vec![0; 8]),
            MaskedConv2dConfig {
                kernel: [2, 1],
                mask_type: None,
                in_groups: vec![0; 4],
                out_groups: vec![0; 8],
                padding: [1, 0, 0, 0],
            },
        ];
        for config in configs {
            let cin = config.in_groups.len();
            let x: Vec<f32> = (0..2 * cin * 5 * 6).map(|v| ((v * 29) % 31) as f32 / 9.0 - 1.7).collect();
            for device in [Device::flex(), Device::flex().autodiff()] {
                let conv = config.init(&device, &mut InitRng::new(8));
                assert!(conv.taps.len() < config.kernel[0] * config.kernel[1] || config.mask_type.is_none());
                let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, cin, 5, 6]), &device);
                let dense = conv.forward_dense(x.clone()).into_data().try_to_vec::<f32>().unwrap();
                let taps = conv.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
                let major = conv.prepare().forward_channel_major(x.swap_dims(0, 1)).swap_dims(0, 1);
                let major = major.into_data().try_to_vec::<f32>().unwrap();
                assert_eq!((dense.len(), dense.len()), (taps.len(), major.len()));
                for ((a, b), c) in dense.iter().zip(&taps).zip(&major) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{:?} taps: {a} vs {b}", config.kernel);
                    assert!((a - c).abs() <= 1e-5 * (1.0 + a.abs()), "{:?} channel-major: {a} vs {c}", config.kernel);
                }
            }
        }
    }
}
