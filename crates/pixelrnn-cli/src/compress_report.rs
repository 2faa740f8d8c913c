//! `pixelrnn compress --report`: the `.prnn` file against PNG, WebP lossless and JPEG XL
//! lossless on the same images, two ways:
//! - **per image**, one file each: every image as its own PNG / WebP / JPEG XL file, and (with
//!   `--chunk 1`, where each image's range-coder stream is exactly its own file's) as its own
//!   `.prnn` file; how many images each codec makes the smallest file of;
//! - **as a batch**: the whole `.prnn` file against one PNG / WebP / JPEG XL image holding all
//!   the images tiled edge to edge (a mosaic; the cells past the last image are black).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use pixelrnn::codec::format::HEADER_LEN;
use pixelrnn::codec::single_image_file_len;
use pixelrnn::codec::ImageCost;
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::images::display_values;
use pixelrnn::png::{encode_png, encode_png_smallest};
use serde_json::json;

/// An external lossless encoder: its name and how to run it on `input` into `output`.
struct External {
    name: &'static str,
    program: &'static str,
    args: fn(&Path, &Path) -> Vec<String>,
}

const EXTERNAL: [External; 2] = [
    External {
        name: "webp",
        program: "cwebp",
        args: |i, o| {
            ["-lossless", "-z", "9", "-quiet", &i.display().to_string(), "-o", &o.display().to_string()]
                .map(String::from)
                .to_vec()
        },
    },
    External {
        name: "jxl",
        program: "cjxl",
        args: |i, o| {
            [&i.display().to_string(), &o.display().to_string(), "-d", "0", "-e", "9", "--quiet"]
                .map(String::from)
                .to_vec()
        },
    },
];

fn installed(program: &str) -> bool {
    run_bounded(Command::new(program).arg("-h"), EXTERNAL_TIMEOUT).is_ok()
}

/// How long an external encoder may take for one image (or its `-h`).
const EXTERNAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long an external encoder may take for the mosaic of `count` images: a minute, and a
/// tenth of a second more per image.
fn mosaic_timeout(count: usize) -> std::time::Duration {
    EXTERNAL_TIMEOUT + std::time::Duration::from_millis(100 * count as u64)
}

/// Runs `command` to its end, or kills it after `limit`: an encoder that hangs never hangs
/// the report. Its stdout is discarded (the encoders write to files); stderr is returned.
fn run_bounded(command: &mut Command, limit: std::time::Duration) -> anyhow::Result<(bool, String)> {
    use std::io::Read;
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("did not finish within {} s; stopped", limit.as_secs());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    Ok((status.success(), stderr))
}

/// Bytes `encoder` makes of one PNG, within `limit`.
fn external_size(encoder: &External, png: &Path, dir: &Path, limit: std::time::Duration) -> anyhow::Result<u64> {
    let out = dir.join(format!("out.{}", encoder.name));
    let (ok, stderr) = run_bounded(Command::new(encoder.program).args((encoder.args)(png, &out)), limit)
        .with_context(|| format!("the external encoder {}", encoder.program))?;
    if !ok {
        bail!("{} failed: {}", encoder.program, stderr.trim());
    }
    Ok(std::fs::metadata(&out)?.len())
}

/// The images (`[count][channels][height][width]`, display values) tiled edge to edge into one
/// image of `columns` = ceil(sqrt(count)) columns and as many rows as needed, the cells past the
/// last image black: `(planar [channels][rows * height][columns * width], height, width)`.
pub fn mosaic(spec: &ImageSpec, display: &[u8], count: usize) -> (Vec<u8>, usize, usize) {
    let columns = (count as f64).sqrt().ceil().max(1.0) as usize;
    let rows = count.div_ceil(columns).max(1);
    let (h, w, c) = (spec.height, spec.width, spec.channels);
    let (gh, gw) = (rows * h, columns * w);
    let mut planar = vec![0u8; c * gh * gw];
    for (i, image) in display.chunks(spec.dims()).take(count).enumerate() {
        let (y0, x0) = ((i / columns) * h, (i % columns) * w);
        for ch in 0..c {
            for y in 0..h {
                let from = (ch * h + y) * w;
                let to = (ch * gh + y0 + y) * gw + x0;
                planar[to..to + w].copy_from_slice(&image[from..from + w]);
            }
        }
    }
    (planar, gh, gw)
}

/// What `compress` made of the images.
pub struct Coded<'a> {
    /// Per image.
    pub costs: &'a [ImageCost],
    /// The file's bytes.
    pub file_bytes: usize,
    /// Each image's range-coder stream when every image was coded alone (`--chunk 1`), which
    /// gives each image's own `.prnn` file size.
    pub own_streams: Option<&'a [usize]>,
    /// Whether the files are in the compact container.
    pub compact: bool,
}

/// Prints the report (a table, or one JSON object with `as_json`).
pub fn report(spec: &ImageSpec, images: &[u8], names: &[String], coded: &Coded, as_json: bool) -> anyhow::Result<()> {
    let Coded { costs, file_bytes, own_streams, compact } = *coded;
    let dims = spec.dims() as f64;
    let count = names.len();
    // Which external encoders are installed (one probe each), and each one's total bytes.
    let present: Vec<bool> = EXTERNAL.iter().map(|e| installed(e.program)).collect();
    let found: Vec<&External> = EXTERNAL.iter().zip(&present).filter(|(_, &p)| p).map(|(e, _)| e).collect();
    let mut external_totals = [0u64; EXTERNAL.len()];
    let mut png_total = 0u64;
    let mut prnn_total = 0u64;
    let mut prnn_smallest = 0usize;
    let scratch = tempfile::tempdir().context("a scratch folder for the external encoders")?;
    let input = scratch.path().join("in.png");
    let mut rows = Vec::with_capacity(count);
    let display = display_values(spec, images);
    for (i, ((name, pixels), cost)) in names.iter().zip(display.chunks(spec.dims())).zip(costs).enumerate() {
        let smallest = encode_png_smallest(spec.channels, spec.height, spec.width, pixels).len() as u64;
        png_total += smallest;
        std::fs::write(&input, encode_png(spec.channels, spec.height, spec.width, pixels))
            .with_context(|| format!("writing {}", input.display()))?;
        let mut row = json!({
            "name": name,
            "nll_bits_per_dim": cost.nll_bits / dims,
            "coded_bits_per_dim": cost.coded_bits / dims,
            "overhead": cost.coded_bits / cost.nll_bits - 1.0,
            "png_bytes": smallest,
        });
        let mut others = vec![smallest];
        for (k, encoder) in EXTERNAL.iter().enumerate().filter(|(k, _)| present[*k]) {
            let size = external_size(encoder, &input, scratch.path(), EXTERNAL_TIMEOUT)?;
            external_totals[k] += size;
            others.push(size);
            row[format!("{}_bytes", encoder.name)] = size.into();
        }
        if let Some(streams) = own_streams {
            let own = single_image_file_len(*spec, streams[i], compact) as u64;
            prnn_total += own;
            prnn_smallest += usize::from(others.iter().all(|&o| own < o));
            row["prnn_bytes"] = own.into();
        }
        rows.push(row);
    }
    // The batch: all images as one file of each codec.
    let (planar, gh, gw) = mosaic(spec, &display, count);
    let mut batch = json!({
        "prnn_bytes": file_bytes,
        "png_bytes": encode_png_smallest(spec.channels, gh, gw, &planar).len(),
        "mosaic_height": gh,
        "mosaic_width": gw,
    });
    std::fs::write(&input, encode_png(spec.channels, gh, gw, &planar))
        .with_context(|| format!("writing {}", input.display()))?;
    for encoder in &found {
        batch[format!("{}_bytes", encoder.name)] =
            external_size(encoder, &input, scratch.path(), mosaic_timeout(count))?.into();
    }
    let total_dims = dims * count as f64;
    let nll: f64 = costs.iter().map(|c| c.nll_bits).sum();
    let coded: f64 = costs.iter().map(|c| c.coded_bits).sum();
    let mut per_image_files = json!({ "png_bytes": png_total });
    if own_streams.is_some() {
        per_image_files["prnn_bytes"] = prnn_total.into();
        per_image_files["prnn_smallest_images"] = prnn_smallest.into();
        per_image_files["prnn_container"] = if compact { "compact" } else { "version 1" }.into();
    }
    let mut summary = json!({
        "images": count,
        "bytes": file_bytes,
        "nll_bits_per_dim": nll / total_dims,
        "coded_bits_per_dim": coded / total_dims,
        "file_bits_per_dim": file_bytes as f64 * 8.0 / total_dims,
        "overhead": file_bytes as f64 * 8.0 / nll - 1.0,
        "png_bytes": png_total,
        "encoders_found": found.iter().map(|e| e.program).collect::<Vec<_>>(),
        "encoders_missing": EXTERNAL.iter().zip(&present).filter(|(_, &p)| !p).map(|(e, _)| e.program).collect::<Vec<_>>(),
        "per_image": rows,
    });
    for (k, encoder) in EXTERNAL.iter().enumerate().filter(|(k, _)| present[*k]) {
        summary[format!("{}_bytes", encoder.name)] = external_totals[k].into();
        per_image_files[format!("{}_bytes", encoder.name)] = external_totals[k].into();
    }
    summary["per_image_files"] = per_image_files;
    summary["batch"] = batch;
    if as_json {
        println!("{summary}");
        return Ok(());
    }
    print_table(&summary, dims, total_dims, nll, file_bytes, &present);
    Ok(())
}

/// The report as text.
fn print_table(summary: &serde_json::Value, dims: f64, total_dims: f64, nll: f64, file_bytes: usize, present: &[bool]) {
    let bpd = |bytes: u64| bytes as f64 * 8.0 / total_dims;
    println!("{:<24} {:>10} {:>10} {:>9} {:>10}", "image", "NLL b/d", "coded b/d", "overhead", "PNG b/d");
    for row in summary["per_image"].as_array().expect("rows") {
        println!(
            "{:<24} {:>10.4} {:>10.4} {:>8.2}% {:>10.4}",
            row["name"].as_str().unwrap_or(""),
            row["nll_bits_per_dim"].as_f64().unwrap_or(0.0),
            row["coded_bits_per_dim"].as_f64().unwrap_or(0.0),
            row["overhead"].as_f64().unwrap_or(0.0) * 100.0,
            row["png_bytes"].as_u64().map_or(0.0, |b| b as f64 * 8.0 / dims),
        );
    }
    println!(
        "total: {} images, file {} bytes = {:.4} bits/dim (model NLL {:.4}, overhead {:.2}% incl. the {}-byte header)",
        summary["images"],
        file_bytes,
        bpd(file_bytes as u64),
        nll / total_dims,
        (file_bytes as f64 * 8.0 / nll - 1.0) * 100.0,
        HEADER_LEN
    );
    let files = &summary["per_image_files"];
    let batch = &summary["batch"];
    println!("one file per image:");
    if let Some(own) = files["prnn_bytes"].as_u64() {
        println!(
            "  .prnn: {own} bytes = {:.4} bits/dim; the smallest file of {} of the {} images",
            bpd(own),
            files["prnn_smallest_images"],
            summary["images"]
        );
    } else {
        println!("  .prnn: with --chunk 1 (each image coded alone)");
    }
    let png = files["png_bytes"].as_u64().unwrap_or(0);
    println!("  PNG (smallest): {png} bytes = {:.4} bits/dim", bpd(png));
    for (k, encoder) in EXTERNAL.iter().enumerate() {
        if present[k] {
            let t = files[format!("{}_bytes", encoder.name)].as_u64().unwrap_or(0);
            println!("  {} lossless ({}): {} bytes = {:.4} bits/dim", encoder.name, encoder.program, t, bpd(t));
        } else {
            println!("  {} lossless: {} not installed, not compared", encoder.name, encoder.program);
        }
    }
    println!("all images in one file (the others: one {}x{} mosaic):", batch["mosaic_width"], batch["mosaic_height"]);
    for key in ["prnn", "png", "webp", "jxl"] {
        if let Some(bytes) = batch[format!("{key}_bytes")].as_u64() {
            println!("  {key}: {bytes} bytes = {:.4} bits/dim", bpd(bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_tool_that_never_ends_is_stopped() {
        let started = std::time::Instant::now();
        let err = run_bounded(Command::new("sleep").arg("30"), std::time::Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let (ok, _) = run_bounded(&mut Command::new("true"), EXTERNAL_TIMEOUT).unwrap();
        assert!(ok);
    }

    #[test]
    fn the_mosaic_holds_every_image_edge_to_edge() {
        let spec = ImageSpec { channels: 2, height: 2, width: 3, levels: 256 };
        // Five images: 3 columns, 2 rows; image i's sub-pixels all i + 1 (channel 1: + 100).
        let display: Vec<u8> =
            (0..5u8).flat_map(|i| (0..2u8).flat_map(move |ch| std::iter::repeat_n(i + 1 + 100 * ch, 6))).collect();
        let (planar, h, w) = mosaic(&spec, &display, 5);
        assert_eq!((h, w), (4, 9));
        let at = |ch: usize, y: usize, x: usize| planar[(ch * h + y) * w + x];
        for i in 0..5 {
            let (y, x) = ((i / 3) * 2, (i % 3) * 3);
            assert_eq!((at(0, y, x), at(1, y + 1, x + 2)), (i as u8 + 1, i as u8 + 101), "image {i}");
        }
        assert_eq!((at(0, 3, 8), at(1, 2, 6)), (0, 0), "the cell past the last image is black");
    }
}
