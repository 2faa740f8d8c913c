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
        Ok(())
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
        };
        good.validate().unwrap();
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
}
