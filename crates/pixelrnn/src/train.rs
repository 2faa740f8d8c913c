//! Maximum-likelihood training (§5.2) with validation, best/last checkpoints, metrics log and
//! a loss plot; resumable to the same parameters as an uninterrupted run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, RmsPropConfig};
use burn::prelude::*;
use serde::Serialize;

use crate::checkpoint::{self, CheckpointHeader};
use crate::data::{read_batch_order, BatchOrder, ShuffledBatches, Splits};
use crate::error::{Error, Result};
use crate::eval::{per_image_nll, summarize};
use crate::experiment::{ExperimentConfig, OptimizerKind};
use crate::interop::{self, Layout};
use crate::likelihood::bits_per_dim;
use crate::models::PixelRnn;
use crate::run::{RunDir, Which};

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

/// How a training call runs, beyond the run's config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from `checkpoint-last.bin`.
    pub resume: bool,
    /// Write the gradients of the first step run (the mean loss's, before clipping) to this
    /// safetensors file in this layout: what the parity harness compares with the twin's.
    pub gradients_out: Option<(PathBuf, Layout)>,
}

fn optimizer(config: &ExperimentConfig) -> ModuleOptimizer {
    let clip = config.optimizer.grad_clip_norm.map(GradientClippingConfig::Norm);
    match config.optimizer.kind {
        // Deviation: the paper trains with RMSProp (§5.2); Adam (betas 0.9 / 0.999, epsilon
        // Burn's 1e-5 unless `--epsilon` says) is our default, `--optimizer rmsprop` the paper's.
        OptimizerKind::Adam => {
            let adam = AdamConfig::new().with_grad_clipping(clip);
            match config.optimizer.epsilon {
                Some(eps) => adam.with_epsilon(eps as f32).init(),
                None => adam.init(),
            }
        }
        // §5.2: RMSProp. Momentum off: plain RMSProp as in the paper's era.
        OptimizerKind::Rmsprop => RmsPropConfig::new()
            .with_momentum(0.0)
            .with_epsilon(config.optimizer.epsilon.unwrap_or(1e-8) as f32)
            .with_grad_clipping(clip)
            .init(),
    }
}

/// The model a fresh run starts from: the seeded initialisation, or `init_weights`.
fn initial_model(config: &ExperimentConfig, device: &Device) -> Result<PixelRnn> {
    let model = config.model.init(device, config.training.seed)?;
    let Some(path) = &config.training.init_weights else { return Ok(model) };
    let bytes = crate::data::files::read_file(path)?;
    interop::import_as(&bytes, &config.model, model).map_err(|e| Error::Weights(format!("{}: {e}", path.display())))
}

/// Trains `config` in `run_dir` on `data`, resuming from `checkpoint-last.bin` when `resume`.
/// `stop` is polled every step; when set, a checkpoint is written and the call returns.
pub fn train(
    config: &ExperimentConfig,
    data: &Splits,
    run_dir: &Path,
    options: &TrainOptions,
    device: &Device,
    stop: &AtomicBool,
    observer: &mut dyn FnMut(&TrainEvent),
) -> Result<TrainOutcome> {
    config.model.validate()?;
    config.optimizer.validate()?;
    if data.train.is_empty() {
        return Err(Error::Config("the training split is empty: nothing to train on".into()));
    }
    if config.training.valid_limit == Some(0) {
        return Err(Error::Config("a validation limit of 0 images would validate on nothing".into()));
    }
    if config.training.batch_size == 0 {
        return Err(Error::Config("the batch size must be at least 1".into()));
    }
    if data.train.spec() != config.model.image {
        return Err(Error::Config(format!(
            "the model is built for {:?} but the dataset has {:?}",
            config.model.image,
            data.train.spec()
        )));
    }
    crate::resources::check_fits(
        &format!("training this model at batch {}", config.training.batch_size),
        config.model.training_bytes(config.training.batch_size),
        crate::resources::available_memory(),
    )?;
    let run = RunDir::new(run_dir);
    run.create()?;
    let _owner = run.lock()?;
    let last_path = run.checkpoint_path(Which::Last);
    let ad_device = device.clone().autodiff();
    let t = &config.training;
    // Checked before anything is written: a listed order must cover every step.
    let mut batches = match &t.batch_order {
        Some(path) => BatchOrder::Listed(read_batch_order(path, data.train.len(), t.batch_size, t.steps)?),
        None => BatchOrder::Shuffled(ShuffledBatches::new(data.train.len(), t.batch_size, t.seed)),
    };
    let resume = options.resume;
    let mut model: PixelRnn =
        if resume { config.model.init(&ad_device, t.seed)? } else { initial_model(config, &ad_device)? };
    let mut optim = optimizer(config);
    let mut step = 0u64;
    let mut best: Option<f64> = None;
    if resume {
        let saved = run.load_config()?;
        // What defines the trajectory must match; how long, how often to validate and to
        // checkpoint may change.
        let differs = [
            ("model", saved.model != config.model),
            ("dataset", saved.data != config.data),
            ("optimizer", saved.optimizer != config.optimizer),
            ("batch size", saved.training.batch_size != config.training.batch_size),
            ("seed", saved.training.seed != config.training.seed),
            ("batch order", saved.training.batch_order != config.training.batch_order),
            ("initial weights", saved.training.init_weights != config.training.init_weights),
        ];
        if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
            return Err(Error::Config(format!(
                "cannot resume: the {what} differs from the run in {}; only the number of steps, validation and checkpoint settings may change",
                run.config_path().display()
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
        run.truncate_metrics(step)?;
    } else if last_path.exists() {
        return Err(Error::Config(format!(
            "{} already holds a run; resume it or choose another directory",
            run_dir.display()
        )));
    }
    run.save_config(config)?;

    let dims = config.model.image.dims();
    let mut metrics = run.open_metrics()?;
    let mut log = |event: &TrainEvent, observer: &mut dyn FnMut(&TrainEvent)| -> Result<()> {
        observer(event);
        metrics.append(event)
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
        checkpoint::save(&run.checkpoint_path(which), &header, model, Some(optim))
    };
    let mut interrupted = false;
    let first_step = step;
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
        if let Some((path, layout)) = options.gradients_out.as_ref().filter(|_| step == first_step) {
            let bytes =
                interop::export_gradients(&interop::gradients_as_model(&model, &grads), &config.model, *layout)?;
            crate::run::write_atomic(path, &bytes)?;
        }
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
            run.write_loss_plot()?;
        }
    }
    if interrupted {
        save(&model, &optim, step, best, Which::Last)?;
        log(&TrainEvent::Checkpoint { step }, observer)?;
        run.write_loss_plot()?;
    }
    Ok(TrainOutcome { step, interrupted, best_valid_bits_per_dim: best })
}
