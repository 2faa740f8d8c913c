//! Checkpoints: model weights, optimizer state and progress in one file, written atomically.
//!
//! Layout: `PIXRNNCK` magic, u32 version, then length-prefixed (u64 LE) sections: a JSON
//! header ([`CheckpointHeader`], which holds the model config the weights belong to), the model
//! record (burnpack), the optimizer record and (version 3) the weight average's values
//! ([`crate::ema`], empty when the run keeps none); versions 2 and 3 end with the SHA-256 of
//! everything before it, checked on load, so that a flipped byte anywhere is an error rather
//! than weights that load silently wrong. Versions 1 (no checksum) and 2 (no average) are still
//! read; the next save writes version 3. Weights are checked finite before they are saved and after they are
//! loaded. The batch order is a function of (seed, step), so step + seed are the whole RNG
//! state.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::data::DatasetName;
use crate::ema::{AverageInfo, WeightAverage};
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::models::{ModelConfig, PixelRnn};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"PIXRNNCK";
const VERSION: u32 = 3;
/// The format before the weight average, still read.
const VERSION_WITHOUT_AVERAGE: u32 = 2;
/// The format before the checksum, still read.
const VERSION_WITHOUT_CHECKSUM: u32 = 1;

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
    /// The weight average kept beside the weights, if any (its values are the fourth section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<AverageInfo>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its header.
    pub header: CheckpointHeader,
    /// Model weights.
    pub model: ModuleRecord,
    /// Optimizer state bytes (burnpack).
    pub optimizer: Vec<u8>,
    /// The weight average, if the run keeps one.
    pub average: Option<WeightAverage>,
}

/// Writes a checkpoint atomically.
pub fn save(
    path: &Path,
    header: &CheckpointHeader,
    model: &PixelRnn,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<()> {
    write_atomic(path, &encode(path, header, model, optimizer)?)
}

/// [`save`] with the run's weight average (the header's `average` is set from it).
pub fn save_with_average(
    path: &Path,
    header: &CheckpointHeader,
    model: &PixelRnn,
    optimizer: Option<&ModuleOptimizer>,
    average: Option<&WeightAverage>,
) -> Result<()> {
    write_atomic(path, &encode_with_average(path, header, model, optimizer, average)?)
}

/// The bytes [`save`] writes (`path` names it in errors); [`parse`] reads them back.
pub fn encode(
    path: &Path,
    header: &CheckpointHeader,
    model: &PixelRnn,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<Vec<u8>> {
    encode_with_average(path, header, model, optimizer, None)
}

/// [`encode`] with the run's weight average.
pub fn encode_with_average(
    path: &Path,
    header: &CheckpointHeader,
    model: &PixelRnn,
    optimizer: Option<&ModuleOptimizer>,
    average: Option<&WeightAverage>,
) -> Result<Vec<u8>> {
    let header = &CheckpointHeader { average: average.map(|a| a.info), ..header.clone() };
    let err = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    if let Some(name) = first_non_finite(model) {
        return Err(err(format!(
            "not saved: {name} holds non-finite values (NaN or infinity) at step {}; the last good checkpoint is kept (a lower learning rate may help)",
            header.step
        )));
    }
    let json = serde_json::to_vec(header).expect("header serializes");
    let weights = model.clone().into_record().into_bytes().map_err(|e| err(e.to_string()))?;
    let optim = match optimizer {
        Some(o) => o.into_bytes().map_err(|e| err(e.to_string()))?.to_vec(),
        None => Vec::new(),
    };
    let averaged = average.map(WeightAverage::to_bytes).unwrap_or_default();
    let mut bytes = Vec::with_capacity(64 + json.len() + weights.len() + optim.len() + averaged.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend(VERSION.to_le_bytes());
    for section in [&json[..], &weights[..], &optim[..], &averaged[..]] {
        bytes.extend((section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(section);
    }
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum);
    Ok(bytes)
}

/// Reads a checkpoint, checking its magic number, version, sections and checksum. A file of
/// format 1 (written before checkpoints carried a checksum) is refused: a damaged or forged copy
/// could not be told from a good one; [`load_unchecked_too`] reads it on request.
pub fn load(path: &Path) -> Result<Checkpoint> {
    load_with(path, false)
}

/// [`load`], reading format-1 files (without a checksum) too.
pub fn load_unchecked_too(path: &Path) -> Result<Checkpoint> {
    load_with(path, true)
}

/// [`load`], or [`load_unchecked_too`] when `allow_unchecked`.
pub fn load_with(path: &Path, allow_unchecked: bool) -> Result<Checkpoint> {
    let bytes = crate::fsio::read_file(path)?;
    if !allow_unchecked
        && bytes.len() >= 12
        && bytes[..8] == MAGIC[..]
        && bytes[8..12] == VERSION_WITHOUT_CHECKSUM.to_le_bytes()
    {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            reason: "format 1, written before checkpoints carried a checksum, so a damaged or forged copy cannot be told from a good one; load it with --allow-unchecked if you trust it (training saves it in the checked format)".into(),
        });
    }
    parse(path, &bytes)
}

/// A checkpoint from its bytes (`path` names it in errors): [`load`] without the file.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let err = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(err("not a pixelrnn checkpoint (bad magic number)".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let bytes = match version {
        VERSION | VERSION_WITHOUT_AVERAGE => {
            let Some(body_len) = bytes.len().checked_sub(32).filter(|&n| n >= 12) else {
                return Err(err("truncated before its checksum".into()));
            };
            let (body, checksum) = bytes.split_at(body_len);
            if Sha256::digest(body).as_slice() != checksum {
                return Err(err(
                    "corrupt: its SHA-256 does not match its contents (a damaged or truncated copy)".into()
                ));
            }
            body
        }
        VERSION_WITHOUT_CHECKSUM => bytes,
        _ => {
            return Err(err(format!(
                "format version {version}, expected {VERSION} (or the older {VERSION_WITHOUT_AVERAGE}, {VERSION_WITHOUT_CHECKSUM})"
            )))
        }
    };
    let mut at = 12usize;
    let mut sections = Vec::new();
    let names: &[&str] = if version == VERSION {
        &["header", "weights", "optimizer", "average"]
    } else {
        &["header", "weights", "optimizer"]
    };
    for &name in names {
        let len = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| err(format!("truncated before the {name} section")))?;
        // Checked against the file's size before anything is allocated.
        let end = usize::try_from(len).ok().and_then(|len| (at + 8).checked_add(len));
        let section = end
            .and_then(|end| bytes.get(at + 8..end))
            .ok_or_else(|| err(format!("truncated {name} section ({len} bytes expected)")))?;
        let len = section.len();
        sections.push(section.to_vec());
        at += 8 + len;
    }
    if at != bytes.len() {
        return Err(err(format!("{} trailing bytes", bytes.len() - at)));
    }
    let averaged = if version == VERSION { sections.pop().expect("four sections") } else { Vec::new() };
    let optimizer = sections.pop().expect("three sections");
    let weights = sections.pop().expect("three sections");
    let header: CheckpointHeader =
        serde_json::from_slice(&sections[0]).map_err(|e| err(format!("unreadable header: {e}")))?;
    header.model.validate().map_err(|e| err(format!("unusable header: {e}")))?;
    let average = match header.average {
        Some(info) => Some(WeightAverage::from_bytes(info, &averaged).map_err(err)?),
        None if !averaged.is_empty() => {
            return Err(err("holds weight-average values but its header names no average".into()));
        }
        None => None,
    };
    let model = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights))
        .map_err(|e| err(format!("unreadable weights: {e}")))?;
    Ok(Checkpoint { header, model, optimizer, average })
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
                    "holds another model ({} L={} h={} on {}) than the run's config.json describes ({} L={} h={} on {})",
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
        let model = model
            .try_load_record(self.model.clone())
            .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })?;
        if let Some(name) = first_non_finite(&model) {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("{name} holds non-finite values (NaN or infinity): the weights are unusable"),
            });
        }
        Ok(model)
    }

    /// [`Self::apply`], then the weight average over the weights when the checkpoint has one
    /// and `averaged` asks for it; also says whether it was used.
    pub fn apply_weights(
        &self,
        path: &Path,
        config: &ModelConfig,
        dataset: DatasetName,
        model: PixelRnn,
        averaged: bool,
    ) -> Result<(PixelRnn, Option<AverageInfo>)> {
        let model = self.apply(path, config, dataset, model)?;
        match self.average.as_ref().filter(|_| averaged) {
            Some(average) => {
                let model = average.apply(model).map_err(|e| Error::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!("its weight average does not fit the model: {e}"),
                })?;
                Ok((model, Some(average.info)))
            }
            None => Ok((model, None)),
        }
    }
}

/// The first parameter (in the module's order, as `parameter N of shape [..]`) holding a NaN or
/// an infinity, if any.
pub fn first_non_finite(model: &PixelRnn) -> Option<String> {
    use burn::module::{ModuleVisitor, Param};
    use burn::prelude::Tensor;
    struct Finder {
        index: usize,
        found: Option<String>,
    }
    impl ModuleVisitor for Finder {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.found.is_none() {
                let tensor = param.val();
                if !tensor.clone().is_finite().all().into_scalar::<bool>() {
                    self.found = Some(format!("parameter {} of shape {:?}", self.index, tensor.dims()));
                }
            }
            self.index += 1;
        }
    }
    let mut finder = Finder { index: 0, found: None };
    model.visit(&mut finder);
    finder.found
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::prelude::*;

    use super::*;
    use crate::image_spec::ImageSpec;
    use crate::models::{Architecture, Preset};

    fn model() -> (ModelConfig, PixelRnn) {
        let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
        let config = ModelConfig::preset(Preset::Tiny, Architecture::RowLstm, image).unwrap();
        let model = config.init(&Device::flex(), 3).unwrap();
        (config, model)
    }

    fn header(config: &ModelConfig) -> CheckpointHeader {
        CheckpointHeader {
            model: config.clone(),
            dataset: DatasetName::BinarizedMnist,
            step: 4,
            seed: 3,
            best_valid_bits_per_dim: None,
            average: None,
        }
    }

    #[test]
    fn every_flipped_byte_is_caught_and_versions_1_and_2_still_load() {
        let (config, model) = model();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-last.bin");
        save(&path, &header(&config), &model, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let loaded = load(&path).unwrap().apply(&path, &config, DatasetName::BinarizedMnist, model.clone()).unwrap();
        assert_eq!(crate::interop::native_tensors(&loaded), crate::interop::native_tensors(&model));
        // A flipped bit anywhere (sampled every 97 bytes), and a missing tail: refused.
        for at in (12..bytes.len()).step_by(97) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x04;
            std::fs::write(&path, &damaged).unwrap();
            let err = load(&path).err().expect("refused").to_string();
            assert!(err.contains("corrupt") && err.contains("checkpoint-last.bin"), "byte {at}: {err}");
        }
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        assert!(load(&path).err().unwrap().to_string().contains("truncated"));
        // Version 2 (before the average): three sections (the empty average's length prefix
        // dropped) and a SHA-256 of them; version 1 (before the checksum): without it.
        let three = &bytes[..bytes.len() - 32 - 8];
        let mut v2 = three.to_vec();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let digest = Sha256::digest(&v2);
        v2.extend_from_slice(&digest);
        let mut v1 = three.to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&path, &v1).unwrap();
        let err = load(&path).err().expect("format 1 refused by default").to_string();
        assert!(err.contains("format 1") && err.contains("--allow-unchecked"), "{err}");
        for old in [v2, v1] {
            std::fs::write(&path, &old).unwrap();
            let loaded = load_unchecked_too(&path).unwrap();
            assert!(loaded.average.is_none());
            let loaded = loaded.apply(&path, &config, DatasetName::BinarizedMnist, model.clone()).unwrap();
            assert_eq!(crate::interop::native_tensors(&loaded), crate::interop::native_tensors(&model));
        }
    }

    #[test]
    fn the_weight_average_is_saved_exactly_and_used_only_when_asked() {
        let (config, model) = model();
        let other = config.init(&Device::flex(), 9).unwrap();
        let mut average = WeightAverage::start(0.5, &model, 4).unwrap();
        average.update(&other, 5);
        average.update(&model, 6);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-last.bin");
        save_with_average(&path, &header(&config), &model, None, Some(&average)).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.header.average, Some(average.info));
        assert_eq!(loaded.average.as_ref(), Some(&average));
        let fresh = || config.init(&Device::flex(), 1).unwrap();
        let ds = DatasetName::BinarizedMnist;
        let (raw, used) = loaded.apply_weights(&path, &config, ds, fresh(), false).unwrap();
        assert_eq!(
            (crate::models::parameters::flatten_parameters(&raw), used),
            (crate::models::parameters::flatten_parameters(&model), None)
        );
        let (averaged, used) = loaded.apply_weights(&path, &config, ds, fresh(), true).unwrap();
        assert_eq!(used, Some(average.info));
        assert_eq!(crate::models::parameters::flatten_parameters(&averaged), average.values);
        // An average of another model's size is a clear error, not a panic.
        let small = WeightAverage { info: average.info, values: vec![0.0; 3] };
        save_with_average(&path, &header(&config), &model, None, Some(&small)).unwrap();
        let err = load(&path).unwrap().apply_weights(&path, &config, ds, fresh(), true).err().unwrap().to_string();
        assert!(err.contains("weight average does not fit") && err.contains("checkpoint-last.bin"), "{err}");
    }

    #[test]
    fn non_finite_weights_are_neither_saved_nor_loaded() {
        let (config, mut model) = model();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-last.bin");
        save(&path, &header(&config), &model, None).unwrap();
        let good = std::fs::read(&path).unwrap();
        model.input.bias = Param::from_tensor(Tensor::full([12], f32::NAN, &Device::flex()));
        let err = save(&path, &header(&config), &model, None).unwrap_err().to_string();
        assert!(err.contains("non-finite") && err.contains("step 4"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), good, "the last good checkpoint is kept");
        assert!(first_non_finite(&config.init(&Device::flex(), 1).unwrap()).is_none());
        // A version-1 file (no checksum) holding NaN weights is refused on load.
        let mut bytes = Vec::from(&MAGIC[..]);
        bytes.extend(1u32.to_le_bytes());
        let json = serde_json::to_vec(&header(&config)).unwrap();
        let weights = model.clone().into_record().into_bytes().unwrap();
        for section in [&json[..], &weights[..], &[][..]] {
            bytes.extend((section.len() as u64).to_le_bytes());
            bytes.extend_from_slice(section);
        }
        std::fs::write(&path, &bytes).unwrap();
        let (_, fresh) = super::tests::model();
        let err = load_unchecked_too(&path)
            .unwrap()
            .apply(&path, &config, DatasetName::BinarizedMnist, fresh)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("non-finite"), "{err}");
    }
}
