//! CPU loops of the fused LSTM cell (Eq. 3): the forward update and its derivative, one pass
//! over memory each, vectorised (see `fast_math`), split across rayon threads when large.
//!
//! Layout (channel-major, as the scans keep their maps), with n the positions per channel:
//! - gates: `[4h, n]`, four blocks of `h * n` in the order o, f, i, g (pre-activations);
//! - state: `[2h, n]`, the cell c then the hidden h.

use rayon::prelude::*;

use crate::kernels::fast_math::{sigmoid, tanh};

/// Elements per rayon task: below this a loop runs on the calling thread.
const CHUNK: usize = 16 * 1024;

/// The four gate activations (o, f, i, g), each `h * n`.
pub(crate) type Activations = Vec<f32>;

/// Eq. (3): c = f c_prev + i g, h = o tanh(c), with o, f, i = sigmoid and g = tanh of
/// `input_gates + state_gates`. Returns the new state `[c | h]` and, when `keep_activations`,
/// the activations the derivative needs.
pub(crate) fn forward(
    input_gates: &[f32],
    state_gates: &[f32],
    state: &[f32],
    keep_activations: bool,
) -> (Vec<f32>, Option<Activations>) {
    let hn = state.len() / 2;
    assert!(
        state.len() == 2 * hn && input_gates.len() == 4 * hn && state_gates.len() == 4 * hn,
        "lstm cell: gates must hold 4h x n values and the state 2h x n (got {}, {}, {})",
        input_gates.len(),
        state_gates.len(),
        state.len()
    );
    let mut new_state = vec![0.0; 2 * hn];
    let mut activations = if keep_activations { vec![0.0; 4 * hn] } else { Vec::new() };
    let (cell, hidden) = new_state.split_at_mut(hn);
    let mut activation_chunks = quarters_in_chunks(&mut activations, hn);
    let tasks: Vec<_> = cell
        .chunks_mut(CHUNK)
        .zip(hidden.chunks_mut(CHUNK))
        .enumerate()
        .map(|(index, (cell, hidden))| (index * CHUNK, cell, hidden, next_quarters(&mut activation_chunks)))
        .collect();
    run_tasks(tasks, |(start, cell, hidden, activations)| {
        let len = cell.len();
        let x = [0, 1, 2, 3].map(|k| &input_gates[k * hn + start..k * hn + start + len]);
        let s = [0, 1, 2, 3].map(|k| &state_gates[k * hn + start..k * hn + start + len]);
        let cell_before = &state[start..start + len];
        simd::forward(x, s, cell_before, cell, hidden, activations);
    });
    (new_state, keep_activations.then_some(activations))
}

/// The derivative of [`forward`]: from the gradient `[dc | dh]` of the new state, the gradient
/// of the gate pre-activations `[4h, n]` (the same for the input and the state gates, which are
/// summed) and of the previous state `[dc_prev | 0]` (the update reads only the previous cell).
pub(crate) fn backward(
    activations: &[f32],
    state_before: &[f32],
    state_after: &[f32],
    grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let hn = state_before.len() / 2;
    assert!(
        activations.len() == 4 * hn && state_after.len() == 2 * hn && grad.len() == 2 * hn,
        "lstm cell backward: inconsistent sizes"
    );
    let mut grad_gates = vec![0.0; 4 * hn];
    let mut grad_state = vec![0.0; 2 * hn];
    let mut gate_chunks = quarters_in_chunks(&mut grad_gates, hn);
    let tasks: Vec<_> = grad_state[..hn]
        .chunks_mut(CHUNK)
        .enumerate()
        .map(|(index, grad_cell)| (index * CHUNK, grad_cell, next_quarters(&mut gate_chunks)))
        .collect();
    run_tasks(tasks, |(start, grad_cell_before, grad_gates)| {
        let len = grad_cell_before.len();
        let range = start..start + len;
        let activation = [0, 1, 2, 3].map(|k| &activations[k * hn + start..k * hn + start + len]);
        let grad_gates = grad_gates.expect("the gradient of every gate is written");
        simd::backward(
            activation,
            &state_before[range.clone()],
            &state_after[range.clone()],
            [&grad[range.clone()], &grad[hn + start..hn + start + len]],
            grad_cell_before,
            grad_gates,
        );
    });
    (grad_gates, grad_state)
}

/// Eq. (3) at one position, for the layers' step forms (the incremental engine): the same loop
/// as [`forward`] with n = 1. `input_gates`, `state_gates`: `[4h]` (o, f, i, g, summed);
/// `cell_before`: `[h]`, `None` for a zero state; writes the new cell and hidden state `[h]`.
pub(crate) fn step(
    input_gates: &[f32],
    state_gates: &[f32],
    cell_before: Option<&[f32]>,
    cell: &mut [f32],
    hidden: &mut [f32],
) {
    let h = cell.len();
    assert!(
        input_gates.len() == 4 * h && state_gates.len() == 4 * h && hidden.len() == h,
        "lstm cell step: gates must hold 4h values and the state h (got {}, {}, {})",
        input_gates.len(),
        state_gates.len(),
        h
    );
    let zero;
    let cell_before = match cell_before {
        Some(c) => c,
        None => {
            zero = vec![0.0; h];
            &zero
        }
    };
    let x = [0, 1, 2, 3].map(|k| &input_gates[k * h..(k + 1) * h]);
    let s = [0, 1, 2, 3].map(|k| &state_gates[k * h..(k + 1) * h]);
    simd::forward(x, s, cell_before, cell, hidden, None);
}

type QuarterChunks<'a> = Vec<std::slice::ChunksMut<'a, f32>>;

/// `values` (`4 * hn`, or empty) as its four blocks of `hn`, each cut into [`CHUNK`]s.
fn quarters_in_chunks(values: &mut [f32], hn: usize) -> QuarterChunks<'_> {
    if values.is_empty() {
        return Vec::new();
    }
    values.chunks_mut(hn.max(1)).map(|quarter| quarter.chunks_mut(CHUNK)).collect()
}

/// The next chunk of each of the four blocks, or `None` when there are no blocks.
fn next_quarters<'a>(chunks: &mut QuarterChunks<'a>) -> Option<[&'a mut [f32]; 4]> {
    if chunks.is_empty() {
        return None;
    }
    let mut next = || chunks.iter_mut().map(|c| c.next().expect("blocks of equal length")).collect::<Vec<_>>();
    let [o, f, i, g]: [&'a mut [f32]; 4] = next().try_into().expect("four blocks");
    Some([o, f, i, g])
}

/// Runs the tasks on rayon's pool, or inline when there is only one.
fn run_tasks<T: Send>(mut tasks: Vec<T>, work: impl Fn(T) + Sync + Send) {
    if tasks.len() == 1 {
        work(tasks.pop().expect("one task"));
    } else {
        tasks.into_par_iter().for_each(work);
    }
}

/// The loops, compiled once per instruction set and chosen at run time (AVX-512, AVX2, or the
/// baseline), like Burn's own `x86-v4` kernels. The arithmetic is the same in every version.
mod simd {
    use super::{sigmoid, tanh};
    use crate::kernels::fast_math::dispatched;

    #[inline(always)]
    fn forward_loop(
        x: [&[f32]; 4],
        s: [&[f32]; 4],
        cell_before: &[f32],
        cell: &mut [f32],
        hidden: &mut [f32],
        activations: Option<[&mut [f32]; 4]>,
    ) {
        let n = cell.len();
        let (hidden, cell_before) = (&mut hidden[..n], &cell_before[..n]);
        let [xo, xf, xi, xg] = x.map(|v| &v[..n]);
        let [so, sf, si, sg] = s.map(|v| &v[..n]);
        match activations {
            Some([ao, af, ai, ag]) => {
                let (ao, af, ai, ag) = (&mut ao[..n], &mut af[..n], &mut ai[..n], &mut ag[..n]);
                for j in 0..n {
                    let [o, f, i, g] = gates([xo[j], xf[j], xi[j], xg[j]], [so[j], sf[j], si[j], sg[j]]);
                    let c = f * cell_before[j] + i * g;
                    (cell[j], hidden[j]) = (c, o * tanh(c));
                    (ao[j], af[j], ai[j], ag[j]) = (o, f, i, g);
                }
            }
            None => {
                for j in 0..n {
                    let [o, f, i, g] = gates([xo[j], xf[j], xi[j], xg[j]], [so[j], sf[j], si[j], sg[j]]);
                    let c = f * cell_before[j] + i * g;
                    (cell[j], hidden[j]) = (c, o * tanh(c));
                }
            }
        }
    }

    /// Eq. (3)'s gates: [o, f, i, g] = sigma(K^ss * h_{i-1} + K^is * x_i), with the sigmoid for
    /// o, f, i and tanh for g.
    #[inline(always)]
    fn gates([xo, xf, xi, xg]: [f32; 4], [so, sf, si, sg]: [f32; 4]) -> [f32; 4] {
        [sigmoid(xo + so), sigmoid(xf + sf), sigmoid(xi + si), tanh(xg + sg)]
    }

    #[inline(always)]
    fn backward_loop(
        activations: [&[f32]; 4],
        cell_before: &[f32],
        cell_after: &[f32],
        [grad_cell, grad_hidden]: [&[f32]; 2],
        grad_cell_before: &mut [f32],
        [d_o, d_f, d_i, d_g]: [&mut [f32]; 4],
    ) {
        let n = grad_cell_before.len();
        let [o, f, i, g] = activations.map(|v| &v[..n]);
        let (cell_before, cell_after) = (&cell_before[..n], &cell_after[..n]);
        let (grad_cell, grad_hidden) = (&grad_cell[..n], &grad_hidden[..n]);
        let (d_o, d_f, d_i, d_g) = (&mut d_o[..n], &mut d_f[..n], &mut d_i[..n], &mut d_g[..n]);
        for j in 0..n {
            let t = tanh(cell_after[j]);
            // dL/dc through both uses of c: the next cell and h = o tanh(c).
            let dc = grad_cell[j] + grad_hidden[j] * o[j] * (1.0 - t * t);
            d_o[j] = grad_hidden[j] * t * o[j] * (1.0 - o[j]);
            d_f[j] = dc * cell_before[j] * f[j] * (1.0 - f[j]);
            d_i[j] = dc * g[j] * i[j] * (1.0 - i[j]);
            d_g[j] = dc * i[j] * (1.0 - g[j] * g[j]);
            grad_cell_before[j] = dc * f[j];
        }
    }

    dispatched!(forward, forward_loop, (
        x: [&[f32]; 4], s: [&[f32]; 4], cell_before: &[f32], cell: &mut [f32], hidden: &mut [f32],
        activations: Option<[&mut [f32]; 4]>
    ));
    dispatched!(backward, backward_loop, (
        activations: [&[f32]; 4], cell_before: &[f32], cell_after: &[f32], grad: [&[f32]; 2],
        grad_cell_before: &mut [f32], grad_gates: [&mut [f32]; 4]
    ));
}

/// `n` values in [-3, 3) from a xorshift sequence seeded with `seed`, for the LSTM cell's tests
/// (not the backend's generator, which the tests running in parallel share).
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 6.0 - 3.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eq. (3) written out in f64 with std's functions, one position at a time.
    fn reference(x: &[f32], s: &[f32], state: &[f32]) -> Vec<f64> {
        let hn = state.len() / 2;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let mut out = vec![0.0; 2 * hn];
        for j in 0..hn {
            let a = |k: usize| x[k * hn + j] as f64 + s[k * hn + j] as f64;
            let (o, f, i, g) = (sig(a(0)), sig(a(1)), sig(a(2)), a(3).tanh());
            let c = f * state[j] as f64 + i * g;
            (out[j], out[hn + j]) = (c, o * c.tanh());
        }
        out
    }

    #[test]
    fn forward_matches_eq_3_across_chunk_boundaries() {
        // 2 chunks and a remainder, so both the threaded and the tail paths run.
        for hn in [1, 7, 2 * CHUNK + 5] {
            let (x, s, state) = (test_values(4 * hn, 1), test_values(4 * hn, 2), test_values(2 * hn, 3));
            let (out, activations) = forward(&x, &s, &state, true);
            let (out_again, none) = forward(&x, &s, &state, false);
            assert_eq!(out, out_again, "keeping activations changes nothing");
            assert!(none.is_none());
            assert_eq!(activations.expect("kept").len(), 4 * hn);
            for (j, (got, want)) in out.iter().zip(reference(&x, &s, &state)).enumerate() {
                assert!((*got as f64 - want).abs() < 1e-5, "hn {hn}, element {j}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let hn = 5;
        let (x, s, state) = (test_values(4 * hn, 4), test_values(4 * hn, 5), test_values(2 * hn, 6));
        let weights = test_values(2 * hn, 7); // loss = sum(weights * new_state)
        let (out, activations) = forward(&x, &s, &state, true);
        let (grad_gates, grad_state) = backward(&activations.expect("kept"), &state, &out, &weights);
        let loss = |x: &[f32], state: &[f32]| -> f64 {
            reference(x, &s, state).iter().zip(&weights).map(|(v, w)| v * *w as f64).sum()
        };
        let eps = 1e-3;
        for k in 0..4 * hn {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[k] += eps;
            down[k] -= eps;
            let numeric = (loss(&up, &state) - loss(&down, &state)) / (2.0 * eps as f64);
            assert!((grad_gates[k] as f64 - numeric).abs() < 1e-3, "gate {k}: {} vs {numeric}", grad_gates[k]);
        }
        for k in 0..2 * hn {
            let (mut up, mut down) = (state.clone(), state.clone());
            up[k] += eps;
            down[k] -= eps;
            let numeric = (loss(&x, &up) - loss(&x, &down)) / (2.0 * eps as f64);
            assert!((grad_state[k] as f64 - numeric).abs() < 1e-3, "state {k}: {} vs {numeric}", grad_state[k]);
        }
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let result = std::panic::catch_unwind(|| forward(&[0.0; 8], &[0.0; 4], &[0.0; 4], false));
        assert!(result.is_err());
    }
}
