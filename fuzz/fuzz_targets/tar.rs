//! The tar-of-PNGs reader (downsampled ImageNet) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pixelrnn::data::png_folder::tar_from(std::path::Path::new("fuzz.tar"), data);
});
