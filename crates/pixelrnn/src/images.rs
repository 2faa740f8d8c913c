//! Reading a user's PNG for a model, and writing sample grids and NLL heatmaps as PNG.

use std::path::Path;

use crate::error::{Error, Result};
use crate::image_spec::ImageSpec;
use crate::png::{decode_png, encode_png};

/// A PNG's planar 8-bit pixels (`bytes`, from `path`), which must have the size and channel
/// count of `spec`. A header that claims another size is refused
/// before anything is decoded (or allocated).
///
/// `lenient` (reading an image to score or complete, not to compress): an opaque alpha channel
/// is dropped, and an RGB image whose three channels are equal is read as grey for a grey model.
fn pixels_of_size(path: &Path, bytes: &[u8], spec: &ImageSpec, lenient: bool) -> Result<Vec<u8>> {
    let kind = if spec.channels == 3 { "RGB" } else { "greyscale" };
    if let Some((width, height)) = crate::png::header_size(bytes).filter(|&s| s != (spec.width, spec.height)) {
        return Err(Error::dataset(
            path,
            format!("the PNG is {width}x{height}; the model expects a {}x{} {kind} PNG", spec.width, spec.height),
        ));
    }
    let (mut channels, height, width, mut pixels) =
        if lenient { crate::png::decode_png_opaque(bytes, path)? } else { decode_png(bytes, path)? };
    let plane = height * width;
    if lenient
        && channels == 3
        && spec.channels == 1
        && (0..plane).all(|i| pixels[i] == pixels[plane + i] && pixels[i] == pixels[2 * plane + i])
    {
        pixels.truncate(plane);
        channels = 1;
    }
    if (height, width) != (spec.height, spec.width) || channels != spec.channels {
        return Err(Error::dataset(
            path,
            format!(
                "{width}x{height} with {channels} channel(s); the model expects a {}x{} {kind} PNG",
                spec.width, spec.height
            ),
        ));
    }
    Ok(pixels)
}

/// Reads a PNG as raw values for a model of `spec`: the size and channel count must match;
/// for binary models a grey PNG is thresholded at 128 (>= 128 -> 1).
pub fn read_png_for(path: &Path, spec: &ImageSpec) -> Result<Vec<u8>> {
    png_for(&crate::fsio::read_file(path)?, path, spec)
}

/// [`read_png_for`] of a PNG's `bytes` (an upload), named `name` in errors.
pub fn png_for(bytes: &[u8], name: &Path, spec: &ImageSpec) -> Result<Vec<u8>> {
    let pixels = pixels_of_size(name, bytes, spec, true)?;
    Ok(if spec.is_binary() { pixels.into_iter().map(|v| (v >= 128) as u8).collect() } else { pixels })
}

/// Reads a PNG as raw values for a model of `spec` without losing anything: the size and
/// channel count must match, and for binary models every pixel must be 0 or 255 (black or
/// white), which read as 0 and 1. What lossless compression takes.
/// A 16-bit or animated PNG is refused: its 8-bit pixels would not be the whole image.
pub fn read_png_exact(path: &Path, spec: &ImageSpec) -> Result<Vec<u8>> {
    let bytes = crate::fsio::read_file(path)?;
    if let Some(reason) = crate::png::not_exact_in_8_bits(&bytes, path)? {
        return Err(Error::dataset(path, format!("{reason}: it cannot be coded losslessly")));
    }
    let pixels = pixels_of_size(path, &bytes, spec, false)?;
    if spec.is_binary() {
        if let Some(v) = pixels.iter().find(|&&v| v != 0 && v != 255) {
            return Err(Error::dataset(
                path,
                format!("grey value {v}: a binary model codes black-and-white images only (values 0 and 255)"),
            ));
        }
        return Ok(pixels.into_iter().map(|v| (v == 255) as u8).collect());
    }
    if spec.levels != 256 {
        return Err(Error::dataset(path, format!("8-bit PNG for a model of {} levels", spec.levels)));
    }
    Ok(pixels)
}

/// Display value (0-255) of a raw sub-pixel value.
fn display(spec: &ImageSpec, v: u8) -> u8 {
    if spec.is_binary() {
        v * 255
    } else {
        ((v as usize * 255) / (spec.levels - 1)) as u8
    }
}

/// One cell of a grid: an image (raw values, planar) or a blank.
pub enum Cell<'a> {
    /// An image with, optionally, the rows from `hidden_from` on greyed out (occluded).
    Image {
        /// Raw values `[channels][height][width]`.
        pixels: &'a [u8],
        /// Rows from here on are drawn as occluded.
        hidden_from: Option<usize>,
    },
}

/// A PNG grid of `rows` of cells, each image upscaled by `scale`, 2-pixel white gaps.
/// The bytes a grid of `rows` x `columns` images at `scale` takes while it is made (its pixels
/// and their PNG copies, about three times the pixels), saturating: what is checked against the
/// memory available before minutes of sampling are spent on a grid that cannot be made.
pub fn grid_bytes(spec: &ImageSpec, rows: usize, columns: usize, scale: usize) -> u64 {
    let gap = 2u64;
    let cell = |n: usize| (n as u64).saturating_mul(scale as u64).saturating_add(gap);
    let height = (rows.max(1) as u64).saturating_mul(cell(spec.height)).saturating_add(gap);
    let width = (columns.max(1) as u64).saturating_mul(cell(spec.width)).saturating_add(gap);
    height.saturating_mul(width).saturating_mul(spec.channels as u64).saturating_mul(3)
}

/// A grid of images as one PNG (see [`grid_bytes`] for its memory).
pub fn grid_png(spec: &ImageSpec, rows: &[Vec<Cell>], scale: usize) -> Vec<u8> {
    let (h, w, c) = (spec.height * scale, spec.width * scale, spec.channels);
    let gap = 2;
    let columns = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let (gh, gw) = (rows.len().max(1) * (h + gap) + gap, columns * (w + gap) + gap);
    let mut planar = vec![255u8; c * gh * gw];
    for (ri, row) in rows.iter().enumerate() {
        for (ci, Cell::Image { pixels, hidden_from }) in row.iter().enumerate() {
            let (y0, x0) = (gap + ri * (h + gap), gap + ci * (w + gap));
            for y in 0..h {
                for x in 0..w {
                    let (sy, sx) = (y / scale, x / scale);
                    let hidden = hidden_from.is_some_and(|k| sy >= k);
                    for ch in 0..c {
                        let v =
                            if hidden { 128 } else { display(spec, pixels[(ch * spec.height + sy) * spec.width + sx]) };
                        planar[(ch * gh + y0 + y) * gw + x0 + x] = v;
                    }
                }
            }
        }
    }
    encode_png(c, gh, gw, &planar)
}

/// Raw values as the 8-bit values a PNG of them holds (binary 0/1 as 0/255).
pub fn display_values(spec: &ImageSpec, pixels: &[u8]) -> Vec<u8> {
    pixels.iter().map(|&v| display(spec, v)).collect()
}

/// One image as a PNG at its own size.
pub fn image_png(spec: &ImageSpec, pixels: &[u8]) -> Vec<u8> {
    encode_png(spec.channels, spec.height, spec.width, &display_values(spec, pixels))
}

/// A heatmap of per-pixel values (`[height][width]`), black (lowest) -> red -> yellow -> white
/// (highest), upscaled by `scale`.
pub fn heatmap_png(values: &[f64], height: usize, width: usize, scale: usize) -> Vec<u8> {
    let max = values.iter().cloned().fold(0.0f64, f64::max).max(1e-12);
    let (gh, gw) = (height * scale, width * scale);
    let mut planar = vec![0u8; 3 * gh * gw];
    for y in 0..gh {
        for x in 0..gw {
            let t = (values[(y / scale) * width + x / scale] / max).clamp(0.0, 1.0);
            let rgb = [(t * 3.0).min(1.0), (t * 3.0 - 1.0).clamp(0.0, 1.0), (t * 3.0 - 2.0).clamp(0.0, 1.0)];
            for (ch, v) in rgb.iter().enumerate() {
                planar[(ch * gh + y) * gw + x] = (v * 255.0).round() as u8;
            }
        }
    }
    encode_png(3, gh, gw, &planar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_user_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        std::fs::write(&p, encode_png(1, 2, 2, &[0, 127, 128, 255])).unwrap();
        let binary = ImageSpec { channels: 1, height: 2, width: 2, levels: 2 };
        assert_eq!(read_png_for(&p, &binary).unwrap(), vec![0, 0, 1, 1]);
        let rgb = ImageSpec { channels: 3, height: 2, width: 2, levels: 256 };
        let err = read_png_for(&p, &rgb).unwrap_err().to_string();
        assert!(err.contains("a.png") && err.contains("expects a 2x2 RGB PNG"), "{err}");
        let big = ImageSpec { channels: 1, height: 28, width: 28, levels: 2 };
        assert!(read_png_for(&p, &big).unwrap_err().to_string().contains("28x28"));
        std::fs::write(&p, b"junk").unwrap();
        assert!(read_png_for(&p, &binary).unwrap_err().to_string().contains("unreadable PNG"));
    }

    /// A 2x2 RGBA PNG (what a browser's canvas makes) of interleaved `rgba` pixels.
    fn rgba_png(rgba: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, 2, 2);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header().unwrap().write_image_data(rgba).unwrap();
        out
    }

    #[test]
    fn an_opaque_alpha_channel_is_read_for_scoring_but_never_for_compression() {
        let grey = |v: u8| [v, v, v, 255];
        let opaque: Vec<u8> = [0, 200, 90, 255].into_iter().flat_map(grey).collect();
        let binary = ImageSpec { channels: 1, height: 2, width: 2, levels: 2 };
        let rgb = ImageSpec { channels: 3, height: 2, width: 2, levels: 256 };
        let name = Path::new("drawn.png");
        // Equal channels read as grey for a grey model; as RGB for an RGB one.
        assert_eq!(png_for(&rgba_png(&opaque), name, &binary).unwrap(), vec![0, 1, 0, 1]);
        assert_eq!(png_for(&rgba_png(&opaque), name, &rgb).unwrap().len(), 12);
        // A transparent pixel, or colour for a grey model, is refused.
        let mut transparent = opaque.clone();
        transparent[7] = 254;
        let err = png_for(&rgba_png(&transparent), name, &binary).unwrap_err().to_string();
        assert!(err.contains("drawn.png") && err.contains("transparent"), "{err}");
        let mut colour = opaque.clone();
        colour[0] = 9;
        assert!(png_for(&rgba_png(&colour), name, &binary).unwrap_err().to_string().contains("greyscale"));
        // Compression takes the file exactly as it is: no alpha dropped.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("drawn.png");
        std::fs::write(&p, rgba_png(&opaque)).unwrap();
        assert!(read_png_exact(&p, &rgb).unwrap_err().to_string().contains("Rgba"));
    }

    /// A 2x2 greyscale PNG of `depth`, with `frames` frames when animated (`frames > 1`).
    fn png_of(depth: png::BitDepth, frames: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, 2, 2);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(depth);
        if frames > 1 {
            encoder.set_animated(frames, 0).unwrap();
        }
        let mut writer = encoder.write_header().unwrap();
        let bytes_per_frame = if depth == png::BitDepth::Sixteen { 8 } else { 4 };
        for frame in 0..frames.max(1) {
            let data: Vec<u8> =
                (0..bytes_per_frame).map(|i| (i as u8).wrapping_mul(61).wrapping_add(frame as u8)).collect();
            writer.write_image_data(&data).unwrap();
        }
        writer.finish().unwrap();
        out
    }

    #[test]
    fn lossless_reading_refuses_what_8_bits_cannot_return_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deep.png");
        let grey = ImageSpec { channels: 1, height: 2, width: 2, levels: 256 };
        std::fs::write(&p, png_of(png::BitDepth::Sixteen, 1)).unwrap();
        let err = read_png_exact(&p, &grey).unwrap_err().to_string();
        assert!(err.contains("deep.png") && err.contains("16-bit"), "{err}");
        assert!(read_png_for(&p, &grey).is_ok(), "completion may read it in 8 bits");
        std::fs::write(&p, png_of(png::BitDepth::Eight, 3)).unwrap();
        let err = read_png_exact(&p, &grey).unwrap_err().to_string();
        assert!(err.contains("animated") && err.contains("3 frames"), "{err}");
        std::fs::write(&p, png_of(png::BitDepth::Eight, 1)).unwrap();
        assert_eq!(read_png_exact(&p, &grey).unwrap(), vec![0, 61, 122, 183]);
    }

    #[test]
    fn the_grid_estimate_covers_the_grid_and_saturates() {
        let spec = ImageSpec { channels: 3, height: 32, width: 32, levels: 256 };
        let rows: Vec<Vec<Cell>> = Vec::new();
        let png = grid_png(&spec, &rows, 1);
        assert!(!png.is_empty());
        // 2 x 3 cells at scale 2: (2 * 66 + 2) x (3 * 66 + 2) pixels, 3 channels, 3 copies.
        assert_eq!(grid_bytes(&spec, 2, 3, 2), 134 * 200 * 3 * 3);
        assert_eq!(grid_bytes(&spec, usize::MAX, usize::MAX, usize::MAX), u64::MAX);
    }

    #[test]
    fn grid_has_the_expected_size_and_occlusion() {
        let spec = ImageSpec { channels: 1, height: 2, width: 3, levels: 2 };
        let img = [1u8, 1, 1, 0, 0, 0];
        let rows = vec![vec![
            Cell::Image { pixels: &img, hidden_from: Some(1) },
            Cell::Image { pixels: &img, hidden_from: None },
        ]];
        let png = grid_png(&spec, &rows, 2);
        let (c, h, w, px) = decode_png(&png, Path::new("grid")).unwrap();
        assert_eq!((c, h, w), (1, 2 + 4 + 2, 2 + 2 * (6 + 2)));
        assert_eq!(px[2 * w + 2], 255); // top row of the first image: white (value 1)
        assert_eq!(px[(2 + 2) * w + 2], 128); // occluded second row
        assert_eq!(px[(2 + 2) * w + 2 + 8], 0); // second image keeps its black row
    }
}
