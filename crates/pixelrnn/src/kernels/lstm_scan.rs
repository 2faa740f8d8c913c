//! The LSTM layers' scans (§3.1 Row LSTM, §3.2 Diagonal LSTM, Eq. 3) as one Burn backend
//! extension on the CPU (`flex`) backend: every step's state-to-state convolution and LSTM
//! update in one forward loop, and back-propagation through the steps, in reverse, inside its
//! derivative.
//!
//! Why: scanned step by step in tensor operations, every step recorded its own autodiff steps,
//! and each step's slice of the gate map sent back a gradient the size of the whole map
//! (measured: those slices' derivatives were a sixth of M4's training step). Here the steps'
//! gradients are written straight into one buffer, and each task of images runs its whole scan
//! on one thread.
//!
//! Layout: a step is a row (Row LSTM, each image's step a `1 x width` map) or a skewed column
//! (Diagonal LSTM, `height x 1`); with `length` positions per image's step, a channel has
//! `n = batch * length` positions, position `b * length + p`.
//! - gates `[steps, 4h, batch, length]`: input-to-state pre-activations (o f i g), step-major;
//! - weight `[4h, taps * h]`: K^ss's visible taps, tap-major, applied to the previous step's
//!   hidden state as the layer's own `TapGeometry` stacks it (`shifted_taps`' kernels);
//! - bias `[4h]`; initial state `[2h]` (cell, hidden), the same at every position;
//! - output: the hidden states `[steps, h, batch, length]`.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;

use crate::kernels::flex_values::{from_values, runs_cpu_kernels, values};
use crate::kernels::lstm_cell_cpu;
use crate::kernels::matrix::{add_row_sums, product, row_major, transposed, Parallelism};
use crate::kernels::shifted_taps::{stack_taps, stack_taps_backward, TapGeometry};

/// Sizes of a scan, K^ss's taps, and where the state is held at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanShape {
    /// Hidden channels h.
    hidden: usize,
    /// Images.
    batch: usize,
    /// One image's step as a map `[height, width]` (`[1, width]` or `[height, 1]`).
    plane: [usize; 2],
    /// Steps.
    steps: usize,
    /// K^ss's taps on a channel-major step `[h, images, plane]`.
    geometry: TapGeometry,
    /// `[steps, length]`: 1 where the state is computed, 0 where it is held at zero (the
    /// Diagonal LSTM's skewed positions outside the image); `None`: everywhere.
    inside: Option<Arc<Vec<f32>>>,
}

impl ScanShape {
    /// The scan of `steps` steps of `plane` maps, or `None` when K^ss (`geometry`, channels in
    /// dimension 0) does not map a step's plane onto itself; then the caller scans step by
    /// step.
    pub fn new(
        hidden: usize,
        batch: usize,
        plane: [usize; 2],
        steps: usize,
        geometry: TapGeometry,
        inside: Option<Arc<Vec<f32>>>,
    ) -> Option<Self> {
        let [height, width] = plane;
        let dims = [hidden, batch, height, width];
        let same = geometry.channel_dim == 0
            && geometry.output_dims(dims) == [geometry.taps.len() * hidden, batch, height, width];
        same.then_some(Self { hidden, batch, plane, steps, geometry, inside })
    }

    /// Positions of one image's step.
    fn length(&self) -> usize {
        self.plane[0] * self.plane[1]
    }

    fn positions(&self) -> usize {
        self.batch * self.length()
    }

    fn taps(&self) -> usize {
        self.geometry.taps.len()
    }
}

/// Backends with a one-operation LSTM scan.
#[backend_extension(Flex, Autodiff)]
pub trait LstmScanBackend: Backend {
    /// See [`lstm_scan`].
    fn lstm_scan(
        gates: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        initial: FloatTensor<Self>,
        shape: ScanShape,
    ) -> FloatTensor<Self>;
}

impl LstmScanBackend for Flex {
    fn lstm_scan(
        gates: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        initial: FlexTensor,
        shape: ScanShape,
    ) -> FlexTensor {
        let (g, w, b, i) = (values(&gates), values(&weight), values(&bias), values(&initial));
        output(kernels::forward([&g, &w, &b, &i], &shape, false).hidden, &shape)
    }
}

impl<C: CheckpointStrategy> LstmScanBackend for Autodiff<Flex, C> {
    fn lstm_scan(
        gates: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        initial: FloatTensor<Self>,
        shape: ScanShape,
    ) -> FloatTensor<Self> {
        let (gates, gates_node) = gates.into_parts();
        let (weight, weight_node) = weight.into_parts();
        let (bias, bias_node) = bias.into_parts();
        let (initial, initial_node) = initial.into_parts();
        let (g, w, b, i) = (values(&gates), values(&weight), values(&bias), values(&initial));
        let inputs = [&*g, &*w, &*b, &*i];
        match ScanDerivative.prepare::<C>([gates_node, weight_node, bias_node, initial_node]).compute_bound().stateful()
        {
            OpsKind::Tracked(prep) => {
                let scan = kernels::forward(inputs, &shape, true);
                let hidden = output(scan.hidden.clone(), &shape);
                prep.finish(Saved { scan: Arc::new(scan), weight: weight.clone(), shape }, hidden)
            }
            OpsKind::UnTracked(prep) => prep.finish(output(kernels::forward(inputs, &shape, false).hidden, &shape)),
        }
    }
}

fn output(hidden: Vec<f32>, shape: &ScanShape) -> FlexTensor {
    from_values(hidden, Shape::new([shape.steps, shape.hidden, shape.batch, shape.length()]))
}

/// What the derivative reads: the forward pass's per-step values and the weight.
#[derive(Debug, Clone)]
struct Saved {
    scan: Arc<kernels::Scan>,
    weight: FlexTensor,
    shape: ScanShape,
}

/// The backward step: parents (gates, weight, bias, initial state).
#[derive(Debug)]
struct ScanDerivative;

impl Backward<Flex, 4> for ScanDerivative {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [gates_node, weight_node, bias_node, initial_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Saved { scan, weight, shape } = ops.state;
        let (h, taps) = (shape.hidden, shape.taps());
        let back = kernels::backward(&scan, &values(&weight), &values(&grad), &shape);
        let results = [
            (gates_node, back.gates, vec![shape.steps, 4 * h, shape.batch, shape.length()]),
            (weight_node, back.weight, vec![4 * h, taps * h]),
            (bias_node, back.bias, vec![4 * h]),
            (initial_node, back.initial, vec![2 * h]),
        ];
        for (node, values, dims) in results {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, from_values(values, Shape::from(dims)));
            }
        }
    }
}

/// The scan's hidden states `[steps, h, batch, length]` (see the module's layout). Only for
/// tensors on the CPU kernels (`runs_cpu_kernels`): the callers scan step by step elsewhere.
pub(crate) fn lstm_scan(
    gates: Tensor<4>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    initial: Tensor<1>,
    shape: ScanShape,
) -> Tensor<4> {
    debug_assert!(runs_cpu_kernels(&gates), "lstm_scan runs on the CPU kernels only");
    Tensor::from_dispatch(<Dispatch as LstmScanBackend>::lstm_scan(
        gates.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        initial.into_dispatch(),
        shape,
    ))
}

/// The loops over plain slices. Images are independent, so the batch is cut into tasks of
/// [`IMAGES_PER_TASK`] images, each scanning all steps on its own thread with single-threaded
/// products: no hand-over between threads at every step (which, with each step's operations
/// parallel on their own, took a fifth of M4's step in thread switches). The task size is
/// fixed, not derived from the thread count, so that the sums over tasks (weight, bias and
/// initial-state gradients) are added in the same order on every machine.
mod kernels {
    use rayon::prelude::*;

    use super::*;

    /// Images per task.
    const IMAGES_PER_TASK: usize = 4;

    /// The forward pass's values: the hidden outputs and, when kept for the derivative, every
    /// task's per-step state before and (unmasked) after the update and gate activations.
    #[derive(Debug)]
    pub(super) struct Scan {
        pub(super) hidden: Vec<f32>,
        tasks: Vec<TaskScan>,
    }

    /// One task's saved values, per step, on its own positions (`images * length`).
    #[derive(Debug, Default)]
    struct TaskScan {
        /// The state `[c | h]` `[2h, m]` the update read.
        before: Vec<Vec<f32>>,
        /// The update's own new state, before the inside mask.
        after: Vec<Vec<f32>>,
        /// The gate activations `[4h, m]`.
        activations: Vec<Vec<f32>>,
    }

    /// The gradients of the four inputs.
    pub(super) struct Gradients {
        pub(super) gates: Vec<f32>,
        pub(super) weight: Vec<f32>,
        pub(super) bias: Vec<f32>,
        pub(super) initial: Vec<f32>,
    }

    /// The positions `first..first + len` of every channel of a `[channels, n]` map.
    fn gather(map: &[f32], channels: usize, n: usize, first: usize, len: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(channels * len);
        for c in 0..channels {
            out.extend_from_slice(&map[c * n + first..][..len]);
        }
        out
    }

    /// Writes `[channels, len]` into the positions `first..first + len` of a `[channels, n]` map.
    fn scatter(part: &[f32], map: &mut [f32], n: usize, first: usize, len: usize) {
        for (c, row) in part.chunks(len.max(1)).enumerate() {
            map[c * n + first..][..len].copy_from_slice(row);
        }
    }

    /// The task ranges of positions: `(first, len)` per task.
    fn tasks(shape: &ScanShape) -> Vec<(usize, usize)> {
        let per_task = IMAGES_PER_TASK * shape.length();
        let n = shape.positions();
        (0..n.div_ceil(per_task.max(1))).map(|k| (k * per_task, per_task.min(n - k * per_task))).collect()
    }

    /// A task's step `[h, m]` as the `[h, images, height, width]` map K^ss reads.
    fn step_dims(shape: &ScanShape, m: usize) -> [usize; 4] {
        let [height, width] = shape.plane;
        [shape.hidden, m / shape.length().max(1), height, width]
    }

    /// Multiplies every image's positions of a `[channels, m]` map by the step's mask
    /// `[length]`.
    fn mask(map: &mut [f32], inside: Option<&[f32]>) {
        if let Some(inside) = inside {
            for image in map.chunks_mut(inside.len().max(1)) {
                image.iter_mut().zip(inside).for_each(|(v, &m)| *v *= m);
            }
        }
    }

    /// Step `t`'s mask `[length]`, if any.
    fn inside_at(shape: &ScanShape, t: usize) -> Option<&[f32]> {
        shape.inside.as_ref().map(|inside| &inside[t * shape.length()..][..shape.length()])
    }

    /// `inputs`: gates, weight, bias, initial state (see the module's layout).
    pub(super) fn forward(inputs: [&[f32]; 4], shape: &ScanShape, keep: bool) -> Scan {
        let [gates, weight, bias, initial] = inputs;
        let (h, n, steps, taps_n) = (shape.hidden, shape.positions(), shape.steps, shape.taps());
        assert!(
            gates.len() == steps * 4 * h * n
                && weight.len() == 4 * h * taps_n * h
                && bias.len() == 4 * h
                && initial.len() == 2 * h,
            "lstm scan: inconsistent sizes"
        );
        let ranges = tasks(shape);
        // Per task: its hidden states [steps, h, m] and saved values.
        let results: Vec<(Vec<f32>, TaskScan)> = ranges
            .par_iter()
            .map(|&(first, m)| {
                let mut state: Vec<f32> = initial.iter().flat_map(|&v| std::iter::repeat_n(v, m)).collect();
                let mut hidden = Vec::with_capacity(steps * h * m);
                let mut saved = TaskScan::default();
                for t in 0..steps {
                    // K^ss * previous hidden + bias: [4h, m] = [4h, taps h] x [taps h, m].
                    let taps = stack_taps(&state[h * m..], step_dims(shape, m), &shape.geometry);
                    let mut state_gates = vec![0.0; 4 * h * m];
                    for (row, &b) in state_gates.chunks_mut(m.max(1)).zip(bias) {
                        row.fill(b);
                    }
                    // SAFETY: weight is 4h x taps h, taps taps h x m, state_gates 4h x m, all
                    // row-major; distinct buffers.
                    unsafe {
                        product(
                            [4 * h, m, taps_n * h],
                            &mut state_gates,
                            true,
                            (weight.as_ptr(), row_major(taps_n * h).0, row_major(taps_n * h).1),
                            (taps.as_ptr(), row_major(m).0, row_major(m).1),
                            Parallelism::None,
                        )
                    };
                    let step_gates = gather(&gates[t * 4 * h * n..][..4 * h * n], 4 * h, n, first, m);
                    let (new_state, activations) = lstm_cell_cpu::forward(&step_gates, &state_gates, &state, keep);
                    if keep {
                        let mut masked = new_state.clone();
                        mask(&mut masked, inside_at(shape, t));
                        saved.before.push(std::mem::replace(&mut state, masked));
                        saved.after.push(new_state);
                        saved.activations.push(activations.expect("kept when asked for"));
                    } else {
                        state = new_state;
                        mask(&mut state, inside_at(shape, t));
                    }
                    hidden.extend_from_slice(&state[h * m..]);
                }
                (hidden, saved)
            })
            .collect();
        // Lay the tasks' hidden states out as [steps, h, n].
        let mut out = vec![0.0; steps * h * n];
        let mut tasks_saved = Vec::with_capacity(results.len());
        for (&(first, m), (hidden, saved)) in ranges.iter().zip(results) {
            for (t, step) in hidden.chunks(h * m.max(1)).enumerate() {
                scatter(step, &mut out[t * h * n..][..h * n], n, first, m);
            }
            tasks_saved.push(saved);
        }
        Scan { hidden: out, tasks: tasks_saved }
    }

    /// Back-propagation through the steps, last to first, per task; the tasks' weight, bias
    /// and initial-state gradients are then added in task order.
    pub(super) fn backward(scan: &Scan, weight: &[f32], grad: &[f32], shape: &ScanShape) -> Gradients {
        let (h, n, steps, taps_n) = (shape.hidden, shape.positions(), shape.steps, shape.taps());
        let ranges = tasks(shape);
        let results: Vec<Gradients> = ranges
            .par_iter()
            .zip(&scan.tasks)
            .map(|(&(first, m), saved)| {
                let mut out = Gradients {
                    gates: vec![0.0; steps * 4 * h * m],
                    weight: vec![0.0; 4 * h * taps_n * h],
                    bias: vec![0.0; 4 * h],
                    initial: vec![0.0; 2 * h],
                };
                // The gradient of the (masked) state after step t, from the steps after it.
                let mut grad_state = vec![0.0; 2 * h * m];
                for t in (0..steps).rev() {
                    let grad_out = gather(&grad[t * h * n..][..h * n], h, n, first, m);
                    grad_state[h * m..].iter_mut().zip(&grad_out).for_each(|(g, &o)| *g += o);
                    mask(&mut grad_state, inside_at(shape, t));
                    let (grad_gates, grad_before) =
                        lstm_cell_cpu::backward(&saved.activations[t], &saved.before[t], &saved.after[t], &grad_state);
                    add_row_sums(&mut out.bias, &grad_gates, m);
                    let taps = stack_taps(&saved.before[t][h * m..], step_dims(shape, m), &shape.geometry);
                    let mut grad_taps = vec![0.0; taps_n * h * m];
                    // SAFETY: grad_gates is 4h x m, taps^T m x taps h (taps row-major, read
                    // transposed), the weight gradient 4h x taps h; weight^T taps h x 4h,
                    // grad_taps taps h x m; distinct buffers.
                    unsafe {
                        product(
                            [4 * h, taps_n * h, m],
                            &mut out.weight,
                            true,
                            (grad_gates.as_ptr(), row_major(m).0, row_major(m).1),
                            (taps.as_ptr(), transposed(m).0, transposed(m).1),
                            Parallelism::None,
                        );
                        product(
                            [taps_n * h, m, 4 * h],
                            &mut grad_taps,
                            false,
                            (weight.as_ptr(), transposed(taps_n * h).0, transposed(taps_n * h).1),
                            (grad_gates.as_ptr(), row_major(m).0, row_major(m).1),
                            Parallelism::None,
                        );
                    }
                    out.gates[t * 4 * h * m..][..4 * h * m].copy_from_slice(&grad_gates);
                    // The previous state: its cell through the update, its hidden through the taps.
                    grad_state = grad_before;
                    let grad_hidden = stack_taps_backward(&grad_taps, step_dims(shape, m), &shape.geometry);
                    grad_state[h * m..].iter_mut().zip(&grad_hidden).for_each(|(g, &v)| *g += v);
                }
                // The initial state is the same at every position: its gradient is their sum.
                add_row_sums(&mut out.initial, &grad_state, m);
                out
            })
            .collect();
        let mut total = Gradients {
            gates: vec![0.0; steps * 4 * h * n],
            weight: vec![0.0; 4 * h * taps_n * h],
            bias: vec![0.0; 4 * h],
            initial: vec![0.0; 2 * h],
        };
        for (&(first, m), part) in ranges.iter().zip(results) {
            for (t, step) in part.gates.chunks(4 * h * m.max(1)).enumerate() {
                scatter(step, &mut total.gates[t * 4 * h * n..][..4 * h * n], n, first, m);
            }
            for (sum, part) in
                [(&mut total.weight, &part.weight), (&mut total.bias, &part.bias), (&mut total.initial, &part.initial)]
            {
                sum.iter_mut().zip(part).for_each(|(s, v)| *s += v);
            }
        }
        total
    }
}

/// What the LSTM layers' tests share: they compare the one-operation scan with the stepwise
/// one on a fixed input, in values and gradients.
#[cfg(test)]
pub(crate) mod test_support {
    use burn::prelude::*;

    /// A fixed input `[batch, channels, height, width]`, tracked for gradients under autodiff.
    fn input(dims: [usize; 4], device: &Device) -> Tensor<4> {
        let n = dims.iter().product();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..n).map(|v| ((v * 37) % 19) as f32 / 9.0 - 1.0).collect(), dims),
            device,
        );
        if device.is_autodiff() {
            x.require_grad()
        } else {
            x
        }
    }

    /// `sum(y^2 w)` with fixed weights `w`: a loss whose gradient depends on every output value
    /// and its place.
    fn loss(y: Tensor<4>) -> Tensor<1> {
        let m = y.shape().num_elements();
        let weights = Tensor::<4>::from_data(
            TensorData::new((0..m).map(|v| ((v * 13) % 7) as f32 / 3.0 - 1.0).collect(), y.dims()),
            &y.device(),
        );
        (y.clone() * y * weights).sum()
    }

    /// `forward`'s output on the fixed input and, under autodiff, the gradients of [`loss`]
    /// for the input and for what `parameters` picks from the gradients.
    pub(crate) fn output_and_gradients(
        dims: [usize; 4],
        device: &Device,
        forward: impl Fn(Tensor<4>) -> Tensor<4>,
        parameters: impl Fn(&burn::tensor::Gradients) -> Vec<Vec<f32>>,
    ) -> Vec<Vec<f32>> {
        let x = input(dims, device);
        let y = forward(x.clone());
        let mut out = vec![data(y.clone())];
        if device.is_autodiff() {
            let grads = loss(y).backward();
            out.push(data(x.grad(&grads).unwrap()));
            out.extend(parameters(&grads));
        }
        out
    }

    pub(crate) fn data<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Each of `one` equals the same entry of `stepwise` (named by `names`) within 1e-4
    /// relative.
    pub(crate) fn assert_all_close(one: Vec<Vec<f32>>, stepwise: Vec<Vec<f32>>, names: &[&str], case: &str) {
        assert_eq!(one.len(), stepwise.len(), "{case}");
        for ((a, b), name) in one.into_iter().zip(stepwise).zip(names) {
            assert_eq!(a.len(), b.len(), "{name} ({case})");
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{name}[{i}] ({case}): one-op {x} vs stepwise {y}");
            }
        }
    }
}
