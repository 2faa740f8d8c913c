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

/// `acc` (`[out]`) becomes the sums; `w`: `[in][out]`, `x`: `[in]`.
#[inline(always)]
fn sums_loop(acc: &mut [f32], w: &[f32], x: &[f32], start: f32) {
    acc.fill(start);
    let cout = acc.len();
    for (row, &xi) in w.chunks_exact(cout).zip(x) {
        for (a, &wi) in acc.iter_mut().zip(row) {
            *a += wi * xi;
        }
    }
}

dispatched!(sums, sums_loop, (acc: &mut [f32], w: &[f32], x: &[f32], start: f32));

/// `out[o] += sum_i w[i][o] * x[i]` (`out`: `[out]`, `w`: `[in][out]`, `x`: `[in]`), each sum
/// formed in input order; `scratch` holds the sums.
pub(crate) fn accumulate(out: &mut [f32], w: &[f32], x: &[f32], scratch: &mut Vec<f32>) {
    debug_assert_eq!(w.len(), out.len() * x.len());
    scratch.resize(out.len(), 0.0);
    sums(scratch, w, x, empty_sum());
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
        for (cin, cout) in [(1, 1), (3, 5), (17, 33), (96, 48), (48, 130)] {
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
                accumulate(&mut out, &w_in_out, &x, &mut Vec::new());
                let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{cin} -> {cout}, level {level}");
            }
            crate::kernels::fast_math::limit_instruction_set(2);
        }
    }
}
