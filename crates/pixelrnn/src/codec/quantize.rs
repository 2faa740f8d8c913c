//! Each sub-pixel's predicted distribution as integer frequencies for the entropy coder.
//!
//! How (the same on the encoder and the decoder, to the bit, on every machine):
//! 1. The probabilities come from the output's parameters in f64 by
//!    [`crate::distribution::OutputDistribution::probabilities`] (its own `exp`: only IEEE-754
//!    additions, multiplications, divisions and exact roundings, no libm, so no platform
//!    difference).
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
    use crate::distribution::OutputDistribution;

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
            let distribution = if logits.len() == 1 {
                OutputDistribution::Bernoulli
            } else {
                OutputDistribution::Categorical { levels: logits.len() }
            };
            distribution.probabilities(&logits, &[], 1.0, &mut p);
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
