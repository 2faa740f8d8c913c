//! The host side's e^x (x <= 0), from basic IEEE-754 operations only, so that the codec's
//! encoder and decoder agree to the bit on every machine: [`exp`] for one value (the
//! reference) and [`exp_many`] for a slice, which gives the same bits for every element and
//! runs its thirteen dependent divisions for many elements at once (SIMD where the CPU has it:
//! each division is correctly rounded, whatever the vector width). The codec's probabilities
//! of a 256-way softmax or a logistic mixture take hundreds of exps per sub-pixel.

use super::fast_math::dispatched;

/// ln 2 split in two (fdlibm's): k * LN2_HI is exact for the k used here.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Below this e^x is 0 here.
const UNDERFLOW: f64 = -745.0;

/// x = k ln 2 + r with |r| <= ln 2 / 2: (k, r).
#[inline(always)]
fn reduce(x: f64) -> (f64, f64) {
    let k = (x * std::f64::consts::LOG2_E).round(); // exact: round() is correctly rounded everywhere
    (k, (x - k * LN2_HI) - k * LN2_LO)
}

/// One step of Horner's rule for e^r's Taylor series: the order of operations is part of the
/// result's bits.
#[inline(always)]
fn horner_step(term: f64, r: f64, n: f64) -> f64 {
    1.0 + term * r / n
}

/// term * 2^k, k >= -1075: split so that each factor is a normal number.
#[inline(always)]
fn scale(term: f64, k: f64) -> f64 {
    let k = k as i64;
    let (k1, k2) = (k / 2, k - k / 2);
    term * two_to(k1) * two_to(k2)
}

/// e^x for x <= 0 (x below -745 gives 0), from basic IEEE-754 operations only: x = k ln 2 + r
/// with |r| <= ln 2 / 2, e^r by its Taylor series to degree 13 (error below 1e-16 relative),
/// times 2^k built from its bits.
pub fn exp(x: f64) -> f64 {
    debug_assert!(x <= 0.0 || x.is_nan(), "exp is used on x - max(x) <= 0 only");
    if x.is_nan() {
        return f64::NAN;
    }
    if x < UNDERFLOW {
        return 0.0;
    }
    let (k, r) = reduce(x);
    // Horner's rule, fixed order.
    let mut term = 1.0;
    for n in (1..=13).rev() {
        term = horner_step(term, r, n as f64);
    }
    scale(term, k)
}

/// 2^k for -1022 <= k <= 1023, from its bits.
fn two_to(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Lanes per block of [`exp_many`] (its scratch lives on the stack).
const BLOCK: usize = 64;

/// The series for every lane: `term` starts at 1 and ends at e^r.
#[inline(always)]
fn horner_lanes(term: &mut [f64], r: &[f64]) {
    for n in (1..=13).rev() {
        let n = n as f64;
        for (t, &r) in term.iter_mut().zip(r) {
            *t = horner_step(*t, r, n);
        }
    }
}

dispatched!(horner, horner_lanes, (term: &mut [f64], r: &[f64]));

/// Every element x (x <= 0) of `xs` replaced by [`exp`]`(x)`, bit for bit.
pub fn exp_many(xs: &mut [f64]) {
    let (mut k, mut r, mut term) = ([0.0; BLOCK], [0.0; BLOCK], [1.0; BLOCK]);
    for block in xs.chunks_mut(BLOCK) {
        let n = block.len();
        for (j, &x) in block.iter().enumerate() {
            debug_assert!(x <= 0.0 || x.is_nan(), "exp is used on x - max(x) <= 0 only");
            // NaN and underflow lanes run the series on 0 and are set below.
            (k[j], r[j]) = reduce(if x.is_nan() || x < UNDERFLOW { 0.0 } else { x });
        }
        term[..n].fill(1.0);
        horner(&mut term[..n], &r[..n]);
        for (j, x) in block.iter_mut().enumerate() {
            *x = if x.is_nan() {
                f64::NAN
            } else if *x < UNDERFLOW {
                0.0
            } else {
                scale(term[j], k[j])
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_platform_exp_closely() {
        for i in 0..18_000 {
            let x = -(i as f64) * 0.0371;
            let (ours, std) = (exp(x), x.exp());
            assert!((ours - std).abs() <= 1e-15 * std, "x = {x}: {ours} vs {std}");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
        assert!(exp(-740.0) > 0.0);
    }

    /// Values that probe every branch: the rounding of k at half-way points, the underflow edge,
    /// subnormal results, NaN, -0, and a dense sweep.
    fn probes() -> Vec<f64> {
        let mut xs: Vec<f64> = (0..40_000).map(|i| -(i as f64) * 0.018_7).collect();
        xs.extend((0..2_000).map(|i| -(i as f64 + 0.5) * std::f64::consts::LN_2));
        xs.extend([-0.0, 0.0, -744.99, -745.0, -745.000_001, -740.0, -708.4, -1e-300, f64::NAN, -f64::MIN_POSITIVE]);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        xs.extend((0..20_000).map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            -((state >> 11) as f64 / (1u64 << 53) as f64) * 760.0
        }));
        xs
    }

    #[test]
    fn the_slice_gives_the_bits_of_one_at_a_time_on_every_instruction_set() {
        let xs = probes();
        let want: Vec<u64> = xs.iter().map(|&x| exp(x).to_bits()).collect();
        for level in [2, 1, 0] {
            crate::kernels::fast_math::limit_instruction_set(level);
            // Every length up to two blocks, and the whole sweep.
            for len in (0..2 * BLOCK + 3).chain([xs.len()]) {
                let mut got = xs[..len].to_vec();
                exp_many(&mut got);
                for (i, g) in got.iter().enumerate() {
                    assert_eq!(g.to_bits(), want[i], "level {level}, length {len}, x = {}", xs[i]);
                }
            }
        }
        crate::kernels::fast_math::limit_instruction_set(2);
    }
}
