//! Branch-free `exp`, `sigmoid` and `tanh` for the CPU kernels' loops, and the macro that
//! compiles a loop once per instruction set.
//!
//! Why not `f32::exp` / `f32::tanh`: those are calls into libm, one element at a time, so a loop
//! over them cannot be vectorised (measured: 17-30% of an LSTM training step, BENCHMARKS.md).
//! These are plain arithmetic (clamp, rounding, multiply-add chains, one division) that the
//! compiler turns into SIMD code; the same operations in the same order on every lane, so the
//! result does not depend on the instruction set the loop was compiled for.
//!
//! Accuracy over [-30, 30] (tested below against f64): `exp` and `sigmoid` within 2e-7
//! relative, `tanh` within 4e-7 relative.

/// Defines `pub(super) fn $name(args)`, which runs `$body(args)` compiled for the best
/// instruction set available (AVX-512, AVX2, or the baseline), chosen at run time like Burn's own
/// `x86-v4` kernels. `$body` should be `#[inline(always)]`, so that it (and this module's
/// functions inside it) is compiled with the wider vectors.
macro_rules! dispatched {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        pub(super) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) { $body($($arg),*) }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) { $body($($arg),*) }
                let allowed = crate::kernels::fast_math::allowed_instruction_set();
                if allowed >= 2 && std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has just been checked for AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if allowed >= 1 && std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has just been checked for AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use dispatched;

/// The widest instruction set the dispatched loops may use: 2 AVX-512, 1 AVX2, 0 the baseline.
#[cfg(test)]
static ALLOWED_INSTRUCTION_SET: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(2);

/// See [`limit_instruction_set`]: the tests' limit; outside the tests, every instruction set
/// (a constant, so the dispatch costs nothing more).
pub(crate) fn allowed_instruction_set() -> u8 {
    #[cfg(test)]
    return ALLOWED_INSTRUCTION_SET.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(test))]
    2
}

/// Limits the dispatched loops to the baseline (0), AVX2 (1) or AVX-512 (2, the default) where
/// the CPU has it: how the tests check that results do not depend on the instruction set.
#[cfg(test)]
pub(crate) fn limit_instruction_set(level: u8) {
    ALLOWED_INSTRUCTION_SET.store(level.min(2), std::sync::atomic::Ordering::Relaxed);
}

/// e^x, Cephes' `expf` range reduction (x = n ln2 + r, |r| <= ln2/2) and degree-6 polynomial.
/// Inputs are clamped to [-87, 88], so the result is finite and never denormal.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln2), by the float rounding of adding 1.5 * 2^23 (|x / ln2| < 2^22):
    // `floor` is a libm call on baseline x86-64, which would stop the loops vectorising.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln2 split in two so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * (r * r) + r + 1.0;
    // 2^n from its exponent bits; n is in [-126, 127] after the clamp.
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh(x) as the rational function x P(x^2) / Q(x^2) of degrees 13 / 6 (the minimax fit Eigen
/// uses for `ptanh`), on x clamped to +-7.905 where tanh rounds to +-1 in f32.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = ((((((-2.760_768_5e-16 * x2 + 2.000_188e-13) * x2 - 8.604_672e-11) * x2 + 5.122_297e-8) * x2
        + 1.485_722_4e-5)
        * x2
        + 6.372_619_3e-4)
        * x2
        + 4.893_524_6e-3)
        * x;
    let q = ((1.198_258_4e-6 * x2 + 1.185_347_1e-4) * x2 + 2.268_434_6e-3) * x2 + 4.893_525e-3;
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst relative error of `f` against `reference` on a 1e-3 grid over [-30, 30].
    fn worst_relative_error(f: fn(f32) -> f32, reference: fn(f64) -> f64) -> f64 {
        (-30_000..=30_000)
            .map(|k| k as f32 * 1e-3)
            .filter(|&x| x != 0.0)
            .map(|x| {
                let exact = reference(x as f64);
                ((f(x) as f64 - exact) / exact).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn exp_is_within_2e_7_relative() {
        let worst = worst_relative_error(exp, f64::exp);
        assert!(worst < 2e-7, "exp: worst relative error {worst:e}");
    }

    #[test]
    fn sigmoid_is_within_2e_7_relative() {
        let worst = worst_relative_error(sigmoid, |x| 1.0 / (1.0 + (-x).exp()));
        assert!(worst < 2e-7, "sigmoid: worst relative error {worst:e}");
    }

    #[test]
    fn tanh_is_within_4e_7_relative_and_exact_at_small_inputs() {
        let worst = worst_relative_error(tanh, f64::tanh);
        assert!(worst < 4e-7, "tanh: worst relative error {worst:e}");
        for x in [1e-30f32, 1e-6, -1e-4] {
            assert!(((tanh(x) - x) / x).abs() < 1e-6, "tanh({x}) = {}", tanh(x));
        }
    }

    #[test]
    fn saturates_without_overflow_or_nan() {
        for x in [-1e30f32, -100.0, 100.0, 1e30] {
            assert!(exp(x).is_finite(), "exp({x})");
            assert!((0.0..=1.0).contains(&sigmoid(x)), "sigmoid({x})");
            assert_eq!(tanh(x), x.signum(), "tanh({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(tanh(0.0), 0.0);
    }
}
