//! This machine's peak rate of fused multiply-adds, measured: the denominator of the fraction of
//! the peak that `pixelrnn bench` reports (BENCHMARKS.md). Each worker thread runs independent
//! chains of vector FMAs (enough of them to hide the instruction's latency on two FMA units, few
//! enough to stay in registers), with the widest instruction set the CPU has: AVX-512 (16 f32
//! lanes) or AVX2 + FMA (8). A CPU with neither has no FMA peak to compare with (`None`).

use std::time::Instant;

/// Independent accumulators per thread: covers a 5-cycle latency on two units (Zen, Intel since
/// Haswell) and, with the two constants, fits AVX2's 16 vector registers.
const CHAINS: usize = 12;

/// `rounds` rounds of one FMA per chain; returns (a value that depends on every FMA, lanes).
/// The constants go through `black_box`: known to the compiler, the chains would be folded away.
#[cfg(target_arch = "x86_64")]
fn chains(rounds: u64) -> Option<(f32, usize)> {
    use std::hint::black_box;
    #[target_feature(enable = "avx512f")]
    fn avx512(rounds: u64) -> f32 {
        use std::arch::x86_64::*;
        let (a, b) = (_mm512_set1_ps(black_box(0.999_999_9)), _mm512_set1_ps(black_box(1e-7)));
        let mut acc = [_mm512_set1_ps(black_box(1.0)); CHAINS];
        for _ in 0..rounds {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let mut sum = 0.0;
        for x in acc {
            sum += _mm512_reduce_add_ps(x);
        }
        sum
    }
    #[target_feature(enable = "avx2,fma")]
    fn avx2(rounds: u64) -> f32 {
        use std::arch::x86_64::*;
        let (a, b) = (_mm256_set1_ps(black_box(0.999_999_9)), _mm256_set1_ps(black_box(1e-7)));
        let mut acc = [_mm256_set1_ps(black_box(1.0)); CHAINS];
        for _ in 0..rounds {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for x in acc {
            sum = _mm256_add_ps(sum, x);
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds the 8 f32 an unaligned 256-bit store writes.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has just been checked for AVX-512F.
        return Some((unsafe { avx512(rounds) }, 16));
    }
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has just been checked for AVX2 and FMA.
        return Some((unsafe { avx2(rounds) }, 8));
    }
    None
}

#[cfg(not(target_arch = "x86_64"))]
fn chains(_rounds: u64) -> Option<(f32, usize)> {
    None
}

/// The FMA peak of every thread of rayon's global pool running at once, in GFLOP/s (an FMA is 2
/// flops), best of three runs of about 0.1 s each; `None` on a CPU without vector FMA.
pub fn fma_peak_gflops() -> Option<f64> {
    let threads = rayon::current_num_threads();
    // Calibrate the rounds to about 0.1 s on one thread.
    let start = Instant::now();
    let (sum, lanes) = chains(1 << 20)?;
    std::hint::black_box(sum);
    let per_round = start.elapsed().as_secs_f64() / f64::from(1 << 20);
    let rounds = ((0.1 / per_round.max(1e-12)) as u64).clamp(1 << 20, 1 << 32);
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let start = Instant::now();
        let sums = rayon::broadcast(|_| chains(rounds).map_or(0.0, |(sum, _)| sum));
        let seconds = start.elapsed().as_secs_f64();
        std::hint::black_box(sums);
        let flops = (threads * CHAINS * lanes * 2) as f64 * rounds as f64;
        best = best.max(flops / seconds / 1e9);
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_measured_where_the_cpu_has_fma() {
        let expected = chains(1).is_some();
        let peak = fma_peak_gflops();
        assert_eq!(peak.is_some(), expected);
        if let Some(gflops) = peak {
            // Per thread, anything from a slow core (a few GFLOP/s) to two 512-bit FMA units at
            // 6 GHz (384): a loop the compiler folded away would claim far more.
            let per_thread = gflops / rayon::current_num_threads() as f64;
            assert!(per_thread > 1.0 && per_thread < 400.0, "{per_thread} GFLOP/s per thread");
        }
    }
}
