//! `--output mixture`: PixelCNN++'s discretized logistic mixture, through every command that
//! reads a run (train, eval, sample, complete, score, compress/decompress, export/import), and
//! the flags it refuses.

use std::path::Path;

use assert_cmd::prelude::*;

use crate::common::{bin, eval_json, small_mnist, stderr_of, train_args};

/// [`train_args`] on the 256-level MNIST of the small dataset, with `extra`.
fn mnist_256(data: &Path, out: &Path, steps: u64, extra: &[&str]) -> Vec<String> {
    let mut args = train_args(data, out, "pixel-cnn", steps);
    let dataset = args.iter().position(|a| a == "binarized-mnist").unwrap();
    args[dataset] = "mnist".into();
    args.extend(["--valid-size".to_string(), "50".to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn a_mixture_model_trains_and_every_command_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    let out = bin().args(mnist_256(&data, &run, 6, &["--output", "mixture", "--components", "3"])).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("logistic mixture of 3"), "{err}");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["output"], serde_json::json!({"mixture": {"components": 3}}));
    // Training lowers the NLL from the untrained model's.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .map(|v| v["loss_nats"].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 6);
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{losses:?}");
    assert!(losses[5] < losses[0], "{losses:?}");

    let r = run.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name);
    let eval = eval_json(&run, &["--limit", "10", "--checkpoint", "last"]);
    let bpd = eval["bits_per_dim"].as_f64().unwrap();
    assert!(bpd > 0.0 && bpd.is_finite(), "{eval}");

    // Sampling: the same seed, the same images; fast and naive agree.
    let sample = |name: &str, extra: &[&str]| {
        bin()
            .args(["sample", "--run", r, "--checkpoint", "last", "--count", "2", "--seed", "4", "--out"])
            .arg(path(name))
            .args(extra)
            .assert()
            .success();
        std::fs::read(path(name)).unwrap()
    };
    let fast = sample("a.png", &[]);
    assert_eq!(fast, sample("b.png", &[]));
    assert_eq!(fast, sample("n.png", &["--naive"]), "fast and naive samplers must agree");
    bin()
        .args(["complete", "--run", r, "--checkpoint", "last", "--indices", "0", "--observed-rows", "20", "--out"])
        .arg(path("c.png"))
        .assert()
        .success();

    // Score and the codec: the per-image NLL is the one eval computes; the file decodes exactly.
    let out = bin().args(["score", "--run", r, "--checkpoint", "last", "--index", "2", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let score: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let score_nats = score["nll_nats"].as_f64().unwrap();
    let one = eval_json(&run, &["--checkpoint", "last", "--limit", "3", "--per-image"]);
    let third = one["per_image_nats"][2].as_f64().unwrap();
    assert!((score_nats - third).abs() < 1e-3 * third, "score {score_nats} vs eval {third}");
    let out = bin()
        .args(["compress", "--run", r, "--checkpoint", "last", "--split", "test", "--limit", "3", "--json", "-o"])
        .arg(path("t.prnn"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (nll, coded) = (report["nll_bits_per_dim"].as_f64().unwrap(), report["coded_bits_per_dim"].as_f64().unwrap());
    assert!((coded - nll).abs() < 0.01 * nll, "{nll} vs {coded}");
    bin()
        .args(["decompress"])
        .arg(path("t.prnn"))
        .args(["--run", r, "--checkpoint", "last", "-o"])
        .arg(path("decoded"))
        .assert()
        .success();
    assert!(path("decoded").join("00002.png").is_file());

    // Export and import keep the output head (and so the NLL).
    bin().args(["export", "--run", r, "--checkpoint", "last", "--out"]).arg(path("m.safetensors")).assert().success();
    bin()
        .arg("import")
        .arg(path("m.safetensors"))
        .arg("--out")
        .arg(path("imported"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--no-verify", "--valid-size", "50"])
        .assert()
        .success();
    assert_eq!(eval_json(&path("imported"), &["--limit", "10"])["nll_nats"], eval["nll_nats"]);
    // The PyTorch twin has no mixture head: said, not written.
    let err = stderr_of(
        bin().args(["export", "--run", r, "--checkpoint", "last", "--layout", "pytorch", "--out"]).arg(path("t.pt")),
    );
    assert!(err.contains("output=Mixture"), "{err}");
}

#[test]
fn mixture_flags_that_cannot_work_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let cases: [(&str, &[&str], &str); 4] = [
        ("mnist", &["--output", "mixture", "--components", "0"], "1 to 64 components, got 0"),
        ("mnist", &["--output", "mixture", "--components", "65"], "1 to 64 components, got 65"),
        ("mnist", &["--components", "5"], "give it with --output mixture"),
        ("binarized-mnist", &["--output", "mixture"], "binary images have the sigmoid output"),
    ];
    for (i, (dataset, flags, expected)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("refused{i}"));
        let mut args = mnist_256(&data, &out, 2, flags);
        if *dataset == "binarized-mnist" {
            let at = args.iter().position(|a| a == "mnist").unwrap();
            args[at] = "binarized-mnist".into();
        }
        let err = stderr_of(bin().args(&args));
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!out.join("checkpoint-last.bin").exists(), "{flags:?}: nothing trained");
    }
}

#[test]
fn the_cifar10_cpu_preset_brings_its_mixture_unless_told_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    // (flags after the preset, the output config.json records, d)
    let mixture = |k: u64| serde_json::json!({"mixture": {"components": k}});
    let cases: [(&[&str], serde_json::Value, u64); 4] = [
        (&[], mixture(5), 128),
        (&["--components", "3"], mixture(3), 128),
        // The paper's softmax is not written (old configs hash as before).
        (&["--output", "softmax"], serde_json::Value::Null, 128),
        (&["--output-hidden", "24"], mixture(5), 24),
    ];
    for (i, (flags, output, d)) in cases.iter().enumerate() {
        let run = tmp.path().join(format!("run{i}"));
        let mut args = mnist_256(&data, &run, 1, &["--layers", "1", "--hidden", "6"]);
        let preset = args.iter().position(|a| a == "tiny").unwrap();
        args[preset] = "cifar10-cpu".into();
        args.extend(flags.iter().map(|s| s.to_string()));
        let out = bin().args(&args).output().unwrap();
        assert!(out.status.success(), "{flags:?}: {}", String::from_utf8_lossy(&out.stderr));
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
        assert_eq!(&config["model"]["output"], output, "{flags:?}");
        assert_eq!(config["model"]["output_hidden_channels"], *d, "{flags:?}");
    }
}
