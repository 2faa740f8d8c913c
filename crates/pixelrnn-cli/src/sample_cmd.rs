//! `pixelrnn sample` and `complete`.

use anyhow::{bail, Context};
use burn::prelude::Device;
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::{LoadOptions, Split};
use pixelrnn::images::{grid_bytes, grid_png, image_png, read_png_for, Cell};
use pixelrnn::models::PixelRnn;
use pixelrnn::sample::{generate, Generation, Sampler};

use crate::cli::{CompleteArgs, SampleArgs};
use crate::data_cmd::fetch_and_load;
use crate::run_args::{check_output, class_labels, load_run, write};

fn run_generation(model: &PixelRnn, request: &Generation, naive: bool, device: &Device) -> anyhow::Result<Vec<u8>> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} sub-pixels [{elapsed} < {eta}]").expect("valid template"),
    );
    let sampler = if naive { Sampler::Naive } else { Sampler::Fast };
    let images = generate(model, request, sampler, device, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(images)
}

pub fn sample(args: SampleArgs) -> anyhow::Result<()> {
    check_output(&args.out, &args.run.run, &[])?;
    let (_, model, device, _) = load_run(&args.run)?;
    let spec = model.image();
    // The grid's memory is checked before minutes of sampling, not after.
    let grid = grid_bytes(&spec, args.count.div_ceil(args.columns), args.columns.min(args.count), args.scale);
    pixelrnn::resources::check_fits(
        "the sample grid (--count, --columns, --scale)",
        grid,
        pixelrnn::resources::available_memory(),
    )?;
    let mut request = Generation::samples(&spec, args.count, args.seed, args.temperature);
    // A conditional model: every sample of --class K, or the classes in turn (one column each
    // with --columns set to the number of classes).
    let in_turn = model.classes().map(|classes| (0..args.count).map(|i| (i % classes) as u8).collect());
    if let Some(labels) = class_labels(&model, args.class, in_turn, args.count)? {
        request = request.with_labels(labels);
    }
    let images = run_generation(&model, &request, args.naive, &device)?;
    let cells: Vec<Cell> = images.chunks(spec.dims()).map(|pixels| Cell::Image { pixels, hidden_from: None }).collect();
    let mut rows = Vec::new();
    let mut cells = cells.into_iter().peekable();
    while cells.peek().is_some() {
        rows.push(cells.by_ref().take(args.columns).collect::<Vec<_>>());
    }
    write(&args.out, &grid_png(&spec, &rows, args.scale))?;
    if let Some(dir) = &args.each {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, pixels) in images.chunks(spec.dims()).enumerate() {
            write(&dir.join(format!("sample-{i:04}.png")), &image_png(&spec, pixels))?;
        }
    }
    eprintln!("{} samples -> {}", args.count, args.out.display());
    Ok(())
}

pub fn complete(args: CompleteArgs) -> anyhow::Result<()> {
    let image_input: Vec<(&std::path::Path, &str)> =
        args.image.iter().map(|p| (p.as_path(), "the input image")).collect();
    check_output(&args.out, &args.run.run, &image_input)?;
    let (config, model, device, _) = load_run(&args.run)?;
    let spec = model.image();
    let observed = args.observed_rows.unwrap_or(spec.height / 2);
    if observed >= spec.height {
        bail!("--observed-rows must be below the image height {} (got {observed})", spec.height);
    }
    if args.samples_per_image == 0 {
        bail!("--samples-per-image must be at least 1");
    }
    let (originals, labels): (Vec<Vec<u8>>, Option<Vec<u8>>) = if let Some(path) = &args.image {
        (vec![read_png_for(path, &spec)?], None)
    } else {
        let indices = match (&args.indices, args.count) {
            (Some(list), _) => list.clone(),
            (None, Some(n)) => (0..n).collect(),
            (None, None) => (0..4).collect(),
        };
        let found = dataset_images(&config, args.data_dir.as_deref(), args.split.into(), &indices)?;
        (found.images, found.labels)
    };
    // A conditional model completes each image under --class K or its own label.
    let labels = class_labels(&model, args.class, labels, originals.len())?;
    let m = args.samples_per_image;
    let grid = grid_bytes(&spec, originals.len(), m + 2, args.scale);
    pixelrnn::resources::check_fits(
        "the completion grid (--count, --samples-per-image, --scale)",
        grid,
        pixelrnn::resources::available_memory(),
    )?;
    let request = Generation::completions_of(
        &spec,
        &originals.concat(),
        m,
        labels.as_deref(),
        observed,
        args.seed,
        args.temperature,
    );
    let completed = run_generation(&model, &request, args.naive, &device)?;
    let rows: Vec<Vec<Cell>> = originals
        .iter()
        .enumerate()
        .map(|(i, original)| {
            let mut row = vec![Cell::Image { pixels: original, hidden_from: Some(observed) }];
            row.extend((0..m).map(|k| Cell::Image {
                pixels: &completed[(i * m + k) * spec.dims()..(i * m + k + 1) * spec.dims()],
                hidden_from: None,
            }));
            row.push(Cell::Image { pixels: original, hidden_from: None });
            row
        })
        .collect();
    write(&args.out, &grid_png(&spec, &rows, args.scale))?;
    eprintln!(
        "{} image(s) x {m} completion(s), top {observed} rows observed -> {}",
        originals.len(),
        args.out.display()
    );
    Ok(())
}

/// Images of a dataset, `[channels][height][width]` each, and their class labels when the
/// dataset has them.
pub struct DatasetImages {
    pub images: Vec<Vec<u8>>,
    pub labels: Option<Vec<u8>>,
}

/// Images `indices` of `split` of the run's dataset (its folder, or `data_dir`).
pub fn dataset_images(
    config: &pixelrnn::experiment::ExperimentConfig,
    data_dir: Option<&std::path::Path>,
    split: Split,
    indices: &[usize],
) -> anyhow::Result<DatasetImages> {
    let dir = &crate::run_args::run_data_dir(config, data_dir)?;
    let splits = fetch_and_load(
        config.data.dataset,
        dir,
        &LoadOptions { valid_size: config.data.valid_size, mirror: None, no_verify: config.data.no_verify },
    )?;
    let set = splits.get(split)?;
    let images = indices
        .iter()
        .map(|&i| {
            if i >= set.len() {
                bail!("image index {i} out of range: the {} split has {} images", split.name(), set.len())
            }
            Ok(set.image(i).to_vec())
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(DatasetImages { images, labels: set.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()) })
}
