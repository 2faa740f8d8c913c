//! A run's `config.json` loader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pixelrnn::run::parse_config(std::path::Path::new("config.json"), data);
});
