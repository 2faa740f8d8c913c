//! `pixelrnn export` / `import`: a run's weights to and from safetensors (the library's
//! `interop`), in this crate's layout or the PyTorch twin's.

use anyhow::{bail, Context};
use burn::prelude::Device;
use pixelrnn::checkpoint::{self, CheckpointHeader};
use pixelrnn::data::DatasetName;
use pixelrnn::experiment::{DataConfig, ExperimentConfig, OptimizerConfig, OptimizerKind, TrainingConfig};
use pixelrnn::fsio::write_atomic;
use pixelrnn::interop::{export as export_weights, import as import_weights, TrainingInfo};
use pixelrnn::run::{RunDir, Which};

use crate::cli::{ExportArgs, ImportArgs};
use crate::run_args::{check_output, publish_folder};

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    check_output(&args.out, &args.run, &[])?;
    let run = RunDir::new(&args.run).allowing_unchecked(args.allow_unchecked);
    let device = Device::flex();
    let loaded = run
        .load_weights(args.checkpoint.into(), !args.raw_weights, &device)
        .with_context(|| format!("loading the run in --run {}", args.run.display()))?;
    crate::run_args::say_weights(&loaded);
    let (config, model, path) = (loaded.config, loaded.model, loaded.path);
    let header = checkpoint::load_with(&path, args.allow_unchecked)?.header;
    let info = TrainingInfo {
        dataset: Some(config.data.dataset.name().to_string()),
        step: Some(header.step),
        seed: Some(config.training.seed),
        best_valid_bits_per_dim: header.best_valid_bits_per_dim,
        batch_size: Some(config.training.batch_size),
        optimizer: Some(serde_json::to_string(&config.optimizer)?),
    };
    let bytes = export_weights(&model, &config.model, &info, args.layout)
        .with_context(|| format!("exporting {} in the {} layout", path.display(), args.layout.name()))?;
    write_atomic(&args.out, &bytes)?;
    eprintln!("{} ({} layout, step {}) -> {}", path.display(), args.layout.name(), header.step, args.out.display());
    Ok(())
}

pub fn import(args: ImportArgs) -> anyhow::Result<()> {
    let input = &args.input;
    let run = RunDir::new(&args.out);
    if let Some(found) = run.run_file() {
        bail!("{} already holds a run ({} is there); choose another --out", args.out.display(), found.display());
    }
    let bytes = pixelrnn::fsio::read_file(input)?;
    let imported = import_weights(&bytes, &Device::flex()).with_context(|| format!("{}", input.display()))?;
    let dataset = match (args.dataset, &imported.info.dataset) {
        (Some(d), _) => d,
        (None, Some(name)) => {
            name.parse::<DatasetName>().with_context(|| format!("{}: metadata pixelrnn.dataset", input.display()))?
        }
        (None, None) => {
            bail!("{}: the file does not say which dataset the model is for; pass --dataset", input.display())
        }
    };
    // Refused here, not by the first eval of the run: a dataset that contradicts the file's
    // metadata or the images the weights are built for.
    if let (Some(given), Some(recorded)) = (args.dataset, &imported.info.dataset) {
        if given.name() != recorded.as_str() {
            bail!("--dataset {given}: {} was trained on {recorded} (its metadata pixelrnn.dataset)", input.display());
        }
    }
    if let Some(spec) = dataset.image_spec().filter(|spec| *spec != imported.config.image) {
        bail!(
            "--dataset {dataset}: its images are {}x{}x{} with {} levels, but the weights in {} are for {}x{}x{} with {} levels",
            spec.channels,
            spec.height,
            spec.width,
            spec.levels,
            input.display(),
            imported.config.image.channels,
            imported.config.image.height,
            imported.config.image.width,
            imported.config.image.levels
        );
    }
    let data_dir = match &args.data_dir {
        Some(dir) => Some(std::path::absolute(dir).with_context(|| format!("--data-dir {}", dir.display()))?),
        None => None,
    };
    let image = imported.config.image;
    let step = imported.info.step.unwrap_or(0);
    let seed = imported.info.seed.unwrap_or(0);
    // The run's optimizer and batch size when the file says (our export), else the defaults:
    // `train --resume` continues with them.
    let optimizer = match &imported.info.optimizer {
        Some(json) => {
            serde_json::from_str(json).with_context(|| format!("{}: metadata pixelrnn.optimizer", input.display()))?
        }
        None => OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            grad_clip_norm: None,
            epsilon: None,
            warmup_steps: 0,
            cosine_steps: None,
        },
    };
    let batch_size = imported.info.batch_size.unwrap_or(32);
    let config = ExperimentConfig {
        model: imported.config.clone(),
        data: DataConfig { dataset, data_dir, valid_size: args.valid_size, no_verify: args.no_verify },
        optimizer,
        training: TrainingConfig {
            batch_size,
            steps: step,
            seed,
            valid_every: 500,
            valid_limit: None,
            checkpoint_every: 200,
            batch_order: None,
            init_weights: None,
            ema_decay: None,
            dropout: None,
            log_every: 1,
        },
    };
    let header = CheckpointHeader {
        model: imported.config.clone(),
        dataset,
        step,
        seed,
        best_valid_bits_per_dim: imported.info.best_valid_bits_per_dim,
        average: None,
    };
    // A failure leaves no half-made run.
    publish_folder(&args.out, |folder| {
        let staging = RunDir::new(folder);
        staging.save_config(&config)?;
        checkpoint::save(&staging.checkpoint_path(Which::Last), &header, &imported.model, None)?;
        write_atomic(&staging.metrics_path(), b"")?;
        Ok(())
    })?;
    eprintln!(
        "{} ({} layout: {} L={} h={} on {}x{}x{}, {dataset}) -> {}",
        input.display(),
        imported.layout.name(),
        imported.config.architecture.name(),
        imported.config.num_layers,
        imported.config.hidden_channels,
        image.channels,
        image.height,
        image.width,
        args.out.display()
    );
    Ok(())
}
