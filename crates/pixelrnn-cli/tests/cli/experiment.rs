//! `pixelrnn experiment`: a table trained, scored and summarized; finished rows kept, stopped
//! runs resumed; bad names and data refused in one line.

use std::path::Path;

use crate::common::*;

fn experiment(data: &Path, out: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let output = bin()
        .args(["experiment", "table4", "--scale", "smoke", "--no-verify", "--json", "--quiet"])
        .args(["--mnist-dir", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{err}");
    (serde_json::from_slice(&output.stdout).unwrap(), err)
}

#[test]
fn a_table_is_trained_scored_and_summarized_then_kept_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let out = dir.path().join("exp");
    let (summary, _) = experiment(&data, &out, &[]);
    assert_eq!(summary["experiment"], "table4");
    assert_eq!(summary["unit"], "nats");
    assert_eq!(summary["complete"], true);
    let rows = summary["rows"].as_array().unwrap();
    let papers: Vec<f64> = rows.iter().map(|r| r["paper"].as_f64().unwrap()).collect();
    assert_eq!(papers, [81.30, 80.54, 80.75, 79.20]);
    for row in rows {
        let run = out.join("table4").join(row["run"].as_str().unwrap());
        let eval: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
        // The row is the run's own eval of its last checkpoint on the 50 test images.
        assert_eq!(eval["nll_nats"], row["nll_nats"]);
        assert_eq!(
            (row["images"].as_u64(), row["split"].as_str(), row["steps"].as_u64()),
            (Some(50), Some("test"), Some(2))
        );
        assert!(row["nll_nats"].as_f64().unwrap() > 0.0 && row["train_secs"].as_f64().unwrap() > 0.0);
        assert_eq!(eval_json(&run, &["--checkpoint", "last"])["nll_nats"], row["nll_nats"]);
    }
    let curves = std::fs::read_to_string(out.join("table4").join("curves.svg")).unwrap();
    assert!(curves.contains("Diagonal BiLSTM (7 layers, h=16)"));

    // Again: every row is finished, nothing is trained.
    let (again, err) = experiment(&data, &out, &[]);
    assert_eq!(err.matches("(done before)").count(), 4, "{err}");
    assert_eq!(again["rows"], summary["rows"]);

    // A row whose scoring was lost is scored again, the others kept.
    std::fs::remove_file(out.join("table4").join("row-lstm").join("result.json")).unwrap();
    let (_, err) = experiment(&data, &out, &[]);
    assert_eq!(err.matches("(done before)").count(), 3, "{err}");

    // More steps: every run continues from its checkpoint, not from scratch.
    let (longer, err) = experiment(&data, &out, &["--steps", "4"]);
    assert_eq!(err.matches("resuming at step 2").count(), 4, "{err}");
    assert!(longer["rows"].as_array().unwrap().iter().all(|r| r["steps"] == 4));
}

#[test]
fn bad_experiment_requests_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_of(bin().args(["experiment", "table9"]));
    assert!(err.contains("invalid value 'table9'") && err.contains("table4"), "{err}");
    // A damaged dataset file: named, with what was expected.
    let data = small_mnist(dir.path());
    let images = data.join(pixelrnn::data::mnist::IDX_FILES[0]);
    std::fs::write(&images, &std::fs::read(&images).unwrap()[..40]).unwrap();
    let err = stderr_of(
        bin()
            .args(["experiment", "table4", "--scale", "smoke", "--quiet", "--no-verify", "--out"])
            .arg(dir.path().join("exp"))
            .arg("--mnist-dir")
            .arg(&data),
    );
    assert!(err.contains("train-images") && err.contains("--mnist-dir") && err.lines().count() == 1, "{err}");
}

#[test]
fn a_second_experiment_never_deletes_the_files_of_a_run_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let out = dir.path().join("exp");
    // A run in progress before its first checkpoint: its config and metrics, its lock held
    // (flock(1) takes the same advisory lock a trainer takes).
    let running = out.join("table4").join("pixel-cnn");
    std::fs::create_dir_all(&running).unwrap();
    std::fs::write(running.join("config.json"), b"{\"running\": true}").unwrap();
    std::fs::write(running.join("metrics.jsonl"), b"{\"event\":\"started\",\"step\":0}\n").unwrap();
    let lock = running.join(".lock");
    let Ok(mut holder) = std::process::Command::new("flock").arg(&lock).args(["sleep", "60"]).spawn() else {
        eprintln!("skipped: flock(1) is not installed");
        return;
    };
    // Wait until the lock is held (flock creates the file, then locks it).
    let held = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        lock.exists()
            && !std::process::Command::new("flock").args(["-n"]).arg(&lock).arg("true").status().unwrap().success()
    });
    assert!(held, "the test's lock holder did not start");
    let err = stderr_of(bin().args(["experiment", "table4", "--scale", "smoke", "--no-verify", "--quiet"]).args([
        "--mnist-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(err.contains("in use by another trainer"), "{err}");
    assert_eq!(std::fs::read(running.join("config.json")).unwrap(), b"{\"running\": true}");
    assert!(running.join("metrics.jsonl").exists(), "the running run's metrics are kept");
}
