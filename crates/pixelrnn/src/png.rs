//! The PNG codec every part of the crate uses (datasets of PNGs, a user's image, sample grids,
//! heatmaps): 8-bit greyscale or RGB, planar `[channels, height, width]` pixels in memory.

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, Result};

/// The most bytes one decoded PNG may take (1 GiB).
pub const MAX_DECODED_BYTES: usize = 1 << 30;

/// The width and height a PNG's header (its IHDR chunk) claims, read without decoding
/// anything; `None` when the bytes do not start as a PNG does.
pub fn header_size(bytes: &[u8]) -> Option<(usize, usize)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    Some((word(16), word(20)))
}

/// Decodes one PNG to `(channels, height, width, planar pixels [channels, height, width])`.
pub fn decode_png(bytes: &[u8], name: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    decode(bytes, name, false)
}

/// [`decode_png`], also taking an alpha channel that is opaque everywhere (what browsers and
/// many editors write), which is dropped; a transparent pixel is refused.
pub fn decode_png_opaque(bytes: &[u8], name: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    decode(bytes, name, true)
}

fn decode(bytes: &[u8], name: &Path, opaque_alpha: bool) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bad = |e: &dyn std::fmt::Display| Error::dataset(name, format!("unreadable PNG: {e}"));
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
    let size = reader.output_buffer_size().ok_or_else(|| bad(&"image too large"))?;
    // Checked before the buffer is allocated: deflate expands at most 1032:1, so a header
    // claiming more pixels than the file's bytes can hold is corrupt (or a decompression bomb).
    let plausible = bytes.len().saturating_mul(1032).saturating_add(1 << 16).min(MAX_DECODED_BYTES);
    if size > plausible {
        return Err(bad(&format!(
            "the header claims {}x{} pixels ({size} bytes decoded), more than its {} bytes can hold",
            reader.info().width,
            reader.info().height,
            bytes.len()
        )));
    }
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let (channels, stored) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::GrayscaleAlpha if opaque_alpha => (1, 2),
        png::ColorType::Rgba if opaque_alpha => (3, 4),
        other => {
            return Err(Error::dataset(name, format!("colour type {other:?}: expected greyscale or RGB without alpha")))
        }
    };
    let interleaved = &buf[..w * h * stored];
    if stored > channels && interleaved.chunks_exact(stored).any(|px| px[channels] != 255) {
        return Err(Error::dataset(name, "transparent pixels: expected an opaque image"));
    }
    let mut planar = vec![0u8; w * h * channels];
    for (i, px) in interleaved.chunks_exact(stored).enumerate() {
        for (c, &v) in px[..channels].iter().enumerate() {
            planar[c * w * h + i] = v;
        }
    }
    Ok((channels, h, w, planar))
}

/// What 8-bit decoding ([`decode_png`]) cannot give back exactly: a 16-bit image (its low
/// bytes are dropped) or an animation (only its first frame is decoded), as a reason; `None`
/// when the decoded pixels are the whole image.
pub fn not_exact_in_8_bits(bytes: &[u8], name: &Path) -> Result<Option<String>> {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let reader = decoder.read_info().map_err(|e| Error::dataset(name, format!("unreadable PNG: {e}")))?;
    let info = reader.info();
    if info.bit_depth == png::BitDepth::Sixteen {
        return Ok(Some("a 16-bit PNG, which 8-bit models would return with its low bytes dropped".into()));
    }
    if let Some(animation) = info.animation_control {
        return Ok(Some(format!(
            "an animated PNG ({} frames), of which only the first would come back",
            animation.num_frames
        )));
    }
    Ok(None)
}

/// Planar pixels `[channels, height, width]` interleaved `[height, width, channels]`, as PNG
/// stores them.
fn interleaved(channels: usize, height: usize, width: usize, planar: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; planar.len()];
    for i in 0..width * height {
        for c in 0..channels {
            out[i * channels + c] = planar[c * width * height + i];
        }
    }
    out
}

/// Encodes planar 8-bit pixels `[channels, height, width]` (1 or 3 channels) as PNG bytes.
pub fn encode_png(channels: usize, height: usize, width: usize, planar: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
        encoder.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header to a Vec");
        writer.write_image_data(&interleaved(channels, height, width, planar)).expect("PNG data to a Vec");
    }
    out
}

/// The smallest PNG this encoder makes of planar 8-bit pixels (1 or 3 channels): the highest
/// compression setting, and 1 bit per pixel when every value is 0 or 255 (black and white).
/// What `pixelrnn compress --report` compares the model's code with.
pub fn encode_png_smallest(channels: usize, height: usize, width: usize, planar: &[u8]) -> Vec<u8> {
    let binary = channels == 1 && planar.iter().all(|&v| v == 0 || v == 255);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
        encoder.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
        encoder.set_compression(png::Compression::High);
        if binary {
            encoder.set_depth(png::BitDepth::One);
            let mut writer = encoder.write_header().expect("PNG header to a Vec");
            let row_bytes = width.div_ceil(8);
            let mut packed = vec![0u8; row_bytes * height];
            for (i, &v) in planar.iter().enumerate() {
                if v == 255 {
                    let (y, x) = (i / width, i % width);
                    packed[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
                }
            }
            writer.write_image_data(&packed).expect("PNG data to a Vec");
        } else {
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("PNG header to a Vec");
            writer.write_image_data(&interleaved(channels, height, width, planar)).expect("PNG data to a Vec");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_png_decodes_to_the_same_pixels() {
        let bw: Vec<u8> = (0..7 * 10).map(|i| if (i * 7) % 3 == 0 { 255 } else { 0 }).collect();
        let grey: Vec<u8> = (0..7 * 10).map(|i| (i * 37 % 256) as u8).collect();
        let rgb: Vec<u8> = (0..3 * 7 * 10).map(|i| (i * 11 % 256) as u8).collect();
        for (channels, pixels) in [(1, &bw), (1, &grey), (3, &rgb)] {
            let bytes = encode_png_smallest(channels, 7, 10, pixels);
            let (c, h, w, decoded) = decode_png(&bytes, Path::new("x.png")).unwrap();
            assert_eq!((c, h, w, &decoded), (channels, 7, 10, pixels));
        }
        assert!(encode_png_smallest(1, 7, 10, &bw).len() < encode_png(1, 7, 10, &bw).len());
    }
}
