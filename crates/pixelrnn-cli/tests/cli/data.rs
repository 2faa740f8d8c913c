//! `pixelrnn data fetch` / `info`.

use std::path::Path;

use assert_cmd::prelude::*;
use pixelrnn::data::mnist::IDX_FILES;

use crate::common::{bin, small_mnist, stderr_of};

#[test]
fn a_closed_stdout_ends_quietly() {
    // `pixelrnn data info ... | head -0`: the reader is gone before the first line is written.
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let mut child = bin()
        .args(["data", "info", "mnist", "--data-dir", data.to_str().unwrap(), "--valid-size", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn data_info_and_unknown_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let out = bin()
        .args(["data", "info", "mnist", "--data-dir", data.to_str().unwrap(), "--valid-size", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("train: 270 images") && text.contains("valid: 30 images") && text.contains("test: 50 images"),
        "{text}"
    );
    assert!(text.contains("1 channel(s), 28x28"), "{text}");
    // The default hold-out (10,000) does not fit in 300 images: a clear error, not a panic.
    let err = stderr_of(bin().args(["data", "info", "mnist", "--data-dir", data.to_str().unwrap()]));
    assert!(err.contains("cannot hold out 10000"), "{err}");
    assert!(text.contains("MISMATCH"), "generated files must not pass the published checksum: {text}");
    // An unknown dataset is a usage error (exit 2) that lists the known ones.
    let out = bin().args(["data", "info", "svhn"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("svhn") && err.contains("binarized-mnist") && err.contains("cifar10"), "{err}");
}

#[test]
fn fetch_from_a_local_mirror_when_real_files_are_present() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if !shared.is_dir() {
        eprintln!("skipped: {} not present", shared.display());
        return;
    }
    // Serve the real MNIST files on 127.0.0.1 so their published SHA-256s verify.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}", listener.local_addr().unwrap());
    let root = shared.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming().take(8) {
            let mut stream = stream.unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                    break;
                }
            }
            let name = first.split_whitespace().nth(1).unwrap().trim_start_matches('/').to_string();
            let body = std::fs::read(root.join(&name)).unwrap_or_default();
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(&body);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("mnist");
    bin()
        .args(["data", "fetch", "mnist", "--data-dir", dest.to_str().unwrap(), "--mirror", &mirror])
        .assert()
        .success();
    for f in IDX_FILES {
        assert_eq!(std::fs::read(dest.join(f)).unwrap(), std::fs::read(shared.join(f)).unwrap());
    }
}

#[test]
fn fetch_never_says_ready_over_damaged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = crate::common::small_mnist(tmp.path()); // MNIST's names, not its contents
    let out = crate::common::bin().args(["data", "fetch", "mnist", "--data-dir"]).arg(&data).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
    assert!(err.contains("differs from the published"), "{err}");
}
