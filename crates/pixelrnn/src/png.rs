//! The PNG codec every part of the crate uses (datasets of PNGs, a user's image, sample grids,
//! heatmaps): 8-bit greyscale or RGB, planar `[channels, height, width]` pixels in memory.

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, Result};

/// Decodes one PNG to `(channels, height, width, planar pixels [channels, height, width])`.
pub fn decode_png(bytes: &[u8], name: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bad = |e: &dyn std::fmt::Display| Error::dataset(name, format!("unreadable PNG: {e}"));
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
    let size = reader.output_buffer_size().ok_or_else(|| bad(&"image too large"))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        other => {
            return Err(Error::dataset(name, format!("colour type {other:?}: expected greyscale or RGB without alpha")))
        }
    };
    let interleaved = &buf[..w * h * channels];
    let mut planar = vec![0u8; w * h * channels];
    for (i, px) in interleaved.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            planar[c * w * h + i] = v;
        }
    }
    Ok((channels, h, w, planar))
}

/// Encodes planar 8-bit pixels `[channels, height, width]` (1 or 3 channels) as PNG bytes.
pub fn encode_png(channels: usize, height: usize, width: usize, planar: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
        encoder.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header to a Vec");
        let mut interleaved = vec![0u8; planar.len()];
        for i in 0..width * height {
            for c in 0..channels {
                interleaved[i * channels + c] = planar[c * width * height + i];
            }
        }
        writer.write_image_data(&interleaved).expect("PNG data to a Vec");
    }
    out
}
