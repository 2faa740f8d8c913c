//! The IDX reader (MNIST, Fashion-MNIST) on arbitrary bytes, raw or gzip: an error, never a
//! panic, and never more memory than the data present (a header may claim anything).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pixelrnn::data::idx::{images_from, labels_from, maybe_gunzip};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    if let Ok(mut reader) = maybe_gunzip(std::io::Cursor::new(data.to_vec())) {
        let _ = images_from(path, &mut reader);
    }
    if let Ok(mut reader) = maybe_gunzip(std::io::Cursor::new(data.to_vec())) {
        let _ = labels_from(path, &mut reader, 10);
    }
});
