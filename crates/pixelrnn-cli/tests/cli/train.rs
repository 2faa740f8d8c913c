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
    // --resume with fewer steps than the run has taken is refused (its record would lie).
    let mut fewer = train_args(&data, &split, "row-lstm", 4);
    fewer.push("--resume".into());
    let err = stderr_of(bin().args(fewer));
    assert!(err.contains("already at step 6"), "{err}");
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
    let saved_step = last_checkpoint(&metrics).expect("the interrupt wrote a checkpoint event");
    assert!(saved_step >= 1);
    let mut resumed = train_args(&data, &run, "pixel-cnn", saved_step + 2);
    resumed.push("--resume".into());
    bin().args(resumed).assert().success();
    let last = std::fs::read_to_string(&metrics).unwrap();
    assert!(last.contains(&format!("\"step\":{}", saved_step + 2)), "resumed run reached the new target");
}

#[test]
fn a_time_limit_stops_at_a_checkpoint_exits_0_and_resume_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("timed");
    let mut args = train_with(&data, &run, "pixel-cnn", 1_000_000, &["--time-limit", "1.5"]);
    let i = args.iter().position(|a| a == "--checkpoint-every").unwrap();
    args[i + 1] = "0".into(); // only the stop writes one
    let start = std::time::Instant::now();
    let err = ok_stderr(bin().args(args));
    assert!(start.elapsed().as_secs() < 60, "stopped by the limit, not by the step count");
    assert!(err.contains("time limit reached at step"), "{err}");
    let saved_step = last_checkpoint(&run.join("metrics.jsonl")).expect("the time limit wrote a checkpoint");
    assert!((1..1_000_000).contains(&saved_step), "{saved_step}");
    // The limit is how to run, not part of the run: it may be given (or changed) on resume.
    let resumed = ["train", "--out", run.to_str().unwrap(), "--resume", "--steps", &(saved_step + 2).to_string()];
    bin().args(resumed).args(["--time-limit", "600", "--quiet"]).assert().success();
    assert!(std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .contains(&format!("\"step\":{}", saved_step + 2)));
    refused_values(&data, tmp.path(), "--time-limit", &["0", "-3", "nan", "1e9"], "expected a number of seconds");
}

#[test]
fn a_fresh_train_never_replaces_what_a_crash_left() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 2)).assert().success();
    // What a crash between checkpoints can leave: the best checkpoint alone.
    for name in ["checkpoint-last.bin", "config.json", "metrics.jsonl", "loss.svg"] {
        std::fs::remove_file(run.join(name)).unwrap();
    }
    let best = std::fs::read(run.join("checkpoint-best.bin")).unwrap();
    let err = stderr_of(bin().args(train_args(&data, &run, "pixel-cnn", 2)));
    assert!(err.contains("already holds a run") && err.contains("checkpoint-best.bin"), "{err}");
    assert_eq!(std::fs::read(run.join("checkpoint-best.bin")).unwrap(), best, "the best model is kept");
    // A config alone (stopped before the first checkpoint) is kept too; --overwrite clears both.
    std::fs::write(run.join("config.json"), b"{}").unwrap();
    std::fs::remove_file(run.join("checkpoint-best.bin")).unwrap();
    let err = stderr_of(bin().args(train_args(&data, &run, "pixel-cnn", 2)));
    assert!(err.contains("config.json"), "{err}");
    let mut overwrite = train_args(&data, &run, "pixel-cnn", 2);
    overwrite.push("--overwrite".into());
    bin().args(overwrite).assert().success();
    // An --out that is a file is not a run directory.
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, b"mine").unwrap();
    let err = stderr_of(bin().args(train_args(&data, &file, "pixel-cnn", 2)));
    assert!(err.contains("cannot be a run directory: it is a file"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

#[test]
fn without_data_dir_the_run_records_no_folder_and_finds_its_data_from_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    small_mnist(&cache); // cache/mnist: the default folder of both MNIST views
    let mut args = train_args(Path::new("unused"), &tmp.path().join("run"), "pixel-cnn", 1);
    let at = args.iter().position(|a| a == "--data-dir").unwrap();
    args.drain(at..at + 2);
    bin().env("PIXELRNN_CACHE", &cache).args(&args).assert().success();
    let text = std::fs::read_to_string(tmp.path().join("run/config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(config["data"]["data_dir"].is_null(), "{text}");
    assert!(!text.contains(tmp.path().to_str().unwrap()), "no machine path in the config: {text}");
    // Moved elsewhere, it still evaluates (data from the cache), and resumes with or without
    // a --data-dir naming the same data.
    let moved = tmp.path().join("moved");
    std::fs::rename(tmp.path().join("run"), &moved).unwrap();
    let out = bin()
        .env("PIXELRNN_CACHE", &cache)
        .args(["eval", "--run", moved.to_str().unwrap(), "--json", "--limit", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut resumed = train_args(&cache.join("mnist"), &moved, "pixel-cnn", 2);
    resumed.push("--resume".into());
    bin().env("PIXELRNN_CACHE", &cache).args(&resumed).assert().success();
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
    // The recorded folder gone: an error naming it, not a folder created and fetched into.
    std::fs::rename(tmp.path().join("mnist"), tmp.path().join("moved")).unwrap();
    let err = stderr_of(bin().args(["eval", "--run", tmp.path().join("run").to_str().unwrap(), "--limit", "3"]));
    assert!(err.contains("no longer exists") && err.contains("--data-dir"), "{err}");
    assert!(!tmp.path().join("mnist").exists(), "nothing created");
    let moved = tmp.path().join("moved");
    eval_json(&tmp.path().join("run"), &["--limit", "3", "--data-dir", moved.to_str().unwrap()]);
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

/// The step of the last checkpoint event in a run's metrics.jsonl.
fn last_checkpoint(metrics: &Path) -> Option<u64> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "checkpoint")
        .filter_map(|v| v["step"].as_u64())
        .next_back()
}

/// [`train_args`] and `extra` flags.
fn train_with(data: &Path, out: &Path, model: &str, steps: u64, extra: &[&str]) -> Vec<String> {
    let mut args = train_args(data, out, model, steps);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Each of `values` of `flag` is refused before training, with `expected` in the message.
fn refused_values(data: &Path, tmp: &Path, flag: &str, values: &[&str], expected: &str) {
    for bad in values {
        let given = format!("{flag}={bad}");
        let out = tmp.join(format!("refused{bad}"));
        let err = stderr_of(bin().args(train_with(data, &out, "pixel-cnn", 2, &[&given])));
        assert!(err.contains(expected), "{given}: {err}");
        assert!(!out.join("checkpoint-last.bin").exists(), "{given}: nothing trained");
    }
}

/// stderr of a successful command.
fn ok_stderr(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn the_weight_average_is_resumed_exactly_and_used_unless_raw_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let with = |out: &Path, steps: u64, extra: &[&str]| train_with(&data, out, "row-lstm", steps, extra);
    let straight = tmp.path().join("straight");
    bin().args(with(&straight, 6, &["--ema", "0.9"])).assert().success();
    let split = tmp.path().join("split");
    bin().args(with(&split, 3, &["--ema", "0.9"])).assert().success();
    // Once started, the average's decay can neither change nor be dropped on --resume.
    let err = stderr_of(bin().args(with(&split, 6, &["--resume"])));
    assert!(err.contains("--ema 0.9"), "{err}");
    let err = stderr_of(bin().args(with(&split, 6, &["--resume", "--ema", "0.8"])));
    assert!(err.contains("cannot change"), "{err}");
    bin().args(with(&split, 6, &["--resume", "--ema", "0.9"])).assert().success();
    let last = ["--checkpoint", "last"];
    let (a, b) = (eval_json(&straight, &last), eval_json(&split, &last));
    assert_eq!(a["nll_nats"], b["nll_nats"], "the resumed average equals the uninterrupted one");
    let raw = ["--checkpoint", "last", "--raw-weights"];
    let (ra, rb) = (eval_json(&straight, &raw), eval_json(&split, &raw));
    assert_eq!(ra["nll_nats"], rb["nll_nats"]);
    assert_ne!(a["nll_nats"], ra["nll_nats"], "the average is not the last weights");
    // Every command says when it uses the average.
    let run = straight.to_str().unwrap();
    let err = ok_stderr(bin().args(["eval", "--run", run, "--limit", "2"]));
    assert!(err.contains("using the averaged weights") && err.contains("since step 0"), "{err}");
    let err = ok_stderr(bin().args(["eval", "--run", run, "--limit", "2", "--raw-weights"]));
    assert!(!err.contains("averaged"), "{err}");
    let png = tmp.path().join("s.png");
    let err = ok_stderr(bin().args(["sample", "--run", run, "--count", "1", "--out", png.to_str().unwrap()]));
    assert!(err.contains("using the averaged weights"), "{err}");
    // An average may begin on a resumed run: it starts from the resumed weights.
    let late = tmp.path().join("late");
    bin().args(with(&late, 2, &[])).assert().success();
    bin().args(with(&late, 4, &["--resume", "--ema", "0.5"])).assert().success();
    let err = ok_stderr(bin().args(["eval", "--run", late.to_str().unwrap(), "--limit", "2", "--checkpoint", "last"]));
    assert!(err.contains("since step 2 of 4"), "{err}");
    // A decay outside (0, 1) is refused before training.
    refused_values(&data, tmp.path(), "--ema", &["1", "0", "-0.5", "NaN"], "between 0 and 1");
}

#[test]
fn dropout_trains_reproducibly_resumes_exactly_and_is_refused_outside_zero_to_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let with = |out: &Path, steps: u64, extra: &[&str]| train_with(&data, out, "pixel-cnn", steps, extra);
    let (a, b, plain) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("plain"));
    bin().args(with(&a, 4, &["--dropout", "0.5"])).assert().success();
    bin().args(with(&b, 2, &["--dropout", "0.5"])).assert().success();
    let err = stderr_of(bin().args(with(&b, 4, &["--resume"])));
    assert!(err.contains("the dropout differs"), "{err}");
    bin().args(with(&b, 4, &["--resume", "--dropout", "0.5"])).assert().success();
    bin().args(with(&plain, 4, &[])).assert().success();
    let last = ["--checkpoint", "last"];
    let (ea, eb, ep) = (eval_json(&a, &last), eval_json(&b, &last), eval_json(&plain, &last));
    assert_eq!(ea["nll_nats"], eb["nll_nats"], "resumed with dropout equals the uninterrupted run");
    assert_ne!(ea["nll_nats"], ep["nll_nats"], "dropout changed training");
    // Evaluation is deterministic (dropout off): the same NLL twice.
    assert_eq!(eval_json(&a, &last)["nll_nats"], ea["nll_nats"]);
    refused_values(&data, tmp.path(), "--dropout", &["1", "-0.1", "NaN"], "[0, 1)");
}

#[test]
fn resume_without_model_takes_every_setting_from_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let with = |out: &Path, steps: u64| {
        let mut args = train_args(&data, out, "diagonal-bilstm", steps);
        args.extend(["--ema", "0.9", "--lr-decay", "0.99", "--batch-size", "4", "--seed", "3"].map(String::from));
        // A schedule (warm-up, then cosine to step 6) is resumed where it was.
        args.extend(["--warmup", "2", "--lr-schedule", "cosine", "--cosine-steps", "6"].map(String::from));
        args
    };
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    bin().args(with(&straight, 6)).assert().success();
    bin().args(with(&split, 3)).assert().success();
    let s = split.to_str().unwrap();
    bin().args(["train", "--out", s, "--resume", "--steps", "6", "--quiet"]).assert().success();
    let last = ["--checkpoint", "last"];
    assert_eq!(eval_json(&straight, &last)["nll_nats"], eval_json(&split, &last)["nll_nats"]);
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(split.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["optimizer"]["warmup_steps"].as_u64(), config["optimizer"]["cosine_steps"].as_u64()),
        (Some(2), Some(6))
    );
    // --cosine-steps belongs to the cosine schedule.
    let err =
        stderr_of(bin().args(train_args(&data, &tmp.path().join("c"), "pixel-cnn", 2)).args(["--cosine-steps", "4"]));
    assert!(err.contains("--lr-schedule cosine") && err.trim().lines().count() == 1, "{err}");
    // A setting of the run's trajectory cannot be given this way.
    let err = stderr_of(bin().args(["train", "--out", s, "--resume", "--steps", "8", "--lr", "0.5"]));
    assert!(err.contains("--lr: with --resume and no --model"), "{err}");
    // --data-dir may be given (a flattened group's name once counted as a flag given).
    let d = data.to_str().unwrap();
    bin().args(["train", "--out", s, "--resume", "--steps", "7", "--quiet", "--data-dir", d]).assert().success();
    // A run refused before it starts says so in one line, without the line that announces it.
    let err = stderr_of(bin().args(["train", "--out", "/dev/null", "--resume", "--steps", "9", "--data-dir", d]));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = stderr_of(bin().args(with(Path::new("/dev/null"), 1)));
    assert!(err.trim().lines().count() == 1 && err.contains("/dev/null"), "{err}");
    let none = tmp.path().join("none");
    let err = stderr_of(bin().args(["train", "--out", none.to_str().unwrap(), "--resume"]));
    assert!(err.contains("no checkpoint-last.bin"), "{err}");
    // Without --resume, --model is required (a usage error).
    let out = bin().args(["train", "--out", none.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));
}

#[test]
fn init_weights_start_the_run_and_gradients_out_writes_the_first_step() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    bin().args(train_args(&data, &a, "row-lstm", 2)).assert().success();
    let weights = tmp.path().join("w.safetensors");
    bin()
        .args(["export", "--run", a.to_str().unwrap(), "--checkpoint", "last", "--out"])
        .arg(&weights)
        .assert()
        .success();
    // Learning rate 0: the run keeps the weights it started from, A's.
    let gradients = tmp.path().join("g.safetensors");
    let extra = ["--init-weights", weights.to_str().unwrap(), "--lr", "0", "--seed", "9", "--gradients-out"];
    let mut args = train_with(&data, &b, "row-lstm", 1, &extra);
    args.push(gradients.to_str().unwrap().into());
    bin().args(args).assert().success();
    let last = ["--checkpoint", "last"];
    assert_eq!(eval_json(&a, &last)["nll_nats"], eval_json(&b, &last)["nll_nats"]);
    let (tensors, _) = pixelrnn::interop::from_safetensors(&std::fs::read(&gradients).unwrap()).unwrap();
    let (weights, _) = pixelrnn::interop::from_safetensors(&std::fs::read(&weights).unwrap()).unwrap();
    assert_eq!(tensors.keys().collect::<Vec<_>>(), weights.keys().collect::<Vec<_>>(), "named as the weights");
    assert!(tensors.values().any(|t| t.values.iter().any(|&v| v != 0.0)), "some gradient is not zero");
    // A run directory (a pretrained model to fine-tune): its best weights, the same as its file.
    let c = tmp.path().join("c");
    let extra = ["--init-weights", a.to_str().unwrap(), "--lr", "0", "--seed", "9"];
    bin().args(train_with(&data, &c, "row-lstm", 1, &extra)).assert().success();
    assert_eq!(eval_json(&a, &[])["nll_nats"], eval_json(&c, &last)["nll_nats"]);
    // A run of another model, or a folder without a run: one line naming the folder.
    let extra = ["--init-weights", a.to_str().unwrap()];
    let err = stderr_of(bin().args(train_with(&data, &tmp.path().join("d"), "pixel-cnn", 1, &extra)));
    assert!(err.contains(a.to_str().unwrap()) && err.contains("another model") && err.lines().count() == 1, "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let extra = ["--init-weights", empty.to_str().unwrap()];
    let err = stderr_of(bin().args(train_with(&data, &tmp.path().join("e"), "row-lstm", 1, &extra)));
    assert!(err.contains(empty.to_str().unwrap()) && err.lines().count() == 1, "{err}");
}

#[test]
fn log_every_writes_the_mean_of_each_window_and_may_change_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let steps_of = |run: &Path| -> Vec<(u64, f64)> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["event"] == "step")
            .map(|e| (e["step"].as_u64().unwrap(), e["loss_nats"].as_f64().unwrap()))
            .collect()
    };
    let every = tmp.path().join("every");
    let out = bin().args(train_with(&data, &every, "pixel-cnn", 7, &[])).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let windowed = tmp.path().join("windowed");
    let out = bin().args(train_with(&data, &windowed, "pixel-cnn", 7, &["--log-every", "3"])).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = steps_of(&every);
    let lines = steps_of(&windowed);
    assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), vec![3, 6, 7], "every 3rd step and the last");
    let mean = |a: usize, b: usize| all[a..b].iter().map(|s| s.1).sum::<f64>() / (b - a) as f64;
    for ((_, logged), expected) in lines.iter().zip([mean(0, 3), mean(3, 6), mean(6, 7)]) {
        assert!((logged - expected).abs() < 1e-9 * expected.abs(), "{logged} vs {expected}");
    }
    // The setting is recorded, may change on resume, and is refused at 0.
    let config = std::fs::read_to_string(windowed.join("config.json")).unwrap();
    assert!(config.contains("\"log_every\": 3") || config.contains("\"log_every\":3"), "{config}");
    let out = bin()
        .args(["train", "--out", windowed.to_str().unwrap(), "--resume", "--steps", "9", "--log-every", "1", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(steps_of(&windowed).iter().map(|l| l.0).collect::<Vec<_>>(), vec![3, 6, 7, 8, 9]);
    let err = stderr_of(bin().args(train_with(&data, &tmp.path().join("zero"), "pixel-cnn", 2, &["--log-every", "0"])));
    assert!(err.contains("--log-every"), "{err}");
}
