//! The checkpoint loader on arbitrary bytes: as given (mostly stopped by the magic number or
//! the SHA-256), and sealed with a valid SHA-256 so that the fuzzer reaches the sections, the
//! header's JSON and the weights record behind it; a parsed checkpoint is applied to a model.
#![no_main]

use std::path::Path;

use burn::prelude::Device;
use libfuzzer_sys::fuzz_target;
use pixelrnn::checkpoint::parse;
use pixelrnn::data::DatasetName;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.bin");
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&Sha256::digest(data));
    for bytes in [data, &sealed[..]] {
        if let Ok(ckpt) = parse(path, bytes) {
            let config = ckpt.header.model.clone();
            // Only small models: the fuzzer must not spend its time building wide ones.
            if config.hidden_channels <= 16 && config.num_layers <= 2 && config.image.height * config.image.width <= 1024 {
                if let Ok(model) = config.init(&Device::flex(), 0) {
                    let _ = ckpt.apply(path, &config, DatasetName::BinarizedMnist, model);
                }
            }
        }
    }
});
