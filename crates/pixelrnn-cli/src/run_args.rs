//! What the commands that read a trained run share: loading its model from `--run` /
//! `--checkpoint` / `--device`, writing an output file, and publishing an output folder only
//! once it is complete.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::Device;
use pixelrnn::experiment::ExperimentConfig;
use pixelrnn::models::PixelRnn;
use pixelrnn::run::{LoadedRun, RunDir};

use crate::cli::RunArgs;

/// Rebuilds a run's model on the chosen device; also returns the checkpoint's path.
pub fn load_run(run: &RunArgs) -> anyhow::Result<(ExperimentConfig, PixelRnn, Device, PathBuf)> {
    let device = crate::device::select(run.device)?;
    let loaded = RunDir::new(&run.run)
        .allowing_unchecked(run.allow_unchecked)
        .load_weights(run.checkpoint.into(), !run.raw_weights, &device)
        .with_context(|| format!("loading the run in --run {}", run.run.display()))?;
    say_weights(&loaded);
    Ok((loaded.config, loaded.model, device, loaded.path))
}

/// Says on stderr which weights a command uses when the run keeps a weight average.
/// The class labels of `count` images for `model`: none for an unconditional model (which
/// refuses `--class`); for a class-conditional one `--class K` for every image, else `own`
/// (the images' own labels), which must then exist.
pub fn class_labels(
    model: &PixelRnn,
    class: Option<u8>,
    own: Option<Vec<u8>>,
    count: usize,
) -> anyhow::Result<Option<Vec<u8>>> {
    match (model.classes(), class) {
        (None, Some(_)) => {
            anyhow::bail!("--class: the run's model is not class-conditional (train it with --conditional)")
        }
        (None, None) => Ok(None),
        (Some(_), Some(k)) => Ok(Some(vec![k; count])),
        (Some(_), None) => own.map(Some).context("the run's model is class-conditional: give the image's --class K"),
    }
}

pub fn say_weights(loaded: &LoadedRun) {
    if let Some(average) = loaded.average {
        eprintln!(
            "using the averaged weights of {} (decay {}, averaged since step {} of {}; --raw-weights for the others)",
            loaded.path.display(),
            average.decay,
            average.since_step,
            loaded.step
        );
    }
}

/// Writes an output file atomically under the library's output policy ([`pixelrnn::fsio`]).
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    pixelrnn::fsio::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Refuses `output` before any work when it could not be written or would destroy something:
/// not a regular file (a device, a FIFO, a socket, a folder, a link), one of the files of the
/// run in `run_dir`, or one of `inputs` (each named by what it is).
pub fn check_output(output: &Path, run_dir: &Path, inputs: &[(&Path, &str)]) -> anyhow::Result<()> {
    // The files of any run, not only this command's: a checkpoint or config of the run in the
    // output's own folder.
    if let (Some(parent), Some(name)) = (output.parent(), output.file_name()) {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let there = RunDir::new(parent);
        if there.run_file().is_some() {
            if let Some((_, what)) = there.own_files().into_iter().find(|(p, _)| p.file_name() == Some(name)) {
                return Err(pixelrnn::Error::Output {
                    path: output.to_path_buf(),
                    reason: format!("it is {what} (of the run in {})", parent.display()),
                }
                .into());
            }
        }
    }
    let own = RunDir::new(run_dir).own_files();
    let mut all: Vec<(&Path, &str)> = own.iter().map(|(p, what)| (p.as_path(), *what)).collect();
    all.extend_from_slice(inputs);
    pixelrnn::fsio::refuse_overwriting(output, &all)?;
    Ok(())
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

/// Where a trained run's data is: `--data-dir` if given, else the folder the run recorded, else
/// the dataset's default folder. A recorded folder that no longer exists is an error (never
/// created and downloaded into behind the user's back).
pub fn run_data_dir(config: &ExperimentConfig, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(recorded) = config.data.data_dir.as_ref().filter(|d| !d.exists()) {
        anyhow::bail!(
            "the run's data folder {} (config.json) no longer exists: pass --data-dir with the {} files",
            recorded.display(),
            config.data.dataset
        );
    }
    Ok(config.data.dir())
}
