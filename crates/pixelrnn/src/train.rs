//! Maximum-likelihood training (§5.2) with validation, best/last checkpoints, metrics log and
//! a loss plot; resumable to the same parameters as an uninterrupted run.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, RmsPropConfig};
use burn::prelude::*;
use serde::Serialize;

use crate::checkpoint::{self, CheckpointHeader};
use crate::data::{ShuffledBatches, Splits};
use crate::error::{Error, Result};
use crate::eval::{checkpoint_path, per_image_nll, summarize, Which};
use crate::experiment::{write_atomic, ExperimentConfig, OptimizerKind};
use crate::likelihood::bits_per_dim;
use crate::models::PixelRnn;

/// What the training loop reports to its observer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// Training starts at `step` (0, or the resumed step) of `total_steps`.
    Started {
        /// First step to run.
        step: u64,
        /// Last step.
        total_steps: u64,
    },
    /// One optimizer step finished.
    Step {
        /// Steps completed.
        step: u64,
        /// Mean training NLL of the batch, nats per image.
        loss_nats: f64,
        /// The same in bits/dim.
        bits_per_dim: f64,
        /// Learning rate used.
        lr: f64,
        /// Throughput of this step.
        images_per_sec: f64,
    },
    /// A validation pass finished.
    Validation {
        /// Steps completed.
        step: u64,
        /// Mean validation NLL, nats per image.
        nll_nats: f64,
        /// Bits/dim.
        bits_per_dim: f64,
        /// Images evaluated.
        images: usize,
        /// Whether this is the best so far (and was saved as `checkpoint-best.bin`).
        best: bool,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// Steps completed.
        step: u64,
    },
}

/// How a training call ended.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Steps completed.
    pub step: u64,
    /// Whether it stopped early on request (Ctrl-C).
    pub interrupted: bool,
    /// Best validation bits/dim, if validated.
    pub best_valid_bits_per_dim: Option<f64>,
}

fn optimizer(config: &ExperimentConfig) -> ModuleOptimizer {
    let clip = config.optimizer.grad_clip_norm.map(GradientClippingConfig::Norm);
    match config.optimizer.kind {
        OptimizerKind::Adam => AdamConfig::new().with_grad_clipping(clip).init(),
        // §5.2: RMSProp. Momentum off: plain RMSProp as in the paper's era.
        OptimizerKind::Rmsprop => {
            RmsPropConfig::new().with_momentum(0.0).with_epsilon(1e-8).with_grad_clipping(clip).init()
        }
    }
}

/// Trains `config` in `run_dir` on `data`, resuming from `checkpoint-last.bin` when `resume`.
/// `stop` is polled every step; when set, a checkpoint is written and the call returns.
pub fn train(
    config: &ExperimentConfig,
    data: &Splits,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    stop: &AtomicBool,
    observer: &mut dyn FnMut(&TrainEvent),
) -> Result<TrainOutcome> {
    config.model.validate()?;
    config.optimizer.validate()?;
    if data.train.spec() != config.model.image {
        return Err(Error::Config(format!(
            "the model is built for {:?} but the dataset has {:?}",
            config.model.image,
            data.train.spec()
        )));
    }
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let last_path = checkpoint_path(run_dir, Which::Last);
    let ad_device = device.clone().autodiff();
    let mut model: PixelRnn = config.model.init(&ad_device, config.training.seed)?;
    let mut optim = optimizer(config);
    let mut step = 0u64;
    let mut best: Option<f64> = None;
    if resume {
        let saved = ExperimentConfig::load(run_dir)?;
        // What defines the trajectory must match; how long, how often to validate and to
        // checkpoint may change.
        let differs = [
            ("model", saved.model != config.model),
            ("dataset", saved.data != config.data),
            ("optimizer", saved.optimizer != config.optimizer),
            ("batch size", saved.training.batch_size != config.training.batch_size),
            ("seed", saved.training.seed != config.training.seed),
        ];
        if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
            return Err(Error::Config(format!(
                "--resume: the {what} differs from the run in {}; only --steps/--epochs, validation and checkpoint settings may change",
                run_dir.join(crate::experiment::CONFIG_FILE).display()
            )));
        }
        let ckpt = checkpoint::load(&last_path)?;
        model = ckpt.apply(&last_path, &config.model, config.data.dataset, model)?;
        if !ckpt.optimizer.is_empty() {
            optim = optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(ckpt.optimizer.clone())).map_err(|e| {
                Error::Checkpoint { path: last_path.clone(), reason: format!("unreadable optimizer state: {e}") }
            })?;
        }
        step = ckpt.header.step;
        best = ckpt.header.best_valid_bits_per_dim;
    } else if last_path.exists() {
        return Err(Error::Config(format!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            run_dir.display()
        )));
    }
    config.save(run_dir)?;

    let t = &config.training;
    let mut batches = ShuffledBatches::new(data.train.len(), t.batch_size, t.seed);
    let dims = config.model.image.dims();
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(|e| Error::io(&metrics_path, e))?;
    let mut log = |event: &TrainEvent, observer: &mut dyn FnMut(&TrainEvent)| -> Result<()> {
        observer(event);
        let line = serde_json::to_string(event).expect("events serialize");
        writeln!(metrics, "{line}").map_err(|e| Error::io(&metrics_path, e))
    };
    log(&TrainEvent::Started { step, total_steps: t.steps }, observer)?;

    let save = |model: &PixelRnn, optim: &ModuleOptimizer, step: u64, best: Option<f64>, which: Which| {
        let header = CheckpointHeader {
            model: config.model.clone(),
            dataset: config.data.dataset,
            step,
            seed: t.seed,
            best_valid_bits_per_dim: best,
        };
        checkpoint::save(&checkpoint_path(run_dir, which), &header, model, Some(optim))
    };
    let mut interrupted = false;
    while step < t.steps {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let started = Instant::now();
        let indices = batches.batch_at(step);
        let images = data.train.batch(indices, &ad_device);
        let loss = model.nll(images).mean(); // nats per image
        let loss_value: f64 = loss.clone().into_scalar::<f32>() as f64;
        if !loss_value.is_finite() {
            return Err(Error::Diverged { step: step + 1, loss: loss_value });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = config.optimizer.learning_rate * config.optimizer.lr_decay.powf(step as f64);
        model = optim.step(lr, model, grads);
        step += 1;
        let secs = started.elapsed().as_secs_f64();
        log(
            &TrainEvent::Step {
                step,
                loss_nats: loss_value,
                bits_per_dim: bits_per_dim(loss_value, dims),
                lr,
                images_per_sec: indices.len() as f64 / secs.max(1e-9),
            },
            observer,
        )?;
        let at_end = step == t.steps;
        if (t.valid_every > 0 && step.is_multiple_of(t.valid_every)) || at_end {
            if let Some(valid) = &data.valid {
                let nats = per_image_nll(&model.valid(), valid, t.valid_limit, t.batch_size, device, &mut |_, _| {})?;
                let (nll, bpd, _) = summarize(&nats, dims);
                let is_best = best.is_none_or(|b| bpd < b);
                if is_best {
                    best = Some(bpd);
                    save(&model, &optim, step, best, Which::Best)?;
                }
                log(
                    &TrainEvent::Validation {
                        step,
                        nll_nats: nll,
                        bits_per_dim: bpd,
                        images: nats.len(),
                        best: is_best,
                    },
                    observer,
                )?;
            }
        }
        if (t.checkpoint_every > 0 && step.is_multiple_of(t.checkpoint_every)) || at_end {
            save(&model, &optim, step, best, Which::Last)?;
            log(&TrainEvent::Checkpoint { step }, observer)?;
            write_loss_plot(run_dir)?;
        }
    }
    if interrupted {
        save(&model, &optim, step, best, Which::Last)?;
        log(&TrainEvent::Checkpoint { step }, observer)?;
        write_loss_plot(run_dir)?;
    }
    Ok(TrainOutcome { step, interrupted, best_valid_bits_per_dim: best })
}

/// Draws `RUN_DIR/loss.svg` from `metrics.jsonl`: training bits/dim per step (and validation
/// points).
pub fn write_loss_plot(run_dir: &Path) -> Result<()> {
    let path = run_dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(step), Some(bpd)) = (v["step"].as_f64(), v["bits_per_dim"].as_f64()) else { continue };
        match v["event"].as_str() {
            Some("step") => train.push((step, bpd)),
            Some("validation") => valid.push((step, bpd)),
            _ => {}
        }
    }
    let svg =
        crate::plot::line_chart("bits/dim", "step", &[("train", "#1f77b4", &train), ("valid", "#d62728", &valid)]);
    write_atomic(&run_dir.join("loss.svg"), svg.as_bytes())
}
