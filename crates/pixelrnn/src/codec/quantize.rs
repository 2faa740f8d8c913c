//! Each sub-pixel's predicted distribution as integer frequencies for the entropy coder.
//!
//! How (the same on the encoder and the decoder, to the bit, on every machine):
//! 1. The probabilities come from the logits in f64, with an `exp` of our own ([`exp`]: only
//!    IEEE-754 additions, multiplications, divisions and exact roundings, no libm, so no platform
//!    difference): binary data p(1) = sigmoid(l), p(0) = 1 - p(1); 256-level data the softmax
//!    of the logits (the maximum subtracted first).
//! 2. With T = 2^[`PRECISION`] and K symbols, symbol k gets `1 + floor(p_k (T - K))`: every
//!    symbol at least 1 (so anything can be coded), the sum at most T. What is left of T goes to
//!    the most probable symbol (the first one in case of ties).
//!
//! The cost of the quantization is at most a few thousandths of a bit per sub-pixel: a symbol
//! loses less than 1/T of probability mass to the floor, plus K/T given to the others.

/// Bits of the fixed-point probabilities (constriction's default range coder works with 24).
pub const PRECISION: u32 = 24;

/// T = 2^PRECISION: what the frequencies of one distribution sum to.
const TOTAL: u64 = 1 << PRECISION;

/// e^x for x <= 0 (x below -745 gives 0), from basic IEEE-754 operations only: x = k ln 2 + r
/// with |r| <= ln 2 / 2, e^r by its Taylor series to degree 13 (error below 1e-16 relative),
/// times 2^k built from its bits.
pub fn exp(x: f64) -> f64 {
    debug_assert!(x <= 0.0 || x.is_nan(), "exp is used on x - max(x) <= 0 only");
    if x.is_nan() {
        return f64::NAN;
    }
    if x < -745.0 {
        return 0.0;
    }
    // ln 2 split in two (fdlibm's): k * LN2_HI is exact for the k used here.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let k = (x * std::f64::consts::LOG2_E).round(); // exact: round() is correctly rounded everywhere
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Horner's rule, fixed order.
    let mut term = 1.0;
    for n in (1..=13).rev() {
        term = 1.0 + term * r / n as f64;
    }
    // 2^k: k >= -1075 here; split so that each factor is a normal number.
    let k = k as i64;
    let (k1, k2) = (k / 2, k - k / 2);
    term * two_to(k1) * two_to(k2)
}

/// 2^k for -1022 <= k <= 1023, from its bits.
fn two_to(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// The probabilities of a sub-pixel's values from its logits: one logit (binary: sigmoid), or
/// one per level (softmax). Written into `out` (`[levels]`).
pub fn probabilities(logits: &[f32], out: &mut Vec<f64>) {
    out.clear();
    if let [logit] = logits {
        let l = *logit as f64;
        // sigmoid without overflow: 1 / (1 + e^-l) for l >= 0, e^l / (1 + e^l) otherwise.
        let p1 = if l >= 0.0 {
            1.0 / (1.0 + exp(-l))
        } else {
            let e = exp(l);
            e / (1.0 + e)
        };
        out.extend([1.0 - p1, p1]);
        return;
    }
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l)) as f64;
    out.extend(logits.iter().map(|&l| exp(l as f64 - max)));
    let sum: f64 = out.iter().sum();
    out.iter_mut().for_each(|p| *p /= sum);
}

/// The integer frequencies of `probabilities` (see the module docs), written into `out`;
/// they sum to exactly 2^PRECISION and each is at least 1. Non-finite probabilities (a model
/// whose logits are not finite) are treated as a uniform distribution.
pub fn frequencies(probabilities: &[f64], out: &mut Vec<u32>) {
    out.clear();
    let k = probabilities.len() as u64;
    debug_assert!((2..=TOTAL / 2).contains(&k));
    let finite = probabilities.iter().all(|p| p.is_finite() && *p >= 0.0);
    let spare = (TOTAL - k) as f64;
    out.extend(probabilities.iter().map(|&p| {
        let p = if finite { p.min(1.0) } else { 1.0 / k as f64 };
        1 + (p * spare).floor() as u32
    }));
    let sum: u64 = out.iter().map(|&f| f as u64).sum();
    let most = (0..out.len()).fold(0, |best, i| if out[i] > out[best] { i } else { best });
    out[most] += (TOTAL - sum) as u32;
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

    #[test]
    fn frequencies_sum_to_the_total_and_none_is_zero() {
        let mut p = Vec::new();
        let mut f = Vec::new();
        let cases: Vec<Vec<f32>> = vec![
            vec![0.0],
            vec![40.0],
            vec![-40.0],
            (0..256).map(|i| (i as f32 * 0.37).sin() * 9.0).collect(),
            (0..256).map(|i| if i == 7 { 80.0 } else { -80.0 }).collect(),
            vec![0.0; 256],
        ];
        for logits in cases {
            probabilities(&logits, &mut p);
            frequencies(&p, &mut f);
            assert_eq!(f.len(), if logits.len() == 1 { 2 } else { 256 });
            assert_eq!(f.iter().map(|&v| v as u64).sum::<u64>(), TOTAL);
            assert!(f.iter().all(|&v| v >= 1));
            // The quantized distribution costs at most a few thousandths of a bit more.
            let ideal: f64 = p.iter().filter(|&&q| q > 0.0).map(|&q| -q * q.log2()).sum();
            let coded: f64 =
                p.iter().zip(&f).filter(|(&q, _)| q > 0.0).map(|(&q, &v)| -q * (v as f64 / TOTAL as f64).log2()).sum();
            assert!(coded - ideal < 1e-3 && coded >= ideal - 1e-9, "{ideal} vs {coded}");
        }
        frequencies(&[f64::NAN, 0.5], &mut f);
        assert_eq!(f.iter().map(|&v| v as u64).sum::<u64>(), TOTAL);
    }
}
