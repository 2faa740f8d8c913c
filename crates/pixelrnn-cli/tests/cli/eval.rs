//! `pixelrnn eval`: damaged runs and checkpoints.

use assert_cmd::prelude::*;

use crate::common::{bin, small_mnist, stderr_of, train_args};

#[test]
fn bad_runs_and_checkpoints_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 2)).assert().success();
    let other = tmp.path().join("other");
    bin().args(train_args(&data, &other, "row-lstm", 2)).assert().success();

    // A batch too large for memory is refused before any work.
    let err = stderr_of(bin().args(["eval", "--run", run.to_str().unwrap(), "--batch-size", "1000000000000"]));
    assert!(err.contains("evaluating this model at --batch-size 1000000000000") && err.contains("GiB"), "{err}");

    // A checkpoint from another model.
    std::fs::copy(run.join("checkpoint-last.bin"), other.join("checkpoint-last.bin")).unwrap();
    let err = stderr_of(bin().args(["eval", "--run", other.to_str().unwrap(), "--checkpoint", "last"]));
    assert!(
        err.contains("holds another model") && err.contains("checkpoint-last.bin") && err.contains("config.json"),
        "{err}"
    );

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
    assert!(err.contains("trained on binarized-mnist") || err.contains("holds another model"), "{err}");

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
fn a_run_written_before_the_redesign_still_loads_and_scores_the_same() {
    // tests/fixtures/run-c9b9af2-diagonal-bilstm: a tiny Diagonal BiLSTM trained 20 steps by the
    // binary of commit c9b9af2 (before the models gained their step forms and new settings);
    // that binary scored tests/fixtures/checker.png at 541.5098178386688 nats.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("old-run");
    std::fs::create_dir(&run).unwrap();
    for file in ["config.json", "checkpoint-best.bin"] {
        std::fs::copy(fixtures.join("run-c9b9af2-diagonal-bilstm").join(file), run.join(file)).unwrap();
    }
    // Format 1 has no checksum: refused unless asked for.
    let err = stderr_of(
        bin().args(["score", "--run", run.to_str().unwrap(), "--json", "--image"]).arg(fixtures.join("checker.png")),
    );
    assert!(err.contains("format 1") && err.contains("--allow-unchecked"), "{err}");
    let out = bin()
        .args(["score", "--run", run.to_str().unwrap(), "--json", "--allow-unchecked", "--image"])
        .arg(fixtures.join("checker.png"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nll = report["nll_nats"].as_f64().unwrap();
    assert!((nll - 541.5098178386688).abs() < 1e-9 * 541.5, "{nll}");
}
