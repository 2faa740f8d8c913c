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
use crate::models::PixelRnn;

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
}

impl RunDir {
    /// The run directory at `path` (nothing is read or created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
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
        parse_config(&path, &crate::data::files::read_file(&path)?)
    }

    /// Writes `config.json` atomically.
    pub fn save_config(&self, config: &ExperimentConfig) -> Result<()> {
        let json = serde_json::to_string_pretty(config).expect("config serializes");
        write_atomic(&self.config_path(), json.as_bytes())
    }

    /// Rebuilds the run's model from `config.json` and loads the chosen checkpoint (falling back
    /// from `best` to `last` when the run never validated). Returns the config, the model and
    /// the checkpoint's path.
    pub fn load_model(&self, which: Which, device: &Device) -> Result<(ExperimentConfig, PixelRnn, PathBuf)> {
        let config = self.load_config()?;
        let mut path = self.checkpoint_path(which);
        if which == Which::Best && !path.is_file() {
            path = self.checkpoint_path(Which::Last);
        }
        if !path.is_file() {
            return Err(Error::Checkpoint { path, reason: "missing (has this run saved a checkpoint yet?)".into() });
        }
        let ckpt = checkpoint::load(&path)?;
        let model = config.model.init(device, config.training.seed)?;
        let model = ckpt.apply(&path, &config.model, config.data.dataset, model)?;
        Ok((config, model, path))
    }

    /// Removes what a run wrote (config, checkpoints, metrics, plot), for a fresh run in the
    /// same directory; other files are left alone.
    pub fn clear(&self) -> Result<()> {
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
    let config: ExperimentConfig = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    config.model.validate().map_err(|e| bad(e.to_string()))?;
    config.optimizer.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
}

/// Writes `bytes` to `path` through a temporary file beside it, fsync and rename: a crash leaves
/// either the old file or the new one, never a torn one. The temporary name is unique to this
/// process and call (`.NAME.PID.N.tmp`), so two writers never share one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().expect("a file path").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    write_through(path, &tmp, bytes)
}

/// [`write_atomic`] through the temporary file `tmp`.
fn write_through(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let result = (|| {
        let mut file = std::fs::File::create(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::io(tmp, e));
    }
    std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))
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
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-last.bin");
        write_atomic(&path, b"good").unwrap();
        let tmp = dir.path().join("checkpoint-last.bin.tmp");
        // Disk full: the temporary file is /dev/full, where every write fails with ENOSPC.
        if Path::new("/dev/full").exists() {
            std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
            let err = write_through(&path, &tmp, b"new").unwrap_err().to_string();
            assert!(err.contains("checkpoint-last.bin.tmp") && err.to_lowercase().contains("space"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"good");
            assert!(!tmp.exists(), "the failed temporary file is removed");
        } else {
            eprintln!("skipped the disk-full case: /dev/full not present");
        }
        // Unwritable: the temporary name is taken by a folder.
        std::fs::create_dir(&tmp).unwrap();
        assert!(write_through(&path, &tmp, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
        // Unique temporary names: writers do not share one, and none is left behind.
        write_atomic(&path, b"newer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".checkpoint-last.bin."))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
