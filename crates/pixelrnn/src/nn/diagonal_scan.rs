//! The Diagonal LSTM's column scan (§3.2, Eq. 3) as one Burn backend extension on the CPU
//! (`flex`) backend: every column's state-to-state convolution and LSTM update in one forward
//! loop, and back-propagation through the columns, in reverse, inside its derivative.
//!
//! Why: scanned column by column in tensor operations, every column recorded its own autodiff
//! steps, and each column's slice of the gate map sent back a gradient the size of the whole
//! map (measured: those slices' derivatives were a sixth of M4's training step). Here the
//! columns' gradients are written straight into one buffer.
//!
//! Layout, with `n = batch * height` positions per channel, position `b * height + r`:
//! - gates `[columns, 4h, batch, height]` (input-to-state pre-activations, o f i g, step-major);
//! - weight `[4h, 2h]`: K^ss's two taps, tap-major: tap 0 reads row `r - 1` of the previous
//!   column's hidden state, tap 1 row `r` (`DiagonalLstm`'s 2x1 kernel with one zero row on top);
//! - bias `[4h]`;
//! - output: the hidden states `[columns, h, batch, height]`.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;

use crate::nn::flex_values::{from_values, runs_cpu_kernels, values};
use crate::nn::lstm_cell_cpu;
use crate::nn::matrix::{product, row_major, transposed, Parallelism};

/// Sizes of a scan and where the skewed map lies inside the image.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanShape {
    /// Hidden channels h.
    pub hidden: usize,
    /// Images.
    pub batch: usize,
    /// Rows.
    pub height: usize,
    /// Columns of the skewed map (`width + height - 1`).
    pub columns: usize,
    /// `[columns, height]`: 1 where a skewed position lies inside the image; the state is held
    /// at zero elsewhere.
    pub inside: Arc<Vec<f32>>,
}

impl ScanShape {
    fn positions(&self) -> usize {
        self.batch * self.height
    }
}

/// Backends with a one-operation Diagonal LSTM scan.
#[backend_extension(Flex, Autodiff)]
pub trait DiagonalScanBackend: Backend {
    /// See [`diagonal_scan`].
    fn diagonal_scan(
        gates: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        shape: ScanShape,
    ) -> FloatTensor<Self>;
}

impl DiagonalScanBackend for Flex {
    fn diagonal_scan(gates: FlexTensor, weight: FlexTensor, bias: FlexTensor, shape: ScanShape) -> FlexTensor {
        let scan = kernels::forward(&values(&gates), &values(&weight), &values(&bias), &shape, false);
        output(scan.hidden, &shape)
    }
}

impl<C: CheckpointStrategy> DiagonalScanBackend for Autodiff<Flex, C> {
    fn diagonal_scan(
        gates: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        shape: ScanShape,
    ) -> FloatTensor<Self> {
        let (gates, gates_node) = gates.into_parts();
        let (weight, weight_node) = weight.into_parts();
        let (bias, bias_node) = bias.into_parts();
        match ScanDerivative.prepare::<C>([gates_node, weight_node, bias_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let weight_values = values(&weight).into_owned();
                let scan = kernels::forward(&values(&gates), &weight_values, &values(&bias), &shape, true);
                let hidden = output(scan.hidden.clone(), &shape);
                prep.finish(Saved { scan: Arc::new(scan), weight: Arc::new(weight_values), shape }, hidden)
            }
            OpsKind::UnTracked(prep) => {
                let scan = kernels::forward(&values(&gates), &values(&weight), &values(&bias), &shape, false);
                prep.finish(output(scan.hidden, &shape))
            }
        }
    }
}

fn output(hidden: Vec<f32>, shape: &ScanShape) -> FlexTensor {
    from_values(hidden, Shape::new([shape.columns, shape.hidden, shape.batch, shape.height]))
}

/// What the derivative reads: the forward pass's per-column values and the weight.
#[derive(Debug, Clone)]
struct Saved {
    scan: Arc<kernels::Scan>,
    weight: Arc<Vec<f32>>,
    shape: ScanShape,
}

/// The backward step: parents (gates, weight, bias).
#[derive(Debug)]
struct ScanDerivative;

impl Backward<Flex, 3> for ScanDerivative {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [gates_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Saved { scan, weight, shape } = ops.state;
        let h = shape.hidden;
        let back = kernels::backward(&scan, &weight, &values(&grad), &shape);
        if let Some(node) = gates_node {
            let dims = [shape.columns, 4 * h, shape.batch, shape.height];
            grads.register::<Flex>(node.id, from_values(back.gates, Shape::new(dims)));
        }
        if let Some(node) = weight_node {
            grads.register::<Flex>(node.id, from_values(back.weight, Shape::new([4 * h, 2 * h])));
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, from_values(back.bias, Shape::new([4 * h])));
        }
    }
}

/// The scan's hidden states, `[columns, h, batch, height]`, for gates `[columns, 4h, batch,
/// height]` step-major, the state-to-state weight `[4h, 2h]` (tap-major: row `r - 1`, then row
/// `r`) and bias `[4h]`. The caller keeps the composed path where `x` is not on the CPU
/// kernels (`DiagonalLstm::forward`).
pub(crate) fn diagonal_scan(gates: Tensor<4>, weight: Tensor<2>, bias: Tensor<1>, shape: ScanShape) -> Tensor<4> {
    debug_assert!(runs_cpu_kernels(&gates));
    Tensor::from_dispatch(<Dispatch as DiagonalScanBackend>::diagonal_scan(
        gates.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        shape,
    ))
}

/// The loops over plain slices. Images are independent, so the batch is cut into tasks of
/// [`IMAGES_PER_TASK`] images, each scanning all columns on its own thread with single-threaded
/// products: no hand-over between threads at every column (which, with the columns'
/// operations each parallel on their own, took a fifth of the step in thread switches). The
/// task size is fixed, not derived from the thread count, so that the weight gradient's sum
/// over tasks is added in the same order on every machine.
mod kernels {
    use rayon::prelude::*;

    use super::*;

    /// Images per task.
    const IMAGES_PER_TASK: usize = 4;

    /// The forward pass's values: the hidden outputs and, when kept for the derivative, every
    /// task's per-column state before and (unmasked) after the update and gate activations.
    #[derive(Debug)]
    pub(super) struct Scan {
        pub(super) hidden: Vec<f32>,
        tasks: Vec<TaskScan>,
    }

    /// One task's saved values, per column, on its own positions (`images * height`).
    #[derive(Debug, Default)]
    struct TaskScan {
        /// The state `[c | h]` `[2h, m]` the update read.
        before: Vec<Vec<f32>>,
        /// The update's own new state, before the inside mask.
        after: Vec<Vec<f32>>,
        /// The gate activations `[4h, m]`.
        activations: Vec<Vec<f32>>,
    }

    /// The gradients of the three inputs.
    pub(super) struct Gradients {
        pub(super) gates: Vec<f32>,
        pub(super) weight: Vec<f32>,
        pub(super) bias: Vec<f32>,
    }

    /// The positions `first..first + len` of every channel: rows of `len` values taken every
    /// `n` values of a `[channels, n]` map.
    fn gather(map: &[f32], channels: usize, n: usize, first: usize, len: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(channels * len);
        for c in 0..channels {
            out.extend_from_slice(&map[c * n + first..][..len]);
        }
        out
    }

    /// The task ranges of positions: `(first, len)` per task.
    fn tasks(shape: &ScanShape) -> Vec<(usize, usize)> {
        let per_task = IMAGES_PER_TASK * shape.height;
        let n = shape.positions();
        (0..n.div_ceil(per_task.max(1))).map(|k| (k * per_task, per_task.min(n - k * per_task))).collect()
    }

    /// `[shift_down(hidden) ; hidden]` `[2h, m]`: tap 0 is row `r - 1` of the same image (0 on
    /// row 0), tap 1 row `r`.
    fn taps(hidden: &[f32], h: usize, height: usize) -> Vec<f32> {
        let m = hidden.len() / h.max(1);
        let mut taps = vec![0.0; 2 * h * m];
        let (shifted, same) = taps.split_at_mut(h * m);
        same.copy_from_slice(hidden);
        for (to, from) in shifted.chunks_mut(height.max(1)).zip(hidden.chunks(height.max(1))) {
            to[1..].copy_from_slice(&from[..height - 1]);
        }
        taps
    }

    /// Multiplies every row of `[channels, m]` (images of `height` rows) by the column's
    /// inside mask `[height]`.
    fn mask(map: &mut [f32], inside: &[f32]) {
        for rows in map.chunks_mut(inside.len().max(1)) {
            rows.iter_mut().zip(inside).for_each(|(v, &m)| *v *= m);
        }
    }

    pub(super) fn forward(gates: &[f32], weight: &[f32], bias: &[f32], shape: &ScanShape, keep: bool) -> Scan {
        let (h, n, columns, height) = (shape.hidden, shape.positions(), shape.columns, shape.height);
        assert!(
            gates.len() == columns * 4 * h * n && weight.len() == 8 * h * h && bias.len() == 4 * h,
            "diagonal scan: inconsistent sizes"
        );
        let ranges = tasks(shape);
        // Per task: its hidden states [columns, h, m] and saved values.
        let results: Vec<(Vec<f32>, TaskScan)> = ranges
            .par_iter()
            .map(|&(first, m)| {
                let mut state = vec![0.0; 2 * h * m];
                let mut hidden = Vec::with_capacity(columns * h * m);
                let mut saved = TaskScan::default();
                for t in 0..columns {
                    // K^ss * previous hidden + bias: [4h, m] = [4h, 2h] x [2h, m].
                    let taps = taps(&state[h * m..], h, height);
                    let mut state_gates = vec![0.0; 4 * h * m];
                    for (row, &b) in state_gates.chunks_mut(m.max(1)).zip(bias) {
                        row.fill(b);
                    }
                    // SAFETY: weight is 4h x 2h, taps 2h x m, state_gates 4h x m, all
                    // row-major; distinct buffers.
                    unsafe {
                        product(
                            [4 * h, m, 2 * h],
                            &mut state_gates,
                            true,
                            (weight.as_ptr(), row_major(2 * h).0, row_major(2 * h).1),
                            (taps.as_ptr(), row_major(m).0, row_major(m).1),
                            Parallelism::None,
                        )
                    };
                    let column_gates = gather(&gates[t * 4 * h * n..][..4 * h * n], 4 * h, n, first, m);
                    let (new_state, activations) = lstm_cell_cpu::forward(&column_gates, &state_gates, &state, keep);
                    // Outside the image the state is held at zero.
                    let inside = &shape.inside[t * height..][..height];
                    if keep {
                        let mut masked = new_state.clone();
                        mask(&mut masked, inside);
                        saved.before.push(std::mem::replace(&mut state, masked));
                        saved.after.push(new_state);
                        saved.activations.push(activations.expect("kept when asked for"));
                    } else {
                        state = new_state;
                        mask(&mut state, inside);
                    }
                    hidden.extend_from_slice(&state[h * m..]);
                }
                (hidden, saved)
            })
            .collect();
        // Lay the tasks' hidden states out as [columns, h, n].
        let mut out = vec![0.0; columns * h * n];
        let mut tasks_saved = Vec::with_capacity(results.len());
        for (&(first, m), (hidden, saved)) in ranges.iter().zip(results) {
            for (t, column) in hidden.chunks(h * m.max(1)).enumerate() {
                for (c, row) in column.chunks(m.max(1)).enumerate() {
                    out[(t * h + c) * n + first..][..m].copy_from_slice(row);
                }
            }
            tasks_saved.push(saved);
        }
        Scan { hidden: out, tasks: tasks_saved }
    }

    /// Back-propagation through the columns, last to first, per task; the tasks' weight and
    /// bias gradients are then added in task order.
    pub(super) fn backward(scan: &Scan, weight: &[f32], grad: &[f32], shape: &ScanShape) -> Gradients {
        let (h, n, columns, height) = (shape.hidden, shape.positions(), shape.columns, shape.height);
        let ranges = tasks(shape);
        // Per task: d gates [columns, 4h, m], d weight, d bias.
        let results: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = ranges
            .par_iter()
            .zip(&scan.tasks)
            .map(|(&(first, m), saved)| {
                let mut grad_gates_all = vec![0.0; columns * 4 * h * m];
                let mut grad_weight = vec![0.0; 8 * h * h];
                let mut grad_bias = vec![0.0; 4 * h];
                // The gradient of the (masked) state after column t, from the columns after it.
                let mut grad_state = vec![0.0; 2 * h * m];
                for t in (0..columns).rev() {
                    let grad_out = gather(&grad[t * h * n..][..h * n], h, n, first, m);
                    grad_state[h * m..].iter_mut().zip(&grad_out).for_each(|(g, &o)| *g += o);
                    mask(&mut grad_state, &shape.inside[t * height..][..height]);
                    let (grad_gates, grad_before) =
                        lstm_cell_cpu::backward(&saved.activations[t], &saved.before[t], &saved.after[t], &grad_state);
                    for (sum, row) in grad_bias.iter_mut().zip(grad_gates.chunks(m.max(1))) {
                        *sum += row.iter().sum::<f32>();
                    }
                    let taps = taps(&saved.before[t][h * m..], h, height);
                    let mut grad_taps = vec![0.0; 2 * h * m];
                    // SAFETY: grad_gates is 4h x m, taps^T m x 2h (taps row-major 2h x m, read
                    // transposed), grad_weight 4h x 2h; weight^T 2h x 4h, grad_taps 2h x m;
                    // distinct buffers.
                    unsafe {
                        product(
                            [4 * h, 2 * h, m],
                            &mut grad_weight,
                            true,
                            (grad_gates.as_ptr(), row_major(m).0, row_major(m).1),
                            (taps.as_ptr(), transposed(m).0, transposed(m).1),
                            Parallelism::None,
                        );
                        product(
                            [2 * h, m, 4 * h],
                            &mut grad_taps,
                            false,
                            (weight.as_ptr(), transposed(2 * h).0, transposed(2 * h).1),
                            (grad_gates.as_ptr(), row_major(m).0, row_major(m).1),
                            Parallelism::None,
                        );
                    }
                    grad_gates_all[t * 4 * h * m..][..4 * h * m].copy_from_slice(&grad_gates);
                    // The previous state: its cell through the update, its hidden through both
                    // taps (tap 0 read row r - 1, so its gradient goes one row up).
                    grad_state = grad_before;
                    let (shifted, same) = grad_taps.split_at(h * m);
                    let grad_hidden = &mut grad_state[h * m..];
                    grad_hidden.iter_mut().zip(same).for_each(|(g, &v)| *g += v);
                    for (to, from) in grad_hidden.chunks_mut(height.max(1)).zip(shifted.chunks(height.max(1))) {
                        to[..height - 1].iter_mut().zip(&from[1..]).for_each(|(g, &v)| *g += v);
                    }
                }
                (grad_gates_all, grad_weight, grad_bias)
            })
            .collect();
        let mut out =
            Gradients { gates: vec![0.0; columns * 4 * h * n], weight: vec![0.0; 8 * h * h], bias: vec![0.0; 4 * h] };
        for (&(first, m), (gates, weight, bias)) in ranges.iter().zip(results) {
            for (t, column) in gates.chunks(4 * h * m.max(1)).enumerate() {
                for (c, row) in column.chunks(m.max(1)).enumerate() {
                    out.gates[(t * 4 * h + c) * n + first..][..m].copy_from_slice(row);
                }
            }
            out.weight.iter_mut().zip(&weight).for_each(|(s, v)| *s += v);
            out.bias.iter_mut().zip(&bias).for_each(|(s, v)| *s += v);
        }
        out
    }
}
