//! `--model gated-pixel-cnn`: trained, evaluated, sampled (fast == naive), completed and
//! coded by the same commands as the paper's three models.

use assert_cmd::prelude::*;

use crate::common::{bin, eval_json, small_mnist, train_args};

#[test]
fn a_gated_pixel_cnn_trains_samples_and_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "gated-pixel-cnn", 4)).assert().success();
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["architecture"], "gated-pixel-cnn");
    let nats = eval_json(&run, &["--limit", "10", "--checkpoint", "last"])["nll_nats"].as_f64().unwrap();
    assert!(nats > 0.0 && nats < 784.0 * 2.0, "{nats}");
    let r = run.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name);
    let sample = |name: &str, extra: &[&str]| {
        bin()
            .args(["sample", "--run", r, "--checkpoint", "last", "--count", "3", "--seed", "2", "--out"])
            .arg(path(name))
            .args(extra)
            .assert()
            .success();
        std::fs::read(path(name)).unwrap()
    };
    assert_eq!(sample("fast.png", &[]), sample("naive.png", &["--naive"]), "fast and naive samplers must agree");
    bin()
        .args(["complete", "--run", r, "--checkpoint", "last", "--count", "2", "--observed-rows", "14", "--out"])
        .arg(path("c.png"))
        .assert()
        .success();
    bin()
        .args(["compress", "--run", r, "--checkpoint", "last", "--split", "test", "--limit", "2", "-o"])
        .arg(path("t.prnn"))
        .assert()
        .success();
    bin()
        .arg("decompress")
        .arg(path("t.prnn"))
        .args(["--run", r, "--checkpoint", "last", "-o"])
        .arg(path("out"))
        .assert()
        .success();
    assert!(path("out").join("00001.png").is_file());
}
