//! The binarized MNIST `.amat` reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pixelrnn::data::mnist::parse_amat(std::path::Path::new("fuzz.amat"), data.to_vec());
});
