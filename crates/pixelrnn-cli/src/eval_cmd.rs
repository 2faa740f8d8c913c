//! `pixelrnn eval`: exact NLL of a run's checkpoint on a split.

use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::{LoadOptions, Split};
use pixelrnn::eval::evaluate;

use crate::cli::EvalArgs;
use crate::data_cmd::fetch_and_load;
use crate::run_args::{check_output, load_run};

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.save_images {
        check_output(path, &args.run.run, &[])?;
    }
    let (config, model, device, ckpt) = load_run(&args.run)?;
    pixelrnn::resources::check_fits(
        &format!("evaluating this model at --batch-size {}", args.batch_size),
        config.model.inference_bytes(args.batch_size),
        pixelrnn::resources::available_memory(),
    )?;
    let dataset = config.data.dataset;
    let dir = crate::run_args::run_data_dir(&config, args.data_dir.as_deref())?;
    let splits = fetch_and_load(
        dataset,
        &dir,
        &LoadOptions { valid_size: config.data.valid_size, mirror: None, no_verify: config.data.no_verify },
    )?;
    let split: Split = args.split.into();
    let set = splits.get(split)?;
    if args.limit == Some(0) {
        anyhow::bail!("--limit must be at least 1");
    }
    let total = args.limit.map_or(set.len(), |l| l.min(set.len()));
    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::new(total as u64) };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} images [{elapsed} < {eta}]").expect("valid template"),
    );
    let mut report =
        evaluate(&model, set, (dataset.name(), split.name()), args.limit, args.batch_size, &device, &mut |done, _| {
            bar.set_position(done as u64)
        })?;
    bar.finish_and_clear();
    if !args.per_image {
        report.per_image_nats = None;
    }
    if let Some(path) = &args.save_images {
        let bytes: Vec<u8> = (0..report.images).flat_map(|i| set.image(i).to_vec()).collect();
        pixelrnn::fsio::write_atomic(path, &bytes)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} {} ({} images, {}): NLL {:.3} nats/image, {:.4} ± {:.4} bits/dim",
            report.dataset,
            report.split,
            report.images,
            ckpt.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            report.nll_nats,
            report.bits_per_dim,
            report.stderr_bits_per_dim
        );
    }
    Ok(())
}
