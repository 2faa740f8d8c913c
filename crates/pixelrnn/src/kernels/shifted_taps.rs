//! The shifted copies of a map that a masked convolution multiplies by its visible taps
//! (`masked_conv::PreparedConv`), stacked along the channels: one pass on the CPU backend, as a
//! Burn backend extension with a hand-written derivative.
//!
//! Why: composed of Burn ops this is a zero-pad, one slice per tap and a concatenation; under
//! autodiff each slice's derivative writes a whole zero-filled padded map, and the maps are
//! then summed, tap by tap (measured: a quarter of a PixelCNN training step in those copies).
//! Here the forward pass copies each row segment once, and the derivative adds each tap's
//! gradient straight into the input's gradient.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::ops::PadMode;

use crate::kernels::flex_values::{from_values, runs_cpu_kernels, values};

/// Which shifted copies to stack, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapGeometry {
    /// Kernel offsets `[dy, dx]` of the visible taps, in stacking order.
    pub taps: Vec<[usize; 2]>,
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Zero padding `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    /// The dimension (0 or 1) that holds the channels; the copies are stacked along it.
    pub channel_dim: usize,
}

impl TapGeometry {
    /// The output `[d0, d1, out_height, out_width]` for an input `[d0, d1, height, width]`.
    pub fn output_dims(&self, [d0, d1, height, width]: [usize; 4]) -> [usize; 4] {
        let [top, bottom, left, right] = self.padding;
        let [kh, kw] = self.kernel;
        let (oh, ow) = (height + top + bottom + 1 - kh, width + left + right + 1 - kw);
        let taps = self.taps.len();
        if self.channel_dim == 0 {
            [taps * d0, d1, oh, ow]
        } else {
            [d0, taps * d1, oh, ow]
        }
    }
}

/// Backends with a one-pass tap stacking.
#[backend_extension(Flex, Autodiff)]
pub trait ShiftedTapsBackend: Backend {
    /// See [`shifted_taps`].
    fn shifted_taps(x: FloatTensor<Self>, geometry: TapGeometry) -> FloatTensor<Self>;
}

impl ShiftedTapsBackend for Flex {
    fn shifted_taps(x: FlexTensor, geometry: TapGeometry) -> FlexTensor {
        forward(&x, &geometry)
    }
}

impl<C: CheckpointStrategy> ShiftedTapsBackend for Autodiff<Flex, C> {
    fn shifted_taps(x: FloatTensor<Self>, geometry: TapGeometry) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match ShiftedTapsDerivative.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let dims = dims4(&x);
                let output = forward(&x, &geometry);
                prep.finish((geometry, dims), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &geometry)),
        }
    }
}

#[derive(Debug)]
struct ShiftedTapsDerivative;

impl Backward<Flex, 1> for ShiftedTapsDerivative {
    /// (geometry, input dims).
    type State = (TapGeometry, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let (geometry, dims) = ops.state;
        let grad_input = loops::backward(&values(&grad), dims, &geometry);
        grads.register::<Flex>(parent.id, from_values(grad_input, Shape::new(dims)));
    }
}

fn dims4(x: &FlexTensor) -> [usize; 4] {
    x.shape().dims::<4>()
}

fn forward(x: &FlexTensor, geometry: &TapGeometry) -> FlexTensor {
    let dims = dims4(x);
    let output = loops::forward(&values(x), dims, geometry);
    from_values(output, Shape::new(geometry.output_dims(dims)))
}

/// The visible taps' shifted copies of `x`, zero outside the map, stacked tap-major along the
/// channel dimension: channel block t of the output is `x` shifted by tap t.
///
/// # Shapes
/// - `x`: `[d0, d1, height, width]`, the channels in `geometry.channel_dim`
/// - returns `geometry.output_dims(x.dims())`: e.g. `[batch, taps * channels, out_height,
///   out_width]` for `channel_dim == 1`
pub fn shifted_taps(x: Tensor<4>, geometry: &TapGeometry) -> Tensor<4> {
    if !runs_cpu_kernels(&x) {
        return shifted_taps_composed(x, geometry);
    }
    Tensor::from_dispatch(<Dispatch as ShiftedTapsBackend>::shifted_taps(x.into_dispatch(), geometry.clone()))
}

/// [`shifted_taps`] composed of Burn tensor operations (pad, slice, concatenate): runs on
/// every backend.
pub fn shifted_taps_composed(x: Tensor<4>, geometry: &TapGeometry) -> Tensor<4> {
    let [d0, d1, _, _] = x.dims();
    let [_, _, oh, ow] = geometry.output_dims(x.dims());
    let [top, bottom, left, right] = geometry.padding;
    let padded = if geometry.padding == [0; 4] { x } else { x.pad((left, right, top, bottom), PadMode::Constant(0.0)) };
    let mut shifted: Vec<Tensor<4>> =
        geometry.taps.iter().map(|&[dy, dx]| padded.clone().slice([0..d0, 0..d1, dy..dy + oh, dx..dx + ow])).collect();
    if shifted.len() == 1 {
        shifted.remove(0)
    } else {
        Tensor::cat(shifted, geometry.channel_dim)
    }
}

/// The tap stacking and its derivative on plain slices, for a kernel that stacks taps inside
/// its own loop (`lstm_scan`).
pub(crate) use loops::{backward as stack_taps_backward, forward as stack_taps};

/// The loops, over row-major f32 slices. Planes (one `height x width` map of one channel of one
/// image) are independent, so both directions run in parallel over planes.
mod loops {
    use super::*;
    use crate::kernels::par_blocks::{blocks_per_task, par_blocks};

    /// Output plane of (input plane (i0, i1), tap t) in the stacked layout.
    fn output_plane(geometry: &TapGeometry, [d0, d1]: [usize; 2], i0: usize, i1: usize, t: usize) -> usize {
        if geometry.channel_dim == 0 {
            (t * d0 + i0) * d1 + i1
        } else {
            (i0 * geometry.taps.len() + t) * d1 + i1
        }
    }

    /// For output row `y` of tap `[dy, dx]`: the input row, and the ranges of output and input
    /// columns that overlap (the rest of the row is padding).
    fn overlap(
        y: usize,
        [dy, dx]: [usize; 2],
        geometry: &TapGeometry,
        [height, width]: [usize; 2],
        out_width: usize,
    ) -> Option<(usize, std::ops::Range<usize>, usize)> {
        let [top, _, left, _] = geometry.padding;
        let row = (y + dy).checked_sub(top).filter(|&row| row < height)?;
        // Output column x reads input column x + dx - left.
        let first = left.saturating_sub(dx);
        let last = (width + left).saturating_sub(dx).min(out_width);
        (first < last).then(|| (row, first..last, first + dx - left))
    }

    /// When tap `[dy, dx]` only shifts rows (no sideways shift, output as wide as the input):
    /// the output rows that overlap the input, as one block, and the input row of the first.
    /// The common case of the LSTM scans' column maps (`height x 1`), copied a block at a time
    /// instead of an element per row.
    fn whole_rows(
        [dy, dx]: [usize; 2],
        geometry: &TapGeometry,
        [height, width]: [usize; 2],
        out_width: usize,
    ) -> Option<(std::ops::Range<usize>, usize)> {
        let [top, _, left, _] = geometry.padding;
        if dx != left || out_width != width {
            return None;
        }
        let [_, _, out_height, _] = geometry.output_dims([1, 1, height, width]);
        // Output row y reads input row y + dy - top.
        let first = top.saturating_sub(dy);
        let last = (height + top).saturating_sub(dy).min(out_height);
        if first >= last {
            return Some((0..0, 0)); // all padding
        }
        Some((first..last, first + dy - top))
    }

    /// [`super::shifted_taps`] on row-major values `dims` -> `geometry.output_dims(dims)`.
    pub(crate) fn forward(x: &[f32], dims: [usize; 4], geometry: &TapGeometry) -> Vec<f32> {
        let [d0, d1, height, width] = dims;
        let out_dims = geometry.output_dims(dims);
        let [_, _, oh, ow] = out_dims;
        let taps = geometry.taps.len();
        let plane = height * width;
        // Output planes in order: decode which input plane and tap each one copies.
        par_blocks(out_dims.iter().product(), oh * ow, blocks_per_task(oh * ow), |q, out_plane| {
            let (i0, t, i1) = if geometry.channel_dim == 0 {
                let (t, rest) = (q / (d0 * d1), q % (d0 * d1));
                (rest / d1, t, rest % d1)
            } else {
                (q / (taps * d1), q / d1 % taps, q % d1)
            };
            let input = &x[(i0 * d1 + i1) * plane..][..plane];
            if let Some((rows, first_row)) = whole_rows(geometry.taps[t], geometry, [height, width], ow) {
                let len = rows.len() * width;
                out_plane[rows.start * ow..][..len].copy_from_slice(&input[first_row * width..][..len]);
                return;
            }
            for y in 0..oh {
                if let Some((row, columns, from)) = overlap(y, geometry.taps[t], geometry, [height, width], ow) {
                    let len = columns.len();
                    out_plane[y * ow..][columns].copy_from_slice(&input[row * width + from..][..len]);
                }
            }
        })
    }

    /// The derivative of [`forward`]: each tap's gradient added back where it was read, `dims`.
    pub(crate) fn backward(grad: &[f32], dims: [usize; 4], geometry: &TapGeometry) -> Vec<f32> {
        let [d0, d1, height, width] = dims;
        let [_, _, oh, ow] = geometry.output_dims(dims);
        par_blocks(dims.iter().product(), height * width, blocks_per_task(height * width), |p, grad_plane| {
            let (i0, i1) = (p / d1, p % d1);
            for (t, &tap) in geometry.taps.iter().enumerate() {
                let out_plane = &grad[output_plane(geometry, [d0, d1], i0, i1, t) * oh * ow..][..oh * ow];
                if let Some((rows, first_row)) = whole_rows(tap, geometry, [height, width], ow) {
                    let len = rows.len() * width;
                    let target = &mut grad_plane[first_row * width..][..len];
                    for (g, &o) in target.iter_mut().zip(&out_plane[rows.start * ow..][..len]) {
                        *g += o;
                    }
                    continue;
                }
                for y in 0..oh {
                    if let Some((row, columns, from)) = overlap(y, tap, geometry, [height, width], ow) {
                        let len = columns.len();
                        let target = &mut grad_plane[row * width + from..][..len];
                        for (g, &o) in target.iter_mut().zip(&out_plane[y * ow..][columns]) {
                            *g += o;
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(dims: [usize; 4], seed: usize, device: &Device) -> Tensor<4> {
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|v| ((v * 37 + seed * 11) % 23) as f32 / 7.0 - 1.5).collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    fn geometries() -> Vec<TapGeometry> {
        let all = |kh: usize, kw: usize| (0..kh * kw).map(|t| [t / kw, t % kw]).collect::<Vec<_>>();
        let mask_a: Vec<[usize; 2]> = all(7, 7).into_iter().filter(|&[y, x]| y < 3 || (y == 3 && x < 3)).collect();
        let mut geometries = vec![];
        for channel_dim in [0, 1] {
            geometries.extend([
                TapGeometry { taps: mask_a.clone(), kernel: [7, 7], padding: [3, 3, 3, 3], channel_dim },
                TapGeometry { taps: all(3, 3)[..5].to_vec(), kernel: [3, 3], padding: [1, 1, 1, 1], channel_dim },
                TapGeometry { taps: all(1, 3), kernel: [1, 3], padding: [0, 0, 1, 1], channel_dim },
                // The Diagonal BiLSTM's state-to-state kernel: 2x1, one zero row on top only.
                TapGeometry { taps: all(2, 1), kernel: [2, 1], padding: [1, 0, 0, 0], channel_dim },
                TapGeometry { taps: vec![[0, 0]], kernel: [1, 1], padding: [0, 0, 0, 0], channel_dim },
            ]);
        }
        geometries
    }

    #[test]
    fn one_pass_equals_pad_slice_and_concatenate() {
        let device = Device::flex();
        for geometry in geometries() {
            for dims in [[2, 3, 5, 4], [1, 2, 1, 6], [3, 1, 4, 1]] {
                let x = map(dims, 1, &device);
                let fast = shifted_taps(x.clone(), &geometry);
                let composed = shifted_taps_composed(x, &geometry);
                assert_eq!(fast.dims(), geometry.output_dims(dims), "{geometry:?}");
                assert_eq!(fast.into_data(), composed.into_data(), "{geometry:?} {dims:?}");
            }
        }
    }

    #[test]
    fn derivative_equals_autodiff_through_the_composition() {
        let device = Device::flex().autodiff();
        for geometry in geometries() {
            let dims = [2, 3, 5, 4];
            let gradient = |f: fn(Tensor<4>, &TapGeometry) -> Tensor<4>| {
                // A transposed input, as the LSTM scans pass it.
                let x = map([dims[1], dims[0], dims[2], dims[3]], 2, &device).require_grad();
                let y = f(x.clone().swap_dims(0, 1), &geometry);
                let weights = map(y.dims(), 3, &device);
                let grads = (y * weights).sum().backward();
                x.grad(&grads).expect("tracked").into_data().try_to_vec::<f32>().unwrap()
            };
            let (fast, composed) = (gradient(shifted_taps), gradient(shifted_taps_composed));
            for (k, (a, b)) in fast.iter().zip(&composed).enumerate() {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{geometry:?} [{k}]: {a} vs {b}");
            }
        }
    }
}
