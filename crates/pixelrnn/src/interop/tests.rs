use burn::module::Param;

use super::*;
use crate::image_spec::ImageSpec;
use crate::models::specs::Spec;
use crate::models::{Architecture, Preset};

fn nll(model: &PixelRnn, image: ImageSpec) -> Vec<f32> {
    let values: Vec<i32> = (0..2 * image.dims()).map(|i| ((i * 7919 + 5) % image.levels) as i32).collect();
    let batch = Tensor::<4, Int>::from_data(
        TensorData::new(values, [2, image.channels, image.height, image.width]),
        &Device::flex(),
    );
    model.nll(batch).into_data().try_to_vec().unwrap()
}

#[test]
fn native_export_and_import_give_the_same_model_for_every_architecture() {
    for architecture in Architecture::ALL {
        for image in [
            ImageSpec { channels: 1, height: 5, width: 4, levels: 2 },
            ImageSpec { channels: 3, height: 4, width: 4, levels: 256 },
        ] {
            let config = ModelConfig::preset(Preset::Tiny, architecture, image).unwrap();
            let model = config.init(&Device::flex(), 7).unwrap();
            let info = TrainingInfo {
                dataset: Some("cifar10".into()),
                step: Some(12),
                seed: Some(7),
                best_valid_bits_per_dim: Some(3.5),
                batch_size: Some(16),
                optimizer: Some("{}".into()),
            };
            let bytes = export(&model, &config, &info, Layout::Native).unwrap();
            let imported = import(&bytes, &Device::flex()).unwrap();
            assert_eq!(
                (imported.config.clone(), imported.layout, imported.info.clone()),
                (config, Layout::Native, info)
            );
            assert_eq!(native_tensors(&imported.model), native_tensors(&model), "{architecture:?} {image:?}");
            assert_eq!(nll(&imported.model, image), nll(&model, image));
        }
    }
}

#[test]
fn the_pytorch_layout_round_trips_every_spec() {
    for spec in [Spec::M1, Spec::M2, Spec::M3, Spec::M4] {
        let config = spec.model_config();
        let model = config.init(&Device::flex(), 3).unwrap();
        let bytes = export(&model, &config, &TrainingInfo::default(), Layout::Pytorch).unwrap();
        let (tensors, metadata) = from_safetensors(&bytes).unwrap();
        assert_eq!(metadata["pixelrnn.spec"], spec.name());
        assert!(tensors.contains_key("inp.mask") && tensors.contains_key("o2.bias"), "{spec:?}");
        let imported = import(&bytes, &Device::flex()).unwrap();
        assert_eq!(native_tensors(&imported.model), native_tensors(&model), "{spec:?}");
        // Without our metadata (as the twin's own save_file writes it), the spec is inferred.
        let bare = to_safetensors(&tensors, BTreeMap::new()).unwrap();
        let imported = import(&bare, &Device::flex()).unwrap();
        assert_eq!((imported.config, imported.layout), (config, Layout::Pytorch));
        assert_eq!(native_tensors(&imported.model), native_tensors(&model), "{spec:?} without metadata");
    }
    // The twin's parameter counts (python/pixelrnn/twin.py): masks are buffers, not parameters.
    let params = |spec: Spec| -> usize {
        let config = spec.model_config();
        let bytes =
            export(&config.init(&Device::flex(), 0).unwrap(), &config, &TrainingInfo::default(), Layout::Pytorch)
                .unwrap();
        let (tensors, _) = from_safetensors(&bytes).unwrap();
        tensors.iter().filter(|(n, _)| !n.ends_with(".mask")).map(|(_, w)| w.values.len()).sum()
    };
    assert_eq!(
        [params(Spec::M1), params(Spec::M2), params(Spec::M3), params(Spec::M4)],
        [101_505, 509_056, 46_657, 11_681]
    );
}

#[test]
fn weights_that_do_not_fit_are_refused_with_the_tensor_named() {
    let spec = Spec::M3;
    let config = spec.model_config();
    let model = config.init(&Device::flex(), 3).unwrap();
    let bytes = export(&model, &config, &TrainingInfo::default(), Layout::Pytorch).unwrap();
    let (tensors, metadata) = from_safetensors(&bytes).unwrap();
    let refused = |tensors: &BTreeMap<String, Weights>| {
        let bytes = to_safetensors(tensors, metadata.clone()).unwrap();
        import(&bytes, &Device::flex()).err().expect("refused").to_string()
    };
    let mut missing = tensors.clone();
    missing.remove("s2s.bias");
    assert!(refused(&missing).contains("missing tensor s2s.bias"));
    let mut extra = tensors.clone();
    extra.insert("extra.weight".into(), Weights { shape: vec![1], values: vec![0.0] });
    assert!(refused(&extra).contains("unexpected tensor extra.weight"));
    let mut shaped = tensors.clone();
    shaped.insert("s2s.weight".into(), Weights { shape: vec![128, 32, 1, 3], values: vec![0.0; 128 * 96] });
    let err = refused(&shaped);
    assert!(err.contains("s2s.weight") && err.contains("[128, 32, 1, 3]") && err.contains("[128, 32, 3]"), "{err}");
    let mut mask = tensors.clone();
    mask.get_mut("inp.mask").unwrap().values[24] = 1.0; // the centre tap under mask A
    assert!(refused(&mask).contains("inp.mask is not the mask"));
    // Metadata that disagrees with the tensors: another model config.
    let mut other = metadata.clone();
    other.insert("pixelrnn.model".into(), serde_json::to_string(&Spec::M4.model_config()).unwrap());
    let err = import(&to_safetensors(&tensors, other).unwrap(), &Device::flex()).err().unwrap().to_string();
    assert!(err.contains("metadata says spec m3"), "{err}");
    // A model config the tool cannot build.
    let mut unbuildable = metadata.clone();
    let mut config_json: serde_json::Value = serde_json::from_str(&metadata["pixelrnn.model"]).unwrap();
    config_json["first_kernel"] = 6.into();
    unbuildable.insert("pixelrnn.model".into(), config_json.to_string());
    let err = import(&to_safetensors(&tensors, unbuildable).unwrap(), &Device::flex()).err().unwrap().to_string();
    assert!(err.contains("must be odd"), "{err}");
    // Not safetensors at all.
    assert!(import(b"PIXRNNCK garbage", &Device::flex()).err().unwrap().to_string().contains("not a safetensors file"));
    // What the twin cannot hold: a learned initial state, a model that is not a benchmark spec.
    let mut trained = model.clone();
    if let crate::models::Layer::RowLstm(layer) = &mut trained.layers[0] {
        layer.lstm.initial_hidden = Param::from_tensor(Tensor::ones([1, 32, 1, 1], &Device::flex()));
    }
    let err = export(&trained, &config, &TrainingInfo::default(), Layout::Pytorch).unwrap_err().to_string();
    assert!(err.contains("initial_hidden is not zero"), "{err}");
    let tiny = ModelConfig::preset(Preset::Tiny, Architecture::RowLstm, config.image).unwrap();
    let err = export(&tiny.init(&Device::flex(), 0).unwrap(), &tiny, &TrainingInfo::default(), Layout::Pytorch)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the PyTorch twin has no such model"), "{err}");
}

#[test]
fn the_padding_setting_matters_to_the_twin_only_for_the_diagonal_bilstm() {
    use crate::nn::diagonal_lstm::DiagonalPadding;
    for spec in [Spec::M1, Spec::M2, Spec::M3, Spec::M4] {
        let config = spec.model_config();
        for padding in [DiagonalPadding::Zero, DiagonalPadding::Bias] {
            let with = ModelConfig { diagonal_padding: padding, ..config.clone() };
            let fits = pytorch::check_twin(&with).is_ok();
            let expected = spec != Spec::M4 || padding == DiagonalPadding::Bias;
            assert_eq!(fits, expected, "{spec:?} with {padding:?}");
        }
    }
}
