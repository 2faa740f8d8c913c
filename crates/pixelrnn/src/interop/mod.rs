//! Weights in safetensors, the format the field exchanges them in (PyTorch, the Hugging Face
//! hub, candle, Burn's `burn-store`): [`export`] a model with its config and training metadata,
//! [`import`] one back, in this crate's own tensor names ([`Layout::Native`], the module's
//! paths as Burn's `burn-store` collects them) or in the PyTorch twin's `state_dict()` names
//! and shapes ([`Layout::Pytorch`], see [`pytorch`]). The twin's models of the successors'
//! parts (`python/pixelrnn/twin.py`'s `NativeModel`: Gated PixelCNN, the logistic mixture,
//! class conditioning) use the native names, so their files import as [`Layout::Native`].
//!
//! Metadata (safetensors' `__metadata__`, strings): `format` = `pixelrnn`, `pixelrnn.layout`,
//! `pixelrnn.model` (the model config as JSON), and, when known, `pixelrnn.dataset`,
//! `pixelrnn.step`, `pixelrnn.seed`, `pixelrnn.best_valid_bits_per_dim`, `pixelrnn.batch_size`,
//! `pixelrnn.optimizer` (JSON), `pixelrnn.spec` (m1..m4,
//! or `twin` for the twin's models at other sizes; PyTorch layout).

pub mod pytorch;

use std::collections::{BTreeMap, HashMap};

use burn::prelude::*;
use burn::store::ModuleSnapshot;
use burn::tensor::Bytes;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::models::{ModelConfig, PixelRnn};

/// How tensors are named and laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Layout {
    /// This crate's module paths (`input.weight`, `layers.0.reduce.weight`, ...).
    Native,
    /// The PyTorch twin's `state_dict()` (`inp.weight`, ...; its models of the benchmark specs
    /// M1-M4, at any width).
    Pytorch,
}

impl Layout {
    /// Its name in the metadata.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Pytorch => "pytorch",
        }
    }
}

/// One tensor: shape and f32 values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Vec<f32>,
}

fn interop_error(reason: impl Into<String>) -> Error {
    Error::Weights(reason.into())
}

/// The model's parameters by native name (`burn-store`'s module paths, enum variants skipped).
pub fn native_tensors(model: &PixelRnn) -> BTreeMap<String, Weights> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|tensor| {
            let shape = tensor.shape.to_vec();
            let bytes = tensor.to_bytes().expect("a parameter's bytes");
            let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            (tensor.name.clone(), Weights { shape, values })
        })
        .collect()
}

/// Sets the model's parameters from `tensors` (native names); every parameter must be given,
/// with its shape, and nothing else.
pub fn apply_native(model: PixelRnn, tensors: &BTreeMap<String, Weights>) -> Result<PixelRnn> {
    let expected = native_tensors(&model);
    check_names_and_shapes(&expected, tensors)?;
    let pack = tensors
        .iter()
        .map(|(name, w)| {
            let bytes: Vec<u8> = w.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            burn::store::burn_pack::Tensor::new(
                name.clone(),
                burn::tensor::DType::F32,
                w.shape.clone(),
                None,
                Bytes::from_bytes_vec(bytes),
            )
        })
        .collect();
    let mut model = model;
    let result = model.apply(pack, None, None, true);
    if let Some(error) = result.errors.first() {
        return Err(interop_error(error.to_string()));
    }
    if let Some((name, _)) = result.missing.first() {
        return Err(interop_error(format!("tensor {name} was not applied")));
    }
    Ok(model)
}

/// Every name of `expected` in `found` with the same shape, and no other name.
pub(crate) fn check_names_and_shapes(
    expected: &BTreeMap<String, Weights>,
    found: &BTreeMap<String, Weights>,
) -> Result<()> {
    for (name, w) in expected {
        match found.get(name) {
            None => return Err(interop_error(format!("missing tensor {name} (shape {:?})", w.shape))),
            Some(f) if f.shape != w.shape => {
                return Err(interop_error(format!(
                    "tensor {name} has shape {:?}, the model needs {:?}",
                    f.shape, w.shape
                )))
            }
            Some(f) if f.values.len() != f.shape.iter().product::<usize>() => {
                return Err(interop_error(format!("tensor {name}: {} values for shape {:?}", f.values.len(), f.shape)))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().find(|name| !expected.contains_key(*name)) {
        return Err(interop_error(format!("unexpected tensor {extra} (the model has no such parameter)")));
    }
    Ok(())
}

/// The safetensors bytes of `tensors` with `metadata`.
pub fn to_safetensors(tensors: &BTreeMap<String, Weights>, metadata: BTreeMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, w)| (name.clone(), w.shape.clone(), w.values.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            (name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).expect("shape matches the data"))
        })
        .collect();
    let metadata: HashMap<String, String> = metadata.into_iter().collect();
    safetensors::serialize(views, Some(metadata)).map_err(|e| interop_error(format!("writing safetensors: {e}")))
}

/// The tensors (as f32) and metadata of a safetensors file.
pub fn from_safetensors(bytes: &[u8]) -> Result<(BTreeMap<String, Weights>, BTreeMap<String, String>)> {
    let not = |e: safetensors::SafeTensorError| interop_error(format!("not a safetensors file: {e}"));
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(not)?;
    let metadata: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let file = SafeTensors::deserialize(bytes).map_err(not)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4"))).collect(),
            Dtype::F64 => {
                view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8")) as f32).collect()
            }
            Dtype::F16 | Dtype::BF16 => {
                return Err(interop_error(format!(
                    "tensor {name} is {:?}: export the weights as float32",
                    view.dtype()
                )))
            }
            other => return Err(interop_error(format!("tensor {name} has dtype {other:?}, expected a float type"))),
        };
        tensors.insert(name, Weights { shape: view.shape().to_vec(), values });
    }
    Ok((tensors, metadata))
}

/// What is known about the weights besides the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingInfo {
    /// Dataset trained on.
    pub dataset: Option<String>,
    /// Optimizer steps.
    pub step: Option<u64>,
    /// Seed of the run.
    pub seed: Option<u64>,
    /// Best validation bits/dim.
    pub best_valid_bits_per_dim: Option<f64>,
    /// Images per training step.
    pub batch_size: Option<usize>,
    /// The optimizer's settings, as the run's `config.json` holds them (JSON).
    pub optimizer: Option<String>,
}

/// A model as safetensors bytes in `layout`, with its config and `info` in the metadata.
pub fn export(model: &PixelRnn, config: &ModelConfig, info: &TrainingInfo, layout: Layout) -> Result<Vec<u8>> {
    let mut metadata = BTreeMap::new();
    metadata.insert("format".into(), "pixelrnn".into());
    metadata.insert("pixelrnn.version".into(), env!("CARGO_PKG_VERSION").into());
    metadata.insert("pixelrnn.model".into(), serde_json::to_string(config).expect("config serializes"));
    if let Some(d) = &info.dataset {
        metadata.insert("pixelrnn.dataset".into(), d.clone());
    }
    if let Some(s) = info.step {
        metadata.insert("pixelrnn.step".into(), s.to_string());
    }
    if let Some(s) = info.seed {
        metadata.insert("pixelrnn.seed".into(), s.to_string());
    }
    if let Some(b) = info.best_valid_bits_per_dim {
        metadata.insert("pixelrnn.best_valid_bits_per_dim".into(), b.to_string());
    }
    if let Some(b) = info.batch_size {
        metadata.insert("pixelrnn.batch_size".into(), b.to_string());
    }
    if let Some(o) = &info.optimizer {
        metadata.insert("pixelrnn.optimizer".into(), o.clone());
    }
    encode(model, config, native_tensors(model), layout, metadata)
}

/// An imported model: its config, the model on `device`, and the training metadata found.
pub struct Imported {
    /// The model's config (from the metadata, or the benchmark spec the twin's tensors match).
    pub config: ModelConfig,
    /// The model.
    pub model: PixelRnn,
    /// The layout the file was in.
    pub layout: Layout,
    /// Training metadata (what the file says).
    pub info: TrainingInfo,
}

/// The layout of a file's tensors: its metadata's word, else the twin's names if present.
fn layout_of(tensors: &BTreeMap<String, Weights>, metadata: &BTreeMap<String, String>) -> Result<Layout> {
    match metadata.get("pixelrnn.layout").map(String::as_str) {
        Some("native") => Ok(Layout::Native),
        Some("pytorch") => Ok(Layout::Pytorch),
        Some(other) => Err(interop_error(format!("metadata pixelrnn.layout is {other:?}, expected native or pytorch"))),
        None if tensors.contains_key("inp.weight") => Ok(Layout::Pytorch),
        None => Ok(Layout::Native),
    }
}

/// The fields in which two model configs differ, as `field: ours vs theirs`.
fn config_differences(ours: &ModelConfig, theirs: &ModelConfig) -> Vec<String> {
    let (a, b) = (serde_json::to_value(ours).expect("config"), serde_json::to_value(theirs).expect("config"));
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}: {v} vs {}", b.get(k).unwrap_or(&serde_json::Value::Null)))
            .collect(),
        _ => vec!["the configs are not objects".into()],
    }
}

/// `model` (built from `config`) with the weights of a safetensors file in either layout:
/// the weights a run starts from (`train --init-weights`). The file must hold exactly this
/// model: in the native layout its recorded config must equal `config`; in the twin's layout
/// `config` must be a model the twin defines and every tensor must have its shape.
pub fn import_as(bytes: &[u8], config: &ModelConfig, model: PixelRnn) -> Result<PixelRnn> {
    let (tensors, metadata) = from_safetensors(bytes)?;
    let native = match layout_of(&tensors, &metadata)? {
        Layout::Native => {
            if let Some(json) = metadata.get("pixelrnn.model") {
                let theirs: ModelConfig = serde_json::from_str(json)
                    .map_err(|e| interop_error(format!("metadata pixelrnn.model is not a model config: {e}")))?;
                let differences = config_differences(config, &theirs);
                if !differences.is_empty() {
                    return Err(interop_error(format!(
                        "the weights are for another model (this run vs the file: {})",
                        differences.join(", ")
                    )));
                }
            }
            tensors
        }
        Layout::Pytorch => pytorch::from_twin(&model, config, tensors)?,
    };
    apply_native(model, &native)
}

pub use crate::models::parameters::gradients_as_model;

/// The gradients of [`gradients_as_model`] as safetensors bytes in `layout` (the twin's
/// layout holds its masks too). Parameters the twin does not have carry no gradient to it.
pub fn export_gradients(gradients: &PixelRnn, config: &ModelConfig, layout: Layout) -> Result<Vec<u8>> {
    let mut native = native_tensors(gradients);
    if layout == Layout::Pytorch {
        for name in pytorch::zero_in_twin(config) {
            if let Some(w) = native.get_mut(&name) {
                w.values.iter_mut().for_each(|v| *v = 0.0);
            }
        }
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("format".into(), "pixelrnn".into());
    metadata.insert("pixelrnn.content".into(), "gradients".into());
    metadata.insert("pixelrnn.model".into(), serde_json::to_string(config).expect("config serializes"));
    encode(gradients, config, native, layout, metadata)
}

/// `native` (tensors of `model`, built from `config`) as safetensors bytes in `layout`.
fn encode(
    model: &PixelRnn,
    config: &ModelConfig,
    native: BTreeMap<String, Weights>,
    layout: Layout,
    mut metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    metadata.insert("pixelrnn.layout".into(), layout.name().into());
    let tensors = match layout {
        Layout::Native => native,
        Layout::Pytorch => {
            metadata.insert("pixelrnn.spec".into(), pytorch::spec_name(config).into());
            pytorch::to_twin(model, config, native)?
        }
    };
    to_safetensors(&tensors, metadata)
}

/// Reads a safetensors file written by [`export`] (either layout) or by the PyTorch twin
/// (`save_file(model.state_dict(), ...)`, recognised by its tensor names). The weights must
/// match the model exactly: every tensor present, with its shape, and no other.
pub fn import(bytes: &[u8], device: &Device) -> Result<Imported> {
    let (tensors, metadata) = from_safetensors(bytes)?;
    let layout = layout_of(&tensors, &metadata)?;
    let config: ModelConfig = match metadata.get("pixelrnn.model") {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| interop_error(format!("metadata pixelrnn.model is not a model config: {e}")))?,
        None if layout == Layout::Pytorch => pytorch::infer_config(&tensors)?,
        None => {
            return Err(interop_error("no pixelrnn.model in the metadata: cannot tell which model these weights are"))
        }
    };
    config.validate()?;
    let model = config.init(device, 0)?;
    let native = match layout {
        Layout::Native => tensors,
        Layout::Pytorch => {
            let spec = pytorch::spec_name(&config);
            if let Some(s) = metadata.get("pixelrnn.spec").filter(|s| s.as_str() != spec) {
                return Err(interop_error(format!("metadata says spec {s} but the model config is {spec}")));
            }
            pytorch::from_twin(&model, &config, tensors)?
        }
    };
    let model = apply_native(model, &native)?;
    let info = TrainingInfo {
        dataset: metadata.get("pixelrnn.dataset").cloned(),
        step: metadata.get("pixelrnn.step").and_then(|s| s.parse().ok()),
        seed: metadata.get("pixelrnn.seed").and_then(|s| s.parse().ok()),
        best_valid_bits_per_dim: metadata.get("pixelrnn.best_valid_bits_per_dim").and_then(|s| s.parse().ok()),
        batch_size: metadata.get("pixelrnn.batch_size").and_then(|s| s.parse().ok()),
        optimizer: metadata.get("pixelrnn.optimizer").cloned(),
    };
    Ok(Imported { config, model, layout, info })
}

#[cfg(test)]
mod tests;
