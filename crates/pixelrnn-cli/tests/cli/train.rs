//! `pixelrnn train`: every model, resume, kill -9 / Ctrl-C, divergence, real data.

use std::path::{Path, PathBuf};

use std::process::Command;

use assert_cmd::prelude::*;

use crate::common::{bin, eval_json, small_mnist, stderr_of, train_args};

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
    interrupt_saves_a_checkpoint_and_resume_continues("-INT", 130);
}

#[test]
fn sigterm_saves_a_checkpoint_and_exits_143() {
    interrupt_saves_a_checkpoint_and_resume_continues("-TERM", 143);
}

#[test]
fn a_signal_sent_twice_at_once_still_saves_a_checkpoint() {
    // `timeout` signals its command, then the command's process group: one request, two
    // SIGTERMs. It must stop after a checkpoint, not die at the second.
    interrupt_saves_a_checkpoint_and_resume_continues("-TERM -TERM", 143);
}

/// Trains until a few steps are logged, sends `signal`, and checks the exit code, the
/// checkpoint and that `--resume` continues from it.
fn interrupt_saves_a_checkpoint_and_resume_continues(signal: &str, code: i32) {
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
    for signal in signal.split(' ') {
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code), "a run stopped by {signal} exits with {code}");
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
fn one_trainer_per_run_directory_overwrite_and_a_damaged_metrics_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    // A second trainer on a directory in use is refused with the holder's PID.
    let mut child = bin().args(train_args(&data, &run, "pixel-cnn", 1_000_000)).spawn().unwrap();
    let start = std::time::Instant::now();
    while !run.join("metrics.jsonl").is_file() && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut second = train_args(&data, &run, "pixel-cnn", 3);
    second.push("--overwrite".into());
    let err = stderr_of(bin().args(second));
    assert!(err.contains("in use by another trainer") && err.contains(&child.id().to_string()), "{err}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    // --overwrite starts afresh; without it (or --resume) the run is kept.
    let err = stderr_of(bin().args(train_args(&data, &run, "pixel-cnn", 3)));
    assert!(err.contains("--overwrite"), "{err}");
    let mut fresh = train_args(&data, &run, "pixel-cnn", 4);
    fresh.push("--overwrite".into());
    bin().args(fresh).assert().success();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().next().unwrap().contains("\"step\":0"), "a fresh log: {metrics}");
    // A damaged line (not UTF-8) and the steps a resume repeats are cut from the log.
    let mut bytes = std::fs::read(run.join("metrics.jsonl")).unwrap();
    bytes.extend_from_slice(b"\xff\xfe garbage\n{\"event\":\"step\",\"step\":99}\n");
    std::fs::write(run.join("metrics.jsonl"), bytes).unwrap();
    let mut resumed = train_args(&data, &run, "pixel-cnn", 6);
    resumed.push("--resume".into());
    bin().args(resumed).assert().success();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).expect("the log is UTF-8 again");
    assert!(!metrics.contains("garbage") && !metrics.contains("\"step\":99"), "{metrics}");
    assert!(metrics.contains("\"step\":6"), "{metrics}");
    // A validation limit of 0 is a usage error.
    let mut zero = train_args(&data, &tmp.path().join("z"), "pixel-cnn", 1);
    let i = zero.iter().position(|a| a == "--valid-limit").unwrap();
    zero[i + 1] = "0".into();
    let out = bin().args(zero).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn damaged_data_and_absurd_sizes_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let out = tmp.path().join("run");
    let with = |extra: &[&str], drop_no_verify: bool| {
        let mut args: Vec<String> = train_args(&data, &out, "pixel-cnn", 2);
        if drop_no_verify {
            args.retain(|a| a != "--no-verify");
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = bin();
        cmd.args(args).env("PIXELRNN_CACHE", tmp.path().join("cache"));
        stderr_of(&mut cmd)
    };
    // Files with MNIST's names but not its published contents: refused unless --no-verify.
    let err = with(&[], true);
    assert!(
        err.contains("train-images-idx3-ubyte.gz")
            && err.contains("differs from the published")
            && err.contains("--no-verify"),
        "{err}"
    );
    // Sizes beyond their bounds, with the bound in the message, and no allocation abort.
    let err = with(&["--batch-size", "100000000"], false);
    assert!(err.contains("--batch-size") && err.contains("1..=65536"), "{err}");
    let err = with(&["--hidden", "100000"], false);
    assert!(err.contains("at most 4096"), "{err}");
    let err = with(&["--hidden", "4096", "--layers", "1000", "--batch-size", "65536"], false);
    assert!(err.contains("needs about") && err.contains("GiB available"), "{err}");
    // Weights for another model, a batch order that does not fit the run.
    let order = tmp.path().join("order.txt");
    std::fs::write(&order, "0 1 2\n").unwrap();
    let err = with(&["--batch-order", order.to_str().unwrap()], false);
    assert!(err.contains("order.txt") && err.contains("expected the batch size"), "{err}");
    let weights = tmp.path().join("w.safetensors");
    let other = tmp.path().join("other");
    bin().args(train_args(&data, &other, "row-lstm", 1)).assert().success();
    bin().args(["export", "--run", other.to_str().unwrap(), "--out", weights.to_str().unwrap()]).assert().success();
    let err = with(&["--init-weights", weights.to_str().unwrap()], false);
    assert!(err.contains("w.safetensors") && err.contains("another model") && err.contains("architecture"), "{err}");
    assert!(!out.join("checkpoint-last.bin").exists(), "nothing was trained");
}

#[test]
fn the_dataset_check_is_remembered_per_file() {
    let Some(mnist) = [Path::new("../../../shared/data/mnist"), Path::new("../shared/data/mnist")]
        .into_iter()
        .map(|p| Path::new(env!("CARGO_MANIFEST_DIR")).join(p))
        .find(|p| p.join("train-images-idx3-ubyte.gz").is_file())
    else {
        eprintln!("skipped: the shared MNIST files are not present");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("run");
    let mut args = train_args(&mnist, &out, "pixel-cnn", 1);
    args.retain(|a| a != "--no-verify");
    bin().args(&args).env("PIXELRNN_CACHE", &cache).assert().success();
    let verified = std::fs::read_to_string(cache.join("verified.txt")).unwrap();
    assert_eq!(verified.lines().count(), 4, "the four published files: {verified}");
    assert!(verified.contains("train-images-idx3-ubyte.gz"), "{verified}");
}
