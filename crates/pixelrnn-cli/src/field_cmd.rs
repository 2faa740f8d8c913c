//! `pixelrnn receptive-field`: the dependency field of one pixel (the paper's Figure 4), of a
//! trained run or of an untrained model, as a PNG and/or JSON.

use anyhow::{bail, Context};
use burn::prelude::Device;
use pixelrnn::experiment::paper_preset;
use pixelrnn::field::{dependency_field, probe_image, render};
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::images::{grid_png, Cell};
use pixelrnn::models::ModelConfig;
use pixelrnn::run::RunDir;

use crate::cli::ReceptiveFieldArgs;
use crate::run_args::{check_output, write};

pub fn run(args: ReceptiveFieldArgs) -> anyhow::Result<()> {
    if args.out.is_none() && !args.json {
        bail!("nothing to write: give --out FIELD.png and/or --json");
    }
    if let (Some(out), Some(run)) = (&args.out, &args.run) {
        check_output(out, run, &[])?;
    }
    let device = Device::flex().autodiff();
    let (model, what) = match (&args.run, args.model) {
        (Some(run), _) => {
            let loaded = RunDir::new(run)
                .allowing_unchecked(args.allow_unchecked)
                .load_weights(args.checkpoint.into(), !args.raw_weights, &device)
                .with_context(|| format!("loading the run in --run {}", run.display()))?;
            crate::run_args::say_weights(&loaded);
            (loaded.model, loaded.path.display().to_string())
        }
        (None, Some(architecture)) => {
            let image = args.dataset.image_spec().with_context(|| {
                format!("--dataset {}: images of any size; give --run of a model trained on it", args.dataset)
            })?;
            let preset = args.preset.unwrap_or_else(|| paper_preset(args.dataset));
            let config = ModelConfig::preset(preset, architecture, image).context("--preset")?;
            let model = config.init(&device, args.seed)?;
            (model, format!("untrained {} ({preset:?} preset, seed {})", architecture.name(), args.seed))
        }
        (None, None) => bail!("give --run RUN_DIR or --model ARCHITECTURE"),
    };
    let (row, col) = args.pixel;
    let image = model.image();
    let field = dependency_field(&model, &probe_image(&image), (row, col, args.channel), &device)
        .context("--pixel/--channel")?;
    let deps = field.dependencies();
    if let Some(out) = &args.out {
        let rgb = render(&field);
        let spec = ImageSpec { channels: 3, height: image.height, width: image.width, levels: 256 };
        write(out, &grid_png(&spec, &[vec![Cell::Image { pixels: &rgb, hidden_from: None }]], args.scale))?;
        eprintln!(
            "{what}: pixel ({row}, {col}) channel {} depends on {} of {} input sub-pixels -> {}",
            args.channel,
            deps.len(),
            image.dims(),
            out.display()
        );
    }
    if args.json {
        let json = serde_json::json!({
            "model": what,
            "height": image.height,
            "width": image.width,
            "channels": image.channels,
            "pixel": [row, col],
            "channel": args.channel,
            "dependencies": deps.iter().map(|&(r, c, ch)| [r, c, ch]).collect::<Vec<_>>(),
        });
        println!("{json}");
    }
    Ok(())
}
