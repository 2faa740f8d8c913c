//! Maximum-likelihood training (§5.2) with validation, best/last checkpoints, metrics log and
//! a loss plot; resumable to the same parameters as an uninterrupted run. Data-parallel over
//! the ranks of a [`Collective`] (see [`crate::distributed`]): one loop, whatever the number
//! of ranks.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, RmsPropConfig};
use burn::prelude::*;
use serde::Serialize;

use crate::checkpoint::{self, CheckpointHeader};
use crate::data::{read_batch_order, BatchOrder, ShuffledBatches, Splits};
use crate::distributed::{self, flat, Collective, Single};
use crate::ema::WeightAverage;
use crate::error::{Error, Result};
use crate::eval::{per_image_nll, summarize};
use crate::experiment::{ExperimentConfig, OptimizerKind};
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
        /// Data-parallel training: seconds this step spent summing the gradients over the
        /// ranks (flatten, all-reduce, unflatten).
        #[serde(skip_serializing_if = "Option::is_none")]
        gradient_sum_secs: Option<f64>,
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
    /// Data-parallel training: every rank's parameters were found bitwise identical to rank
    /// 0's (SHA-256 of the parameters), as they are at every checkpoint.
    ReplicasChecked {
        /// Steps completed.
        step: u64,
        /// The number of ranks compared.
        ranks: usize,
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

/// The weights a fresh run starts from, given the seeded initialisation (what `train
/// --init-weights` passes: the caller reads the file, the loop does not know its format).
pub type InitialWeights = Arc<dyn Fn(PixelRnn) -> Result<PixelRnn> + Send + Sync>;

/// Told the gradients of the first step run (the mean loss's, before clipping), as a model whose
/// parameters hold them ([`crate::models::parameters::gradients_as_model`]): what the parity
/// harness writes out and compares with the twin's.
pub type GradientsObserver = Arc<dyn Fn(&PixelRnn) -> Result<()> + Send + Sync>;

/// How a training call runs, beyond the run's config.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Continue from `checkpoint-last.bin`.
    pub resume: bool,
    /// A fresh run's starting weights from the seeded initialisation (rank 0; the others
    /// receive rank 0's); `None`: the seeded initialisation itself.
    pub initial_weights: Option<InitialWeights>,
    /// Rank 0's observer of the first step's gradients.
    pub first_gradients: Option<GradientsObserver>,
    /// Resume from a `checkpoint-last.bin` of format 1 (without a checksum) too.
    pub allow_unchecked: bool,
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

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("resume", &self.resume)
            .field("initial_weights", &self.initial_weights.is_some())
            .field("first_gradients", &self.first_gradients.is_some())
            .field("allow_unchecked", &self.allow_unchecked)
            .finish()
    }
}

/// The model a fresh run starts from: the seeded initialisation, through `initial` if given.
fn initial_model(config: &ExperimentConfig, initial: Option<&InitialWeights>, device: &Device) -> Result<PixelRnn> {
    let model = config.model.init(device, config.training.seed)?;
    match initial {
        Some(weights) => weights(model),
        None => Ok(model),
    }
}

/// `checkpoint`'s weights and optimizer state (`path` names it in errors).
fn restore(
    checkpoint: &checkpoint::Checkpoint,
    path: &Path,
    config: &ExperimentConfig,
    model: PixelRnn,
    optim: ModuleOptimizer,
) -> Result<(PixelRnn, ModuleOptimizer)> {
    let model = checkpoint.apply(path, &config.model, config.data.dataset, model)?;
    if checkpoint.optimizer.is_empty() {
        return Ok((model, optim));
    }
    let optim = optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(checkpoint.optimizer.clone())).map_err(|e| {
        Error::Checkpoint { path: path.to_path_buf(), reason: format!("unreadable optimizer state: {e}") }
    })?;
    Ok((model, optim))
}

/// A key for one step of one rank (the dropout masks' stream).
fn mix_step(step: u64, rank: usize) -> u64 {
    crate::nn::dropout::mix(step.wrapping_mul(0x9E37_79B9).wrapping_add(rank as u64))
}

/// The validation NLL (nats per image) of the model, or of its weight average when the run keeps
/// one (then the average is what is validated and kept as the best).
fn validate(
    model: &PixelRnn,
    average: Option<&WeightAverage>,
    valid: &crate::data::ImageSet,
    t: &crate::experiment::TrainingConfig,
    device: &Device,
) -> Result<Vec<f64>> {
    let scored = match average {
        Some(average) => average.apply(model.valid())?,
        None => model.valid(),
    };
    per_image_nll(&scored, valid, t.valid_limit, t.batch_size, device, &mut |_, _| {})
}

/// Refuses a request that could only fail or mean nothing, before anything is written.
fn check_request(config: &ExperimentConfig, data: &Splits, ranks: usize) -> Result<()> {
    config.model.validate()?;
    config.optimizer.validate()?;
    let t = &config.training;
    if data.train.is_empty() {
        return Err(Error::Config("the training split is empty: nothing to train on".into()));
    }
    if t.valid_limit == Some(0) {
        return Err(Error::Config("a validation limit of 0 images would validate on nothing".into()));
    }
    if t.batch_size == 0 {
        return Err(Error::Config("the batch size must be at least 1".into()));
    }
    if let Some(decay) = t.ema_decay {
        crate::ema::check_decay(decay)?;
    }
    if let Some(p) = t.dropout {
        crate::nn::dropout::check_probability(p)?;
    }
    distributed::check_split(t.batch_size, ranks)?;
    if let Some(classes) = config.model.classes {
        let splits = [("training", Some(&data.train)), ("validation", data.valid.as_ref())];
        for (split, set) in splits.into_iter().filter_map(|(name, set)| Some((name, set?))) {
            let Some(labels) = &set.labels else {
                return Err(Error::Config(format!(
                    "a class-conditional model needs labelled images; the {split} split has no labels"
                )));
            };
            if let Some(l) = labels.iter().find(|&&l| l as usize >= classes) {
                return Err(Error::Config(format!("the {split} split has class {l}, the model {classes} classes")));
            }
        }
    }
    if data.train.spec() != config.model.image {
        return Err(Error::Config(format!(
            "the model is built for {:?} but the dataset has {:?}",
            config.model.image,
            data.train.spec()
        )));
    }
    crate::resources::check_fits(
        &format!("training this model at batch {}", t.batch_size / ranks),
        config.model.training_bytes(t.batch_size / ranks),
        crate::resources::available_memory(),
    )
}

/// On resume, what defines the trajectory must be the saved run's (`saved`, from
/// `config_path`); how long, how often to validate and to checkpoint may change.
fn check_same_trajectory(saved: &ExperimentConfig, config: &ExperimentConfig, config_path: &Path) -> Result<()> {
    let differs = [
        ("model", saved.model != config.model),
        ("dataset", !saved.data.same_data(&config.data)),
        ("optimizer", saved.optimizer != config.optimizer),
        ("batch size", saved.training.batch_size != config.training.batch_size),
        ("seed", saved.training.seed != config.training.seed),
        ("batch order", saved.training.batch_order != config.training.batch_order),
        ("initial weights", saved.training.init_weights != config.training.init_weights),
        ("dropout", saved.training.dropout != config.training.dropout),
    ];
    match differs.iter().find(|(_, d)| *d) {
        Some((what, _)) => Err(Error::Config(format!(
            "cannot resume: the {what} differs from the run in {}; only the number of steps, validation and checkpoint settings may change",
            config_path.display()
        ))),
        None => Ok(()),
    }
}

/// Where a resumed run goes on from: the checkpoint's step, best validation and weight average
/// (a decay may start on resume, not change or stop).
fn resumed_progress(
    ckpt: checkpoint::Checkpoint,
    t: &crate::experiment::TrainingConfig,
    run_dir: &Path,
) -> Result<(u64, Option<f64>, Option<WeightAverage>)> {
    let step = ckpt.header.step;
    if t.steps < step {
        // The run's record would claim fewer steps than its model has taken.
        return Err(Error::Config(format!(
            "cannot resume: the run in {} is already at step {step}; ask for at least {step} steps",
            run_dir.display()
        )));
    }
    let average = match (ckpt.average, t.ema_decay) {
        (Some(kept), Some(decay)) if kept.info.decay != decay => {
            return Err(Error::Config(format!(
                "cannot resume: the run averages its weights with decay {} (since step {}), not {decay}; the decay cannot change once the average has started",
                kept.info.decay, kept.info.since_step
            )));
        }
        (Some(kept), None) => {
            return Err(Error::Config(format!(
                "cannot resume: the run averages its weights (decay {}, since step {}); give the same decay again (--ema {})",
                kept.info.decay, kept.info.since_step, kept.info.decay
            )));
        }
        (kept, _) => kept,
    };
    // A validation best measured on other weights (the raw ones, before the average started)
    // is not comparable with the average's: the best starts anew with it.
    let best = if average.is_none() && t.ema_decay.is_some() { None } else { ckpt.header.best_valid_bits_per_dim };
    Ok((step, best, average))
}

/// Every rank's parameters compared with rank 0's (bitwise, through their SHA-256).
fn check_replicas(model: &PixelRnn, collective: &mut dyn Collective, step: u64) -> Result<()> {
    let mine = flat::parameter_digest(model);
    let mut rank0 = mine.to_vec();
    collective.broadcast(&mut rank0)?;
    let mut differing = [f64::from(u8::from(rank0 != mine))];
    collective.sum_f64(&mut differing)?;
    if differing[0] > 0.0 {
        return Err(Error::Distributed(format!(
            "the replicas diverged: after step {step}, {} of {} ranks hold parameters that differ from rank 0's",
            differing[0],
            collective.size()
        )));
    }
    Ok(())
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
    train_on(config, data, run_dir, options, device, stop, observer, &mut Single)
}

/// [`train`] as one rank of `collective`'s group, every rank calling it with the same
/// arguments (except `device`, `stop` and `observer`).
///
/// Rank 0 builds or resumes the model and sends weights and optimizer state to the others;
/// each step every rank takes its slice of the same global batch, the gradients are summed
/// (the full batch's mean gradient) and every rank takes the same optimizer step. Only rank 0
/// writes to `run_dir`, validates and reports to its observer. The loss, the NaN check and
/// `stop` go through the collective, so every rank ends at the same step. A rank whose call
/// fails must [`Collective::abort`] the group (the CLI does), or the others wait for it.
#[allow(clippy::too_many_arguments)]
pub fn train_on(
    config: &ExperimentConfig,
    data: &Splits,
    run_dir: &Path,
    options: &TrainOptions,
    device: &Device,
    stop: &AtomicBool,
    observer: &mut dyn FnMut(&TrainEvent),
    collective: &mut dyn Collective,
) -> Result<TrainOutcome> {
    let (rank, ranks) = (collective.rank(), collective.size());
    let lead = rank == 0;
    check_request(config, data, ranks)?;
    let run = RunDir::new(run_dir);
    let _owner = if lead {
        run.create()?;
        Some(run.lock()?)
    } else {
        None
    };
    let last_path = run.checkpoint_path(Which::Last);
    let ad_device = device.clone().autodiff();
    let t = &config.training;
    // Checked before anything is written: a listed order must cover every step.
    let mut batches = match &t.batch_order {
        Some(path) => BatchOrder::Listed(read_batch_order(path, data.train.len(), t.batch_size, t.steps)?),
        None => BatchOrder::Shuffled(ShuffledBatches::new(data.train.len(), t.batch_size, t.seed)),
    };
    let resume = options.resume;
    let mut model: PixelRnn = if resume || !lead {
        config.model.init(&ad_device, t.seed)?
    } else {
        initial_model(config, options.initial_weights.as_ref(), &ad_device)?
    };
    let mut optim = optimizer(config);
    let mut step = 0u64;
    let mut best: Option<f64> = None;
    // The weight average, kept by rank 0 only (the one that validates and saves).
    let mut average: Option<WeightAverage> = None;
    if lead && resume {
        check_same_trajectory(&run.load_config()?, config, &run.config_path())?;
        let ckpt = checkpoint::load_with(&last_path, options.allow_unchecked)?;
        (model, optim) = restore(&ckpt, &last_path, config, model, optim)?;
        (step, best, average) = resumed_progress(ckpt, t, run_dir)?;
        run.truncate_metrics(step)?;
    } else if let Some(found) = run.run_file().filter(|_| lead) {
        return Err(Error::Config(format!(
            "{} already holds a run ({} is there); resume it, clear it, or choose another directory",
            run_dir.display(),
            found.display()
        )));
    }
    if let (Some(decay), None, true) = (t.ema_decay, &average, lead) {
        average = Some(WeightAverage::start(decay, &model, step)?);
    }
    let header = |step: u64, best: Option<f64>| CheckpointHeader {
        model: config.model.clone(),
        dataset: config.data.dataset,
        step,
        seed: t.seed,
        best_valid_bits_per_dim: best,
        average: None, // set from the average when saved
    };
    if ranks > 1 {
        // Rank 0's starting point (weights, optimizer state, step) to every rank, as the
        // bytes of a checkpoint.
        let origin = PathBuf::from(format!("<rank 0's starting point for {}>", run_dir.display()));
        let mut bytes =
            if lead { checkpoint::encode(&origin, &header(step, best), &model, Some(&optim))? } else { Vec::new() };
        collective.broadcast(&mut bytes)?;
        if !lead {
            let start = checkpoint::parse(&origin, &bytes)?;
            (model, optim) = restore(&start, &origin, config, model, optim)?;
            (step, best) = (start.header.step, start.header.best_valid_bits_per_dim);
        }
    }
    // Only rank 0 writes to the run directory and reports.
    let mut silent = |_: &TrainEvent| {};
    let observer: &mut dyn FnMut(&TrainEvent) = if lead { observer } else { &mut silent };
    if lead {
        run.save_config(config)?;
    }

    let dims = config.model.image.dims();
    let mut metrics = if lead { Some(run.open_metrics()?) } else { None };
    // `observed` goes to the observer, `written` to metrics.jsonl (the same event, except for
    // the steps between two lines of `log_every`).
    let mut emit = |observed: Option<&TrainEvent>, written: Option<&TrainEvent>| -> Result<()> {
        if let Some(event) = observed {
            observer(event);
        }
        match (written, metrics.as_mut()) {
            (Some(event), Some(m)) => m.append(event),
            _ => Ok(()),
        }
    };
    let started_event = TrainEvent::Started { step, total_steps: t.steps };
    emit(Some(&started_event), Some(&started_event))?;

    let save = |model: &PixelRnn,
                optim: &ModuleOptimizer,
                average: Option<&WeightAverage>,
                step: u64,
                best: Option<f64>,
                which: Which| {
        checkpoint::save_with_average(&run.checkpoint_path(which), &header(step, best), model, Some(optim), average)
    };
    let mut interrupted = false;
    let first_step = step;
    // The steps since the last step line of metrics.jsonl: their summed loss and seconds.
    let (mut window_loss, mut window_secs, mut window_steps) = (0.0f64, 0.0f64, 0u64);
    while step < t.steps {
        let started = Instant::now();
        let global = batches.batch_at(step);
        let slice = distributed::slice_of(global, rank, ranks);
        let images = data.train.batch(slice, &ad_device);
        let labels = model.classes().and_then(|_| data.train.label_batch(slice, &ad_device));
        // The dropout masks are a function of (seed, step, rank): reproduced and resumed exactly.
        let dropout =
            t.dropout.filter(|&p| p > 0.0).map(|p| (p, crate::nn::dropout::mix(t.seed ^ mix_step(step, rank))));
        // Nats per image of this rank's slice; the loss is this rank's part of the full batch's mean.
        let nll = model.nll_with_dropout(images, labels, dropout);
        let loss = if ranks == 1 { nll.mean() } else { nll.sum().div_scalar(global.len() as f64) };
        // Summed over the ranks with the stop request, so that every rank sees the same loss and
        // stops at the same step.
        let mut shared = [loss.clone().into_scalar::<f32>() as f64, f64::from(u8::from(stop.load(Ordering::SeqCst)))];
        collective.sum_f64(&mut shared)?;
        let [loss_value, stopping] = shared;
        if !loss_value.is_finite() {
            return Err(Error::Diverged { step: step + 1, loss: loss_value });
        }
        if stopping > 0.0 {
            interrupted = true;
            break;
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut gradient_sum_secs = None;
        if ranks > 1 {
            let summing = Instant::now();
            let mut flat = flat::flatten_gradients(&model, &grads);
            collective.sum_f32(&mut flat)?;
            grads = flat::unflatten_gradients(&model, grads, &flat)?;
            gradient_sum_secs = Some(summing.elapsed().as_secs_f64());
        }
        if let Some(observe) = options.first_gradients.as_ref().filter(|_| lead && step == first_step) {
            observe(&crate::models::parameters::gradients_as_model(&model, &grads))?;
        }
        let lr = config.optimizer.learning_rate_at(step);
        model = optim.step(lr, model, grads);
        step += 1;
        if let Some(average) = average.as_mut() {
            average.update(&model, step);
        }
        let secs = started.elapsed().as_secs_f64();
        let at_end = step == t.steps;
        let step_event = |loss_nats: f64, images_per_sec: f64| TrainEvent::Step {
            step,
            loss_nats,
            bits_per_dim: bits_per_dim(loss_nats, dims),
            lr,
            images_per_sec,
            gradient_sum_secs,
        };
        let event = step_event(loss_value, global.len() as f64 / secs.max(1e-9));
        (window_loss, window_secs, window_steps) = (window_loss + loss_value, window_secs + secs, window_steps + 1);
        // The line of metrics.jsonl: the window's mean (with `log_every` 1, this step's own).
        if step.is_multiple_of(t.log_every.max(1)) || at_end {
            let images = (global.len() as u64 * window_steps) as f64;
            let line = step_event(window_loss / window_steps as f64, images / window_secs.max(1e-9));
            emit(Some(&event), Some(&line))?;
            (window_loss, window_secs, window_steps) = (0.0, 0.0, 0);
        } else {
            emit(Some(&event), None)?;
        }
        let validating = lead && ((t.valid_every > 0 && step.is_multiple_of(t.valid_every)) || at_end);
        if validating {
            if let Some(valid) = &data.valid {
                let nats = validate(&model, average.as_ref(), valid, t, device)?;
                let (nll, bpd, _) = summarize(&nats, dims);
                let is_best = best.is_none_or(|b| bpd < b);
                if is_best {
                    best = Some(bpd);
                    save(&model, &optim, average.as_ref(), step, best, Which::Best)?;
                }
                let validation = TrainEvent::Validation {
                    step,
                    nll_nats: nll,
                    bits_per_dim: bpd,
                    images: nats.len(),
                    best: is_best,
                };
                emit(Some(&validation), Some(&validation))?;
            }
        }
        if (t.checkpoint_every > 0 && step.is_multiple_of(t.checkpoint_every)) || at_end {
            checkpoint_now(
                &model,
                &optim,
                average.as_ref(),
                &header(step, best),
                collective,
                &mut |e: &TrainEvent| emit(Some(e), Some(e)),
                &run,
            )?;
        }
    }
    if interrupted {
        checkpoint_now(
            &model,
            &optim,
            average.as_ref(),
            &header(step, best),
            collective,
            &mut |e: &TrainEvent| emit(Some(e), Some(e)),
            &run,
        )?;
    }
    Ok(TrainOutcome { step, interrupted, best_valid_bits_per_dim: best })
}

/// At a checkpoint: every rank compares its replica with rank 0's, then rank 0 writes the
/// last checkpoint and the loss plot.
fn checkpoint_now(
    model: &PixelRnn,
    optim: &ModuleOptimizer,
    average: Option<&WeightAverage>,
    header: &CheckpointHeader,
    collective: &mut dyn Collective,
    log: &mut dyn FnMut(&TrainEvent) -> Result<()>,
    run: &RunDir,
) -> Result<()> {
    let (ranks, step) = (collective.size(), header.step);
    if ranks > 1 {
        check_replicas(model, collective, step)?;
        log(&TrainEvent::ReplicasChecked { step, ranks })?;
    }
    if collective.rank() == 0 {
        checkpoint::save_with_average(&run.checkpoint_path(Which::Last), header, model, Some(optim), average)?;
        log(&TrainEvent::Checkpoint { step })?;
        run.write_loss_plot()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{EventKind, LoggedEvent};

    /// The reader's kind of each event (exhaustive: a new event must be given a kind).
    fn kind_of(event: &TrainEvent) -> EventKind {
        match event {
            TrainEvent::Started { .. } => EventKind::Started,
            TrainEvent::Step { .. } => EventKind::Step,
            TrainEvent::Validation { .. } => EventKind::Validation,
            TrainEvent::Checkpoint { .. } => EventKind::Checkpoint,
            TrainEvent::ReplicasChecked { .. } => EventKind::ReplicasChecked,
        }
    }

    #[test]
    fn every_event_the_trainer_writes_reads_back_as_its_own_kind_with_its_step() {
        let step = TrainEvent::Step {
            step: 2,
            loss_nats: 9.0,
            bits_per_dim: 2.5,
            lr: 1e-3,
            images_per_sec: 40.0,
            gradient_sum_secs: None,
        };
        let validation = TrainEvent::Validation { step: 3, nll_nats: 9.0, bits_per_dim: 2.25, images: 16, best: true };
        let cases = [
            (TrainEvent::Started { step: 1, total_steps: 9 }, 1),
            (step, 2),
            (validation, 3),
            (TrainEvent::Checkpoint { step: 4 }, 4),
            (TrainEvent::ReplicasChecked { step: 5, ranks: 2 }, 5),
        ];
        for (event, at) in cases {
            let line = serde_json::to_string(&event).unwrap();
            let read = LoggedEvent::parse(&line).unwrap();
            assert_ne!(kind_of(&event), EventKind::Other);
            assert_eq!((read.event, read.step), (kind_of(&event), Some(at)), "{line}");
        }
    }
}
