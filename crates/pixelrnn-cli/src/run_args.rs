//! What the commands that read a trained run share: loading its model from `--run` /
//! `--checkpoint` / `--device`, and writing an output file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::Device;
use pixelrnn::experiment::ExperimentConfig;
use pixelrnn::models::PixelRnn;
use pixelrnn::run::RunDir;

use crate::cli::RunArgs;

/// Rebuilds a run's model on the chosen device; also returns the checkpoint's path.
pub fn load_run(run: &RunArgs) -> anyhow::Result<(ExperimentConfig, PixelRnn, Device, PathBuf)> {
    let device = crate::device::select(run.device)?;
    let (config, model, path) = RunDir::new(&run.run)
        .load_model(run.checkpoint.into(), &device)
        .with_context(|| format!("loading the run in --run {}", run.run.display()))?;
    Ok((config, model, device, path))
}

pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
