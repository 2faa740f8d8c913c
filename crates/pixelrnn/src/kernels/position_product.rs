//! The step form's product at one position: `out[o] += sum_i w[i][o] * x[i]` for every output
//! `o`, each sum accumulated in the order i = 0, 1, ... from the empty sum's value, exactly as
//! `w_row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>()` forms it, so the bits are those of one
//! output at a time (the codec's files depend on them). The outputs are independent, so the
//! loop runs across them in SIMD lanes (AVX-512, AVX2 or the baseline, the same operations on
//! every lane: a multiply and an add, never fused).

use super::fast_math::dispatched;

/// What `Sum` starts an f32 sum from (the value of an empty sum).
fn empty_sum() -> f32 {
    std::iter::empty::<f32>().sum()
}

/// Lanes of a 512-bit vector of f32: the columns go in blocks of 16.
const LANES: usize = 16;

/// Blocks summed in one pass over the rows, each held in a vector register.
const BLOCKS: usize = 4;

/// The sums of the `NB` 16-column blocks starting at `windows`, over the rows of `w` (`cout`
/// wide) times `x`.
#[inline(always)]
fn block_sums<const NB: usize>(
    w: &[f32],
    cout: usize,
    windows: [usize; NB],
    x: &[f32],
    start: f32,
) -> [[f32; LANES]; NB] {
    let mut lanes = [[start; LANES]; NB];
    for (row, &xi) in w.chunks_exact(cout).zip(x) {
        for (sums, &window) in lanes.iter_mut().zip(&windows) {
            let block: &[f32; LANES] = row[window..window + LANES].try_into().expect("16 columns");
            for (a, &wi) in sums.iter_mut().zip(block) {
                *a += wi * xi;
            }
        }
    }
    lanes
}

/// `acc` (`[n]`) becomes the sums of columns `first..first + n`; `w`: `[in][cout]` (rows of
/// `cout`), `x`: the first inputs, `[<= in]`. Rows at least 16 wide go in blocks of 16 columns,
/// four blocks per pass over the rows, their sums in registers; a block that would run past the
/// row is moved left, its lanes outside the wanted columns computed and dropped (the columns are
/// independent), so a group of columns whose width is not a multiple of 16 costs no scalar tail.
#[inline(always)]
fn sums_loop(acc: &mut [f32], w: &[f32], cout: usize, first: usize, x: &[f32], start: f32) {
    let n = acc.len();
    if cout < LANES {
        acc.fill(start);
        for (row, &xi) in w.chunks_exact(cout).zip(x) {
            for (a, &wi) in acc.iter_mut().zip(&row[first..first + n]) {
                *a += wi * xi;
            }
        }
        return;
    }
    // Block j covers columns first + 16j .. (moved left to end at cout where it would not fit).
    let blocks = n.div_ceil(LANES);
    let window = |j: usize| (first + j * LANES).min(cout - LANES);
    let mut j = 0;
    while j < blocks {
        let pass = (blocks - j).min(BLOCKS);
        let mut put = |k: usize, lanes: &[f32; LANES]| {
            let (column, at) = (first + (j + k) * LANES, window(j + k));
            let take = (first + n - column).min(LANES);
            acc[column - first..column - first + take].copy_from_slice(&lanes[column - at..column - at + take]);
        };
        match pass {
            4 => block_sums(w, cout, [window(j), window(j + 1), window(j + 2), window(j + 3)], x, start)
                .iter()
                .enumerate()
                .for_each(|(k, l)| put(k, l)),
            3 => block_sums(w, cout, [window(j), window(j + 1), window(j + 2)], x, start)
                .iter()
                .enumerate()
                .for_each(|(k, l)| put(k, l)),
            2 => block_sums(w, cout, [window(j), window(j + 1)], x, start)
                .iter()
                .enumerate()
                .for_each(|(k, l)| put(k, l)),
            _ => block_sums(w, cout, [window(j)], x, start).iter().enumerate().for_each(|(k, l)| put(k, l)),
        }
        j += pass;
    }
}

dispatched!(sums, sums_loop, (acc: &mut [f32], w: &[f32], cout: usize, first: usize, x: &[f32], start: f32));

/// `out[o] += sum_i w[i][o] * x[i]` for the outputs `o` in `first..first + out.len()` of a
/// `[in][cout]` weight, over its first `x.len()` inputs (the later ones' weights must be zero for
/// these outputs, as a mask's centre tap leaves them: the sums then differ from all the inputs'
/// at most in the sign of an exact zero), each sum formed in input order; `scratch` holds the
/// sums.
pub(crate) fn accumulate_columns(
    out: &mut [f32],
    w: &[f32],
    cout: usize,
    first: usize,
    x: &[f32],
    scratch: &mut Vec<f32>,
) {
    debug_assert!(first + out.len() <= cout && x.len() * cout <= w.len());
    scratch.resize(out.len(), 0.0);
    sums(scratch, w, cout, first, x, empty_sum());
    out.iter_mut().zip(scratch.iter()).for_each(|(o, s)| *o += s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lanes_give_the_bits_of_one_output_at_a_time_on_every_instruction_set() {
        let mut state = 12_345u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // Mixed magnitudes and signs, exact zeros and negative zeros, so rounding and the
            // sign of zero both matter.
            match state >> 29 {
                0 => 0.0,
                1 => -0.0,
                _ => ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 10f32.powi((state % 7) as i32 - 3),
            }
        };
        for (cin, cout) in [(1, 1), (3, 5), (17, 33), (96, 48), (48, 130), (64, 21), (20, 16), (7, 150), (9, 1024)] {
            let w_out_in: Vec<f32> = (0..cin * cout).map(|_| next()).collect();
            let x: Vec<f32> = (0..cin).map(|_| next()).collect();
            let bias: Vec<f32> = (0..cout).map(|_| next()).collect();
            let want: Vec<u32> = (0..cout)
                .map(|o| {
                    let row = &w_out_in[o * cin..(o + 1) * cin];
                    (bias[o] + row.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>()).to_bits()
                })
                .collect();
            let w_in_out: Vec<f32> = (0..cin * cout).map(|k| w_out_in[(k % cout) * cin + k / cout]).collect();
            for level in [2, 1, 0] {
                crate::kernels::fast_math::limit_instruction_set(level);
                let mut out = bias.clone();
                accumulate_columns(&mut out, &w_in_out, cout, 0, &x, &mut Vec::new());
                let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{cin} -> {cout}, level {level}");
            }
            crate::kernels::fast_math::limit_instruction_set(2);
            // A block of columns over the first inputs: the same bits as those outputs alone.
            let (first, n, inputs) = (cout / 3, cout - cout / 3 - cout / 4, cin - cin / 2);
            let mut out = bias[first..first + n].to_vec();
            accumulate_columns(&mut out, &w_in_out, cout, first, &x[..inputs], &mut Vec::new());
            for (k, got) in out.iter().enumerate() {
                let o = first + k;
                let row = &w_out_in[o * cin..o * cin + inputs];
                let want = bias[o] + row.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>();
                assert_eq!(got.to_bits(), want.to_bits(), "{cin} -> {cout}: column {o}");
            }
        }
    }
}
