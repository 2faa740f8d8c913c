//! A folder of PNGs on arbitrary bytes: the input is cut into files at each `IEND` chunk's end
//! (so seeds of concatenated PNGs become folders of several images), decoded and collected.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

include!("../common/split_pngs.rs");

fuzz_target!(|data: &[u8]| {
    let files = split_pngs(data);
    let names: Vec<PathBuf> = (0..files.len()).map(|i| PathBuf::from(format!("{i}.png"))).collect();
    let _ = pixelrnn::data::png_folder::from_pngs(
        Path::new("fuzz"),
        names.iter().map(PathBuf::as_path).zip(files.iter().copied()),
    );
});
