//! The PyTorch twin's `state_dict()` layout (its modules `PixelCNN(h, rgb, nblocks)`,
//! `RowLSTM(h)` and `DiagBiLSTM(h)`, the benchmark specs M1-M4 of `docs/bench-specs.md` at their
//! sizes): the names, shapes and masks its modules have, mapped to and from this crate's
//! parameters. The twin's models are this crate's with residual connections, no skip
//! connections, an output stack of width 2h, the paper's kernels, and one LSTM layer on binary
//! data. What differs besides the names:
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
use crate::error::Result;
use crate::models::specs::Spec;
use crate::models::{Architecture, Layer, ModelConfig, PixelRnn};
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

/// The twin's model kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Twin {
    PixelCnn,
    RowLstm,
    DiagBiLstm,
}

/// The twin's tensors for `config` (one the twin has, see [`check_twin`]): name, where it
/// comes from, twin shape.
fn entries(config: &ModelConfig) -> Vec<(String, Source, Vec<usize>)> {
    let twin = twin_kind(config);
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
    match twin {
        Twin::PixelCnn => {
            for k in 0..config.num_layers {
                conv(&mut list, &format!("blocks.{k}.c1"), &format!("layers.{k}.reduce"), vec![h, 2 * h, 1, 1], rgb);
                conv(&mut list, &format!("blocks.{k}.c2"), &format!("layers.{k}.spatial"), vec![h, h, 3, 3], true);
                conv(&mut list, &format!("blocks.{k}.c3"), &format!("layers.{k}.expand"), vec![2 * h, h, 1, 1], rgb);
            }
        }
        Twin::RowLstm => {
            conv(&mut list, "i2s", "layers.0.lstm.input_to_state", vec![4 * h, 2 * h, 1, 3], true);
            conv(&mut list, "s2s", "layers.0.lstm.state_to_state", vec![4 * h, h, 3], false);
            conv(&mut list, "proj", "layers.0.projection", vec![2 * h, h, 1, 1], false);
        }
        Twin::DiagBiLstm => {
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
pub(crate) fn zero_in_twin(config: &ModelConfig) -> Vec<String> {
    match twin_kind(config) {
        Twin::RowLstm => vec!["layers.0.lstm.initial_hidden".into(), "layers.0.lstm.initial_cell".into()],
        _ => Vec::new(),
    }
}

fn twin_kind(config: &ModelConfig) -> Twin {
    match config.architecture {
        // The twin has no Gated PixelCNN: set beside the PixelCNN's, which it is not, it is
        // refused by `check_twin`.
        Architecture::PixelCnn | Architecture::GatedPixelCnn => Twin::PixelCnn,
        Architecture::RowLstm => Twin::RowLstm,
        Architecture::DiagonalBilstm => Twin::DiagBiLstm,
    }
}

/// The twin's model for `h` (and PixelCNN's colour and block count): this crate's config.
fn twin_config(twin: Twin, h: usize, rgb: bool, blocks: usize) -> ModelConfig {
    let (spec, layers) = match twin {
        Twin::PixelCnn if rgb => (Spec::M2, blocks),
        Twin::PixelCnn => (Spec::M1, blocks),
        Twin::RowLstm => (Spec::M3, 1),
        Twin::DiagBiLstm => (Spec::M4, 1),
    };
    ModelConfig { num_layers: layers, hidden_channels: h, output_hidden_channels: 2 * h, ..spec.model_config() }
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

/// The benchmark spec `config` is, if any (`m1`..`m4`), else `twin`.
pub fn spec_name(config: &ModelConfig) -> &'static str {
    [Spec::M1, Spec::M2, Spec::M3, Spec::M4]
        .into_iter()
        .find(|s| s.model_config() == *config)
        .map_or("twin", Spec::name)
}

/// Whether the PyTorch twin has this model: its architecture at this width (and PixelCNN depth
/// and colours) with the twin's fixed choices (see the module docs).
pub fn check_twin(config: &ModelConfig) -> Result<()> {
    let twin = twin_kind(config);
    let rgb = config.image.channels == 3;
    let expected = twin_config(twin, config.hidden_channels, rgb, config.num_layers);
    let same_image = match twin {
        Twin::PixelCnn => config.image.is_binary() != rgb,
        _ => config.image.is_binary() && config.image.channels == 1,
    };
    // The twin has no learned initial state: a Row LSTM's must be zero (checked on its values
    // by `to_twin`), whichever way the config says it is kept. Its Diagonal BiLSTM's padding
    // holds the states the bias drives there (`DiagonalPadding::Bias`): a model trained with a
    // zero padding computes something else, and is refused.
    // The padding means nothing outside the Diagonal BiLSTM.
    let padding = if twin == Twin::DiagBiLstm { config.diagonal_padding } else { expected.diagonal_padding };
    let comparable = ModelConfig {
        image: expected.image,
        learned_initial_state: expected.learned_initial_state,
        diagonal_padding: padding,
        ..config.clone()
    };
    if !same_image || comparable != expected {
        return Err(interop_error(format!(
            "the PyTorch twin has no such model: it defines the benchmark specs M1-M4 (docs/bench-specs.md) at any width h (and PixelCNN depth), with residual connections, no skip connections, an output stack of width 2h, one LSTM layer on binary images and (Diagonal BiLSTM) a bias-driven padding (train --diagonal-padding bias) and the paper's softmax/sigmoid output; this model is {} L={} h={} d={} residual={} skip={} padding={:?} output={:?} on {}x{}x{} ({} levels)",
            config.architecture.name(),
            config.num_layers,
            config.hidden_channels,
            config.output_hidden_channels,
            config.residual,
            config.skip,
            config.diagonal_padding,
            config.output,
            config.image.channels,
            config.image.height,
            config.image.width,
            config.image.levels
        )));
    }
    Ok(())
}

/// Which of the twin's models a `state_dict` is, from its tensor names and shapes: this
/// crate's config for it (images as in the benchmark specs: 28x28 binary, 32x32 RGB).
pub fn infer_config(tensors: &BTreeMap<String, Weights>) -> Result<ModelConfig> {
    let shape = |name: &str| tensors.get(name).map(|w| w.shape.clone());
    let unknown = || {
        interop_error("these tensors are neither pixelrnn's nor the PyTorch twin's (no inp.weight [2h, 1 or 3, 7, 7] with blocks.* or s2s.weight)")
    };
    let inp = shape("inp.weight").filter(|s| s.len() == 4 && s[0] % 2 == 0 && s[0] > 0).ok_or_else(unknown)?;
    let h = inp[0] / 2;
    let rgb = match inp[1] {
        1 => false,
        3 => true,
        _ => return Err(unknown()),
    };
    let blocks = (0..).take_while(|k| tensors.contains_key(&format!("blocks.{k}.c1.weight"))).count();
    let twin = match shape("s2s.weight") {
        _ if blocks > 0 => Twin::PixelCnn,
        Some(s2s) if s2s.len() == 3 && s2s[2] == 3 => Twin::RowLstm,
        Some(s2s) if s2s.len() == 3 && s2s[2] == 2 => Twin::DiagBiLstm,
        _ => return Err(unknown()),
    };
    Ok(twin_config(twin, h, rgb, blocks))
}

/// The twin's `state_dict` of `model` (built from `config`), from its native tensors.
pub fn to_twin(
    model: &PixelRnn,
    config: &ModelConfig,
    native: BTreeMap<String, Weights>,
) -> Result<BTreeMap<String, Weights>> {
    check_twin(config)?;
    for name in zero_in_twin(config) {
        if native.get(&name).is_some_and(|w| w.values.iter().any(|&v| v != 0.0)) {
            return Err(interop_error(format!(
                "{name} is not zero: the PyTorch twin starts every scan from a zero state and cannot hold it"
            )));
        }
    }
    let get = |name: &str| native.get(name).ok_or_else(|| interop_error(format!("the model has no {name}")));
    let mut twin = BTreeMap::new();
    for (name, source, shape) in entries(config) {
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

/// This crate's native tensors from the twin's `state_dict` `twin` for `model` (built from
/// `config`): every twin tensor must be there with its shape, nothing else, and the masks must
/// be the model's own.
pub fn from_twin(
    model: &PixelRnn,
    config: &ModelConfig,
    twin: BTreeMap<String, Weights>,
) -> Result<BTreeMap<String, Weights>> {
    let native_model = super::native_tensors(model);
    let expected = to_twin(model, config, native_model.clone())?;
    check_names_and_shapes(&expected, &twin)?;
    let mut native = BTreeMap::new();
    for (name, source, _) in entries(config) {
        let found = &twin[&name];
        match source {
            Source::Param(n) => {
                let shape = native_model[&n].shape.clone();
                native.insert(n, Weights { shape, values: found.values.clone() });
            }
            Source::Mask(path) => {
                if found.values != expected[&name].values {
                    return Err(interop_error(format!(
                        "{name} is not the mask this model has at {path} (another masking convention?)"
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
    for name in zero_in_twin(config) {
        let shape = native_model[&name].shape.clone();
        let zeros = vec![0.0; shape.iter().product()];
        native.insert(name, Weights { shape, values: zeros });
    }
    Ok(native)
}
