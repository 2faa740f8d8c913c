//! The `.prnn` container's parser on arbitrary bytes: the header (with its checksums and
//! sizes) and the names section must answer with an error, never panic or allocate without
//! bound. Seeds in fuzz/seeds/prnn (real files made by `pixelrnn compress`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelrnn::codec::format::{names_from_bytes, Header, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::parse(data) {
        // Stored names only: without them the names are generated, one per image.
        if header.names_len > 0 {
            let end = HEADER_LEN + header.names_len as usize;
            let _ = names_from_bytes(&data[HEADER_LEN..end], header.count);
        }
    }
    // The names section parser on its own, with an arbitrary count.
    if let Some((count, rest)) = data.split_first() {
        let _ = names_from_bytes(rest, *count as u64);
    }
});
