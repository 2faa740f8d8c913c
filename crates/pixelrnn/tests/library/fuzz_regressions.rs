//! Every input the fuzzers (fuzz/, scripts/fuzz.sh) found to crash a parser, kept in
//! fixtures/fuzz/TARGET/ and fed to the same parser as the fuzz target does: each must now be
//! a clean error (no panic, no allocation beyond the limits).

use std::path::{Path, PathBuf};

use pixelrnn::data::png_folder::{from_pngs, tar_from};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/library/fixtures/fuzz").join(target);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no regression inputs in {}", dir.display());
    found
}

include!("../../../../fuzz/common/split_pngs.rs");

#[test]
fn png_headers_claiming_huge_images_are_refused_before_allocating() {
    for (path, data) in inputs("png_folder") {
        let files = split_pngs(&data);
        let names: Vec<PathBuf> = (0..files.len()).map(|i| PathBuf::from(format!("{i}.png"))).collect();
        let result = from_pngs(Path::new("fuzz"), names.iter().map(PathBuf::as_path).zip(files.iter().copied()));
        let err = result.err().unwrap_or_else(|| panic!("{}: expected an error", path.display())).to_string();
        assert!(err.contains("unreadable PNG") && err.contains("more than its"), "{}: {err}", path.display());
    }
    for (path, data) in inputs("tar") {
        let err = tar_from(Path::new("fuzz.tar"), &data[..]).err();
        let err = err.unwrap_or_else(|| panic!("{}: expected an error", path.display())).to_string();
        assert!(err.contains("more than its"), "{}: {err}", path.display());
    }
}
