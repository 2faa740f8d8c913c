//! `pixelrnn train`: check and resolve the flags into an ExperimentConfig, then run the
//! library's loop with a progress bar and Ctrl-C handling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::{default_data_dir, LoadOptions, ShuffledBatches, Splits};
use pixelrnn::experiment::{paper_preset, DataConfig, ExperimentConfig, OptimizerConfig, TrainingConfig};
use pixelrnn::models::ModelConfig;
use pixelrnn::run::{RunDir, Which};
use pixelrnn::train::{train, TrainEvent, TrainOptions};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cli::TrainArgs;
use crate::data_cmd::fetch_and_load;

/// The flags checked and resolved into the run's config: everything that can be refused is
/// refused here, before any tensor work.
fn resolve(args: &TrainArgs) -> anyhow::Result<(ExperimentConfig, Splits)> {
    let dataset = args.data.dataset;
    let data_dir = args.data.data_dir.clone().unwrap_or_else(|| default_data_dir(dataset));
    // Recorded in config.json: absolute, so that eval, sample and complete find the data from
    // any working directory.
    let data_dir = std::path::absolute(&data_dir).with_context(|| format!("--data-dir {}", data_dir.display()))?;
    let run = RunDir::new(&args.out);
    let has_checkpoint = run.checkpoint_path(Which::Last).is_file();
    if args.resume && !has_checkpoint {
        bail!("--resume: {} has no checkpoint-last.bin to resume from", args.out.display());
    }
    if !args.resume && !args.overwrite && has_checkpoint {
        bail!(
            "{} already holds a run; pass --resume to continue it, --overwrite to start afresh, or choose another --out",
            args.out.display()
        );
    }
    let options = LoadOptions {
        valid_size: args.data.valid_size,
        mirror: args.data.mirror.clone(),
        no_verify: args.data.no_verify,
    };
    let data = fetch_and_load(dataset, &data_dir, &options)?;
    let preset = args.preset.unwrap_or_else(|| paper_preset(dataset));
    let mut model = ModelConfig::preset(preset, args.model, data.train.spec()).context("--preset")?;
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
    model.validate().context("--layers/--hidden/--output-hidden")?;
    let batch_size = args.batch_size.unwrap_or_else(|| preset.default_batch_size());
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let per_epoch = ShuffledBatches::new(data.train.len(), batch_size, args.seed).batches_per_epoch() as u64;
    let steps = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => {
            e.checked_mul(per_epoch).with_context(|| format!("--epochs {e} x {per_epoch} steps per epoch overflows"))?
        }
        (None, None) => per_epoch,
    };
    if steps == 0 {
        bail!("nothing to train: --steps/--epochs must be at least 1");
    }
    let optimizer = OptimizerConfig {
        kind: args.optimizer.into(),
        learning_rate: args.lr,
        lr_decay: args.lr_decay,
        grad_clip_norm: args.grad_clip,
        epsilon: args.epsilon,
    };
    optimizer.validate().context("--lr/--lr-decay/--grad-clip/--epsilon")?;
    let absolute = |flag: &str, path: &Option<std::path::PathBuf>| {
        path.as_ref().map(|p| std::path::absolute(p).with_context(|| format!("{flag} {}", p.display()))).transpose()
    };
    let config = ExperimentConfig {
        model,
        data: DataConfig { dataset, data_dir, valid_size: args.data.valid_size, no_verify: args.data.no_verify },
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
        },
    };
    Ok((config, data))
}

/// Trains; exits 130 when stopped by Ctrl-C, 143 by SIGTERM (after saving a checkpoint).
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let (config, data) = resolve(&args)?;
    if args.overwrite && args.out.exists() {
        // Under the run's lock: never the files of a trainer still running there.
        let run = RunDir::new(&args.out);
        let _owner = run.lock().with_context(|| format!("--overwrite {}", args.out.display()))?;
        run.clear().with_context(|| format!("--overwrite {}", args.out.display()))?;
    }
    let (dataset, steps, batch_size) = (config.data.dataset, config.training.steps, config.training.batch_size);
    let device = crate::device::select(args.device)?;
    // SIGINT (Ctrl-C) and SIGTERM (what Slurm, Kubernetes and `timeout` send) both stop
    // training after a checkpoint; a second signal ends the process at once.
    let stop = Arc::new(AtomicBool::new(false));
    let signal = Arc::new(AtomicUsize::new(0));
    for (number, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register_conditional_shutdown(number, code, stop.clone())
            .and_then(|_| signal_hook::flag::register_usize(number, signal.clone(), code as usize))
            .and_then(|_| signal_hook::flag::register(number, stop.clone()))
            .context("installing the signal handlers")?;
    }
    let m = &config.model;
    eprintln!(
        "training {} (L={}, h={}, d={}, residual={}, skip={}) on {dataset} {}x{}x{} ({} train images), batch {batch_size}, {steps} steps -> {}",
        m.architecture.name(), m.num_layers, m.hidden_channels, m.output_hidden_channels, m.residual, m.skip,
        m.image.channels, m.image.height, m.image.width, data.train.len(), args.out.display()
    );
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(steps) };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]").expect("valid template"),
    );
    let mut observer = |event: &TrainEvent| match event {
        TrainEvent::Started { step, .. } => bar.set_position(*step),
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
        TrainEvent::Checkpoint { .. } => {}
    };
    let options = TrainOptions {
        resume: args.resume,
        gradients_out: args.gradients_out.clone().map(|path| (path, args.gradients_layout)),
    };
    let outcome = train(&config, &data, &args.out, &options, &device, &stop, &mut observer)
        .with_context(|| format!("training in --out {}", args.out.display()))?;
    bar.finish_and_clear();
    if outcome.interrupted {
        let code = signal.load(Ordering::SeqCst) as u8;
        eprintln!("interrupted at step {}; checkpoint saved, continue with --resume", outcome.step);
        return Ok(ExitCode::from(if code == 0 { 130 } else { code }));
    }
    eprintln!("done: {} steps, run in {}", outcome.step, args.out.display());
    Ok(ExitCode::SUCCESS)
}
