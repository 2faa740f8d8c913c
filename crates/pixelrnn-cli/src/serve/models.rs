//! The runs a server offers, each loaded once (its best checkpoint, with its weight average
//! where it keeps one, as every command reads a run).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::prelude::Device;
use pixelrnn::models::{ModelConfig, PixelRnn};
use pixelrnn::run::{RunDir, Which};
use serde::Serialize;

/// One model offered.
pub struct Served {
    /// Its name in the API: the run directory's name (made unique).
    pub id: String,
    /// The model.
    pub model: PixelRnn,
    /// Its config (the codec's files name it).
    pub config: ModelConfig,
    /// What the page shows about it.
    pub info: ModelInfo,
    /// The device it runs on.
    pub device: Device,
}

/// A model as `/api/models` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Its name in the API.
    pub id: String,
    /// Architecture (`pixel-cnn`, ...).
    pub architecture: String,
    /// Dataset it was trained on.
    pub dataset: String,
    /// Image channels, height, width and levels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Values per sub-pixel.
    pub levels: usize,
    /// Classes of a class-conditional model.
    pub classes: Option<usize>,
    /// The unit of its NLL: nats (binary images) or bits/dim.
    pub unit: &'static str,
    /// The checkpoint's step.
    pub step: u64,
    /// Whether the weights are the run's weight average.
    pub averaged: bool,
}

/// The runs in `dirs`, then (with `pretrained`) every run in ./pretrained/ not among them.
pub fn load_all(dirs: &[PathBuf], pretrained: bool) -> anyhow::Result<Vec<Served>> {
    let mut dirs = dirs.to_vec();
    let root = Path::new("pretrained");
    if pretrained {
        let given: Vec<PathBuf> = dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
        for run in pretrained_runs(root) {
            if !run.canonicalize().is_ok_and(|r| given.contains(&r)) {
                dirs.push(run);
            }
        }
    }
    if dirs.is_empty() {
        bail!("no model to serve: no --run given and no run in ./{}/: give --run RUN_DIR (repeatable)", root.display());
    }
    let device = pixelrnn::device::open(pixelrnn::device::Backend::Cpu)?;
    let mut served: Vec<Served> = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        let loaded = RunDir::new(dir)
            .load_weights(Which::Best, true, &device)
            .with_context(|| format!("loading the run in --run {}", dir.display()))?;
        let name = dir.file_name().map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
        let mut id = name.clone();
        let mut k = 2;
        while served.iter().any(|s| s.id == id) {
            id = format!("{name}-{k}");
            k += 1;
        }
        let spec = loaded.model.image();
        let info = ModelInfo {
            id: id.clone(),
            architecture: loaded.config.model.architecture.name().to_string(),
            dataset: loaded.config.data.dataset.name().to_string(),
            channels: spec.channels,
            height: spec.height,
            width: spec.width,
            levels: spec.levels,
            classes: loaded.model.classes(),
            unit: if spec.is_binary() { "nats" } else { "bits/dim" },
            step: loaded.step,
            averaged: loaded.average.is_some(),
        };
        served.push(Served { id, model: loaded.model, config: loaded.config.model, info, device: device.clone() });
    }
    Ok(served)
}

/// The run directories under `root` (those with a `config.json`), by name; none when there is
/// no such folder.
fn pretrained_runs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(pixelrnn::run::CONFIG_FILE).is_file())
        .collect();
    runs.sort();
    runs
}
