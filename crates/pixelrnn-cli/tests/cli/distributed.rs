//! `train --distributed mpi` (with the `mpi` feature, under `mpirun` over TCP on 127.0.0.1;
//! skipped with a printed reason when `mpirun` is absent) and `train --devices`.

use assert_cmd::prelude::*;

use crate::common::*;

#[test]
fn device_lists_that_cannot_work_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let out = dir.path().join("run");
    for (devices, expected) in [
        ("cpu,cpu:1", "the CPU is one device"),
        ("vulkan:0,cpu", "mixes backends"),
        ("vulkan:0,vulkan:0", "listed twice"),
        ("tpu:0", "unknown device"),
    ] {
        let err = stderr_of(bin().args(train_args(&data, &out, "pixel-cnn", 2)).args(["--devices", devices]));
        assert!(err.contains(expected) && err.lines().count() == 1, "--devices {devices}: {err}");
    }
    #[cfg(not(any(feature = "vulkan", feature = "wgpu")))]
    {
        let err =
            stderr_of(bin().args(train_args(&data, &out, "pixel-cnn", 2)).args(["--devices", "vulkan:0,vulkan:1"]));
        assert!(err.contains("no vulkan support") && err.contains("--features vulkan"), "{err}");
    }
    // One device in the list is an ordinary run on it.
    bin().args(train_args(&data, &out, "pixel-cnn", 2)).args(["--devices", "cpu"]).assert().success();
    assert!(out.join("checkpoint-last.bin").is_file());
}

#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_mpi_in_a_build_without_the_feature_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let err =
        stderr_of(bin().args(train_args(&data, &dir.path().join("r"), "pixel-cnn", 2)).args(["--distributed", "mpi"]));
    assert!(err.contains("no MPI support") && err.contains("--features mpi"), "{err}");
    println!(
        "note: the MPI tests need `--features pixelrnn-cli/mpi` (scripts/test.sh turns it on when MPI is installed)"
    );
}

#[cfg(feature = "mpi")]
mod mpi {
    use std::path::Path;
    use std::process::{Command, Output};
    use std::time::{Duration, Instant};

    use burn::prelude::Device;
    use pixelrnn::distributed::flat;

    use super::*;

    /// The per-step training losses of a run.
    fn losses(run: &Path) -> Vec<f64> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "step")
            .map(|v| v["loss_nats"].as_f64().unwrap())
            .collect()
    }

    fn final_parameters(run: &Path) -> Vec<f32> {
        let path = run.join("checkpoint-last.bin");
        let ckpt = pixelrnn::checkpoint::load(&path).unwrap();
        let model = ckpt.header.model.init(&Device::flex(), 0).unwrap();
        flat::flatten_parameters(&ckpt.apply(&path, &ckpt.header.model, ckpt.header.dataset, model).unwrap())
    }

    fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        let scale = a.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-12);
        a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// `mpirun -np N` over TCP on the loopback interface, or None (printed) without mpirun.
    fn mpirun(ranks: usize) -> Option<Command> {
        let found = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
        if !found {
            println!("skipped: mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)");
            return None;
        }
        let mut cmd = Command::new("timeout");
        cmd.args(["120", "mpirun", "--oversubscribe", "-np", &ranks.to_string()])
            .args(["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo"])
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .arg(bin().get_program());
        Some(cmd)
    }

    fn run(cmd: &mut Command) -> Output {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    }

    #[test]
    fn two_ranks_give_the_losses_and_parameters_of_one_process_with_the_same_global_batch() {
        let Some(mut two) = mpirun(2) else { return };
        let dir = tempfile::tempdir().unwrap();
        let data = small_mnist(dir.path());
        let (one_run, two_run) = (dir.path().join("one"), dir.path().join("two"));
        bin().args(train_args(&data, &one_run, "row-lstm", 4)).args(["--batch-size", "8"]).assert().success();
        run(two.args(train_args(&data, &two_run, "row-lstm", 4)).args(["--batch-size", "8", "--distributed", "mpi"]));
        let d = relative_difference(&losses(&one_run), &losses(&two_run));
        assert!(d <= 1e-5, "per-step losses differ by {d:e}");
        let (a, b) = (final_parameters(&one_run), final_parameters(&two_run));
        let d = relative_difference(
            &a.iter().map(|&x| x.into()).collect::<Vec<_>>(),
            &b.iter().map(|&x| x.into()).collect::<Vec<_>>(),
        );
        assert!(d <= 1e-5, "final parameters differ by {d:e}");
        // Both ranks' parameters were compared bitwise at each checkpoint (steps 2 and 4).
        let metrics = std::fs::read_to_string(two_run.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.matches(r#""event":"replicas_checked","step":4,"ranks":2"#).count(), 1, "{metrics}");
        assert_eq!(metrics.matches(r#""event":"started""#).count(), 1, "only rank 0 logs: {metrics}");
    }

    #[test]
    fn a_rank_that_fails_ends_the_job_with_an_error_and_no_hang() {
        let Some(mut job) = mpirun(2) else { return };
        let dir = tempfile::tempdir().unwrap();
        let data = small_mnist(dir.path());
        let started = Instant::now();
        let out = job
            .args(train_args(&data, &dir.path().join("r"), "pixel-cnn", 6))
            .args(["--batch-size", "8", "--distributed", "mpi", "--test-fail-at", "1:2"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_ne!(out.status.code(), Some(124), "mpirun hung until the timeout");
        assert!(started.elapsed() < Duration::from_secs(100));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("rank 1 of 2") && err.contains("failed at step 2"), "{err}");
    }

    #[test]
    fn a_resumed_distributed_run_continues_as_an_uninterrupted_one() {
        let Some(_) = mpirun(2) else { return };
        let dir = tempfile::tempdir().unwrap();
        let data = small_mnist(dir.path());
        let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
        let flags = ["--batch-size", "8", "--distributed", "mpi"];
        run(mpirun(2).unwrap().args(train_args(&data, &whole, "diagonal-bilstm", 4)).args(flags));
        run(mpirun(2).unwrap().args(train_args(&data, &parts, "diagonal-bilstm", 2)).args(flags));
        run(mpirun(2).unwrap().args(train_args(&data, &parts, "diagonal-bilstm", 4)).args(flags).arg("--resume"));
        assert_eq!(losses(&whole), losses(&parts));
        assert_eq!(final_parameters(&whole), final_parameters(&parts));
    }

    #[test]
    fn unusable_distributed_setups_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let data = small_mnist(dir.path());
        // Outside a launcher.
        let err = stderr_of(
            bin().args(train_args(&data, &dir.path().join("a"), "pixel-cnn", 2)).args(["--distributed", "mpi"]),
        );
        assert!(err.contains("not started by an MPI launcher") && err.lines().count() == 1, "{err}");
        // A batch that two ranks cannot split: both ranks say so, nothing is written.
        let Some(mut job) = mpirun(2) else { return };
        let out = job
            .args(train_args(&data, &dir.path().join("b"), "pixel-cnn", 2))
            .args(["--batch-size", "7", "--distributed", "mpi"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot be split evenly over 2 ranks"), "{err}");
        assert!(!dir.path().join("b").join("checkpoint-last.bin").exists());
    }
}
