//! `pixelrnn compress` / `decompress`: lossless coding of images with a trained run's model
//! (the library's `codec`; file format in docs/prnn-format.md), and the size report against
//! PNG, WebP lossless and JPEG XL lossless.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::codec::format::{hex, Header};
use pixelrnn::codec::{auto_chunk, decode, encode_labelled, ImageCost};
use pixelrnn::data::LoadOptions;
use pixelrnn::fsio::write_atomic;
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::images::{display_values, image_png, read_png_exact};
use pixelrnn::png::{encode_png, encode_png_smallest};
use pixelrnn::run::RunDir;
use serde_json::json;

use crate::cli::{CompressArgs, DecompressArgs};
use crate::data_cmd::fetch_and_load;
use crate::run_args::{check_output, load_run, publish_folder};

/// A bar over the sub-pixels of every chunk; the codec reports progress chunk by chunk.
fn chunk_bar(count: usize, chunk: usize, dims: usize, hidden: bool) -> (ProgressBar, impl FnMut(usize, usize)) {
    let total = (count.div_ceil(chunk) * dims) as u64;
    let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(ProgressStyle::with_template("{bar:30} {percent}% [{elapsed} < {eta}]").expect("valid template"));
    let handle = bar.clone();
    let mut chunks_done = 0u64;
    let progress = move |done: usize, total: usize| {
        handle.set_position(chunks_done * total as u64 + done as u64);
        if done == total {
            chunks_done += 1;
        }
    };
    (bar, progress)
}

/// The PNG files of `inputs`: files as given, folders by their `.png` files in name order.
fn png_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading the folder {}", input.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
                .collect();
            if found.is_empty() {
                bail!("{}: no .png files in this folder", input.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// The images to compress: `[count][channels][height][width]`, their names, and their class
/// labels (the dataset's, when it has them).
struct Gathered {
    images: Vec<u8>,
    names: Vec<String>,
    labels: Option<Vec<u8>>,
}

/// The images the command line names.
fn gather(
    args: &CompressArgs,
    spec: &ImageSpec,
    run: &pixelrnn::experiment::ExperimentConfig,
) -> anyhow::Result<Gathered> {
    if let Some(split) = args.split {
        let dir = crate::run_args::run_data_dir(run, args.data_dir.as_deref())?;
        let splits = fetch_and_load(
            run.data.dataset,
            &dir,
            &LoadOptions { valid_size: run.data.valid_size, mirror: None, no_verify: run.data.no_verify },
        )?;
        let split: pixelrnn::data::Split = split.into();
        let set = splits.get(split)?;
        let n = args.limit.map_or(set.len(), |l| l.min(set.len()));
        let images = (0..n).flat_map(|i| set.image(i).to_vec()).collect();
        // The default names (00000.png, ...), which the file does not store.
        let names = (0..n as u64).map(pixelrnn::codec::format::default_name).collect();
        return Ok(Gathered { images, names, labels: set.labels.as_ref().map(|l| l[..n].to_vec()) });
    }
    if args.inputs.is_empty() {
        bail!("nothing to compress: give PNG files or folders, or --split");
    }
    let files = png_files(&args.inputs)?;
    let mut names: Vec<String> = Vec::with_capacity(files.len());
    let mut images = Vec::with_capacity(files.len() * spec.dims());
    for file in &files {
        images.extend(read_png_exact(file, spec)?);
        // Names are stored as UTF-8: another name would come back as something else.
        let name = match file.file_name().map(|n| n.to_str()) {
            Some(Some(name)) => name.to_string(),
            _ => bail!("{}: the file name is not UTF-8, and the .prnn file stores names as UTF-8", file.display()),
        };
        if names.contains(&name) {
            bail!("two inputs are named {name}: the file keeps one name per image");
        }
        names.push(name);
    }
    Ok(Gathered { images, names, labels: None })
}

pub fn compress(args: CompressArgs) -> anyhow::Result<()> {
    let inputs = if args.split.is_none() { png_files(&args.inputs)? } else { Vec::new() };
    let named: Vec<(&std::path::Path, &str)> = inputs.iter().map(|p| (p.as_path(), "an input image")).collect();
    check_output(&args.output, &args.run.run, &named)?;
    let (config, model, _device, _) = load_run(&args.run)?;
    let spec = model.image();
    let Gathered { images, names, labels: own_labels } = gather(&args, &spec, &config)?;
    // A conditional model codes each image under its class: --class K, or the dataset's labels.
    let labels = crate::run_args::class_labels(&model, args.class, own_labels, names.len())?;
    let quiet = args.json;
    let chunk = args.chunk.unwrap_or_else(|| auto_chunk(&model));
    let (bar, mut progress) = chunk_bar(names.len(), chunk as usize, spec.dims(), quiet);
    let encoded = encode_labelled(&model, &config.model, &images, labels.as_deref(), &names, chunk, &mut progress)
        .with_context(|| format!("compressing into {}", args.output.display()))?;
    bar.finish_and_clear();
    write_atomic(&args.output, &encoded.bytes)?;
    let dims = (names.len() * spec.dims()) as f64;
    let file_bpd = encoded.bytes.len() as f64 * 8.0 / dims;
    if !(args.report || args.json) {
        eprintln!(
            "{} image(s) -> {} ({} bytes, {:.4} bits/dim; the model's NLL {:.4} bits/dim)",
            names.len(),
            args.output.display(),
            encoded.bytes.len(),
            file_bpd,
            encoded.costs.iter().map(|c| c.nll_bits).sum::<f64>() / dims
        );
        return Ok(());
    }
    report(&spec, &images, &names, &encoded.costs, encoded.bytes.len(), args.json)
}

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

/// Bytes `encoder` makes of one PNG.
fn external_size(encoder: &External, png: &Path, dir: &Path) -> anyhow::Result<u64> {
    let out = dir.join(format!("out.{}", encoder.name));
    let (ok, stderr) = run_bounded(Command::new(encoder.program).args((encoder.args)(png, &out)), EXTERNAL_TIMEOUT)
        .with_context(|| format!("the external encoder {}", encoder.program))?;
    if !ok {
        bail!("{} failed: {}", encoder.program, stderr.trim());
    }
    Ok(std::fs::metadata(&out)?.len())
}

fn report(
    spec: &ImageSpec,
    images: &[u8],
    names: &[String],
    costs: &[ImageCost],
    file_bytes: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let dims = spec.dims() as f64;
    // Which external encoders are installed (one probe each), and each one's total bytes.
    let present: Vec<bool> = EXTERNAL.iter().map(|e| installed(e.program)).collect();
    let found: Vec<&External> = EXTERNAL.iter().zip(&present).filter(|(_, &p)| p).map(|(e, _)| e).collect();
    let mut external_totals = [0u64; EXTERNAL.len()];
    let mut png_total = 0u64;
    let scratch = tempfile::tempdir().context("a scratch folder for the external encoders")?;
    let mut rows = Vec::with_capacity(names.len());
    for ((name, pixels), cost) in names.iter().zip(images.chunks(spec.dims())).zip(costs) {
        let display = display_values(spec, pixels);
        let smallest = encode_png_smallest(spec.channels, spec.height, spec.width, &display).len() as u64;
        png_total += smallest;
        let input = scratch.path().join("in.png");
        std::fs::write(&input, encode_png(spec.channels, spec.height, spec.width, &display))?;
        let mut row = json!({
            "name": name,
            "nll_bits_per_dim": cost.nll_bits / dims,
            "coded_bits_per_dim": cost.coded_bits / dims,
            "overhead": cost.coded_bits / cost.nll_bits - 1.0,
            "png_bytes": smallest,
        });
        for (k, encoder) in EXTERNAL.iter().enumerate().filter(|(k, _)| present[*k]) {
            let size = external_size(encoder, &input, scratch.path())?;
            external_totals[k] += size;
            row[format!("{}_bytes", encoder.name)] = size.into();
        }
        rows.push(row);
    }
    let total_dims = dims * names.len() as f64;
    let nll: f64 = costs.iter().map(|c| c.nll_bits).sum();
    let coded: f64 = costs.iter().map(|c| c.coded_bits).sum();
    let mut summary = json!({
        "images": names.len(),
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
    }
    if as_json {
        println!("{summary}");
        return Ok(());
    }
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
        names.len(),
        file_bytes,
        bpd(file_bytes as u64),
        nll / total_dims,
        (file_bytes as f64 * 8.0 / nll - 1.0) * 100.0,
        pixelrnn::codec::format::HEADER_LEN
    );
    println!("PNG (smallest): {} bytes = {:.4} bits/dim", png_total, bpd(png_total));
    for (k, encoder) in EXTERNAL.iter().enumerate() {
        if present[k] {
            let t = external_totals[k];
            println!("{} lossless ({}): {} bytes = {:.4} bits/dim", encoder.name, encoder.program, t, bpd(t));
        } else {
            println!("{} lossless: {} not installed, not compared", encoder.name, encoder.program);
        }
    }
    Ok(())
}

/// Whether `name` is a plain file name (no folder, not `.`/`..`): names come from the file and
/// are written into the output folder only if so.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Where `decompress` writes a conditional model's class labels: one `NAME<TAB>CLASS` line per
/// image.
const LABELS_FILE: &str = "labels.tsv";

pub fn decompress(args: DecompressArgs) -> anyhow::Result<()> {
    let input = &args.input;
    let bytes = pixelrnn::fsio::read_file(input)?;
    let header = Header::parse(&bytes).with_context(|| format!("{}", input.display()))?;
    let Some(run) = &args.run else {
        bail!(
            "{}: decompressing needs the run whose model coded it (weights SHA-256 {}); pass --run RUN_DIR",
            input.display(),
            hex(&header.weights_sha256)
        );
    };
    let output = &args.output;
    if output.exists() && std::fs::read_dir(output).map_or(true, |mut d| d.next().is_some()) {
        bail!("{}: the output folder exists and is not empty", output.display());
    }
    let device = burn::prelude::Device::flex();
    let loaded = RunDir::new(run)
        .allowing_unchecked(args.allow_unchecked)
        .load_weights(args.checkpoint.into(), !args.raw_weights, &device)
        .with_context(|| format!("loading the run in --run {}", run.display()))?;
    crate::run_args::say_weights(&loaded);
    let (config, model) = (loaded.config, loaded.model);
    let spec = header.image;
    let (bar, mut progress) = chunk_bar(header.count as usize, header.chunk as usize, spec.dims(), false);
    let decoded =
        decode(&model, &config.model, &bytes, &mut progress).with_context(|| format!("{}", input.display()))?;
    bar.finish_and_clear();
    if let Some(bad) = decoded.names.iter().find(|n| !plain_file_name(n)) {
        bail!("{}: the image name {bad:?} is not a plain file name", input.display());
    }
    // A conditional model's file holds each image's class: written beside the images.
    if decoded.labels.is_some() && decoded.names.iter().any(|n| n == LABELS_FILE) {
        bail!("{}: an image is named {LABELS_FILE}, where the class labels go", input.display());
    }
    publish_folder(output, |folder| {
        for (name, pixels) in decoded.names.iter().zip(decoded.images.chunks(spec.dims())) {
            let path = folder.join(name);
            std::fs::write(&path, image_png(&spec, pixels)).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(labels) = &decoded.labels {
            let lines: String = decoded.names.iter().zip(labels).map(|(n, l)| format!("{n}\t{l}\n")).collect();
            let path = folder.join(LABELS_FILE);
            std::fs::write(&path, lines).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })?;
    eprintln!("{} image(s) -> {}", decoded.names.len(), output.display());
    Ok(())
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
}
