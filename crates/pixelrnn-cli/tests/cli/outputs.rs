//! The output policy of every command that writes (RELIABILITY.md): a target that is not a
//! regular file (a device, a FIFO, a folder, a symbolic link), a run's own files and a command's
//! own inputs are refused before any work, and left exactly as they were.

use std::path::{Path, PathBuf};

use assert_cmd::prelude::*;
use pixelrnn::png::encode_png;

use crate::common::{bin, small_mnist, stderr_of, train_args};

/// Runs `args` with the output `target`, expecting a one-line refusal naming it.
fn refused(args: &[&str], target: &Path, expected: &str) {
    let err = stderr_of(bin().args(args));
    assert!(err.contains("refusing to write") && err.contains(expected), "{args:?}: {err}");
    assert!(err.contains(target.file_name().unwrap().to_str().unwrap()), "names the target: {err}");
}

#[test]
fn no_command_writes_onto_a_device_a_fifo_a_link_a_folder_its_inputs_or_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "pixel-cnn", 2)).assert().success();
    let r = run.to_str().unwrap();
    let path = |name: &str| tmp.path().join(name);
    let image: Vec<u8> = (0..784).map(|p| if p % 7 < 3 { 255 } else { 0 }).collect();
    std::fs::write(path("in.png"), encode_png(1, 28, 28, &image)).unwrap();
    let fifo = path("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let victim = path("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = path("link.png");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::fs::create_dir(path("folder.png")).unwrap();
    let best = run.join("checkpoint-best.bin");
    let before: Vec<(PathBuf, Vec<u8>)> =
        ["checkpoint-best.bin", "checkpoint-last.bin", "config.json", "metrics.jsonl"]
            .iter()
            .map(|n| (run.join(n), std::fs::read(run.join(n)).unwrap()))
            .collect();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (null, inp) = (PathBuf::from("/dev/null"), path("in.png"));
    let targets: [(&Path, &str); 4] =
        [(&null, "device"), (&fifo, "FIFO"), (&link, "symbolic link"), (&path("folder.png"), "folder")];
    for (target, what) in targets {
        let t = s(target);
        refused(&["compress", "--run", r, &s(&inp), "-o", &t], target, what);
        refused(&["export", "--run", r, "--out", &t], target, what);
        refused(&["sample", "--run", r, "--count", "1", "--out", &t], target, what);
        refused(&["eval", "--run", r, "--limit", "2", "--save-images", &t], target, what);
    }
    // The run's own files and the command's inputs.
    refused(&["compress", "--run", r, &s(&inp), "-o", &s(&best)], &best, "the run's best checkpoint");
    refused(&["compress", "--run", r, &s(&inp), "-o", &s(&inp)], &inp, "an input image");
    refused(
        &["export", "--run", r, "--out", &s(&run.join("config.json"))],
        Path::new("config.json"),
        "the run's config",
    );
    refused(&["complete", "--run", r, "--image", &s(&inp), "--out", &s(&inp)], &inp, "the input image");
    refused(&["score", "--run", r, "--image", &s(&inp), "--heatmap", &s(&best)], &best, "the run's best checkpoint");
    let mut grads = train_args(&data, &path("other"), "pixel-cnn", 1);
    grads.extend(["--gradients-out".to_string(), s(&best)]);
    let err = stderr_of(bin().args(&grads));
    assert!(err.contains("refusing to write"), "{err}");
    // Nothing was changed.
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&inp).unwrap(), encode_png(1, 28, 28, &image));
    for (file, bytes) in before {
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{} unchanged", file.display());
    }
    // A new name and an existing regular file are fine.
    let fresh = path("fresh.png");
    bin().args(["sample", "--run", r, "--count", "1", "--out", &s(&fresh)]).assert().success();
    bin().args(["sample", "--run", r, "--count", "1", "--out", &s(&fresh)]).assert().success();
}
