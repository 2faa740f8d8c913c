//! Checkpoints: model weights, optimizer state and progress in one file, written atomically.
//!
//! Layout: `PIXRNNCK` magic, u32 version, then three length-prefixed (u64 LE) sections: a JSON
//! header ([`CheckpointHeader`]), the model record (burnpack) and the optimizer record.
//! The batch order is a function of (seed, step), so step + seed are the whole RNG state.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::models::{ModelConfig, PixelRnn};
use crate::run::write_atomic;

const MAGIC: &[u8; 8] = b"PIXRNNCK";
const VERSION: u32 = 1;

/// Progress saved with the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// The model the weights belong to.
    pub model: ModelConfig,
    /// The dataset it was trained on.
    pub dataset: DatasetName,
    /// Optimizer steps completed.
    pub step: u64,
    /// Seed of the batch order.
    pub seed: u64,
    /// Best validation bits/dim so far, if validated.
    pub best_valid_bits_per_dim: Option<f64>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its header.
    pub header: CheckpointHeader,
    /// Model weights.
    pub model: ModuleRecord,
    /// Optimizer state bytes (burnpack).
    pub optimizer: Vec<u8>,
}

/// Writes a checkpoint atomically.
pub fn save(
    path: &Path,
    header: &CheckpointHeader,
    model: &PixelRnn,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<()> {
    let err = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let json = serde_json::to_vec(header).expect("header serializes");
    let weights = model.clone().into_record().into_bytes().map_err(|e| err(e.to_string()))?;
    let optim = match optimizer {
        Some(o) => o.into_bytes().map_err(|e| err(e.to_string()))?.to_vec(),
        None => Vec::new(),
    };
    let mut bytes = Vec::with_capacity(64 + json.len() + weights.len() + optim.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend(VERSION.to_le_bytes());
    for section in [&json[..], &weights[..], &optim[..]] {
        bytes.extend((section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(section);
    }
    write_atomic(path, &bytes)
}

/// Reads a checkpoint, checking its magic number, version and section sizes.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let err = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(err("not a pixelrnn checkpoint (bad magic number)".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(err(format!("format version {version}, expected {VERSION}")));
    }
    let mut at = 12usize;
    let mut sections = Vec::new();
    for name in ["header", "weights", "optimizer"] {
        let len = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| err(format!("truncated before the {name} section")))?;
        let section = bytes
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| err(format!("truncated {name} section ({len} bytes expected)")))?;
        sections.push(section.to_vec());
        at += 8 + len;
    }
    if at != bytes.len() {
        return Err(err(format!("{} trailing bytes", bytes.len() - at)));
    }
    let optimizer = sections.pop().expect("three sections");
    let weights = sections.pop().expect("three sections");
    let header: CheckpointHeader =
        serde_json::from_slice(&sections[0]).map_err(|e| err(format!("unreadable header: {e}")))?;
    let model = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights))
        .map_err(|e| err(format!("unreadable weights: {e}")))?;
    Ok(Checkpoint { header, model, optimizer })
}

impl Checkpoint {
    /// Applies the weights to `model`, which must be built from the same config, for the same
    /// dataset.
    pub fn apply(&self, path: &Path, config: &ModelConfig, dataset: DatasetName, model: PixelRnn) -> Result<PixelRnn> {
        if self.header.dataset != dataset {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("trained on {}, but this run is on {dataset}", self.header.dataset),
            });
        }
        if &self.header.model != config {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                reason: format!(
                    "from another model ({} L={} h={} on {:?}), expected {} L={} h={} on {:?}",
                    self.header.model.architecture.name(),
                    self.header.model.num_layers,
                    self.header.model.hidden_channels,
                    self.header.model.image,
                    config.architecture.name(),
                    config.num_layers,
                    config.hidden_channels,
                    config.image
                ),
            });
        }
        model
            .try_load_record(self.model.clone())
            .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })
    }
}
