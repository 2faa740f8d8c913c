//! The one serializable config tree of a run, written to `RUN_DIR/config.json` before the
//! first step (see [`crate::run`]); `eval`, `sample` and `complete` rebuild everything from it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::models::{ModelConfig, Preset};

/// The preset of `dataset`'s paper setting, the default model size for it: where the data
/// and the models meet (neither knows the other).
pub fn paper_preset(dataset: DatasetName) -> Preset {
    match dataset {
        DatasetName::BinarizedMnist | DatasetName::Mnist | DatasetName::FashionMnist => Preset::Mnist,
        DatasetName::Cifar10 | DatasetName::Folder => Preset::Cifar10,
        DatasetName::Imagenet32 => Preset::Imagenet32,
        DatasetName::Imagenet64 => Preset::Imagenet64,
    }
}

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// RMSProp, as in the paper (§5.2).
    Rmsprop,
    /// Adam (Kingma & Ba 2015), the default.
    Adam,
}

/// Optimizer and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// RMSProp or Adam.
    pub kind: OptimizerKind,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// Multiplicative decay per step (1.0: constant): lr_t = lr * decay^t.
    pub lr_decay: f64,
    /// Clip the gradient to this global L2 norm, if set.
    pub grad_clip_norm: Option<f32>,
    /// The epsilon added to the root of the second-moment estimate (`None`: the optimizer's
    /// default, Burn's 1e-5 for Adam and 1e-8 for RMSProp; PyTorch's Adam uses 1e-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// Linear warm-up: over the first N steps the rate rises from lr / N to lr (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_steps: u64,
    /// Cosine annealing (Loshchilov & Hutter 2017, without restarts): the rate is multiplied
    /// by (1 + cos(pi t / T)) / 2, from 1 at step 0 to 0 at step T and after (`None`: no
    /// annealing). Recorded, so that a resumed run keeps its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine_steps: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl OptimizerConfig {
    /// Refuses settings that could only diverge or mean nothing: the learning rate must be a
    /// finite number >= 0 (0 keeps the initial weights: how the untrained model's NLL is
    /// measured), its decay and the clipping norm (if set) finite numbers > 0.
    pub fn validate(&self) -> Result<()> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return Err(Error::Config(format!(
                "learning rate must be a non-negative number, got {}",
                self.learning_rate
            )));
        }
        if !positive(self.lr_decay) {
            return Err(Error::Config(format!("learning-rate decay must be a positive number, got {}", self.lr_decay)));
        }
        if let Some(norm) = self.grad_clip_norm.filter(|&n| !positive(f64::from(n))) {
            return Err(Error::Config(format!("gradient clipping norm must be a positive number, got {norm}")));
        }
        if let Some(eps) = self.epsilon.filter(|&e| !positive(e)) {
            return Err(Error::Config(format!("the optimizer's epsilon must be a positive number, got {eps}")));
        }
        if self.cosine_steps == Some(0) {
            return Err(Error::Config("cosine annealing needs at least 1 step".into()));
        }
        Ok(())
    }

    /// The learning rate of step `step` (from 0): lr x decay^step, times the warm-up's ramp
    /// and the cosine's factor where set.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        let mut lr = self.learning_rate * self.lr_decay.powf(step as f64);
        if step < self.warmup_steps {
            lr *= (step + 1) as f64 / self.warmup_steps as f64;
        }
        if let Some(total) = self.cosine_steps {
            let t = step.min(total) as f64 / total as f64;
            lr *= 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
        }
        lr
    }
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Dataset name.
    pub dataset: DatasetName,
    /// Folder holding its files (`None`: the dataset's default folder,
    /// [`crate::data::default_data_dir`]; what a run made without `--data-dir` records, so that
    /// its config names no folder of the machine that trained it).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Training images held out for validation (`None`: the dataset's default).
    pub valid_size: Option<usize>,
    /// Files that differ from their published checksum are used anyway (`train --no-verify`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_verify: bool,
}

impl DataConfig {
    /// The folder of the dataset's files: the recorded one, else the dataset's default.
    pub fn dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| crate::data::default_data_dir(self.dataset))
    }

    /// Whether `other` is the same data for training: the same dataset, split and checks,
    /// wherever its files are kept.
    pub fn same_data(&self, other: &DataConfig) -> bool {
        (self.dataset, self.valid_size, self.no_verify) == (other.dataset, other.valid_size, other.no_verify)
    }
}

/// The training loop's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// Images per step.
    pub batch_size: usize,
    /// Total optimizer steps.
    pub steps: u64,
    /// Seed of the initial weights and of the batch order.
    pub seed: u64,
    /// Validate every this many steps (0: only at the end).
    pub valid_every: u64,
    /// Validate on at most this many images (`None`: the whole split).
    pub valid_limit: Option<usize>,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Take the batches from this file instead of the seeded shuffle (see
    /// [`crate::data::read_batch_order`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_order: Option<PathBuf>,
    /// Start from the weights in this safetensors file (either layout of [`crate::interop`])
    /// instead of the seeded initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<PathBuf>,
    /// Keep a Polyak average of the weights with this decay per step ([`crate::ema`]),
    /// validated and saved beside them. May be added when a run is resumed (the average then
    /// starts from the resumed weights), not changed or dropped once it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
    /// Dropout probability on every layer's output during training ([`crate::nn::dropout`];
    /// never at evaluation or sampling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// Write a step event to `metrics.jsonl` every this many steps, with the mean loss and
    /// throughput of the steps since the last one (1: every step; validations, checkpoints and
    /// the last step are always written; the observer still sees every step). What keeps the
    /// log of a run of hundreds of thousands of steps small.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub log_every: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// The model.
    pub model: ModelConfig,
    /// The data.
    pub data: DataConfig,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The loop.
    pub training: TrainingConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dataset_defaults_to_its_paper_setting() {
        assert_eq!(paper_preset(DatasetName::BinarizedMnist), Preset::Mnist);
        assert_eq!(paper_preset(DatasetName::FashionMnist), Preset::Mnist);
        assert_eq!(paper_preset(DatasetName::Cifar10), Preset::Cifar10);
        assert_eq!(paper_preset(DatasetName::Imagenet32), Preset::Imagenet32);
        assert_eq!(paper_preset(DatasetName::Imagenet64), Preset::Imagenet64);
    }

    #[test]
    fn optimizer_settings_are_checked() {
        let good = OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            grad_clip_norm: Some(1.0),
            epsilon: Some(1e-8),
            warmup_steps: 0,
            cosine_steps: None,
        };
        good.validate().unwrap();
        let err = OptimizerConfig { cosine_steps: Some(0), ..good.clone() }.validate().unwrap_err().to_string();
        assert!(err.contains("at least 1 step"), "{err}");
        OptimizerConfig { learning_rate: 0.0, ..good.clone() }.validate().unwrap();
        let bad = [
            OptimizerConfig { learning_rate: f64::NAN, ..good.clone() },
            OptimizerConfig { learning_rate: -1e-3, ..good.clone() },
            OptimizerConfig { learning_rate: f64::INFINITY, ..good.clone() },
            OptimizerConfig { lr_decay: 0.0, ..good.clone() },
            OptimizerConfig { lr_decay: -0.5, ..good.clone() },
            OptimizerConfig { grad_clip_norm: Some(-1.0), ..good.clone() },
            OptimizerConfig { grad_clip_norm: Some(f32::NAN), ..good.clone() },
            OptimizerConfig { epsilon: Some(0.0), ..good.clone() },
        ];
        for config in bad {
            let err = config.validate().unwrap_err().to_string();
            assert!(
                err.contains("must be a positive number") || err.contains("must be a non-negative number"),
                "{config:?}: {err}"
            );
        }
    }

    #[test]
    fn the_schedule_warms_up_anneals_and_decays() {
        let base = OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 0.01,
            lr_decay: 1.0,
            grad_clip_norm: None,
            epsilon: None,
            warmup_steps: 0,
            cosine_steps: None,
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!((0..100).all(|t| base.learning_rate_at(t) == 0.01), "constant by default");
        let decayed = OptimizerConfig { lr_decay: 0.5, ..base.clone() };
        assert!(close(decayed.learning_rate_at(3), 0.01 / 8.0));
        // Warm-up: lr / N at step 0, lr from step N - 1 on.
        let warm = OptimizerConfig { warmup_steps: 4, ..base.clone() };
        let rates: Vec<f64> = (0..6).map(|t| warm.learning_rate_at(t)).collect();
        assert!(close(rates[0], 0.0025) && close(rates[1], 0.005) && close(rates[3], 0.01) && close(rates[5], 0.01));
        // Cosine: 1 at 0, 1/2 half-way, 0 at T and after.
        let cosine = OptimizerConfig { cosine_steps: Some(10), ..base.clone() };
        assert!(close(cosine.learning_rate_at(0), 0.01));
        assert!(close(cosine.learning_rate_at(5), 0.005));
        assert!(close(cosine.learning_rate_at(10), 0.0) && close(cosine.learning_rate_at(50), 0.0));
        assert!((1..10).all(|t| cosine.learning_rate_at(t) < cosine.learning_rate_at(t - 1)), "falls throughout");
        // Both: the ramp times the cosine.
        let both = OptimizerConfig { warmup_steps: 4, cosine_steps: Some(10), ..base };
        assert!(close(both.learning_rate_at(1), 0.005 * cosine.learning_rate_at(1) / 0.01));
        // Old configs (no such fields) read as no warm-up and no annealing, and are written as before.
        let old: OptimizerConfig =
            serde_json::from_str(r#"{"kind":"adam","learning_rate":0.001,"lr_decay":1.0,"grad_clip_norm":null}"#)
                .unwrap();
        assert_eq!((old.warmup_steps, old.cosine_steps), (0, None));
        assert!(!serde_json::to_string(&old).unwrap().contains("warmup"));
    }
}
