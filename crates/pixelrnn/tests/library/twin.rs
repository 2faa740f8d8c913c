//! Golden tests against the PyTorch twin (`fixtures/make_fixtures.py`): its state_dict for each
//! benchmark spec, saved with safetensors' `save_file`, imported here, must give the per-image
//! NLL the twin computed for the same images, within 1e-6 relative (measured: at most 2e-7, float
//! rounding). The twin's Diagonal BiLSTM drives its skewed padding by the bias
//! (`DiagonalPadding::Bias`), which its import selects; with the zero padding it differed by 2e-5.

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
