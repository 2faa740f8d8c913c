//! `pixelrnn compress` / `decompress`: round trips from files, folders and a split, the report,
//! and the damaged and mismatched inputs.

use std::path::Path;

use assert_cmd::prelude::*;
use pixelrnn::png::{decode_png, encode_png};

use crate::common::{bin, small_mnist, stderr_of, train_args};

fn pixels(path: &Path) -> Vec<u8> {
    decode_png(&std::fs::read(path).unwrap(), path).unwrap().3
}

#[test]
fn compress_and_decompress_round_trip_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 3)).assert().success();
    let r = run.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name);

    // A split of the run's dataset, with the JSON report.
    let out = bin()
        .args(["compress", "--run", r, "--split", "test", "--limit", "5", "-o"])
        .arg(path("test.prnn"))
        .args(["--json", "--chunk", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 5);
    assert_eq!(report["bytes"].as_u64().unwrap(), std::fs::metadata(path("test.prnn")).unwrap().len());
    let (nll, coded) = (report["nll_bits_per_dim"].as_f64().unwrap(), report["coded_bits_per_dim"].as_f64().unwrap());
    assert!((coded - nll).abs() < nll * 0.01, "{nll} vs {coded}");
    assert_eq!(report["per_image"].as_array().unwrap().len(), 5);
    assert!(report["png_bytes"].as_u64().unwrap() > 0);
    bin().args(["decompress"]).arg(path("test.prnn")).args(["--run", r, "-o"]).arg(path("test-out")).assert().success();
    let mut names: Vec<String> =
        std::fs::read_dir(path("test-out")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, (0..5).map(|i| format!("{i:05}.png")).collect::<Vec<_>>());

    // Files and a folder: the decompressed PNGs have the very pixels of the inputs.
    let inputs = path("inputs");
    std::fs::create_dir(&inputs).unwrap();
    for i in 0..3u8 {
        let image: Vec<u8> = (0..784).map(|p| if (p / 28 + p % 28 + i as usize) % 5 < 2 { 255 } else { 0 }).collect();
        std::fs::write(inputs.join(format!("b{i}.png")), encode_png(1, 28, 28, &image)).unwrap();
    }
    let single = path("single.png");
    std::fs::copy(inputs.join("b1.png"), &single).unwrap();
    std::fs::rename(&single, path("a.png")).unwrap();
    bin()
        .args(["compress", "--run", r])
        .arg(path("a.png"))
        .arg(&inputs)
        .arg("-o")
        .arg(path("files.prnn"))
        .assert()
        .success();
    bin()
        .args(["decompress"])
        .arg(path("files.prnn"))
        .args(["--run", r, "-o"])
        .arg(path("files-out"))
        .assert()
        .success();
    for (name, original) in
        [("a.png", path("a.png")), ("b0.png", inputs.join("b0.png")), ("b2.png", inputs.join("b2.png"))]
    {
        assert_eq!(pixels(&path("files-out").join(name)), pixels(&original), "{name}");
    }

    // Decompressing without the run names the weights it needs; another run is refused.
    let err = stderr_of(bin().args(["decompress"]).arg(path("files.prnn")).arg("-o").arg(path("x")));
    assert!(err.contains("weights SHA-256") && err.contains("--run"), "{err}");
    let other = tmp.path().join("other");
    bin().args(train_args(&data, &other, "pixel-cnn", 2)).assert().success();
    let err = stderr_of(
        bin()
            .args(["decompress"])
            .arg(path("files.prnn"))
            .args(["--run", other.to_str().unwrap(), "-o"])
            .arg(path("y")),
    );
    assert!(err.contains("coded with other weights"), "{err}");
    assert!(!path("y").exists(), "nothing written");

    // Damaged files: truncated, a flipped payload byte, not a .prnn at all.
    let bytes = std::fs::read(path("files.prnn")).unwrap();
    std::fs::write(path("cut.prnn"), &bytes[..bytes.len() - 3]).unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(path("flip.prnn"), &flipped).unwrap();
    for (file, words) in [("cut.prnn", "truncated"), ("flip.prnn", "corrupt payload"), ("a.png", "magic")] {
        let err = stderr_of(bin().args(["decompress"]).arg(path(file)).args(["--run", r, "-o"]).arg(path("z")));
        assert!(err.contains(words) && err.contains(file), "{file}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!path("z").exists(), "nothing written for {file}");
    }
    // Outputs that cannot be written: under a regular file. Errors, and no partial output.
    let blocker = path("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let err = stderr_of(
        bin().args(["compress", "--run", r, "--split", "test", "--limit", "2", "-o"]).arg(blocker.join("x.prnn")),
    );
    assert!(err.contains("a-file"), "{err}");
    let err =
        stderr_of(bin().args(["decompress"]).arg(path("files.prnn")).args(["--run", r, "-o"]).arg(blocker.join("out")));
    assert!(err.contains("a-file"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial output left: {leftovers:?}");
    // An output folder that already holds files is refused before any work.
    let err = stderr_of(bin().args(["decompress"]).arg(path("files.prnn")).args(["--run", r, "-o"]).arg(&inputs));
    assert!(err.contains("not empty"), "{err}");

    // Inputs the model cannot code: a grey (not black-and-white) image, another size, nothing.
    let grey = path("grey.png");
    std::fs::write(&grey, encode_png(1, 28, 28, &[100; 784])).unwrap();
    let err = stderr_of(bin().args(["compress", "--run", r]).arg(&grey).arg("-o").arg(path("g.prnn")));
    assert!(err.contains("grey value 100") && err.contains("grey.png"), "{err}");
    let small = path("small.png");
    std::fs::write(&small, encode_png(1, 5, 5, &[0; 25])).unwrap();
    let err = stderr_of(bin().args(["compress", "--run", r]).arg(&small).arg("-o").arg(path("s.prnn")));
    assert!(err.contains("5x5"), "{err}");
    let err = stderr_of(bin().args(["compress", "--run", r, "-o"]).arg(path("n.prnn")));
    assert!(err.contains("nothing to compress"), "{err}");
    assert!(!path("g.prnn").exists() && !path("s.prnn").exists() && !path("n.prnn").exists());
}

#[test]
fn compact_files_decode_to_the_same_images_and_the_report_compares_one_file_per_image() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 3)).assert().success();
    let r = run.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name);
    let compress = |name: &str, extra: &[&str]| {
        bin()
            .args(["compress", "--run", r, "--split", "test", "--limit", "4", "-o"])
            .arg(path(name))
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(compress("v1.prnn", &[]).status.success());
    let out = compress("v2.prnn", &["--compact", "--chunk", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (v1, v2) = (std::fs::read(path("v1.prnn")).unwrap(), std::fs::read(path("v2.prnn")).unwrap());
    assert!(v2.starts_with(b"PRZ2") && v2.len() + 100 < v1.len(), "{} vs {}", v2.len(), v1.len());
    for (file, folder) in [("v1.prnn", "out1"), ("v2.prnn", "out2")] {
        bin().arg("decompress").arg(path(file)).args(["--run", r, "-o"]).arg(path(folder)).assert().success();
    }
    for i in 0..4 {
        let name = format!("{i:05}.png");
        assert_eq!(pixels(&path("out1").join(&name)), pixels(&path("out2").join(&name)), "{name}");
    }
    // One image per chunk: each image's own compact file, against each image's own PNG.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = &report["per_image_files"];
    assert_eq!(files["prnn_container"], "compact");
    let own: u64 = report["per_image"].as_array().unwrap().iter().map(|row| row["prnn_bytes"].as_u64().unwrap()).sum();
    assert_eq!(files["prnn_bytes"].as_u64().unwrap(), own);
    assert!(files["png_bytes"].as_u64().unwrap() > 0 && files["prnn_smallest_images"].as_u64().unwrap() <= 4);
    // The batch: the file against one PNG of the four images tiled (2 x 2 of 28x28).
    let batch = &report["batch"];
    assert_eq!((batch["mosaic_width"].as_u64(), batch["mosaic_height"].as_u64()), (Some(56), Some(56)));
    assert_eq!(batch["prnn_bytes"].as_u64().unwrap(), v2.len() as u64);
    // A compact file cut short is one line naming it.
    std::fs::write(path("cut.prnn"), &v2[..v2.len() - 3]).unwrap();
    let err = stderr_of(bin().arg("decompress").arg(path("cut.prnn")).args(["--run", r, "-o"]).arg(path("cut-out")));
    assert!(err.contains("cut.prnn") && err.trim().lines().filter(|l| l.starts_with("error")).count() == 1, "{err}");
}

#[test]
fn a_file_written_before_the_output_distribution_type_still_decodes() {
    // tests/fixtures/checker-678b1e1.prnn: tests/fixtures/checker.png compressed with the run
    // tests/fixtures/run-c9b9af2-diagonal-bilstm by the binary of commit 678b1e1, before the
    // probabilities moved into `distribution.rs`; compressing again gives the same bytes. (The
    // run's checkpoint is of format 1, without a checksum: read on request.)
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("old-run");
    std::fs::create_dir(&run).unwrap();
    for file in ["config.json", "checkpoint-best.bin"] {
        std::fs::copy(fixtures.join("run-c9b9af2-diagonal-bilstm").join(file), run.join(file)).unwrap();
    }
    let out = tmp.path().join("out");
    bin()
        .arg("decompress")
        .arg(fixtures.join("checker-678b1e1.prnn"))
        .args(["--allow-unchecked", "--run"])
        .arg(&run)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(pixels(&out.join("checker.png")), pixels(&fixtures.join("checker.png")));
    let again = tmp.path().join("again.prnn");
    bin()
        .args(["compress", "--allow-unchecked", "--run"])
        .arg(&run)
        .arg(fixtures.join("checker.png"))
        .arg("-o")
        .arg(&again)
        .assert()
        .success();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(fixtures.join("checker-678b1e1.prnn")).unwrap());
}
