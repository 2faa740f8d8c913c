//! `pixelrnn bench` and the device flag.

use assert_cmd::prelude::*;

use crate::common::{bin, stderr_of};

#[test]
fn bench_prints_torch_ref_keys() {
    let out = bin()
        .args([
            "bench",
            "--spec",
            "m4",
            "--mode",
            "infer",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--batch",
            "2",
            "--threads",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "framework",
        "version",
        "model",
        "mode",
        "device",
        "threads",
        "batch",
        "params",
        "warmup",
        "steps",
        "median_step_s",
        "min_step_s",
        "images_per_sec",
        "loss",
        "loss_unit",
        "forward_macs_per_image",
        "conv_gflops",
    ] {
        assert!(!m[key].is_null(), "missing key {key}");
    }
    // The fraction of the FMA peak is there where the CPU has vector FMA, and consistent.
    if let (Some(g), Some(p), Some(f)) =
        (m["conv_gflops"].as_f64(), m["fma_peak_gflops"].as_f64(), m["fraction_of_fma_peak"].as_f64())
    {
        assert!(p > 0.0 && (g / p - f).abs() < 1e-3, "{m}");
    }
    assert_eq!((m["model"].as_str(), m["mode"].as_str(), m["batch"].as_u64()), (Some("m4"), Some("infer"), Some(2)));
    let out = bin().args(["bench", "--spec", "m7"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("m7") && err.contains("m1, m2, m3, m4"), "{err}");
    // Threads are bounded; a batch too large for memory is refused before anything is built.
    let out = bin().args(["bench", "--spec", "m4", "--threads", "100000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = stderr_of(bin().args(["bench", "--spec", "m2", "--mode", "train", "--batch-size", "100000000000"]));
    assert!(err.contains("train of m2 at batch 100000000000") && err.contains("GiB"), "{err}");
}

#[test]
fn gpu_devices_without_the_feature_are_a_clear_error() {
    if cfg!(feature = "vulkan") || cfg!(feature = "wgpu") {
        eprintln!("skipped: this build has GPU support (tests/gpu.rs covers it)");
        return;
    }
    let err = stderr_of(bin().args(["bench", "--spec", "m1", "--mode", "infer", "--device", "vulkan"]));
    assert!(err.contains("no vulkan support") && err.contains("--features vulkan"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(bin().args([
        "sample",
        "--run",
        dir.path().to_str().unwrap(),
        "--count",
        "1",
        "--out",
        "x.png",
        "--device",
        "wgpu",
    ]));
    assert!(err.contains("no wgpu support") && err.contains("--features wgpu"), "{err}");
    if !cfg!(feature = "cuda") {
        let err = stderr_of(bin().args(["bench", "--spec", "m1", "--mode", "infer", "--device", "cuda"]));
        assert!(err.contains("no cuda support") && err.contains("--features cuda"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let err = stderr_of(bin().args(["bench", "--device", "tpu"]));
    assert!(err.contains("tpu") && err.contains("cpu, vulkan, wgpu, cuda"), "{err}");
}

#[test]
fn bench_times_a_runs_model_and_refuses_a_folder_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = crate::common::small_mnist(tmp.path());
    let run = tmp.path().join("my-run");
    bin().args(crate::common::train_args(&data, &run, "gated-pixel-cnn", 1)).assert().success();
    let out = bin()
        .args([
            "bench",
            "--run",
            run.to_str().unwrap(),
            "--mode",
            "train",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["model"], "my-run");
    assert_eq!(m["batch"], 8, "the run's batch size (the tiny preset's)");
    assert!(m["forward_macs_per_image"].as_u64().unwrap() > 0);
    let err = stderr_of(bin().args(["bench", "--run", tmp.path().join("none").to_str().unwrap()]));
    assert!(err.contains("--run") && err.contains("config.json"), "{err}");
    let out = bin().args(["bench", "--spec", "m1", "--run", run.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--spec and --run together: a usage error");
}
