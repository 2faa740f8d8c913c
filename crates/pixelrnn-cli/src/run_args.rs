//! What the commands that read a trained run share: loading its model from `--run` /
//! `--checkpoint` / `--device`, writing an output file, and publishing an output folder only
//! once it is complete.

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

/// Fills a new folder with `fill` and puts it at `output` only when complete: it is written as
/// `OUTPUT.partial-PID`, then renamed to `output` (which may exist only as an empty folder). On
/// any failure the partial folder is removed, so nothing that looks complete is left behind.
pub fn publish_folder(output: &Path, fill: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let partial = PathBuf::from(format!("{}.partial-{}", output.display(), std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
        fill(&partial)?;
        if output.exists() {
            std::fs::remove_dir(output)
                .with_context(|| format!("{} exists and is not an empty folder", output.display()))?;
        }
        std::fs::rename(&partial, output).with_context(|| format!("moving {} into place", output.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}
