//! The models in `pretrained/`: each one's checkpoints are the ones its card (`card.json`)
//! names by SHA-256, and `eval` of the first test images reproduces the card's NLL.

use std::path::{Path, PathBuf};

use crate::common::bin;

/// The folders of `pretrained/` that hold a card.
fn cards() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pretrained");
    let Ok(entries) = std::fs::read_dir(&root) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("card.json").is_file()).collect();
    dirs.sort();
    dirs
}

/// Where the dataset of a pretrained run is on this machine, if anywhere.
fn data_dir(dataset: &str) -> Option<PathBuf> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let sub = match dataset {
        "binarized-mnist" | "mnist" => "mnist",
        "cifar10" => "cifar10",
        _ => return None,
    };
    Some(shared.join(sub)).filter(|d| d.is_dir())
}

#[test]
fn pretrained_models_match_their_cards() {
    let dirs = cards();
    if dirs.is_empty() {
        eprintln!("skipped: no pretrained model with a card.json");
        return;
    }
    for dir in dirs {
        let card: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("card.json")).unwrap()).unwrap();
        for (file, digest) in card["sha256"].as_object().unwrap() {
            let got = pixelrnn::data::download::sha256_file(&dir.join(file)).unwrap();
            assert_eq!(&got, digest.as_str().unwrap(), "{}: {file} is not the file its card describes", dir.display());
        }
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert!(config["data"]["data_dir"].is_null(), "{}: a pretrained config names no data folder", dir.display());
        let dataset = config["data"]["dataset"].as_str().unwrap();
        let Some(data) = data_dir(dataset) else {
            eprintln!("skipped the NLL check of {}: no {dataset} data in ../shared/data", dir.display());
            continue;
        };
        let check = &card["check"];
        // The split the card measured (a dataset without a test split: its validation images).
        let split = card["split"].as_str().unwrap_or("test");
        let images = check["images"].as_u64().unwrap().to_string();
        let out = bin()
            .args(["eval", "--run", dir.to_str().unwrap(), "--split", split, "--json", "--limit", &images])
            .args(["--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (got, expected) = (report["nll_nats"].as_f64().unwrap(), check["nll_nats"].as_f64().unwrap());
        // Another CPU may round differently in the last bits; the card's figure holds to 1e-4.
        assert!((got - expected).abs() <= 1e-4 * expected, "{}: NLL {got}, card {expected}", dir.display());
    }
}
