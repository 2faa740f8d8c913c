//! End-to-end tests of the `pixelrnn` binary on tiny presets (seconds each).

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use pixelrnn::data::idx::{encode_images, encode_labels, gzip};
use pixelrnn::data::mnist::IDX_FILES;

fn bin() -> Command {
    Command::cargo_bin("pixelrnn").unwrap()
}

/// A small MNIST-format dataset: 300 train / 50 test images of 28x28 with some structure.
fn small_mnist(dir: &Path) -> PathBuf {
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

fn train_args(data: &Path, out: &Path, model: &str, steps: u64) -> Vec<String> {
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn eval_json(run: &Path, extra: &[&str]) -> serde_json::Value {
    let out = bin().args(["eval", "--run", run.to_str().unwrap(), "--json"]).args(extra).output().unwrap();
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure, got success: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "must not panic: {err}");
    err
}

#[test]
fn train_then_eval_every_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    for model in ["pixel-cnn", "row-lstm", "diagonal-bilstm"] {
        let run = tmp.path().join(model);
        bin().args(train_args(&data, &run, model, 3)).assert().success();
        for f in ["config.json", "checkpoint-last.bin", "checkpoint-best.bin", "metrics.jsonl", "loss.svg"] {
            assert!(run.join(f).is_file(), "{model}: {f} missing");
        }
        let report = eval_json(&run, &[]);
        assert_eq!(report["dataset"], "binarized-mnist");
        assert_eq!(report["split"], "test");
        assert_eq!(report["images"], 50, "every test image, no dropped last batch");
        let bpd = report["bits_per_dim"].as_f64().unwrap();
        let nats = report["nll_nats"].as_f64().unwrap();
        assert!((bpd - nats / (784.0 * std::f64::consts::LN_2)).abs() < 1e-9);
        assert!(report["stderr_bits_per_dim"].as_f64().unwrap() >= 0.0);
        let limited = eval_json(&run, &["--limit", "7", "--batch-size", "3", "--split", "valid"]);
        assert_eq!(limited["images"], 7);
    }
}

#[test]
fn resume_reaches_the_same_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let straight = tmp.path().join("straight");
    bin().args(train_args(&data, &straight, "row-lstm", 6)).assert().success();
    let split = tmp.path().join("split");
    bin().args(train_args(&data, &split, "row-lstm", 3)).assert().success();
    let mut resumed = train_args(&data, &split, "row-lstm", 6);
    resumed.push("--resume".into());
    bin().args(resumed).assert().success();
    let a = eval_json(&straight, &["--checkpoint", "last"]);
    let b = eval_json(&split, &["--checkpoint", "last"]);
    assert_eq!(a["nll_nats"], b["nll_nats"], "resumed run must equal the uninterrupted one");
    // Without --resume an existing run is not overwritten.
    let err = stderr_of(bin().args(train_args(&data, &split, "row-lstm", 6)));
    assert!(err.contains("already holds a run"), "{err}");
    // --resume with a different model is refused.
    let mut other = train_args(&data, &split, "pixel-cnn", 8);
    other.push("--resume".into());
    let err = stderr_of(bin().args(other));
    assert!(err.contains("the model differs"), "{err}");
}

#[test]
fn kill_9_leaves_a_loadable_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("killed");
    let mut args = train_args(&data, &run, "diagonal-bilstm", 100_000);
    let i = args.iter().position(|a| a == "--checkpoint-every").unwrap();
    args[i + 1] = "1".into();
    let mut child = bin().args(args).spawn().unwrap();
    let last = run.join("checkpoint-last.bin");
    let start = std::time::Instant::now();
    while !last.exists() && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Let it write a few more checkpoints, then kill it hard, possibly mid-write.
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    let report = eval_json(&run, &["--checkpoint", "last", "--limit", "5"]);
    assert_eq!(report["images"], 5);
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("interrupted");
    let mut args = train_args(&data, &run, "pixel-cnn", 1_000_000);
    let i = args.iter().position(|a| a == "--checkpoint-every").unwrap();
    args[i + 1] = "0".into(); // only the interrupt writes one
    let mut child = bin().args(args).spawn().unwrap();
    let metrics = run.join("metrics.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.lines().count() < 5) && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits with 130");
    assert!(run.join("checkpoint-last.bin").is_file());
    let saved_step = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "checkpoint")
        .filter_map(|v| v["step"].as_u64())
        .next_back()
        .expect("the interrupt wrote a checkpoint event");
    assert!(saved_step >= 1);
    let mut resumed = train_args(&data, &run, "pixel-cnn", saved_step + 2);
    resumed.push("--resume".into());
    bin().args(resumed).assert().success();
    let last = std::fs::read_to_string(&metrics).unwrap();
    assert!(last.contains(&format!("\"step\":{}", saved_step + 2)), "resumed run reached the new target");
}

#[test]
fn bad_runs_and_checkpoints_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 2)).assert().success();
    let other = tmp.path().join("other");
    bin().args(train_args(&data, &other, "row-lstm", 2)).assert().success();

    // A checkpoint from another model.
    std::fs::copy(run.join("checkpoint-last.bin"), other.join("checkpoint-last.bin")).unwrap();
    let err = stderr_of(bin().args(["eval", "--run", other.to_str().unwrap(), "--checkpoint", "last"]));
    assert!(err.contains("from another model") && err.contains("checkpoint-last.bin"), "{err}");

    // A corrupt (truncated) checkpoint.
    let bytes = std::fs::read(run.join("checkpoint-last.bin")).unwrap();
    std::fs::write(run.join("checkpoint-last.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let err = stderr_of(bin().args(["eval", "--run", run.to_str().unwrap(), "--checkpoint", "last"]));
    assert!(err.contains("truncated") && err.contains("checkpoint-last.bin"), "{err}");
    std::fs::write(run.join("checkpoint-last.bin"), b"garbage").unwrap();
    let err = stderr_of(bin().args(["eval", "--run", run.to_str().unwrap(), "--checkpoint", "last"]));
    assert!(err.contains("not a pixelrnn checkpoint"), "{err}");

    // A run on another dataset with the same image shape: the checkpoint is refused.
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    cfg["data"]["dataset"] = "mnist".into();
    let moved = tmp.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    std::fs::write(moved.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(other.join("checkpoint-best.bin"), moved.join("checkpoint-best.bin")).unwrap();
    let err = stderr_of(bin().args(["eval", "--run", moved.to_str().unwrap()]));
    assert!(err.contains("trained on binarized-mnist") || err.contains("from another model"), "{err}");

    // Not a run directory.
    let err = stderr_of(bin().args(["eval", "--run", tmp.path().to_str().unwrap()]));
    assert!(err.contains("config.json"), "{err}");

    // An unwritable output directory (a regular file stands where the folder should be).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = stderr_of(bin().args(train_args(&data, &file.join("run"), "pixel-cnn", 1)));
    assert!(err.contains("a-file"), "{err}");

    // Missing dataset files.
    let err = stderr_of(bin().args(train_args(&tmp.path().join("nowhere"), &tmp.path().join("r2"), "pixel-cnn", 1)));
    assert!(err.contains("nowhere"), "{err}");

    // A learning rate that could only diverge is refused before the first step.
    let mut args = train_args(&data, &tmp.path().join("nan-lr"), "pixel-cnn", 1);
    args.extend(["--lr".into(), "nan".into()]);
    let err = stderr_of(bin().args(args));
    assert!(err.contains("learning rate must be a non-negative number, got NaN"), "{err}");
    assert!(!tmp.path().join("nan-lr").join("config.json").exists());
}

#[test]
fn a_relative_data_dir_is_recorded_absolute() {
    let tmp = tempfile::tempdir().unwrap();
    small_mnist(tmp.path());
    // Trained from inside tmp with `--data-dir mnist`, evaluated from elsewhere.
    let mut args = train_args(Path::new("mnist"), Path::new("run"), "pixel-cnn", 1);
    args.retain(|a| a != "--quiet");
    bin().current_dir(tmp.path()).args(args).assert().success();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("run/config.json")).unwrap()).unwrap();
    let recorded = PathBuf::from(config["data"]["data_dir"].as_str().unwrap());
    assert!(recorded.is_absolute(), "{}", recorded.display());
    let report = eval_json(&tmp.path().join("run"), &["--limit", "3"]);
    assert_eq!(report["images"], 3);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    // `pixelrnn data info ... | head -0`: the reader is gone before the first line is written.
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let mut child = bin()
        .args(["data", "info", "mnist", "--data-dir", data.to_str().unwrap(), "--valid-size", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn divergence_stops_with_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("nan");
    let mut args = train_args(&data, &run, "pixel-cnn", 50);
    args.extend(["--lr".into(), "1e30".into(), "--optimizer".into(), "rmsprop".into()]);
    let i = args.iter().position(|a| a == "--checkpoint-every").unwrap();
    args[i + 1] = "1".into();
    let err = stderr_of(bin().args(args));
    assert!(err.contains("diverged"), "{err}");
    let report = eval_json(&run, &["--checkpoint", "last", "--limit", "3"]);
    assert_eq!(report["images"], 3);
}

#[test]
fn data_info_and_unknown_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let out = bin()
        .args(["data", "info", "mnist", "--data-dir", data.to_str().unwrap(), "--valid-size", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("train: 270 images") && text.contains("valid: 30 images") && text.contains("test: 50 images"),
        "{text}"
    );
    assert!(text.contains("1 channel(s), 28x28"), "{text}");
    // The default hold-out (10,000) does not fit in 300 images: a clear error, not a panic.
    let err = stderr_of(bin().args(["data", "info", "mnist", "--data-dir", data.to_str().unwrap()]));
    assert!(err.contains("cannot hold out 10000"), "{err}");
    assert!(text.contains("MISMATCH"), "generated files must not pass the published checksum: {text}");
    let err = stderr_of(bin().args(["data", "info", "svhn"]));
    assert!(err.contains("unknown dataset 'svhn'"), "{err}");
}

#[test]
fn nll_after_training_is_lower_than_at_initialization_on_real_mnist() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if !shared.is_dir() {
        eprintln!("skipped: {} not present", shared.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let init = tmp.path().join("init");
    let mut args = train_args(&shared, &init, "pixel-cnn", 1);
    args.extend(["--lr".into(), "0".into()]);
    bin().args(args).assert().success();
    let trained = tmp.path().join("trained");
    let mut args = train_args(&shared, &trained, "pixel-cnn", 60);
    args.extend(["--lr".into(), "0.01".into()]);
    bin().args(args).assert().success();
    let a = eval_json(&init, &["--limit", "300"])["nll_nats"].as_f64().unwrap();
    let b = eval_json(&trained, &["--limit", "300"])["nll_nats"].as_f64().unwrap();
    assert!(b < a - 20.0, "training must lower the test NLL: {a} -> {b}");
}

#[test]
fn fetch_from_a_local_mirror_when_real_files_are_present() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if !shared.is_dir() {
        eprintln!("skipped: {} not present", shared.display());
        return;
    }
    // Serve the real MNIST files on 127.0.0.1 so their published SHA-256s verify.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}", listener.local_addr().unwrap());
    let root = shared.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming().take(8) {
            let mut stream = stream.unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                    break;
                }
            }
            let name = first.split_whitespace().nth(1).unwrap().trim_start_matches('/').to_string();
            let body = std::fs::read(root.join(&name)).unwrap_or_default();
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(&body);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("mnist");
    bin()
        .args(["data", "fetch", "mnist", "--data-dir", dest.to_str().unwrap(), "--mirror", &mirror])
        .assert()
        .success();
    for f in IDX_FILES {
        assert_eq!(std::fs::read(dest.join(f)).unwrap(), std::fs::read(shared.join(f)).unwrap());
    }
}

#[test]
fn sample_complete_and_score() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "diagonal-bilstm", 2)).assert().success();
    let r = run.to_str().unwrap();
    let grid = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();

    // Same seed, same images (bitwise), fast by default; the naive sampler agrees.
    let each = tmp.path().join("each");
    bin()
        .args([
            "sample",
            "--run",
            r,
            "--count",
            "3",
            "--seed",
            "9",
            "--out",
            &grid("a.png"),
            "--each",
            each.to_str().unwrap(),
        ])
        .assert()
        .success();
    bin().args(["sample", "--run", r, "--count", "3", "--seed", "9", "--out", &grid("b.png")]).assert().success();
    bin()
        .args(["sample", "--run", r, "--count", "3", "--seed", "9", "--out", &grid("n.png"), "--naive"])
        .assert()
        .success();
    let a = std::fs::read(grid("a.png")).unwrap();
    assert_eq!(a, std::fs::read(grid("b.png")).unwrap());
    assert_eq!(a, std::fs::read(grid("n.png")).unwrap(), "fast and naive samplers must agree");
    assert!(each.join("sample-0002.png").is_file());

    // Completion of dataset images and of a user's PNG.
    bin()
        .args([
            "complete",
            "--run",
            r,
            "--images",
            "0,3",
            "--samples-per-image",
            "2",
            "--observed-rows",
            "10",
            "--out",
            &grid("c.png"),
        ])
        .assert()
        .success();
    let sample0 = each.join("sample-0000.png");
    bin()
        .args(["complete", "--run", r, "--image", sample0.to_str().unwrap(), "--out", &grid("d.png")])
        .assert()
        .success();

    // Score: JSON keys, per-sub-pixel list, heatmap.
    let out = bin()
        .args(["score", "--run", r, "--image", sample0.to_str().unwrap(), "--json", "--heatmap", &grid("h.png")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let per: Vec<f64> = s["per_subpixel_nats"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(
        (s["height"].as_u64(), s["width"].as_u64(), s["channels"].as_u64(), per.len()),
        (Some(28), Some(28), Some(1), 784)
    );
    let total: f64 = per.iter().sum();
    assert!((total - s["nll_nats"].as_f64().unwrap()).abs() < 1e-6 * total.abs().max(1.0));
    assert!((s["bits_per_dim"].as_f64().unwrap() - total / (784.0 * std::f64::consts::LN_2)).abs() < 1e-9);
    assert!(tmp.path().join("h.png").is_file());

    // Bad input: clear errors, no panic.
    let err = stderr_of(bin().args(["sample", "--run", r, "--count", "0", "--out", &grid("x.png")]));
    assert!(err.contains("--count must be at least 1"), "{err}");
    let err = stderr_of(bin().args(["complete", "--run", r, "--observed-rows", "28", "--out", &grid("x.png")]));
    assert!(err.contains("--observed-rows must be below the image height 28"), "{err}");
    let err = stderr_of(bin().args(["complete", "--run", r, "--images", "99999", "--out", &grid("x.png")]));
    assert!(err.contains("out of range"), "{err}");
    let small = tmp.path().join("small.png");
    std::fs::write(&small, pixelrnn::data::png_folder::encode_png(3, 5, 5, &[0; 75])).unwrap();
    let err = stderr_of(bin().args(["score", "--run", r, "--image", small.to_str().unwrap()]));
    assert!(err.contains("small.png") && err.contains("expects a 28x28 greyscale PNG"), "{err}");
    std::fs::write(&small, b"not a png").unwrap();
    let err = stderr_of(bin().args(["score", "--run", r, "--image", small.to_str().unwrap()]));
    assert!(err.contains("unreadable PNG"), "{err}");
    let err = stderr_of(bin().args(["sample", "--run", r, "--temperature", "0", "--out", &grid("x.png")]));
    assert!(err.contains("temperature"), "{err}");
}

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
    ] {
        assert!(!m[key].is_null(), "missing key {key}");
    }
    assert_eq!((m["model"].as_str(), m["mode"].as_str(), m["batch"].as_u64()), (Some("m4"), Some("infer"), Some(2)));
    let err = stderr_of(bin().args(["bench", "--spec", "m7"]));
    assert!(err.contains("unknown benchmark spec 'm7'"), "{err}");
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
    let err = stderr_of(bin().args(["bench", "--device", "cuda"]));
    assert!(err.contains("cuda") && err.contains("cpu, vulkan, wgpu"), "{err}");
}
