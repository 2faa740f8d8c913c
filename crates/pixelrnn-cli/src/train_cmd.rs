//! `pixelrnn train`: resolve the flags into an ExperimentConfig, then run the library's loop
//! with a progress bar and Ctrl-C handling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::{default_data_dir, DatasetName, LoadOptions, ShuffledBatches};
use pixelrnn::experiment::{DataConfig, ExperimentConfig, OptimizerConfig, OptimizerKind, TrainingConfig};
use pixelrnn::models::{Architecture, ModelConfig};
use pixelrnn::train::{train, TrainEvent};

use crate::cli::{ModelArg, OptimizerArg, TrainArgs};
use crate::data_cmd::fetch_and_load;

fn default_batch_size(preset: &str) -> usize {
    match preset {
        "tiny" => 8,
        "small" => 32,
        _ => 16,
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let dataset: DatasetName = args.data.dataset.parse()?;
    let data_dir = args.data.data_dir.clone().unwrap_or_else(|| default_data_dir(dataset));
    // Recorded in config.json: absolute, so that eval, sample and complete find the data from
    // any working directory.
    let data_dir = std::path::absolute(&data_dir).with_context(|| format!("--data-dir {}", data_dir.display()))?;
    let options = LoadOptions { valid_size: args.data.valid_size, mirror: args.data.mirror.clone() };
    if args.resume && !args.out.join("checkpoint-last.bin").is_file() {
        bail!("--resume: {} has no checkpoint-last.bin to resume from", args.out.display());
    }
    let data = fetch_and_load(dataset, &data_dir, &options)?;
    let architecture = match args.model {
        ModelArg::PixelCnn => Architecture::PixelCnn,
        ModelArg::RowLstm => Architecture::RowLstm,
        ModelArg::DiagonalBilstm => Architecture::DiagonalBilstm,
    };
    let preset = args.preset.clone().unwrap_or_else(|| dataset.paper_preset().to_string());
    let mut model = ModelConfig::preset(&preset, architecture, data.train.spec())?;
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
    model.validate()?;
    let batch_size = args.batch_size.unwrap_or_else(|| default_batch_size(&preset));
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let per_epoch = ShuffledBatches::new(data.train.len(), batch_size, args.seed).batches_per_epoch() as u64;
    let steps = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => e * per_epoch,
        (None, None) => per_epoch,
    };
    if steps == 0 {
        bail!("nothing to train: --steps/--epochs must be at least 1");
    }
    let config = ExperimentConfig {
        model,
        data: DataConfig { dataset, data_dir: data_dir.clone(), valid_size: args.data.valid_size },
        optimizer: OptimizerConfig {
            kind: match args.optimizer {
                OptimizerArg::Adam => OptimizerKind::Adam,
                OptimizerArg::Rmsprop => OptimizerKind::Rmsprop,
            },
            learning_rate: args.lr,
            lr_decay: args.lr_decay,
            grad_clip_norm: args.grad_clip,
        },
        training: TrainingConfig {
            batch_size,
            steps,
            seed: args.seed,
            valid_every: args.valid_every,
            valid_limit: args.valid_limit,
            checkpoint_every: args.checkpoint_every,
        },
    };
    let device = crate::device::select(args.device)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while the checkpoint is being written is ignored on purpose.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
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
    let outcome = train(&config, &data, &args.out, args.resume, &device, &stop, &mut observer)
        .with_context(|| format!("training in {}", args.out.display()))?;
    bar.finish_and_clear();
    if outcome.interrupted {
        eprintln!("interrupted at step {}; checkpoint saved, continue with --resume", outcome.step);
        std::process::exit(130);
    }
    eprintln!("done: {} steps, run in {}", outcome.step, args.out.display());
    Ok(())
}
