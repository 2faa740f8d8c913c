//! The run directory's contract, in one place: what `train` writes there and what every other
//! command reads back.
//!
//! - `config.json`: the resolved [`ExperimentConfig`], written before the first step;
//! - `checkpoint-last.bin` (every `checkpoint_every` steps, at the end and when stopped) and
//!   `checkpoint-best.bin` (best validation bits/dim), see [`crate::checkpoint`];
//! - `metrics.jsonl`: one JSON event per step, validation and checkpoint;
//! - `loss.svg`: the bits/dim curve, redrawn at each checkpoint.
//!
//! Every file but the metrics log is written atomically ([`write_atomic`]): a crash leaves the
//! previous version or the new one, never a torn file.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::experiment::ExperimentConfig;
pub use crate::fsio::write_atomic;
use crate::models::PixelRnn;

/// A run's model as loaded by [`RunDir::load_weights`].
pub struct LoadedRun {
    /// The run's config.
    pub config: ExperimentConfig,
    /// The model with the chosen weights.
    pub model: PixelRnn,
    /// The checkpoint it came from.
    pub path: PathBuf,
    /// The weight average used, if the weights are the average.
    pub average: Option<crate::ema::AverageInfo>,
    /// The checkpoint's step.
    pub step: u64,
}

/// File name of the resolved config in a run directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// File name of the loss curve.
pub const LOSS_PLOT_FILE: &str = "loss.svg";

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The one with the best validation NLL.
    Best,
    /// The most recent.
    Last,
}

impl Which {
    /// Its file name in the run directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Which::Best => "checkpoint-best.bin",
            Which::Last => "checkpoint-last.bin",
        }
    }
}

/// A run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
    /// Read checkpoints of format 1 (without a checksum) too.
    allow_unchecked: bool,
}

impl RunDir {
    /// The run directory at `path` (nothing is read or created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), allow_unchecked: false }
    }

    /// The same directory, its checkpoints of format 1 (written before they carried a checksum)
    /// read too when `allow` ([`checkpoint::load_unchecked_too`]).
    pub fn allowing_unchecked(self, allow: bool) -> Self {
        Self { allow_unchecked: allow, ..self }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    /// Path of a checkpoint.
    pub fn checkpoint_path(&self, which: Which) -> PathBuf {
        self.path.join(which.file_name())
    }

    /// Path of the metrics log.
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }

    /// Creates the directory if needed.
    pub fn create(&self) -> Result<()> {
        if let Some(what) = crate::fsio::not_a_regular_file(&self.path).filter(|_| !self.path.is_dir()) {
            return Err(Error::Config(format!("{} cannot be a run directory: {what}", self.path.display())));
        }
        if self.path.is_file() {
            return Err(Error::Config(format!(
                "{} cannot be a run directory: it is a file; choose a folder (new or holding a run)",
                self.path.display()
            )));
        }
        std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))
    }

    /// Takes the run directory's advisory lock (`RUN_DIR/.lock`, holding the owner's PID) for
    /// as long as the returned guard lives: one trainer per run directory. A second one is
    /// refused with the holder's PID.
    pub fn lock(&self) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        let path = self.path.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Config(format!(
                    "{} is in use by another trainer (process {}); wait for it or choose another directory",
                    self.path.display(),
                    holder.trim()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let written =
            file.set_len(0).and_then(|()| file.rewind()).and_then(|()| write!(file, "{}", std::process::id()));
        written.map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _file: file })
    }

    /// Reads `config.json`.
    pub fn load_config(&self) -> Result<ExperimentConfig> {
        let path = self.config_path();
        parse_config(&path, &crate::fsio::read_file(&path)?)
    }

    /// Writes `config.json` atomically.
    pub fn save_config(&self, config: &ExperimentConfig) -> Result<()> {
        let json = serde_json::to_string_pretty(config).expect("config serializes");
        write_atomic(&self.config_path(), json.as_bytes())
    }

    /// Rebuilds the run's model from `config.json` and loads the chosen checkpoint (falling back
    /// from `best` to `last` when the run never validated), with its weight average when it has
    /// one ([`crate::ema`]). Returns the config, the model and the checkpoint's path.
    pub fn load_model(&self, which: Which, device: &Device) -> Result<(ExperimentConfig, PixelRnn, PathBuf)> {
        let loaded = self.load_weights(which, true, device)?;
        Ok((loaded.config, loaded.model, loaded.path))
    }

    /// [`Self::load_model`], choosing the weights: the average when the checkpoint has one and
    /// `averaged` asks for it, else the raw weights; says which.
    pub fn load_weights(&self, which: Which, averaged: bool, device: &Device) -> Result<LoadedRun> {
        let config = self.load_config()?;
        let mut path = self.checkpoint_path(which);
        if which == Which::Best && !path.is_file() {
            path = self.checkpoint_path(Which::Last);
        }
        if !path.is_file() {
            return Err(Error::Checkpoint { path, reason: "missing (has this run saved a checkpoint yet?)".into() });
        }
        let ckpt = checkpoint::load_with(&path, self.allow_unchecked)?;
        let model = config.model.init(device, config.training.seed)?;
        let (model, average) = ckpt.apply_weights(&path, &config.model, config.data.dataset, model, averaged)?;
        Ok(LoadedRun { config, model, path, average, step: ckpt.header.step })
    }

    /// The first file of a run found in the directory (a checkpoint, `config.json`,
    /// `metrics.jsonl`), if any: a directory holding one is a run that a fresh start would
    /// destroy (a crash between checkpoints can leave `checkpoint-best.bin` alone).
    pub fn run_file(&self) -> Option<PathBuf> {
        [Which::Last.file_name(), Which::Best.file_name(), CONFIG_FILE, METRICS_FILE]
            .iter()
            .map(|name| self.path.join(name))
            .find(|path| std::fs::symlink_metadata(path).is_ok())
    }

    /// The files of the run that only `train` may write, each with what it is: what other
    /// commands must never take as their output (see [`crate::fsio::refuse_overwriting`]).
    pub fn own_files(&self) -> Vec<(PathBuf, &'static str)> {
        vec![
            (self.checkpoint_path(Which::Best), "the run's best checkpoint"),
            (self.checkpoint_path(Which::Last), "the run's last checkpoint"),
            (self.config_path(), "the run's config"),
            (self.metrics_path(), "the run's metrics log"),
        ]
    }

    /// Removes what a run wrote (config, checkpoints, metrics, plot), for a fresh run in the
    /// same directory; other files are left alone. Only under the run's lock (`_owner`), so
    /// never the files of a trainer still running there.
    pub fn clear(&self, _owner: &RunLock) -> Result<()> {
        let files = [CONFIG_FILE, METRICS_FILE, LOSS_PLOT_FILE, Which::Best.file_name(), Which::Last.file_name()];
        for name in files {
            let path = self.path.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Cuts the metrics log back to the events of steps up to `step` (what a resumed run
    /// repeats after its last checkpoint goes), dropping lines that are not events (a damaged
    /// log does not stop training).
    pub fn truncate_metrics(&self, step: u64) -> Result<()> {
        let path = self.metrics_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let kept: String = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| LoggedEvent::parse(line).and_then(|e| e.step).is_some_and(|s| s <= step))
            .map(|line| format!("{line}\n"))
            .collect();
        write_atomic(&path, kept.as_bytes())
    }

    /// Opens the metrics log for appending.
    pub fn open_metrics(&self) -> Result<MetricsLog> {
        let path = self.metrics_path();
        let file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(MetricsLog { path, file })
    }

    /// The events of `metrics.jsonl` in order, skipping lines that are not events (a damaged
    /// log still plots); an error if the log cannot be read.
    pub fn events(&self) -> Result<Vec<LoggedEvent>> {
        let path = self.metrics_path();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(String::from_utf8_lossy(&bytes).lines().filter_map(LoggedEvent::parse).collect())
    }

    /// Draws `loss.svg` from `metrics.jsonl`: training bits/dim per step (and validation
    /// points).
    pub fn write_loss_plot(&self) -> Result<()> {
        let events = self.events()?;
        let (train, valid) = (curve(&events, EventKind::Step), curve(&events, EventKind::Validation));
        let svg =
            crate::plot::line_chart("bits/dim", "step", &[("train", "#1f77b4", &train), ("valid", "#d62728", &valid)]);
        write_atomic(&self.path.join(LOSS_PLOT_FILE), svg.as_bytes())
    }
}

/// The kind of a `metrics.jsonl` line: its `event` tag, as [`crate::train::TrainEvent`]
/// writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Training started (or resumed).
    Started,
    /// One optimizer step.
    Step,
    /// A validation pass.
    Validation,
    /// A checkpoint was written.
    Checkpoint,
    /// Data-parallel replicas were found identical.
    ReplicasChecked,
    /// A tag this version does not know (a log written by a newer one).
    #[serde(other)]
    Other,
}

/// What the readers of `metrics.jsonl` need of one event line (the writer is
/// [`crate::train::TrainEvent`]; other fields are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedEvent {
    /// Which event it is.
    pub event: EventKind,
    /// The step it belongs to.
    pub step: Option<u64>,
    /// Training (step) or validation bits/dim.
    pub bits_per_dim: Option<f64>,
    /// Training throughput of a step.
    pub images_per_sec: Option<f64>,
}

impl LoggedEvent {
    /// One line of the log, or `None` if it is not an event (a torn or foreign line).
    pub fn parse(line: &str) -> Option<LoggedEvent> {
        serde_json::from_str(line).ok()
    }
}

/// The (step, bits/dim) points of the events of one kind (training steps or validations).
pub fn curve(events: &[LoggedEvent], kind: EventKind) -> Vec<(f64, f64)> {
    events.iter().filter(|e| e.event == kind).filter_map(|e| Some((e.step? as f64, e.bits_per_dim?))).collect()
}

/// The run directory's lock, held until dropped (see [`RunDir::lock`]).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// The run's `metrics.jsonl`, open for appending.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Appends `event` as one JSON line.
    pub fn append(&mut self, event: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(event).expect("events serialize");
        writeln!(self.file, "{line}").map_err(|e| Error::io(&self.path, e))
    }
}

/// A run's `config.json` from its bytes (`path` names it in errors): JSON of the right shape,
/// and a model and optimizer that pass their checks (sizes within bounds).
pub fn parse_config(path: &Path, bytes: &[u8]) -> Result<ExperimentConfig> {
    let bad = |reason: String| Error::Config(format!("{}: not a pixelrnn run config: {reason}", path.display()));
    // A UTF-8 byte-order mark (what some editors put first) is not part of the JSON.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let config: ExperimentConfig = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    config.model.validate().map_err(|e| bad(e.to_string()))?;
    config.optimizer.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_per_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let held = run.lock().unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains("in use by another trainer") && err.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        run.lock().unwrap();
    }

    #[test]
    fn the_metrics_log_is_read_once_for_every_reader() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert!(run.events().unwrap_err().to_string().contains(METRICS_FILE));
        let log = concat!(
            "{\"event\":\"step\",\"step\":1,\"loss_nats\":9.0,\"bits_per_dim\":2.5,\"images_per_sec\":40.0}\n",
            "{\"event\":\"validation\",\"step\":1,\"bits_per_dim\":2.25}\n",
            "{\"event\":\"step\",\"step\":2,\"bits_per_dim\":2.0,\"images_per_sec\":20.0}\n",
            "{\"event\":\"checkpoint\",\"step\":2}\n",
            "{\"event\":\"step\",\"st",
        );
        std::fs::write(run.metrics_path(), log).unwrap();
        let events = run.events().unwrap();
        assert_eq!(events.len(), 4, "the torn last line is skipped");
        assert_eq!(curve(&events, EventKind::Step), vec![(1.0, 2.5), (2.0, 2.0)]);
        assert_eq!(curve(&events, EventKind::Validation), vec![(1.0, 2.25)]);
        assert_eq!(events[2].images_per_sec, Some(20.0));
        run.write_loss_plot().unwrap();
        assert!(std::fs::read_to_string(dir.path().join(LOSS_PLOT_FILE)).unwrap().contains("<svg"));
        run.truncate_metrics(1).unwrap();
        let kept = run.events().unwrap();
        assert_eq!(kept.iter().map(|e| e.event).collect::<Vec<_>>(), [EventKind::Step, EventKind::Validation]);
        // A tag of a newer version is an event of another kind, not a damaged line.
        let foreign = LoggedEvent::parse("{\"event\":\"learning_rate_changed\",\"step\":3}").unwrap();
        assert_eq!((foreign.event, foreign.step), (EventKind::Other, Some(3)));
    }

    #[test]
    fn a_config_written_with_a_byte_order_mark_reads_as_without() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let image = crate::image_spec::ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
        let model = crate::models::ModelConfig::preset(
            crate::models::Preset::Tiny,
            crate::models::Architecture::PixelCnn,
            image,
        )
        .unwrap();
        let json = format!(
            r#"{{"model": {}, "data": {{"dataset": "binarized-mnist", "valid_size": null}},
               "optimizer": {{"kind": "adam", "learning_rate": 0.001, "lr_decay": 1.0, "grad_clip_norm": null}},
               "training": {{"batch_size": 2, "steps": 1, "seed": 0, "valid_every": 0, "valid_limit": null, "checkpoint_every": 0}}}}"#,
            serde_json::to_string(&model).unwrap()
        );
        let plain = parse_config(&run.config_path(), json.as_bytes()).unwrap();
        assert_eq!(plain.data.data_dir, None, "a config without a data folder uses the default one");
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(json.as_bytes());
        assert_eq!(parse_config(&run.config_path(), &bom).unwrap(), plain);
    }
}
