//! The PyTorch twin's `state_dict()` layout for the benchmark specs M1-M4
//! (`docs/bench-specs.md`): the names, shapes and masks its modules have, mapped to and from
//! this crate's parameters. What differs besides the names:
//! - every masked convolution has its mask in the state dict (`*.mask`, a buffer, 1 = visible);
//!   M1's 1x1 convolutions and every LSTM spec's projection and output stack are plain
//!   convolutions there (no mask; ours are mask B with one colour group: the same);
//! - the Row LSTM's state-to-state convolution is a `Conv1d` (`[4h, h, 3]`, ours `[4h, h, 1, 3]`),
//!   and the twin starts every row scan from a zero state (ours learns h_0 and c_0: they must be
//!   zero to export, and are zero on import);
//! - the Diagonal BiLSTM's two directions are one grouped convolution each (`groups=2`):
//!   `i2s` `[8h, 2h, 1, 1]` and `s2s` `[8h, h, 2]` hold the left-to-right direction's kernel,
//!   then the right-to-left one's. The gate order (o, f, i, g) is the same.

use std::collections::BTreeMap;

use super::{check_names_and_shapes, interop_error, Weights};
use crate::bench::Spec;
use crate::error::Result;
use crate::models::{Layer, ModelConfig, PixelRnn};
use crate::nn::masked_conv::{host_values, MaskedConv2d};

/// Where a twin tensor comes from.
enum Source {
    /// A parameter (native name), reshaped.
    Param(String),
    /// The visibility mask of a masked convolution (its native path).
    Mask(String),
    /// Two parameters concatenated along dimension 0 (the Diagonal BiLSTM's directions).
    Concat([String; 2]),
}

/// The twin's tensors: name, where it comes from, twin shape.
fn entries(spec: Spec) -> Vec<(String, Source, Vec<usize>)> {
    let config = spec.model_config();
    let h = config.hidden_channels;
    let c = config.image.channels;
    let out = config.output_channels();
    let rgb = c == 3;
    let mut list = Vec::new();
    let conv = |list: &mut Vec<_>, twin: &str, native: &str, shape: Vec<usize>, masked: bool| {
        list.push((format!("{twin}.weight"), Source::Param(format!("{native}.weight")), shape.clone()));
        list.push((format!("{twin}.bias"), Source::Param(format!("{native}.bias")), vec![shape[0]]));
        if masked {
            list.push((format!("{twin}.mask"), Source::Mask(native.to_string()), shape));
        }
    };
    conv(&mut list, "inp", "input", vec![2 * h, c, 7, 7], true);
    match spec {
        Spec::M1 | Spec::M2 => {
            for k in 0..config.num_layers {
                conv(&mut list, &format!("blocks.{k}.c1"), &format!("layers.{k}.reduce"), vec![h, 2 * h, 1, 1], rgb);
                conv(&mut list, &format!("blocks.{k}.c2"), &format!("layers.{k}.spatial"), vec![h, h, 3, 3], true);
                conv(&mut list, &format!("blocks.{k}.c3"), &format!("layers.{k}.expand"), vec![2 * h, h, 1, 1], rgb);
            }
        }
        Spec::M3 => {
            conv(&mut list, "i2s", "layers.0.lstm.input_to_state", vec![4 * h, 2 * h, 1, 3], true);
            conv(&mut list, "s2s", "layers.0.lstm.state_to_state", vec![4 * h, h, 3], false);
            conv(&mut list, "proj", "layers.0.projection", vec![2 * h, h, 1, 1], false);
        }
        Spec::M4 => {
            let both = |part: &str| ["left_to_right", "right_to_left"].map(|d| format!("layers.0.{d}.{part}"));
            for (twin, part, shape) in
                [("i2s", "input_to_state", vec![8 * h, 2 * h, 1, 1]), ("s2s", "state_to_state", vec![8 * h, h, 2])]
            {
                list.push((format!("{twin}.weight"), Source::Concat(both(&format!("{part}.weight"))), shape.clone()));
                list.push((format!("{twin}.bias"), Source::Concat(both(&format!("{part}.bias"))), vec![8 * h]));
            }
            conv(&mut list, "proj", "layers.0.projection", vec![2 * h, h, 1, 1], false);
        }
    }
    conv(&mut list, "o1", "output.hidden", vec![2 * h, 2 * h, 1, 1], rgb);
    conv(&mut list, "o2", "output.logits", vec![out, 2 * h, 1, 1], rgb);
    list
}

/// The native names the twin has no tensor for, and must be zero (the Row LSTM's learned
/// initial state, which the twin does not have).
fn zero_in_twin(spec: Spec) -> Vec<String> {
    match spec {
        Spec::M3 => vec!["layers.0.lstm.initial_hidden".into(), "layers.0.lstm.initial_cell".into()],
        _ => Vec::new(),
    }
}

/// The masked convolution at a native path.
fn conv_at<'m>(model: &'m PixelRnn, path: &str) -> Option<&'m MaskedConv2d> {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["input"] => Some(&model.input),
        ["output", "hidden"] => Some(&model.output.hidden),
        ["output", "logits"] => Some(&model.output.logits),
        ["layers", k, rest @ ..] => match (model.layers.get(k.parse::<usize>().ok()?)?, rest) {
            (Layer::PixelCnn(b), ["reduce"]) => Some(&b.reduce),
            (Layer::PixelCnn(b), ["spatial"]) => Some(&b.spatial),
            (Layer::PixelCnn(b), ["expand"]) => Some(&b.expand),
            (Layer::RowLstm(l), ["lstm", "input_to_state"]) => Some(&l.lstm.input_to_state),
            _ => None,
        },
        _ => None,
    }
}

/// The benchmark spec whose model `config` is (the twin defines only those).
pub fn spec_of(config: &ModelConfig) -> Result<Spec> {
    [Spec::M1, Spec::M2, Spec::M3, Spec::M4].into_iter().find(|s| s.model_config() == *config).ok_or_else(|| {
        interop_error(format!(
            "the PyTorch twin defines the benchmark specs M1-M4 only; this model ({} L={} h={} on {}x{}x{}) is none of them",
            config.architecture.name(),
            config.num_layers,
            config.hidden_channels,
            config.image.channels,
            config.image.height,
            config.image.width
        ))
    })
}

/// Which spec a twin's `state_dict` is, from its tensor names and shapes.
pub fn infer_spec(tensors: &BTreeMap<String, Weights>) -> Result<Spec> {
    let shape = |name: &str| tensors.get(name).map(|w| w.shape.clone());
    let spec = match (shape("inp.weight"), shape("blocks.0.c1.weight"), shape("s2s.weight")) {
        (Some(inp), Some(_), _) if inp.get(1) == Some(&1) => Spec::M1,
        (Some(inp), Some(_), _) if inp.get(1) == Some(&3) => Spec::M2,
        (Some(_), None, Some(s2s)) if s2s.len() == 3 && s2s[2] == 3 => Spec::M3,
        (Some(_), None, Some(s2s)) if s2s.len() == 3 && s2s[2] == 2 => Spec::M4,
        _ => {
            return Err(interop_error(
                "these tensors are neither pixelrnn's nor one of the PyTorch twin's specs M1-M4 (no inp.weight with blocks.* or s2s.weight)",
            ))
        }
    };
    Ok(spec)
}

/// The twin's `state_dict` of `model` (of `spec`), from its native tensors.
pub fn to_twin(model: &PixelRnn, spec: Spec, native: BTreeMap<String, Weights>) -> Result<BTreeMap<String, Weights>> {
    for name in zero_in_twin(spec) {
        if native.get(&name).is_some_and(|w| w.values.iter().any(|&v| v != 0.0)) {
            return Err(interop_error(format!(
                "{name} is not zero: the PyTorch twin starts every scan from a zero state and cannot hold it"
            )));
        }
    }
    let get = |name: &str| native.get(name).ok_or_else(|| interop_error(format!("the model has no {name}")));
    let mut twin = BTreeMap::new();
    for (name, source, shape) in entries(spec) {
        let values = match source {
            Source::Param(n) => get(&n)?.values.clone(),
            Source::Mask(path) => {
                let conv =
                    conv_at(model, &path).ok_or_else(|| interop_error(format!("no masked convolution at {path}")))?;
                host_values(conv.allowed.clone())
            }
            Source::Concat([a, b]) => [get(&a)?.values.clone(), get(&b)?.values.clone()].concat(),
        };
        if values.len() != shape.iter().product::<usize>() {
            return Err(interop_error(format!("{name}: {} values for the twin's shape {shape:?}", values.len())));
        }
        twin.insert(name, Weights { shape, values });
    }
    Ok(twin)
}

/// This crate's native tensors from the twin's `state_dict` `twin` for `model` (built for
/// `spec`): every twin tensor must be there with its shape, nothing else, and the masks must
/// be the model's own.
pub fn from_twin(model: &PixelRnn, spec: Spec, twin: BTreeMap<String, Weights>) -> Result<BTreeMap<String, Weights>> {
    let native_model = super::native_tensors(model);
    let expected = to_twin(model, spec, native_model.clone())?;
    check_names_and_shapes(&expected, &twin)?;
    let mut native = BTreeMap::new();
    for (name, source, _) in entries(spec) {
        let found = &twin[&name];
        match source {
            Source::Param(n) => {
                let shape = native_model[&n].shape.clone();
                native.insert(n, Weights { shape, values: found.values.clone() });
            }
            Source::Mask(path) => {
                if found.values != expected[&name].values {
                    return Err(interop_error(format!(
                        "{name} is not the mask of spec {} at {path} (another masking convention?)",
                        spec.name()
                    )));
                }
            }
            Source::Concat([a, b]) => {
                let half = found.values.len() / 2;
                for (n, part) in [(a, &found.values[..half]), (b, &found.values[half..])] {
                    let shape = native_model[&n].shape.clone();
                    native.insert(n, Weights { shape, values: part.to_vec() });
                }
            }
        }
    }
    for name in zero_in_twin(spec) {
        let shape = native_model[&name].shape.clone();
        let zeros = vec![0.0; shape.iter().product()];
        native.insert(name, Weights { shape, values: zeros });
    }
    Ok(native)
}
