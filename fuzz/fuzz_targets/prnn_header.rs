//! The `.prnn` container's parser on arbitrary bytes: the header of either container (version 1,
//! and the compact version 2, with their checksums and sizes), the names section and the chunk
//! lengths must answer with an error, never panic or allocate without bound. Seeds in
//! fuzz/seeds/prnn (real files made by `pixelrnn compress`, with and without `--compact`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelrnn::codec::compact::take_chunk_len;
use pixelrnn::codec::format::{names_from_bytes, Header};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::parse(data) {
        // Stored names only: without them the names are generated, one per image.
        let end = header.body_start + header.names_len as usize;
        if header.names_len > 0 {
            let _ = names_from_bytes(&data[header.body_start..end], header.count);
        }
        // The chunk lengths, as the decoder walks them.
        let mut payload = &data[end..end + header.payload_len as usize];
        while let Ok(len) = take_chunk_len(&mut payload, header.version) {
            payload = &payload[len..];
            if payload.is_empty() {
                break;
            }
        }
    }
    // The names section parser on its own, with an arbitrary count.
    if let Some((count, rest)) = data.split_first() {
        let _ = names_from_bytes(rest, *count as u64);
    }
});
