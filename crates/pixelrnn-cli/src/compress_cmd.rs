//! `pixelrnn compress` / `decompress`: lossless coding of images with a trained run's model
//! (the library's `codec`; file format in docs/prnn-format.md); the size report against other
//! codecs is `compress_report`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::codec::format::Header;
use pixelrnn::codec::{auto_chunk, decode, encode_labelled};
use pixelrnn::data::LoadOptions;
use pixelrnn::fsio::write_atomic;
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::images::{image_png, read_png_exact};
use pixelrnn::run::RunDir;

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
    let mut encoded = encode_labelled(&model, &config.model, &images, labels.as_deref(), &names, chunk, &mut progress)
        .with_context(|| format!("compressing into {}", args.output.display()))?;
    bar.finish_and_clear();
    // --compact: the same streams in the version-2 container (a header of ~20 bytes, not 160).
    let file = if args.compact {
        pixelrnn::codec::compact::compact(&encoded.bytes)?
    } else {
        std::mem::take(&mut encoded.bytes)
    };
    write_atomic(&args.output, &file)?;
    let dims = (names.len() * spec.dims()) as f64;
    let file_bpd = file.len() as f64 * 8.0 / dims;
    if !(args.report || args.json) {
        eprintln!(
            "{} image(s) -> {} ({} bytes, {:.4} bits/dim; the model's NLL {:.4} bits/dim)",
            names.len(),
            args.output.display(),
            file.len(),
            file_bpd,
            encoded.costs.iter().map(|c| c.nll_bits).sum::<f64>() / dims
        );
        return Ok(());
    }
    // With one image per chunk each image's stream is its own file's: the per-image comparison.
    let own_streams = (chunk == 1).then_some(encoded.chunk_bytes.as_slice());
    let coded = crate::compress_report::Coded {
        costs: &encoded.costs,
        file_bytes: file.len(),
        own_streams,
        compact: args.compact,
    };
    crate::compress_report::report(&spec, &images, &names, &coded, args.json)
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
            header.weights_hex()
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
