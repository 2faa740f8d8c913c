//! `pixelrnn train`: check and resolve the flags into an ExperimentConfig, then run the
//! library's loop with a progress bar and Ctrl-C handling.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use burn::prelude::Device;
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::{default_data_dir, LoadOptions, ShuffledBatches, Splits};
use pixelrnn::device::{open_nth, parse_device_list, DeviceSpec};
use pixelrnn::distributed::{Collective, FailingAt, InProcess, Single};
use pixelrnn::experiment::{paper_preset, DataConfig, ExperimentConfig, OptimizerConfig, TrainingConfig};
use pixelrnn::interop::Layout;
use pixelrnn::models::{ModelConfig, OutputHead};
use pixelrnn::run::{RunDir, Which};
use pixelrnn::train::{train_on, GradientsObserver, InitialWeights, TrainEvent, TrainOptions, TrainOutcome};

use crate::cli::{DeviceArg, DistributedArg, LrScheduleArg, OutputArg, TrainArgs};
use crate::data_cmd::fetch_and_load;
use crate::signals::StopRequest;

/// The flags checked and resolved into the run's config: everything that can be refused is
/// refused here, before any tensor work. `lead`: this process writes the run directory (the
/// other ranks of a distributed run do not look at it: it may not even be on their machine).
fn resolve(args: &TrainArgs, lead: bool) -> anyhow::Result<(ExperimentConfig, Splits)> {
    let run = RunDir::new(&args.out);
    if lead && args.resume && !run.checkpoint_path(Which::Last).is_file() {
        bail!("--resume: {} has no checkpoint-last.bin to resume from", args.out.display());
    }
    let Some(architecture) = args.model else {
        return resume_from_config(args, &run);
    };
    let dataset = args.data.dataset;
    // A --data-dir is recorded in config.json, absolute, so that eval, sample and complete find
    // the data from any working directory; without it the run records none and every command
    // looks in the dataset's default folder (the user cache), wherever the run directory goes.
    let recorded_dir = match &args.data.data_dir {
        Some(dir) => Some(std::path::absolute(dir).with_context(|| format!("--data-dir {}", dir.display()))?),
        None => None,
    };
    let data_dir = recorded_dir.clone().unwrap_or_else(|| default_data_dir(dataset));
    // Any file of a run (a lone checkpoint-best.bin, what a crash between checkpoints leaves,
    // included) is kept unless the user says otherwise.
    if let Some(found) = run.run_file().filter(|_| lead && !args.resume && !args.overwrite) {
        bail!(
            "{} already holds a run ({} is there); pass --resume to continue it, --overwrite to start afresh, or choose another --out",
            args.out.display(),
            found.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    if let Some(path) = &args.gradients_out {
        let mut inputs: Vec<(&std::path::Path, &str)> = Vec::new();
        inputs.extend(args.batch_order.as_deref().map(|p| (p, "the batch order")));
        inputs.extend(args.init_weights.as_deref().map(|p| (p, "the initial weights")));
        crate::run_args::check_output(path, &args.out, &inputs).context("--gradients-out")?;
    }
    let options = LoadOptions {
        valid_size: args.data.valid_size,
        mirror: args.data.mirror.clone(),
        no_verify: args.data.no_verify,
    };
    let data = fetch_and_load(dataset, &data_dir, &options)?;
    let preset = args.preset.unwrap_or_else(|| paper_preset(dataset));
    let spec = data.train.spec();
    let components_alone = "--components is the number of mixture components: give it with --output mixture";
    let output = match (args.output, args.components) {
        (Some(OutputArg::Softmax), Some(_)) => bail!(components_alone),
        (Some(OutputArg::Softmax), None) => OutputHead::Softmax,
        (Some(OutputArg::Mixture), k) => OutputHead::Mixture { components: k.unwrap_or(10) },
        // The preset's head; --components resizes a preset's mixture.
        (None, k) => match (preset.output(&spec), k) {
            (OutputHead::Mixture { .. }, Some(components)) => OutputHead::Mixture { components },
            (OutputHead::Softmax, Some(_)) => bail!(components_alone),
            (head, None) => head,
        },
    };
    let mut model = ModelConfig::preset_with_output(preset, architecture, spec, output).context("--preset")?;
    if let Some(l) = args.layers {
        model.num_layers = l;
    }
    if let Some(h) = args.hidden {
        model.hidden_channels = h;
    }
    if let Some(d) = args.output_hidden {
        model.output_hidden_channels = d;
    }
    model.residual &= !args.no_residual;
    model.skip &= !args.no_skip;
    model.learned_initial_state &= !args.zero_initial_state;
    model.diagonal_padding = args.diagonal_padding;
    if args.conditional {
        let Some(labels) = &data.train.labels else {
            bail!("--conditional: {dataset} has no class labels (labelled datasets: mnist, fashion-mnist, cifar10)");
        };
        model.classes = Some(labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0).max(2));
    }
    model.validate().context("--layers/--hidden/--output-hidden/--output/--components")?;
    let batch_size = args.batch_size.unwrap_or_else(|| preset.default_batch_size());
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let per_epoch = ShuffledBatches::new(data.train.len(), batch_size, args.seed).batches_per_epoch() as u64;
    let steps = requested_steps(args, per_epoch)?.unwrap_or(per_epoch);
    if steps == 0 {
        bail!("nothing to train: --steps/--epochs must be at least 1");
    }
    let optimizer = OptimizerConfig {
        kind: args.optimizer.into(),
        learning_rate: args.lr,
        lr_decay: args.lr_decay,
        grad_clip_norm: args.grad_clip,
        epsilon: args.epsilon,
        warmup_steps: args.warmup,
        cosine_steps: match args.lr_schedule {
            LrScheduleArg::Exponential if args.cosine_steps.is_some() => {
                bail!("--cosine-steps is where the cosine schedule ends: give it with --lr-schedule cosine")
            }
            LrScheduleArg::Exponential => None,
            LrScheduleArg::Cosine => Some(args.cosine_steps.unwrap_or(steps)),
        },
    };
    optimizer.validate().context("--lr/--lr-decay/--grad-clip/--epsilon/--cosine-steps")?;
    let absolute = |flag: &str, path: &Option<std::path::PathBuf>| {
        path.as_ref().map(|p| std::path::absolute(p).with_context(|| format!("{flag} {}", p.display()))).transpose()
    };
    let config = ExperimentConfig {
        model,
        data: DataConfig {
            dataset,
            data_dir: recorded_dir,
            valid_size: args.data.valid_size,
            no_verify: args.data.no_verify,
        },
        optimizer,
        training: TrainingConfig {
            batch_size,
            steps,
            seed: args.seed,
            valid_every: args.valid_every,
            valid_limit: args.valid_limit,
            checkpoint_every: args.checkpoint_every,
            batch_order: absolute("--batch-order", &args.batch_order)?,
            init_weights: absolute("--init-weights", &args.init_weights)?,
            ema_decay: args.ema,
            dropout: args.dropout,
            log_every: args.log_every,
        },
    };
    Ok((config, data))
}

/// The steps `--steps` or `--epochs` (of `per_epoch` steps each) asks for; `None` when neither
/// is given.
fn requested_steps(args: &TrainArgs, per_epoch: u64) -> anyhow::Result<Option<u64>> {
    match (args.steps, args.epochs) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(e)) => e
            .checked_mul(per_epoch)
            .map(Some)
            .with_context(|| format!("--epochs {e} x {per_epoch} steps per epoch overflows")),
        (None, None) => Ok(None),
    }
}

/// `--init-weights`: the run's seeded model replaced by the weights of a safetensors file or of
/// another run's directory (its best checkpoint, averaged where it keeps an average: a
/// pretrained model to fine-tune), read when the run starts, so a resumed run never reads them.
/// Either way they go through the one import, which refuses weights of another model.
fn initial_weights(config: &ExperimentConfig, allow_unchecked: bool) -> Option<InitialWeights> {
    let path = config.training.init_weights.clone()?;
    let model_config = config.model.clone();
    Some(Arc::new(move |model| {
        let bytes =
            if path.is_dir() { run_weights(&path, allow_unchecked)? } else { pixelrnn::fsio::read_file(&path)? };
        pixelrnn::interop::import_as(&bytes, &model_config, model)
            .map_err(|e| pixelrnn::Error::Weights(format!("{}: {e}", path.display())))
    }))
}

/// A run directory's weights as `export` writes them (native layout): its best checkpoint,
/// the weight average where the run keeps one.
fn run_weights(dir: &std::path::Path, allow_unchecked: bool) -> pixelrnn::Result<Vec<u8>> {
    let run = RunDir::new(dir);
    if run.run_file().is_none() {
        return Err(pixelrnn::Error::Weights(format!(
            "{}: a folder that holds no run (no config.json or checkpoint); give a run directory or a safetensors file",
            dir.display()
        )));
    }
    let loaded = run.allowing_unchecked(allow_unchecked).load_weights(Which::Best, true, &Device::flex())?;
    let info = pixelrnn::interop::TrainingInfo::default();
    pixelrnn::interop::export(&loaded.model, &loaded.config.model, &info, Layout::Native)
}

/// `--gradients-out`: the first step's gradients written as safetensors in `layout`.
fn gradients_writer(path: PathBuf, layout: Layout, config: &ExperimentConfig) -> GradientsObserver {
    let model_config = config.model.clone();
    Arc::new(move |gradients| {
        let bytes = pixelrnn::interop::export_gradients(gradients, &model_config, layout)?;
        pixelrnn::fsio::write_atomic(&path, &bytes)
    })
}

/// The flags `train --resume` without `--model` may give: how long, how often to validate and
/// checkpoint, starting a weight average, where the data is, and how to run.
const MAY_CHANGE_ON_RESUME: [&str; 17] = [
    "allow_unchecked",
    "time_limit",
    "log_every",
    "steps",
    "epochs",
    "valid_every",
    "valid_limit",
    "checkpoint_every",
    "ema",
    "data_dir",
    "mirror",
    "device",
    "devices",
    "quiet",
    "out",
    "resume",
    "test_fail_at",
];

/// `train --resume` without `--model`: the run's config.json, with the few settings that may
/// change on resume taken from the flags given.
fn resume_from_config(args: &TrainArgs, run: &RunDir) -> anyhow::Result<(ExperimentConfig, Splits)> {
    if let Some(flag) = args.given.iter().find(|id| !MAY_CHANGE_ON_RESUME.contains(&id.as_str())) {
        bail!(
            "--{}: with --resume and no --model the run's config.json gives every setting of the run; leave it out (only --steps/--epochs, --valid-every, --valid-limit, --checkpoint-every, --log-every, --ema and --data-dir may change), or give --model and every flag of the run",
            flag.replace('_', "-")
        );
    }
    if args.distributed.is_some() {
        // The other ranks may not see the run directory.
        bail!("--distributed: give --model and every flag of the run to resume it on several processes");
    }
    let mut config = run.load_config().with_context(|| format!("--resume {}", args.out.display()))?;
    if let Some(dir) = &args.data.data_dir {
        config.data.data_dir = Some(std::path::absolute(dir).with_context(|| format!("--data-dir {}", dir.display()))?);
    }
    let options = LoadOptions {
        valid_size: config.data.valid_size,
        mirror: args.data.mirror.clone(),
        no_verify: config.data.no_verify,
    };
    let data = fetch_and_load(config.data.dataset, &config.data.dir(), &options)?;
    let given = |id: &str| args.given.iter().any(|g| g == id);
    let t = &mut config.training;
    let per_epoch = ShuffledBatches::new(data.train.len(), t.batch_size, t.seed).batches_per_epoch() as u64;
    if let Some(steps) = requested_steps(args, per_epoch)? {
        t.steps = steps;
    }
    if given("valid_every") {
        t.valid_every = args.valid_every;
    }
    if given("checkpoint_every") {
        t.checkpoint_every = args.checkpoint_every;
    }
    if given("log_every") {
        t.log_every = args.log_every;
    }
    if args.valid_limit.is_some() {
        t.valid_limit = args.valid_limit;
    }
    if args.ema.is_some() {
        t.ema_decay = args.ema;
    }
    Ok((config, data))
}

/// Trains; exits 130 when stopped by Ctrl-C, 143 by SIGTERM (after saving a checkpoint).
///
/// One process on one device; or one rank of an MPI job (`--distributed mpi`); or one worker
/// thread per GPU of this machine (`--devices`). The loop is the library's [`train_on`] in
/// every case. A rank that fails prints its error and aborts the whole job, so no rank is left
/// waiting for it.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let devices = args.devices.as_deref().map(parse_device_list).transpose().context("--devices")?;
    let fail_at = args.test_fail_at.as_deref().map(parse_fail_at).transpose()?;
    let mut collective: Box<dyn Collective> = match args.distributed {
        None => Box::new(Single),
        Some(DistributedArg::Mpi) => open_mpi()?,
    };
    let (rank, size) = (collective.rank(), collective.size());
    let result = run_process(&args, devices.as_deref(), fail_at, &mut *collective);
    if let Err(e) = &result {
        if size > 1 {
            eprintln!("error: rank {rank} of {size}: {e:#}");
            collective.abort(1);
        }
    }
    result
}

#[cfg(feature = "mpi")]
fn open_mpi() -> anyhow::Result<Box<dyn Collective>> {
    Ok(Box::new(pixelrnn::distributed::Mpi::init()?))
}

#[cfg(not(feature = "mpi"))]
fn open_mpi() -> anyhow::Result<Box<dyn Collective>> {
    bail!(
        "--distributed mpi: this build of pixelrnn has no MPI support; rebuild with `cargo build --release -p pixelrnn-cli --features mpi` (needs an MPI library and libclang: on Debian `apt-get install libopenmpi-dev openmpi-bin libclang-dev`)"
    )
}

/// `RANK:STEP` of `--test-fail-at`.
fn parse_fail_at(text: &str) -> anyhow::Result<(usize, u64)> {
    let parsed = text.split_once(':').and_then(|(r, s)| Some((r.parse().ok()?, s.parse().ok()?)));
    parsed.with_context(|| format!("--test-fail-at {text:?}: expected RANK:STEP"))
}

fn run_process(
    args: &TrainArgs,
    devices: Option<&[DeviceSpec]>,
    fail_at: Option<(usize, u64)>,
    collective: &mut dyn Collective,
) -> anyhow::Result<ExitCode> {
    let (config, data) = resolve(args, collective.rank() == 0)?;
    // SIGINT and SIGTERM stop training after a checkpoint (see signals.rs).
    let stop = crate::signals::watch()?;
    if let Some(seconds) = args.time_limit {
        stop.after(std::time::Duration::from_secs_f64(seconds));
    }
    let job = Job { args, config: &config, data: &data, stop: &stop, fail_at };
    match devices {
        Some(list) if list.len() > 1 => on_devices(&job, list),
        Some(list) => job.train(open_nth(list[0].backend, list[0].index).context("--devices")?, collective),
        None => {
            let device = if collective.size() > 1 && args.device != DeviceArg::Cpu {
                // One GPU per rank of this node.
                let backend = args.device.into();
                open_nth(backend, collective.local_rank())
                    .with_context(|| format!("--device {backend} for rank {}", collective.rank()))?
            } else {
                crate::device::select(args.device)?
            };
            job.train(device, collective)
        }
    }
}

/// `--devices`: one worker thread per device, in-process ranks; rank 0 reports.
fn on_devices(job: &Job, list: &[DeviceSpec]) -> anyhow::Result<ExitCode> {
    // Deviation from burn-train's multi-device strategy (gradients summed on the first
    // device): here they are summed in host memory by the in-process collective, the same
    // path as MPI's, so that one loop and one set of tests cover both.
    let results: Vec<anyhow::Result<ExitCode>> = std::thread::scope(|scope| {
        let workers: Vec<_> = InProcess::group(list.len())
            .into_iter()
            .zip(list)
            .map(|(mut collective, spec)| {
                scope.spawn(move || {
                    let result = open_nth(spec.backend, spec.index)
                        .with_context(|| format!("--devices {spec}"))
                        .and_then(|device| job.train(device, &mut collective));
                    if result.is_err() {
                        collective.abort(1);
                    }
                    result
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked"))))
            .collect()
    });
    // The error of the worker that failed first, not the others' "another rank failed".
    let peer_failed =
        |e: &anyhow::Error| e.chain().any(|c| matches!(c.downcast_ref(), Some(pixelrnn::Error::PeerFailed { .. })));
    let first_cause = results.iter().position(|r| r.as_ref().is_err_and(|e| !peer_failed(e)));
    match first_cause {
        Some(i) => results.into_iter().nth(i).expect("index from position"),
        None => results.into_iter().next().expect("at least two devices"),
    }
}

/// `--overwrite`: the old run's files go, under the run's lock (never the files of a trainer
/// still running there).
fn clear_for_overwrite(args: &TrainArgs) -> anyhow::Result<()> {
    if args.overwrite && args.out.exists() {
        let run = RunDir::new(&args.out);
        let owner = run.lock().with_context(|| format!("--overwrite {}", args.out.display()))?;
        run.clear(&owner).with_context(|| format!("--overwrite {}", args.out.display()))?;
    }
    Ok(())
}

/// The loop's options from the flags.
fn train_options(args: &TrainArgs, config: &ExperimentConfig) -> TrainOptions {
    TrainOptions {
        resume: args.resume,
        allow_unchecked: args.allow_unchecked,
        initial_weights: initial_weights(config, args.allow_unchecked),
        first_gradients: args.gradients_out.clone().map(|path| gradients_writer(path, args.gradients_layout, config)),
    }
}

/// `train` run from a host program (the Python module's `pixelrnn.train`): `flags` are the
/// command's flags exactly as on the command line (program and command names left out), checked
/// and resolved as the CLI does; one process on one device. Nothing is printed and no signal
/// handler is installed: training stops after a checkpoint once `stop` is set (the outcome then
/// says `interrupted`), and `observer` sees every event.
pub fn train_embedded(
    flags: &[String],
    stop: &Arc<AtomicBool>,
    observer: &mut dyn FnMut(&TrainEvent),
) -> anyhow::Result<TrainOutcome> {
    let argv = ["pixelrnn", "train"].into_iter().map(String::from).chain(flags.iter().cloned());
    let cli = crate::cli::parse(argv).map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))?;
    let crate::cli::Command::Train(args) = cli.command else { bail!("the flags did not parse as the train command's") };
    if args.distributed.is_some() || args.devices.is_some() || args.test_fail_at.is_some() {
        bail!("--distributed, --devices: run multi-process or multi-device training with the pixelrnn command");
    }
    let (config, data) = resolve(&args, true)?;
    let device = crate::device::select(args.device)?;
    clear_for_overwrite(&args)?;
    let options = train_options(&args, &config);
    train_on(&config, &data, &args.out, &options, &device, stop, observer, &mut Single)
        .with_context(|| format!("training in --out {}", args.out.display()))
}

/// What every rank of one training job shares.
struct Job<'a> {
    args: &'a TrainArgs,
    config: &'a ExperimentConfig,
    data: &'a Splits,
    stop: &'a StopRequest,
    fail_at: Option<(usize, u64)>,
}

impl Job<'_> {
    /// This rank's training; rank 0 prepares `--out`, shows progress and says how it ended.
    fn train(&self, device: Device, collective: &mut dyn Collective) -> anyhow::Result<ExitCode> {
        let (args, config) = (self.args, self.config);
        let lead = collective.rank() == 0;
        if lead {
            clear_for_overwrite(args)?;
        }
        let (dataset, steps, batch_size) = (config.data.dataset, config.training.steps, config.training.batch_size);
        let m = &config.model;
        // Said once training has started (the run's lock taken, the checkpoint read): a run
        // refused before then gets its one-line error alone.
        let mut banner = None;
        if lead {
            let ranks = match collective.size() {
                1 => String::new(),
                n => format!(" over {n} ranks ({} images each)", batch_size / n.max(1)),
            };
            let mut output = match m.output {
                OutputHead::Softmax => String::new(),
                OutputHead::Mixture { components } => format!(", logistic mixture of {components}"),
            };
            if let Some(classes) = m.classes {
                output.push_str(&format!(", conditional on {classes} classes"));
            }
            banner = Some(format!(
                "training {} (L={}, h={}, d={}, residual={}, skip={}{output}) on {dataset} {}x{}x{} ({} train images), batch {batch_size}{ranks}, {steps} steps -> {}",
                m.architecture.name(), m.num_layers, m.hidden_channels, m.output_hidden_channels, m.residual, m.skip,
                m.image.channels, m.image.height, m.image.width, self.data.train.len(), args.out.display()
            ));
        }
        let bar = if args.quiet || !lead { ProgressBar::hidden() } else { ProgressBar::new(steps) };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
                .expect("valid template"),
        );
        let mut observer = |event: &TrainEvent| match event {
            TrainEvent::Started { step, .. } => {
                if let Some(banner) = banner.take() {
                    bar.suspend(|| eprintln!("{banner}"));
                }
                bar.set_position(*step)
            }
            TrainEvent::Step { step, loss_nats, bits_per_dim, images_per_sec, .. } => {
                bar.set_position(*step);
                bar.set_message(format!(
                    "loss {loss_nats:.2} nats ({bits_per_dim:.4} bits/dim)  {images_per_sec:.0} img/s"
                ));
            }
            TrainEvent::Validation { step, nll_nats, bits_per_dim, best, .. } => {
                bar.println(format!(
                    "step {step}: valid {nll_nats:.3} nats, {bits_per_dim:.4} bits/dim{}",
                    if *best { " (best)" } else { "" }
                ));
            }
            TrainEvent::Checkpoint { .. } | TrainEvent::ReplicasChecked { .. } => {}
        };
        let options = train_options(args, config);
        // --test-fail-at: this rank fails at that step (a test double around the collective).
        let mut failing;
        let collective: &mut dyn Collective = match self.fail_at.filter(|(rank, _)| *rank == collective.rank()) {
            Some((_, step)) => {
                failing = FailingAt::new(collective, step);
                &mut failing
            }
            None => collective,
        };
        let outcome =
            train_on(config, self.data, &args.out, &options, &device, &self.stop.flag, &mut observer, collective)
                .with_context(|| format!("training in --out {}", args.out.display()))?;
        bar.finish_and_clear();
        if outcome.interrupted && self.stop.timed_out() {
            if lead {
                eprintln!(
                    "time limit reached at step {}; checkpoint saved in {}, continue with --resume",
                    outcome.step,
                    args.out.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        if outcome.interrupted {
            if lead {
                eprintln!("interrupted at step {}; checkpoint saved, continue with --resume", outcome.step);
            }
            return Ok(ExitCode::from(self.stop.exit_code()));
        }
        if lead {
            eprintln!("done: {} steps, run in {}", outcome.step, args.out.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}
