//! `pixelrnn export` / `import`: weights to safetensors and back, in either layout, and the
//! files that do not fit.

use std::collections::BTreeMap;

use assert_cmd::prelude::*;
use burn::prelude::Device;
use pixelrnn::bench::Spec;
use pixelrnn::interop::{export, from_safetensors, to_safetensors, Layout, TrainingInfo};

use crate::common::{bin, eval_json, small_mnist, stderr_of, train_args};

#[test]
fn export_then_import_gives_a_run_with_the_same_nll() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "diagonal-bilstm", 3)).assert().success();
    let file = tmp.path().join("model.safetensors");
    bin()
        .args(["export", "--run", run.to_str().unwrap(), "--checkpoint", "last", "--out"])
        .arg(&file)
        .assert()
        .success();
    let (_, metadata) = from_safetensors(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!((metadata["pixelrnn.dataset"].as_str(), metadata["pixelrnn.step"].as_str()), ("binarized-mnist", "3"));
    let copy = tmp.path().join("imported");
    bin()
        .arg("import")
        .arg(&file)
        .arg("--out")
        .arg(&copy)
        .arg("--data-dir")
        .arg(&data)
        .arg("--no-verify")
        .assert()
        .success();
    assert_eq!(eval_json(&copy, &["--limit", "10"]), eval_json(&run, &["--limit", "10", "--checkpoint", "last"]));
    // The imported run samples, and resumes training with the run's settings.
    bin()
        .args(["sample", "--run", copy.to_str().unwrap(), "--count", "2", "--out"])
        .arg(tmp.path().join("s.png"))
        .assert()
        .success();
    // Training resumes from the imported run with the flags of the original one.
    let mut resumed = train_args(&data, &copy, "diagonal-bilstm", 5);
    resumed.push("--resume".into());
    bin().args(resumed).assert().success();
    let metrics = std::fs::read_to_string(copy.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"step\":5"), "{metrics}");
    // A tiny model is not one of the PyTorch twin's specs; an existing run is not overwritten.
    let err = stderr_of(
        bin()
            .args(["export", "--run", run.to_str().unwrap(), "--layout", "pytorch", "--out"])
            .arg(tmp.path().join("t")),
    );
    assert!(err.contains("twin has no such model"), "{err}");
    let err = stderr_of(bin().arg("import").arg(&file).arg("--out").arg(&run));
    assert!(err.contains("already holds a run"), "{err}");
    // A --dataset that contradicts the metadata or the weights' images is refused, and no run
    // is made.
    let other = tmp.path().join("other");
    let err = stderr_of(bin().arg("import").arg(&file).args(["--dataset", "mnist", "--out"]).arg(&other));
    assert!(err.contains("was trained on binarized-mnist"), "{err}");
    assert!(!other.exists());
    let export_without = tmp.path().join("plain.safetensors");
    let (tensors, mut metadata) = from_safetensors(&std::fs::read(&file).unwrap()).unwrap();
    metadata.remove("pixelrnn.dataset");
    std::fs::write(&export_without, to_safetensors(&tensors, metadata).unwrap()).unwrap();
    let err = stderr_of(bin().arg("import").arg(&export_without).args(["--dataset", "cifar10", "--out"]).arg(&other));
    assert!(err.contains("32x32") && err.contains("28x28"), "{err}");
    assert!(!other.exists());
}

#[test]
fn the_twins_state_dict_imports_and_bad_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    // What the twin's `save_file(model.state_dict())` writes: its names, no metadata.
    let config = Spec::M4.model_config();
    let model = config.init(&Device::flex(), 1).unwrap();
    let bytes = export(&model, &config, &TrainingInfo::default(), Layout::Pytorch).unwrap();
    let (tensors, _) = from_safetensors(&bytes).unwrap();
    let twin = tmp.path().join("twin.safetensors");
    std::fs::write(&twin, to_safetensors(&tensors, BTreeMap::new()).unwrap()).unwrap();
    let run = tmp.path().join("from-twin");
    let err = stderr_of(bin().arg("import").arg(&twin).arg("--out").arg(&run));
    assert!(err.contains("pass --dataset"), "{err}");
    bin()
        .arg("import")
        .arg(&twin)
        .args(["--dataset", "binarized-mnist", "--no-verify", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    assert_eq!(eval_json(&run, &["--limit", "4"])["images"], 4);
    // A wrongly shaped tensor: named, with both shapes; nothing written.
    let mut bad = tensors.clone();
    bad.get_mut("proj.weight").unwrap().shape = vec![32, 16];
    std::fs::write(&twin, to_safetensors(&bad, BTreeMap::new()).unwrap()).unwrap();
    let out = tmp.path().join("bad");
    let err = stderr_of(bin().arg("import").arg(&twin).args(["--dataset", "binarized-mnist", "--out"]).arg(&out));
    assert!(err.contains("proj.weight") && err.contains("[32, 16]") && err.contains("[32, 16, 1, 1]"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!out.exists(), "nothing written");
    // Not a safetensors file.
    let err = stderr_of(bin().arg("import").arg(data.join("t10k-labels-idx1-ubyte.gz")).arg("--out").arg(&out));
    assert!(err.contains("not a safetensors file"), "{err}");
}
