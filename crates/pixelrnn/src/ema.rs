//! Polyak averaging of the weights: an exponential moving average of every parameter over the
//! optimizer steps (Polyak & Juditsky 1992; PixelCNN++, Salimans et al. 2017, §2.6 of their
//! code's training, uses a decay of 0.9995), evaluated and sampled instead of the last weights.
//!
//! `average <- decay * average + (1 - decay) * weights` after every step, from the weights of
//! the step it starts at (a fresh run's initialisation, or a resumed run's checkpoint: the
//! average may begin on a resumed run). Kept in `f32` in the model's parameter order
//! ([`crate::models::parameters`]) and saved in the checkpoint, so that `--resume` continues it
//! bit for bit.

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
    /// Starts averaging from `model`'s weights at `step`.
    pub fn start(decay: f64, model: &PixelRnn, step: u64) -> Result<Self> {
        check_decay(decay)?;
        Ok(Self { info: AverageInfo { decay, since_step: step }, values: flatten_parameters(model) })
    }

    /// Folds in `model`'s weights after one more step.
    pub fn update(&mut self, model: &PixelRnn) {
        let weights = flatten_parameters(model);
        debug_assert_eq!(weights.len(), self.values.len(), "one model's parameters");
        let keep = self.info.decay as f32;
        let take = 1.0 - keep;
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
    fn the_average_moves_from_its_start_toward_the_weights_by_one_minus_the_decay() {
        let (a, b) = models();
        let mut average = WeightAverage::start(0.75, &a, 10).unwrap();
        let (wa, wb) = (flatten_parameters(&a), flatten_parameters(&b));
        assert_eq!(average.values, wa);
        average.update(&b);
        for ((v, x), y) in average.values.iter().zip(&wa).zip(&wb) {
            assert!((v - (0.75 * x + 0.25 * y)).abs() <= 1e-6 * (1.0 + y.abs()), "{v} from {x}, {y}");
        }
        average.update(&b);
        let expected: Vec<f32> = wa.iter().zip(&wb).map(|(x, y)| 0.5625 * x + 0.4375 * y).collect();
        for (v, e) in average.values.iter().zip(&expected) {
            assert!((v - e).abs() <= 1e-5 * (1.0 + e.abs()));
        }
        let applied = average.apply(b).unwrap();
        assert_eq!(flatten_parameters(&applied), average.values);
        assert_eq!(average.info.since_step, 10);
    }

    #[test]
    fn the_average_goes_through_bytes_exactly_and_bad_bytes_or_decays_are_refused() {
        let (a, b) = models();
        let mut average = WeightAverage::start(0.9995, &a, 0).unwrap();
        average.update(&b);
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
