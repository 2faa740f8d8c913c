//! The compact `.prnn` container (version 2, `compress --compact`): the same names and
//! range-coder streams as version 1 ([`super::format`]) under a header of about 20 bytes
//! instead of 160, for files of one or a few small images, where version 1's header (two
//! SHA-256 digests, fixed-width sizes, a body digest) would cost more than the image (168 bytes
//! is 0.44 bits/dim of a CIFAR-10 image, 1.7 of an MNIST digit).
//!
//! ```text
//! size    field (little-endian; "varint": LEB128, 7 bits a byte, at most 10 bytes)
//!    4    magic "PRZ2"
//!    8    the first 8 bytes of the SHA-256 of the model's weights
//!    4    the first 4 bytes of the SHA-256 of the model's config
//!  4 x v  channels, height, width, levels (varints)
//!  4 x v  image count, images per chunk, length of the names section, length of the payload (varints)
//!         names section: as version 1
//!         payload: per chunk, its length in bytes (varint) + the stream's u32 words
//!    4    the first 4 bytes of the SHA-256 of every byte before it
//! ```
//!
//! The model is named by 96 bits of its digests rather than 512: enough to tell the models a
//! user has apart (a wrong model is refused before decoding), not a defence against a forger,
//! which the 32-bit file check is not either (nor is version 1's, whose digests anyone can
//! compute). Every size is checked against the file before anything is allocated, as for
//! version 1.

use sha2::{Digest, Sha256};

use super::codec_error;
use super::format::{Header, COMPACT_VERSION, CONFIG_DIGEST_BYTES, MAX_CHUNK, MAX_IMAGES, WEIGHTS_DIGEST_BYTES};
use crate::error::Result;
use crate::image_spec::ImageSpec;

/// The first 4 bytes of a compact file.
pub const COMPACT_MAGIC: &[u8; 4] = b"PRZ2";
/// Bytes of the file's check.
const CHECK_BYTES: usize = 4;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - v.max(1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint at the start of `bytes`, advancing it.
fn take_varint(bytes: &mut &[u8], what: &str) -> Result<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) =
            bytes.split_first().ok_or_else(|| codec_error(format!("truncated: the file ends in its {what}")))?;
        *bytes = rest;
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return Err(codec_error(format!("its {what} does not fit 64 bits")));
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(codec_error(format!("its {what} does not fit 64 bits")))
}

/// The header's bytes up to the names section.
fn header_bytes(weights: &[u8], config: &[u8], image: ImageSpec, sizes: [u64; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(COMPACT_MAGIC);
    out.extend_from_slice(&weights[..WEIGHTS_DIGEST_BYTES]);
    out.extend_from_slice(&config[..CONFIG_DIGEST_BYTES]);
    for v in [image.channels, image.height, image.width, image.levels] {
        put_varint(&mut out, v as u64);
    }
    for v in sizes {
        put_varint(&mut out, v);
    }
    out
}

/// The bytes of a compact file of `count` images in chunks of `chunk`, with a names section of
/// `names_len` bytes and chunk streams of `streams` bytes each: what [`compact`] writes.
pub fn compact_len(image: ImageSpec, count: u64, chunk: u32, names_len: usize, streams: &[usize]) -> usize {
    let payload: usize = streams.iter().map(|&s| varint_len(s as u64) + s).sum();
    let sizes = [count, chunk as u64, names_len as u64, payload as u64];
    header_bytes(&[0; 32], &[0; 32], image, sizes).len() + names_len + payload + CHECK_BYTES
}

/// A version-1 file (what [`super::encode`] writes) in the compact container: the same
/// names and streams, so it decodes to the same images.
pub fn compact(file: &[u8]) -> Result<Vec<u8>> {
    let header = Header::parse(file)?;
    if header.version != super::format::VERSION {
        return Err(codec_error("already compact"));
    }
    let names = &file[header.body_start..header.body_start + header.names_len as usize];
    let mut payload_in = &file[header.body_start + header.names_len as usize..];
    let mut payload = Vec::with_capacity(payload_in.len());
    while !payload_in.is_empty() {
        let len = take_chunk_len(&mut payload_in, header.version)?;
        put_varint(&mut payload, len as u64);
        payload.extend_from_slice(&payload_in[..len]);
        payload_in = &payload_in[len..];
    }
    let sizes = [header.count, header.chunk as u64, names.len() as u64, payload.len() as u64];
    let mut out = header_bytes(&header.weights_sha256, &header.config_sha256, header.image, sizes);
    out.extend_from_slice(names);
    out.extend_from_slice(&payload);
    let check = Sha256::digest(&out);
    out.extend_from_slice(&check[..CHECK_BYTES]);
    Ok(out)
}

/// Whether `bytes` start like a compact file.
pub fn is_compact(bytes: &[u8]) -> bool {
    bytes.starts_with(COMPACT_MAGIC)
}

/// Reads and checks a compact file's header: its check over the whole file, then sizes that
/// fit the file exactly. The digests it does not keep are zeros in the [`Header`].
pub fn parse(bytes: &[u8]) -> Result<Header> {
    let fixed = COMPACT_MAGIC.len() + WEIGHTS_DIGEST_BYTES + CONFIG_DIGEST_BYTES;
    if bytes.len() < fixed + 8 + CHECK_BYTES {
        return Err(codec_error(format!(
            "truncated: {} bytes, a compact .prnn file has at least {}",
            bytes.len(),
            fixed + 8 + CHECK_BYTES
        )));
    }
    let (content, check) = bytes.split_at(bytes.len() - CHECK_BYTES);
    if Sha256::digest(content)[..CHECK_BYTES] != *check {
        return Err(codec_error("corrupt or truncated (its checksum does not match)"));
    }
    let mut weights_sha256 = [0u8; 32];
    let mut config_sha256 = [0u8; 32];
    weights_sha256[..WEIGHTS_DIGEST_BYTES].copy_from_slice(&content[4..4 + WEIGHTS_DIGEST_BYTES]);
    config_sha256[..CONFIG_DIGEST_BYTES].copy_from_slice(&content[4 + WEIGHTS_DIGEST_BYTES..fixed]);
    let mut rest = &content[fixed..];
    let mut field = |what: &str| take_varint(&mut rest, what);
    let small = |v: u64, what: &str| {
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= u32::MAX as usize)
            .ok_or_else(|| codec_error(format!("its {what} {v} is out of range")))
    };
    let image = ImageSpec {
        channels: small(field("channel count")?, "channel count")?,
        height: small(field("height")?, "height")?,
        width: small(field("width")?, "width")?,
        levels: small(field("levels")?, "levels")?,
    };
    let (count, chunk) = (field("image count")?, field("chunk size")?);
    let (names_len, payload_len) = (field("names length")?, field("payload length")?);
    image.validate().map_err(|e| codec_error(format!("header describes unusable images: {e}")))?;
    if count == 0 || count > MAX_IMAGES || chunk == 0 || chunk > MAX_CHUNK as u64 {
        return Err(codec_error(format!(
            "header says {count} images in chunks of {chunk} (files hold 1 to {MAX_IMAGES} images, chunks 1 to {MAX_CHUNK})"
        )));
    }
    // Each chunk has a length of a byte or more, each stored name 2 bytes or more.
    if (names_len > 0 && count > names_len / 2) || count.div_ceil(chunk) > payload_len {
        return Err(codec_error(format!(
            "header says {count} images, more than its {names_len} + {payload_len} bytes of names and payload can hold"
        )));
    }
    let body_start = content.len() - rest.len();
    let body = names_len.checked_add(payload_len).ok_or_else(|| codec_error("header sizes overflow"))?;
    if rest.len() as u64 != body {
        return Err(codec_error(format!("its names and payload are {} bytes, the header says {body}", rest.len())));
    }
    Ok(Header {
        version: COMPACT_VERSION,
        weights_sha256,
        config_sha256,
        image,
        count,
        chunk: chunk as u32,
        names_len,
        payload_len,
        body_sha256: [0; 32],
        body_start,
    })
}

/// The length of the next chunk's stream at the start of `payload` (advancing past the length
/// field) for a file of `version`; checked against what is left.
pub fn take_chunk_len(payload: &mut &[u8], version: u32) -> Result<usize> {
    let len = if version == COMPACT_VERSION {
        take_varint(payload, "chunk length")?
    } else {
        let field = payload.get(..8).ok_or_else(|| codec_error("payload ends before its last chunk"))?;
        *payload = &payload[8..];
        u64::from_le_bytes(field.try_into().expect("8 bytes"))
    };
    usize::try_from(len)
        .ok()
        .filter(|l| l % 4 == 0 && *l <= payload.len())
        .ok_or_else(|| codec_error("a chunk's length does not fit the payload"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_what_does_not_fit() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut bytes = &out[..];
            assert_eq!(take_varint(&mut bytes, "value").unwrap(), v);
            assert!(bytes.is_empty());
        }
        let mut too_long = &[0xffu8; 11][..];
        assert!(take_varint(&mut too_long, "value").unwrap_err().to_string().contains("64 bits"));
        let mut cut = &[0x80u8][..];
        assert!(take_varint(&mut cut, "value").unwrap_err().to_string().contains("truncated"));
    }
}
