//! A folder of PNGs on arbitrary bytes: the input is cut into files at each `IEND` chunk's end
//! (so seeds of concatenated PNGs become folders of several images), decoded and collected.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut files: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(8).position(|w| &w[..4] == b"IEND") {
        let (file, tail) = rest.split_at(at + 8);
        files.push(file);
        rest = tail;
    }
    if !rest.is_empty() {
        files.push(rest);
    }
    let names: Vec<PathBuf> = (0..files.len()).map(|i| PathBuf::from(format!("{i}.png"))).collect();
    let _ = pixelrnn::data::png_folder::from_pngs(
        Path::new("fuzz"),
        names.iter().map(PathBuf::as_path).zip(files.iter().copied()),
    );
});
