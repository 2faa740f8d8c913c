//! Golden tests against the PyTorch twin (`fixtures/make_fixtures.py`): its state_dict for each
//! benchmark spec, saved with safetensors' `save_file`, imported here, must give the per-image
//! NLL the twin computed for the same images, within 1e-6 relative (measured: at most 2e-7, float
//! rounding). The twin's Diagonal BiLSTM drives its skewed padding by the bias
//! (`DiagonalPadding::Bias`), which its import selects; with the zero padding it differed by 2e-5.
//!
//! The successors' parts (m5: Gated PixelCNN; m6: the discretized logistic mixture; m5c: a
//! class-conditional Gated PixelCNN with a mixture and skip connections) come from the twin's
//! `NativeModel`, written in this crate's native layout with its model config in the metadata
//! (`make_fixtures.py --only-new`); their images include rows of 0 and of 255 (the mixture's end
//! bins) and their log-scales reach below the clamp at -7. Within 1e-5 relative.

use burn::prelude::*;
use pixelrnn::interop::{import, Layout};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/library/fixtures").join(name)
}

/// Our NLL of the fixture's images under the twin's weights, and the twin's.
fn nll_against_the_twin(spec: &str) -> (Vec<f64>, Vec<f64>) {
    let bytes = std::fs::read(fixture(&format!("{spec}.safetensors"))).unwrap();
    let imported = import(&bytes, &Device::flex()).unwrap();
    assert_eq!(imported.layout, Layout::Pytorch, "{spec}: recognised as the twin's state_dict");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{spec}.json"))).unwrap()).unwrap();
    let shape: Vec<usize> =
        expected["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let images: Vec<i32> = expected["images"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
    let image = imported.model.image();
    assert_eq!((image.channels, image.height, image.width), (shape[1], shape[2], shape[3]), "{spec}");
    let batch =
        Tensor::<4, Int>::from_data(TensorData::new(images, [shape[0], shape[1], shape[2], shape[3]]), &Device::flex());
    let ours: Vec<f32> = imported.model.nll(batch).into_data().try_to_vec().unwrap();
    let twin = expected["nll_nats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    (ours.into_iter().map(f64::from).collect(), twin)
}

fn assert_close(spec: &str, (ours, twin): (Vec<f64>, Vec<f64>), tolerance: f64) {
    assert_eq!(ours.len(), twin.len());
    for (i, (a, b)) in ours.iter().zip(&twin).enumerate() {
        assert!((a - b).abs() <= tolerance * b.abs(), "{spec} image {i}: pixelrnn {a} nats, PyTorch twin {b} nats");
    }
}

#[test]
fn pixel_cnn_binary_m1_equals_the_twin() {
    assert_close("m1", nll_against_the_twin("m1"), 1e-6);
}

#[test]
fn pixel_cnn_rgb_m2_equals_the_twin() {
    assert_close("m2", nll_against_the_twin("m2"), 1e-6);
}

#[test]
fn row_lstm_m3_equals_the_twin() {
    assert_close("m3", nll_against_the_twin("m3"), 1e-6);
}

#[test]
fn diagonal_bilstm_m4_equals_the_twin() {
    assert_close("m4", nll_against_the_twin("m4"), 1e-6);
}

/// Our NLL of a native-layout fixture's images (given their labels, if it has them) under the
/// twin's weights, and the twin's.
fn native_nll_against_the_twin(spec: &str) -> (Vec<f64>, Vec<f64>) {
    let device = Device::flex();
    let bytes = std::fs::read(fixture(&format!("{spec}.safetensors"))).unwrap();
    let imported = import(&bytes, &device).unwrap();
    assert_eq!(imported.layout, Layout::Native, "{spec}: the metadata says native");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{spec}.json"))).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&imported.config).unwrap(),
        expected["model"],
        "{spec}: the config in the metadata"
    );
    let shape: Vec<usize> =
        expected["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let images: Vec<i32> = expected["images"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
    let batch = Tensor::<4, Int>::from_data(TensorData::new(images, [shape[0], shape[1], shape[2], shape[3]]), &device);
    let labels = expected.get("labels").map(|l| {
        let labels: Vec<i32> = l.as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
        Tensor::<1, Int>::from_data(TensorData::new(labels, [shape[0]]), &device)
    });
    assert_eq!(labels.is_some(), imported.model.classes().is_some(), "{spec}: labels exactly for a conditional model");
    let ours: Vec<f32> = imported.model.nll_given(batch, labels).into_data().try_to_vec().unwrap();
    let twin = expected["nll_nats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    (ours.into_iter().map(f64::from).collect(), twin)
}

#[test]
fn gated_pixel_cnn_m5_equals_the_twin() {
    assert_close("m5", native_nll_against_the_twin("m5"), 1e-5);
}

#[test]
fn logistic_mixture_m6_equals_the_twin() {
    assert_close("m6", native_nll_against_the_twin("m6"), 1e-5);
}

#[test]
fn conditional_gated_pixel_cnn_with_a_mixture_and_skips_m5c_equals_the_twin() {
    assert_close("m5c", native_nll_against_the_twin("m5c"), 1e-5);
}
