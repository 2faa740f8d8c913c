//! `--conditional`: a class-conditional model trained on a labelled dataset, then evaluated,
//! sampled per class, completed, scored and coded under each image's label; `--class` where it
//! cannot work is refused.

use assert_cmd::prelude::*;

use crate::common::{bin, eval_json, small_mnist, stderr_of, train_args};

#[test]
fn a_conditional_model_trains_and_every_command_uses_the_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path()); // labels i % 10
    let run = tmp.path().join("run");
    let mut args = train_args(&data, &run, "pixel-cnn", 3);
    args.push("--conditional".into());
    let out = bin().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("conditional on 10 classes"), "{err}");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["classes"], 10);
    let r = run.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name);
    let last = ["--checkpoint", "last"];

    // eval: -log p(x | y) with each image's own label; score agrees on image 2.
    let eval = eval_json(&run, &["--checkpoint", "last", "--limit", "3", "--per-image"]);
    let out = bin().args(["score", "--run", r, "--index", "2", "--json"]).args(last).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let score: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (s, e) = (score["nll_nats"].as_f64().unwrap(), eval["per_image_nats"][2].as_f64().unwrap());
    assert!((s - e).abs() < 1e-3 * e, "score {s} vs eval {e}");

    // Samples: the classes in turn, or one class; fast == naive.
    for extra in [&[][..], &["--class", "3"][..]] {
        let grid = |name: &str, naive: bool| {
            let mut cmd = bin();
            cmd.args(["sample", "--run", r, "--count", "4", "--seed", "1", "--out"])
                .arg(path(name))
                .args(last)
                .args(extra);
            if naive {
                cmd.arg("--naive");
            }
            cmd.assert().success();
            std::fs::read(path(name)).unwrap()
        };
        assert_eq!(grid("f.png", false), grid("n.png", true), "{extra:?}");
    }
    // Completion of dataset images under their labels.
    bin()
        .args(["complete", "--run", r, "--indices", "0,1", "--observed-rows", "14", "--out"])
        .arg(path("c.png"))
        .args(last)
        .assert()
        .success();

    // The codec stores each image's label and gives it back.
    bin()
        .args(["compress", "--run", r, "--split", "test", "--limit", "3", "-o"])
        .arg(path("t.prnn"))
        .args(last)
        .assert()
        .success();
    bin().arg("decompress").arg(path("t.prnn")).args(["--run", r, "-o"]).arg(path("out")).args(last).assert().success();
    let labels = std::fs::read_to_string(path("out").join("labels.tsv")).unwrap();
    assert_eq!(labels, "00000.png\t0\n00001.png\t1\n00002.png\t2\n");

    // Export and import keep the class embedding (and so the conditional NLL).
    bin().args(["export", "--run", r, "--out"]).arg(path("m.safetensors")).args(last).assert().success();
    bin()
        .arg("import")
        .arg(path("m.safetensors"))
        .arg("--out")
        .arg(path("imported"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--no-verify"])
        .assert()
        .success();
    assert_eq!(
        eval_json(&path("imported"), &["--limit", "3", "--per-image"])["per_image_nats"],
        eval["per_image_nats"]
    );

    // Bad requests: a class out of range, an image without its class.
    let err = stderr_of(
        bin().args(["sample", "--run", r, "--count", "2", "--class", "10", "--out"]).arg(path("x.png")).args(last),
    );
    assert!(err.contains("class 10 is outside the model's 0..9"), "{err}");
    std::fs::write(path("digit.png"), pixelrnn::png::encode_png(1, 28, 28, &[0u8; 784])).unwrap();
    let err = stderr_of(
        bin()
            .args(["complete", "--run", r, "--image"])
            .arg(path("digit.png"))
            .arg("--out")
            .arg(path("y.png"))
            .args(last),
    );
    assert!(err.contains("give the image's --class K"), "{err}");
    let err =
        stderr_of(bin().args(["compress", "--run", r]).arg(path("digit.png")).arg("-o").arg(path("z.prnn")).args(last));
    assert!(err.contains("--class K"), "{err}");
}

#[test]
fn class_flags_on_an_unconditional_model_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 2)).assert().success();
    let r = run.to_str().unwrap();
    let out = tmp.path().join("s.png");
    for cmd in [
        vec!["sample", "--run", r, "--count", "2", "--class", "1", "--out", out.to_str().unwrap()],
        vec!["score", "--run", r, "--index", "0", "--class", "1"],
        vec!["complete", "--run", r, "--count", "1", "--class", "1", "--out", out.to_str().unwrap()],
    ] {
        let err = stderr_of(bin().args(&cmd).args(["--checkpoint", "last"]));
        assert!(err.contains("not class-conditional"), "{cmd:?}: {err}");
    }
}

#[test]
fn conditional_on_an_unlabelled_dataset_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("pngs");
    std::fs::create_dir(&folder).unwrap();
    for i in 0..12u8 {
        let pixels: Vec<u8> = (0..3 * 8 * 8).map(|p| (p as u8).wrapping_mul(i)).collect();
        std::fs::write(folder.join(format!("{i:02}.png")), pixelrnn::png::encode_png(3, 8, 8, &pixels)).unwrap();
    }
    let out = tmp.path().join("run");
    let err = stderr_of(bin().args(["train", "--dataset", "folder", "--data-dir"]).arg(&folder).args([
        "--model",
        "pixel-cnn",
        "--preset",
        "tiny",
        "--steps",
        "1",
        "--conditional",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(err.contains("--conditional: folder has no class labels"), "{err}");
    assert!(!out.join("checkpoint-last.bin").exists());
}
