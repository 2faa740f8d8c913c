//! `pixelrnn sample`, `complete` and `score`.

use std::path::Path;

use assert_cmd::prelude::*;

use crate::common::{bin, eval_json, small_mnist, stderr_of, train_args};

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
            "--indices",
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
    // The predictive distribution at a pixel: its probability of the image's value is the
    // sub-pixel's own NLL.
    let out = bin()
        .args(["score", "--run", r, "--image", sample0.to_str().unwrap(), "--json", "--softmax", "14,9"])
        .args(["--softmax-out", &grid("softmax.svg")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &s["distribution"];
    let p = d["probabilities"][0].as_array().unwrap();
    let v = d["values"][0].as_u64().unwrap() as usize;
    let nll = s["per_subpixel_nats"][14 * 28 + 9].as_f64().unwrap();
    assert!((-p[v].as_f64().unwrap().ln() - nll).abs() < 1e-4 * nll.max(1.0), "{d}");
    assert!(std::fs::read_to_string(tmp.path().join("softmax.svg")).unwrap().contains("p(value) at pixel (14, 9)"));
    let err = stderr_of(bin().args(["score", "--run", r, "--image", sample0.to_str().unwrap(), "--softmax", "28,0"]));
    assert!(err.contains("outside the 28x28 image"), "{err}");
    // A dataset image by index scores as its `eval --per-image` entry.
    let out = bin().args(["score", "--run", r, "--index", "3", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let by_index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let per_image = eval_json(Path::new(r), &["--per-image", "--limit", "4"])["per_image_nats"][3].as_f64().unwrap();
    let nll = by_index["nll_nats"].as_f64().unwrap();
    assert!((nll - per_image).abs() < 1e-4 * per_image, "{nll} vs {per_image}");
    let err = stderr_of(bin().args(["score", "--run", r, "--index", "99999"]));
    assert!(err.contains("image index 99999 out of range"), "{err}");

    // Bad input: clear errors, no panic.
    let err = stderr_of(bin().args(["sample", "--run", r, "--count", "0", "--out", &grid("x.png")]));
    assert!(err.contains("--count") && err.contains("not in 1..=100000"), "{err}");
    let err = stderr_of(bin().args(["sample", "--run", r, "--scale", "100000", "--out", &grid("x.png")]));
    assert!(err.contains("--scale") && err.contains("not in 1..=64"), "{err}");
    // Within every flag's range, a grid too big for memory is refused before any sampling.
    let started = std::time::Instant::now();
    let err = stderr_of(bin().args([
        "sample",
        "--run",
        r,
        "--count",
        "100000",
        "--columns",
        "1000",
        "--scale",
        "64",
        "--out",
        &grid("x.png"),
    ]));
    assert!(err.contains("the sample grid") && err.contains("GiB"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "refused before sampling");
    // An unbounded input is refused before it is read.
    if Path::new("/dev/zero").exists() {
        let err = stderr_of(bin().args(["complete", "--run", r, "--image", "/dev/zero", "--out", &grid("x.png")]));
        assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
    }
    let err = stderr_of(bin().args(["complete", "--run", r, "--observed-rows", "28", "--out", &grid("x.png")]));
    assert!(err.contains("--observed-rows must be below the image height 28"), "{err}");
    let err = stderr_of(bin().args(["complete", "--run", r, "--images", "99999", "--out", &grid("x.png")]));
    assert!(err.contains("out of range"), "{err}");
    let small = tmp.path().join("small.png");
    std::fs::write(&small, pixelrnn::png::encode_png(3, 5, 5, &[0; 75])).unwrap();
    let err = stderr_of(bin().args(["score", "--run", r, "--image", small.to_str().unwrap()]));
    assert!(err.contains("small.png") && err.contains("expects a 28x28 greyscale PNG"), "{err}");
    std::fs::write(&small, b"not a png").unwrap();
    let err = stderr_of(bin().args(["score", "--run", r, "--image", small.to_str().unwrap()]));
    assert!(err.contains("unreadable PNG"), "{err}");
    let err = stderr_of(bin().args(["sample", "--run", r, "--temperature", "0", "--out", &grid("x.png")]));
    assert!(err.contains("temperature"), "{err}");
}
