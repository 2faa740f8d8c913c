//! The `.prnn` container (documented in `docs/prnn-format.md`): a fixed header that names the
//! model and the images, the images' names, and the range-coded payload, each part checked.
//!
//! ```text
//! offset  size  field (little-endian)
//!      0     8  magic "PIXRNNZ\0"
//!      8     4  format version (1)
//!     12    32  SHA-256 of the model's weights (see `weights_digest`)
//!     44    32  SHA-256 of the model's config (its JSON, as run directories store it)
//!     76    16  channels, height, width, levels (u32 each)
//!     92     8  image count
//!    100     4  images per chunk (each chunk is one range-coder stream)
//!    104     8  length of the names section in bytes
//!    112     8  length of the payload in bytes
//!    120    32  SHA-256 of the names section followed by the payload
//!    152     8  the first 8 bytes of the SHA-256 of bytes 0..152 (the header's own check)
//!    160        names: per image, u16 length + UTF-8 bytes (empty: the default names)
//!               payload: per chunk, u64 length in bytes + the stream's u32 words
//! ```

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use sha2::{Digest, Sha256};

use super::codec_error;
use crate::error::Result;
use crate::image_spec::ImageSpec;
use crate::models::{ModelConfig, PixelRnn};

/// The compact container's format version ([`super::compact`]).
pub const COMPACT_VERSION: u32 = 2;
/// Bytes of the weights' digest a compact file keeps.
pub const WEIGHTS_DIGEST_BYTES: usize = 8;
/// Bytes of the config's digest a compact file keeps.
pub const CONFIG_DIGEST_BYTES: usize = 4;

/// The first 8 bytes of every `.prnn` file.
pub const MAGIC: &[u8; 8] = b"PIXRNNZ\0";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 160;
/// The most images in one file (2^24).
pub const MAX_IMAGES: u64 = 1 << 24;
/// The most images per chunk (a chunk's images are decoded at once, each with its caches).
pub const MAX_CHUNK: u32 = 4096;
/// The longest image name stored.
const MAX_NAME: usize = u16::MAX as usize;

/// What the header says (of either container: version 1 here, version 2 in
/// [`super::compact`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The container's format version: 1 ([`VERSION`]) or 2 (compact).
    pub version: u32,
    /// SHA-256 of the weights that coded the file (version 2 keeps its first 8 bytes; the
    /// rest are zeros).
    pub weights_sha256: [u8; 32],
    /// SHA-256 of their model config (version 2 keeps its first 4 bytes).
    pub config_sha256: [u8; 32],
    /// The images' shape and levels.
    pub image: ImageSpec,
    /// Number of images.
    pub count: u64,
    /// Images per range-coder stream.
    pub chunk: u32,
    /// Length of the names section.
    pub names_len: u64,
    /// Length of the payload.
    pub payload_len: u64,
    /// SHA-256 of names + payload (version 1; version 2 checks the whole file instead).
    pub body_sha256: [u8; 32],
    /// Where the names section starts: [`HEADER_LEN`] in version 1.
    pub body_start: usize,
}

/// Hex of the first `n` bytes of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Header {
    /// The header's bytes (version 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        debug_assert_eq!(self.version, VERSION);
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.extend(VERSION.to_le_bytes());
        out.extend(self.weights_sha256);
        out.extend(self.config_sha256);
        for v in [self.image.channels, self.image.height, self.image.width, self.image.levels] {
            out.extend((v as u32).to_le_bytes());
        }
        out.extend(self.count.to_le_bytes());
        out.extend(self.chunk.to_le_bytes());
        out.extend(self.names_len.to_le_bytes());
        out.extend(self.payload_len.to_le_bytes());
        out.extend(self.body_sha256);
        let check = Sha256::digest(&out);
        out.extend_from_slice(&check[..8]);
        debug_assert_eq!(out.len(), HEADER_LEN);
        out
    }

    /// Reads and checks the header of a version 1 file `bytes` (a whole file): magic, version,
    /// the header's own checksum, sizes that fit the file, and the body's checksum.
    /// [`Header::parse`] reads either version.
    pub(super) fn parse_full(bytes: &[u8]) -> Result<Self> {
        let truncated = || codec_error(format!("truncated: {} bytes, a .prnn header has {HEADER_LEN}", bytes.len()));
        if !bytes[..bytes.len().min(8)].iter().eq(&MAGIC[..bytes.len().min(8)]) {
            return Err(codec_error("not a pixelrnn compressed file (bad magic number)"));
        }
        if bytes.len() < 12 {
            return Err(truncated());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(codec_error(format!("format version {version}, this build reads version {VERSION}")));
        }
        if bytes.len() < HEADER_LEN {
            return Err(truncated());
        }
        let check = Sha256::digest(&bytes[..152]);
        if check[..8] != bytes[152..160] {
            return Err(codec_error("corrupt header (its checksum does not match)"));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let digest_at = |at: usize| -> [u8; 32] { bytes[at..at + 32].try_into().expect("32 bytes") };
        let image = ImageSpec {
            channels: u32_at(76) as usize,
            height: u32_at(80) as usize,
            width: u32_at(84) as usize,
            levels: u32_at(88) as usize,
        };
        let header = Header {
            version: VERSION,
            weights_sha256: digest_at(12),
            config_sha256: digest_at(44),
            image,
            count: u64_at(92),
            chunk: u32_at(100),
            names_len: u64_at(104),
            payload_len: u64_at(112),
            body_sha256: digest_at(120),
            body_start: HEADER_LEN,
        };
        image.validate().map_err(|e| codec_error(format!("header describes unusable images: {e}")))?;
        if header.count == 0 || header.count > MAX_IMAGES || header.chunk == 0 || header.chunk > MAX_CHUNK {
            return Err(codec_error(format!(
                "header says {} images in chunks of {} (files hold 1 to {MAX_IMAGES} images, chunks 1 to {MAX_CHUNK})",
                header.count, header.chunk
            )));
        }
        // Sizes are checked against what the file can hold before anything is allocated: each
        // chunk has a length of 8 bytes, and each image (when names are stored) a name of 2
        // bytes or more.
        let chunks = header.count.div_ceil(header.chunk as u64);
        let named = header.names_len > 0;
        if (named && header.count > header.names_len / 2) || chunks > header.payload_len / 8 {
            return Err(codec_error(format!(
                "header says {} images, more than its {} + {} bytes of names and payload can hold",
                header.count, header.names_len, header.payload_len
            )));
        }
        let body = header
            .names_len
            .checked_add(header.payload_len)
            .and_then(|b| b.checked_add(HEADER_LEN as u64))
            .ok_or_else(|| codec_error("header sizes overflow"))?;
        if (bytes.len() as u64) < body {
            return Err(codec_error(format!("truncated: {} bytes, the header says {body}", bytes.len())));
        }
        if (bytes.len() as u64) > body {
            return Err(codec_error(format!("{} bytes after the end of the payload", bytes.len() as u64 - body)));
        }
        if Sha256::digest(&bytes[HEADER_LEN..]).as_slice() != header.body_sha256 {
            return Err(codec_error("corrupt payload (its checksum does not match)"));
        }
        Ok(header)
    }

    /// Whether `model` (with `config`) is the one the file was coded with; else an error that
    /// names the weights needed.
    pub fn check_model(&self, model: &PixelRnn, config: &ModelConfig) -> Result<()> {
        let (weights, config_sha) = (weights_digest(model), config_digest(config));
        let (w, c) = self.digest_bytes();
        if config_sha[..c] != self.config_sha256[..c] || weights[..w] != self.weights_sha256[..w] {
            let which = if weights[..w] == self.weights_sha256[..w] { "another model config" } else { "other weights" };
            return Err(codec_error(format!(
                "coded with {which}: this file needs the model whose weights have SHA-256 {} (config {}), the run given has {} (config {})",
                self.weights_hex(),
                &hex(&self.config_sha256[..c])[..(2 * c).min(16)],
                &hex(&weights)[..2 * w],
                &hex(&config_sha)[..(2 * c).min(16)]
            )));
        }
        if model.image() != self.image {
            return Err(codec_error(format!(
                "the file holds {} images, the model codes {}",
                self.image,
                model.image()
            )));
        }
        Ok(())
    }
}

impl Header {
    /// How many bytes of the weights' and the config's digests the file keeps.
    fn digest_bytes(&self) -> (usize, usize) {
        if self.version == COMPACT_VERSION {
            (WEIGHTS_DIGEST_BYTES, CONFIG_DIGEST_BYTES)
        } else {
            (32, 32)
        }
    }

    /// The weights' SHA-256 as the file keeps it, in hex (all of it, or its first 8 bytes in a
    /// compact file).
    pub fn weights_hex(&self) -> String {
        hex(&self.weights_sha256[..self.digest_bytes().0])
    }
}

/// The name of image `index` in a file that stores no names.
pub fn default_name(index: u64) -> String {
    format!("{index:05}.png")
}

/// The image names section: per name, its length (u16) and UTF-8 bytes; empty when every
/// name is the default one ([`default_name`]).
pub fn names_to_bytes(names: &[String]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if names.iter().enumerate().all(|(i, name)| *name == default_name(i as u64)) {
        return Ok(out);
    }
    for name in names {
        if name.len() > MAX_NAME {
            return Err(codec_error(format!("image name longer than {MAX_NAME} bytes")));
        }
        out.extend((name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    Ok(out)
}

/// Reads `count` names from the names section (the default names when it is empty).
pub fn names_from_bytes(bytes: &[u8], count: u64) -> Result<Vec<String>> {
    if bytes.is_empty() {
        return Ok((0..count).map(default_name).collect());
    }
    let mut names = Vec::new();
    let mut at = 0usize;
    for _ in 0..count {
        let len = bytes.get(at..at + 2).ok_or_else(|| codec_error("names section too short"))?;
        let len = u16::from_le_bytes(len.try_into().expect("2 bytes")) as usize;
        let name = bytes.get(at + 2..at + 2 + len).ok_or_else(|| codec_error("names section too short"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| codec_error("an image name is not UTF-8"))?;
        names.push(name);
        at += 2 + len;
    }
    if at != bytes.len() {
        return Err(codec_error("names section longer than its names"));
    }
    Ok(names)
}

/// SHA-256 of the model's weights: every parameter's f32 values, little-endian, in the
/// module's own visiting order (the same on every machine and for every checkpoint format).
pub fn weights_digest(model: &PixelRnn) -> [u8; 32] {
    struct Hasher(Sha256);
    impl ModuleVisitor for Hasher {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 parameters");
            for v in values {
                self.0.update(v.to_le_bytes());
            }
        }
    }
    let mut hasher = Hasher(Sha256::new());
    model.visit(&mut hasher);
    hasher.0.finalize().into()
}

/// SHA-256 of the model config's JSON (field order fixed by the type).
pub fn config_digest(config: &ModelConfig) -> [u8; 32] {
    Sha256::digest(serde_json::to_vec(config).expect("config serializes")).into()
}
