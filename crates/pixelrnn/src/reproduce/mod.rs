//! The paper's tables reproduced end to end: each model of a table trained in its own run
//! directory (resumable: an interrupted table continues where it stopped), scored on the
//! table's split, and the table written as `summary.json` with a plot of the training curves,
//! after every run.
//!
//! Layout under the output folder: `TABLE/RUN/` (an ordinary run directory, plus `eval.json`,
//! the `eval --json` line of its last checkpoint, and `result.json`, its row), `TABLE/summary.json`
//! and `TABLE/curves.svg`.

pub mod tables;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::data::Splits;
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::experiment::{DataConfig, ExperimentConfig, OptimizerConfig, OptimizerKind, TrainingConfig};
use crate::fsio::write_atomic;
use crate::run::{RunDir, Which};
use crate::train::{train, TrainEvent, TrainOptions};
pub use tables::{plan, Plan, RunSpec, Scale, TableName};

/// One row of a reproduced table: what ran, how long, what it reached, what the paper reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// Run directory name.
    pub run: String,
    /// The paper's label for the row.
    pub label: String,
    /// Architecture name.
    pub architecture: String,
    /// Layers, hidden width, output width.
    pub layers: usize,
    /// Hidden width h.
    pub hidden: usize,
    /// Output-stack width d.
    pub output_hidden: usize,
    /// Residual connections on.
    pub residual: bool,
    /// Learnable skip connections on.
    pub skip: bool,
    /// Optimizer steps trained.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Training images seen (steps x batch).
    pub images_seen: u64,
    /// Seconds spent in training steps (from the run's metrics; validation excluded).
    pub train_secs: f64,
    /// The split scored.
    pub split: String,
    /// Images scored.
    pub images: usize,
    /// Mean NLL, nats per image.
    pub nll_nats: f64,
    /// Bits per sub-pixel.
    pub bits_per_dim: f64,
    /// Its standard error over the images.
    pub stderr_bits_per_dim: f64,
    /// The paper's number (nats for binarized MNIST, bits/dim otherwise).
    pub paper: Option<f64>,
}

/// A reproduced table: `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `table4` etc.
    pub experiment: String,
    /// What it compares.
    pub title: String,
    /// Scale name.
    pub scale: Scale,
    /// Dataset.
    pub dataset: String,
    /// The split scored.
    pub split: String,
    /// The unit of `paper` and of the headline figure: `nats` or `bits/dim`.
    pub unit: String,
    /// What differs from the paper.
    pub note: String,
    /// The device the runs trained on.
    pub machine: String,
    /// Finished rows, in the table's order.
    pub rows: Vec<Row>,
    /// Whether every row is finished.
    pub complete: bool,
}

/// Progress of a table.
#[derive(Debug)]
pub enum TableEvent<'a> {
    /// A run starts training (`from_step` > 0: resumed).
    RunStarted {
        /// The run.
        run: &'a RunSpec,
        /// Its position, 1-based, and the number of runs.
        index: usize,
        /// Number of runs in the table.
        total: usize,
        /// The step it resumes from.
        from_step: u64,
    },
    /// The run's training loop reported.
    Training(&'a TrainEvent),
    /// The run is being scored.
    Scoring {
        /// The run.
        run: &'a RunSpec,
    },
    /// A row is finished (trained now, or found finished).
    RowDone {
        /// The row.
        row: &'a Row,
        /// Whether it was finished before this call.
        already: bool,
    },
}

/// How a table call ended.
#[derive(Debug)]
pub struct TableOutcome {
    /// The table as written to `summary.json`.
    pub summary: Summary,
    /// Whether it stopped on request before the end (run it again to continue).
    pub interrupted: bool,
}

/// Seconds spent in training steps, from the run's metrics (each step's batch over its
/// throughput): the same whether the run was resumed or not.
fn training_secs(run: &RunDir, batch_size: usize) -> Result<f64> {
    Ok(run
        .events()?
        .iter()
        .filter(|e| e.event == crate::run::EventKind::Step)
        .filter_map(|e| e.images_per_sec)
        .filter(|&ips| ips > 0.0)
        .map(|ips| batch_size as f64 / ips)
        .sum())
}

/// The validation curve (step, bits/dim) of a run, from its metrics (empty if it has none).
fn validation_curve(run: &RunDir) -> Vec<(f64, f64)> {
    run.events().map(|events| crate::run::curve(&events, crate::run::EventKind::Validation)).unwrap_or_default()
}

const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// Trains and scores every run of `plan` not finished yet under `out/TABLE/`, on `data`,
/// writing `summary.json` and `curves.svg` after each. `stop` interrupts (after a checkpoint).
#[allow(clippy::too_many_arguments)]
pub fn run_table(
    plan: &Plan,
    data: &Splits,
    data_dir: &Path,
    no_verify: bool,
    out: &Path,
    machine: &str,
    device: &Device,
    stop: &AtomicBool,
    observer: &mut dyn FnMut(&TableEvent),
) -> Result<TableOutcome> {
    let dir = out.join(plan.table.name());
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let split_set = data.get(plan.split)?;
    let mut rows = Vec::new();
    let mut interrupted = false;
    for (i, spec) in plan.runs.iter().enumerate() {
        let run = RunDir::new(dir.join(&spec.name));
        let result_path = run.path().join("result.json");
        // A finished row is kept if it is this plan's (same model, same steps).
        if let Ok(bytes) = std::fs::read(&result_path) {
            if let Ok(row) = serde_json::from_slice::<Row>(&bytes) {
                let same_model = run.load_config().is_ok_and(|c| c.model == spec.model);
                if row.steps == plan.steps && row.batch_size == plan.batch_size && same_model {
                    observer(&TableEvent::RowDone { row: &row, already: true });
                    rows.push(row);
                    continue;
                }
            }
        }
        let config = ExperimentConfig {
            model: spec.model.clone(),
            data: DataConfig {
                dataset: plan.dataset,
                data_dir: Some(data_dir.to_path_buf()),
                valid_size: None,
                no_verify,
            },
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Adam,
                learning_rate: 1e-3,
                lr_decay: 1.0,
                grad_clip_norm: None,
                epsilon: None,
                warmup_steps: 0,
                cosine_steps: None,
            },
            training: TrainingConfig {
                batch_size: plan.batch_size,
                steps: plan.steps,
                seed: 1,
                valid_every: plan.valid_every,
                valid_limit: Some(plan.valid_limit),
                checkpoint_every: plan.valid_every,
                batch_order: None,
                init_weights: None,
                ema_decay: None,
                dropout: None,
                log_every: 1,
            },
        };
        let last = run.checkpoint_path(Which::Last);
        let resume = last.is_file();
        if !resume && run.path().exists() {
            // Stopped before its first checkpoint: start it afresh, without its partial metrics;
            // under the run's lock, so never the files of another process training there now.
            let owner = run.lock()?;
            run.clear(&owner)?;
        }
        let from_step = if resume { crate::checkpoint::load(&last)?.header.step } else { 0 };
        observer(&TableEvent::RunStarted { run: spec, index: i + 1, total: plan.runs.len(), from_step });
        let options = TrainOptions { resume, ..TrainOptions::default() };
        let outcome =
            train(&config, data, run.path(), &options, device, stop, &mut |e| observer(&TableEvent::Training(e)))?;
        if outcome.interrupted {
            interrupted = true;
            break;
        }
        observer(&TableEvent::Scoring { run: spec });
        let (_, model, _) = run.load_model(Which::Last, device)?;
        let mut report = evaluate(
            &model,
            split_set,
            (plan.dataset.name(), plan.split.name()),
            None,
            plan.batch_size.max(32),
            device,
            &mut |_, _| {},
        )?;
        report.per_image_nats = None;
        write_atomic(&run.path().join("eval.json"), serde_json::to_string(&report).expect("serializes").as_bytes())?;
        let m = &spec.model;
        let row = Row {
            run: spec.name.clone(),
            label: spec.label.clone(),
            architecture: m.architecture.name().into(),
            layers: m.num_layers,
            hidden: m.hidden_channels,
            output_hidden: m.output_hidden_channels,
            residual: m.residual,
            skip: m.skip,
            steps: plan.steps,
            batch_size: plan.batch_size,
            images_seen: plan.steps * plan.batch_size as u64,
            train_secs: training_secs(&run, plan.batch_size)?,
            split: plan.split.name().into(),
            images: report.images,
            nll_nats: report.nll_nats,
            bits_per_dim: report.bits_per_dim,
            stderr_bits_per_dim: report.stderr_bits_per_dim,
            paper: spec.paper,
        };
        write_atomic(&result_path, serde_json::to_string_pretty(&row).expect("serializes").as_bytes())?;
        observer(&TableEvent::RowDone { row: &row, already: false });
        rows.push(row);
        write_table(plan, &dir, machine, &rows)?;
    }
    let summary = write_table(plan, &dir, machine, &rows)?;
    Ok(TableOutcome { summary, interrupted })
}

/// `summary.json` and `curves.svg` of the rows so far.
fn write_table(plan: &Plan, dir: &Path, machine: &str, rows: &[Row]) -> Result<Summary> {
    let binary = plan.dataset.image_spec().is_some_and(|s| s.is_binary());
    let summary = Summary {
        experiment: plan.table.name().into(),
        title: plan.title.clone(),
        scale: plan.scale,
        dataset: plan.dataset.name().into(),
        split: plan.split.name().into(),
        unit: if binary { "nats" } else { "bits/dim" }.into(),
        note: plan.note.clone(),
        machine: machine.into(),
        rows: rows.to_vec(),
        complete: rows.len() == plan.runs.len(),
    };
    write_atomic(&dir.join("summary.json"), serde_json::to_string_pretty(&summary).expect("serializes").as_bytes())?;
    let curves: Vec<(String, Vec<(f64, f64)>)> =
        plan.runs.iter().map(|r| (r.label.clone(), validation_curve(&RunDir::new(dir.join(&r.name))))).collect();
    let series: Vec<crate::plot::Series> = curves
        .iter()
        .enumerate()
        .map(|(i, (label, pts))| (label.as_str(), COLOURS[i % COLOURS.len()], &pts[..]))
        .collect();
    let svg = crate::plot::line_chart("validation bits/dim", "step", &series);
    write_atomic(&dir.join("curves.svg"), svg.as_bytes())?;
    Ok(summary)
}
