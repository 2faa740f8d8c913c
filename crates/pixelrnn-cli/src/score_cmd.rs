//! `pixelrnn score`: the exact NLL of one PNG and of each of its sub-pixels.

use pixelrnn::images::{heatmap_png, read_png_for};

use crate::cli::ScoreArgs;
use crate::run_args::{load_run, write};

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let (_, model, device, _) = load_run(&args.run)?;
    let image = read_png_for(&args.image, &model.image())?;
    let s = pixelrnn::score::score(&model, &image, &device)?;
    if let Some(path) = &args.heatmap {
        write(path, &heatmap_png(&s.per_pixel(), s.height, s.width, 8))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("{}: NLL {:.3} nats, {:.4} bits/dim", args.image.display(), s.nll_nats, s.bits_per_dim);
    }
    Ok(())
}
