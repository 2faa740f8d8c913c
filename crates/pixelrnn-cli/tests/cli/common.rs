//! What the command tests share: the binary, a small MNIST-format dataset, a tiny run's flags.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use pixelrnn::data::idx::{encode_images, encode_labels, gzip};
use pixelrnn::data::mnist::IDX_FILES;

pub fn bin() -> Command {
    Command::cargo_bin("pixelrnn").unwrap()
}

/// A small MNIST-format dataset: 300 train / 50 test images of 28x28 with some structure.
pub fn small_mnist(dir: &Path) -> PathBuf {
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    for (n, img, lab) in [(300usize, IDX_FILES[0], IDX_FILES[1]), (50, IDX_FILES[2], IDX_FILES[3])] {
        let mut pixels = Vec::with_capacity(n * 784);
        for i in 0..n {
            for r in 0..28 {
                for c in 0..28 {
                    // A vertical bar whose position depends on the image: learnable structure.
                    let on = (c + i) % 9 < 3 && r > 3 && r < 24;
                    pixels.push(if on { 250 } else { 5 });
                }
            }
        }
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(data.join(img), gzip(&encode_images(n, 28, 28, &pixels))).unwrap();
        std::fs::write(data.join(lab), gzip(&encode_labels(&labels))).unwrap();
    }
    data
}

pub fn train_args(data: &Path, out: &Path, model: &str, steps: u64) -> Vec<String> {
    [
        "train",
        "--dataset",
        "binarized-mnist",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        model,
        "--preset",
        "tiny",
        "--steps",
        &steps.to_string(),
        "--valid-every",
        "0",
        "--valid-limit",
        "20",
        "--checkpoint-every",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        // The small dataset has MNIST's file names but not its published contents.
        "--no-verify",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn eval_json(run: &Path, extra: &[&str]) -> serde_json::Value {
    let out = bin().args(["eval", "--run", run.to_str().unwrap(), "--json"]).args(extra).output().unwrap();
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure, got success: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "must not panic: {err}");
    err
}
