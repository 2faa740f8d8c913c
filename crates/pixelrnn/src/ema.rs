//! Polyak averaging of the weights: an exponential moving average of every parameter over the
//! optimizer steps (Polyak & Juditsky 1992; PixelCNN++, Salimans et al. 2017, §2.6 of their
//! code's training, uses a decay of 0.9995), evaluated and sampled instead of the last weights.
//!
//! The average after the n-th step since it began (on a fresh run's first step, or on a resumed
//! run's: the average may begin on a resumed run) weighs the weights `w_1 .. w_n` of those
//! steps by `decay^(n - k)`, normalised to sum to one (Adam's bias correction, Kingma & Ba 2015,
//! §3, applied to the average): `average <- average + beta_n * (weights - average)` with
//! `beta_n = (1 - decay) / (1 - decay^n)`, so `beta_1 = 1` and the weights it started from count
//! for nothing. Averages begun before this correction (`AverageInfo::debiased` false, every
//! checkpoint that lacks the field) keep the plain rule `average <- decay * average + (1 - decay)
//! * weights` from the start's weights, so that their runs resume exactly; the plain rule lets
//! those start weights (a fresh run's initialisation) weigh `decay^n`: 37% after 2,000 steps
//! at 0.9995. Kept in `f32` in the model's parameter order ([`crate::models::parameters`]) and
//! saved in the checkpoint, so that `--resume` continues it bit for bit.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::parameters::{flatten_parameters, with_parameters};
use crate::models::PixelRnn;

/// What the checkpoint header says of the average (its values are a section of their own).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AverageInfo {
    /// The decay per step.
    pub decay: f64,
    /// The step whose weights the average started from.
    pub since_step: u64,
    /// Whether the weights of its steps are normalised (the bias correction of the module's
    /// documentation); false for averages begun before it (their headers lack the field).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub debiased: bool,
}

/// The running average of a model's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightAverage {
    /// Its decay and start.
    pub info: AverageInfo,
    /// The averaged parameters, in the model's visiting order.
    pub values: Vec<f32>,
}

/// Checks a decay: a number in (0, 1).
pub fn check_decay(decay: f64) -> Result<()> {
    if !(decay.is_finite() && decay > 0.0 && decay < 1.0) {
        return Err(Error::Config(format!(
            "the weight average's decay must be a number between 0 and 1 (exclusive), e.g. 0.9995; got {decay}"
        )));
    }
    Ok(())
}

impl WeightAverage {
    /// Starts averaging at `step` (bias-corrected); until the next step the average is
    /// `model`'s weights.
    pub fn start(decay: f64, model: &PixelRnn, step: u64) -> Result<Self> {
        check_decay(decay)?;
        Ok(Self { info: AverageInfo { decay, since_step: step, debiased: true }, values: flatten_parameters(model) })
    }

    /// The share `beta` of the newest weights after `step` (see the module's documentation).
    fn take(&self, step: u64) -> f32 {
        let decay = self.info.decay;
        if !self.info.debiased {
            return 1.0 - decay as f32;
        }
        let n = step.saturating_sub(self.info.since_step).max(1);
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        ((1.0 - decay) / (1.0 - decay.powi(n))) as f32
    }

    /// Folds in `model`'s weights after optimizer step `step` (counted as the run counts
    /// them, the first step being 1).
    pub fn update(&mut self, model: &PixelRnn, step: u64) {
        let weights = flatten_parameters(model);
        debug_assert_eq!(weights.len(), self.values.len(), "one model's parameters");
        let take = self.take(step);
        let keep = if self.info.debiased { 1.0 - take } else { self.info.decay as f32 };
        for (average, w) in self.values.iter_mut().zip(weights) {
            *average = keep * *average + take * w;
        }
    }

    /// `model` (built from the same config) holding the averaged weights.
    pub fn apply(&self, model: PixelRnn) -> Result<PixelRnn> {
        with_parameters(model, &self.values)
    }

    /// The values as little-endian bytes (the checkpoint's section).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The average from its header entry and its section's bytes.
    pub fn from_bytes(info: AverageInfo, bytes: &[u8]) -> std::result::Result<Self, String> {
        if !bytes.len().is_multiple_of(4) {
            return Err(format!("the weight average's section holds {} bytes, not a whole number of f32", bytes.len()));
        }
        check_decay(info.decay).map_err(|e| e.to_string())?;
        let values: Vec<f32> =
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("the weight average holds a non-finite value at {i}"));
        }
        Ok(Self { info, values })
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::image_spec::ImageSpec;
    use crate::models::{Architecture, ModelConfig, Preset};

    fn models() -> (PixelRnn, PixelRnn) {
        let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
        let config = ModelConfig::preset(Preset::Tiny, Architecture::PixelCnn, image).unwrap();
        (config.init(&Device::flex(), 1).unwrap(), config.init(&Device::flex(), 2).unwrap())
    }

    #[test]
    fn a_plain_average_moves_from_its_start_toward_the_weights_by_one_minus_the_decay() {
        let (a, b) = models();
        let mut average = WeightAverage::start(0.75, &a, 10).unwrap();
        average.info.debiased = false; // as an average begun before the correction resumes
        let (wa, wb) = (flatten_parameters(&a), flatten_parameters(&b));
        assert_eq!(average.values, wa);
        average.update(&b, 11);
        for ((v, x), y) in average.values.iter().zip(&wa).zip(&wb) {
            assert!((v - (0.75 * x + 0.25 * y)).abs() <= 1e-6 * (1.0 + y.abs()), "{v} from {x}, {y}");
        }
        average.update(&b, 12);
        let expected: Vec<f32> = wa.iter().zip(&wb).map(|(x, y)| 0.5625 * x + 0.4375 * y).collect();
        for (v, e) in average.values.iter().zip(&expected) {
            assert!((v - e).abs() <= 1e-5 * (1.0 + e.abs()));
        }
        let applied = average.apply(b).unwrap();
        assert_eq!(flatten_parameters(&applied), average.values);
        assert_eq!(average.info.since_step, 10);
    }

    #[test]
    fn a_debiased_average_is_the_normalised_decaying_mean_of_the_steps_weights_alone() {
        let (a, b) = models();
        let c = {
            let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
            ModelConfig::preset(Preset::Tiny, Architecture::PixelCnn, image).unwrap().init(&Device::flex(), 3).unwrap()
        };
        let decay = 0.75;
        let mut average = WeightAverage::start(decay, &a, 10).unwrap();
        assert!(average.info.debiased);
        assert_eq!(average.values, flatten_parameters(&a), "before a step: the start's weights");
        // Steps 11, 12, 13 leave the weights b, c, b; the start's weights a count for nothing.
        average.update(&b, 11);
        assert_eq!(average.values, flatten_parameters(&b), "after one step: exactly its weights");
        average.update(&c, 12);
        average.update(&b, 13);
        let (wb, wc) = (flatten_parameters(&b), flatten_parameters(&c));
        let norm = 1.0 + decay + decay * decay;
        for ((v, x), y) in average.values.iter().zip(&wb).zip(&wc) {
            let want = ((decay * decay + 1.0) * f64::from(*x) + decay * f64::from(*y)) / norm;
            assert!((f64::from(*v) - want).abs() <= 1e-5 * (1.0 + want.abs()), "{v} vs {want}");
        }
        // Far from its start the share of the newest weights is 1 - decay.
        assert!((f64::from(average.take(10 + 200)) - (1.0 - decay)).abs() < 1e-7);
        // Its header keeps the flag; a header without it (an older run's) reads as plain.
        let json = serde_json::to_string(&average.info).unwrap();
        assert!(json.contains("\"debiased\":true"), "{json}");
        let old: AverageInfo = serde_json::from_str(r#"{"decay":0.9995,"since_step":0}"#).unwrap();
        assert!(!old.debiased);
        assert!(
            !serde_json::to_string(&old).unwrap().contains("debiased"),
            "an older run's header is written back unchanged"
        );
    }

    #[test]
    fn the_average_goes_through_bytes_exactly_and_bad_bytes_or_decays_are_refused() {
        let (a, b) = models();
        let mut average = WeightAverage::start(0.9995, &a, 0).unwrap();
        average.update(&b, 1);
        average.update(&a, 2);
        let back = WeightAverage::from_bytes(average.info, &average.to_bytes()).unwrap();
        assert_eq!(back, average);
        assert!(WeightAverage::from_bytes(average.info, &[0u8; 7]).unwrap_err().contains("whole number"));
        let nan = f32::NAN.to_le_bytes();
        assert!(WeightAverage::from_bytes(average.info, &nan).unwrap_err().contains("non-finite"));
        for decay in [0.0, 1.0, -0.5, f64::NAN, 2.0] {
            assert!(WeightAverage::start(decay, &a, 0).unwrap_err().to_string().contains("between 0 and 1"));
        }
    }
}
