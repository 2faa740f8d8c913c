//! The CIFAR-10 `.bin` reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pixelrnn::data::cifar::parse_batch(std::path::Path::new("fuzz.bin"), data);
});
