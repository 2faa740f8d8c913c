//! The one serializable config tree of a run, written to `RUN_DIR/config.json` before the
//! first step; `eval` (and later `sample`, `complete`) rebuild everything from it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::models::ModelConfig;

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// RMSProp, as in the paper (§5.2).
    Rmsprop,
    /// Adam.
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
        Ok(())
    }
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Dataset name.
    pub dataset: DatasetName,
    /// Folder holding its files.
    pub data_dir: PathBuf,
    /// Training images held out for validation (`None`: the dataset's default).
    pub valid_size: Option<usize>,
}

/// The training loop's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// File name of the resolved config in a run directory.
pub const CONFIG_FILE: &str = "config.json";

impl ExperimentConfig {
    /// Reads `RUN_DIR/config.json`.
    pub fn load(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: not a pixelrnn run config: {e}", path.display())))
    }

    /// Writes `RUN_DIR/config.json` atomically.
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("config serializes");
        write_atomic(&run_dir.join(CONFIG_FILE), json.as_bytes())
    }
}

/// Writes `bytes` to `path` through `path.tmp`, fsync and rename: a crash leaves either the old
/// file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp_name = path.file_name().expect("a file path").to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_settings_are_checked() {
        let good = OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            grad_clip_norm: Some(1.0),
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
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-last.bin");
        write_atomic(&path, b"good").unwrap();
        let tmp = dir.path().join("checkpoint-last.bin.tmp");
        // Disk full: the temporary file is /dev/full, where every write fails with ENOSPC.
        if Path::new("/dev/full").exists() {
            std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
            let err = write_atomic(&path, b"new").unwrap_err().to_string();
            assert!(err.contains("checkpoint-last.bin.tmp") && err.to_lowercase().contains("space"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"good");
            assert!(!tmp.exists(), "the failed temporary file is removed");
        } else {
            eprintln!("skipped the disk-full case: /dev/full not present");
        }
        // Unwritable: the temporary name is taken by a folder.
        std::fs::create_dir(&tmp).unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
    }
}
