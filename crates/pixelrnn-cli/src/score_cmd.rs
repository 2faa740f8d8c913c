//! `pixelrnn score`: the exact NLL of one PNG and of each of its sub-pixels, and the predictive
//! distribution at a pixel.

use pixelrnn::images::{heatmap_png, read_png_for};
use pixelrnn::score::Distribution;

use crate::cli::ScoreArgs;
use crate::run_args::{check_output, load_run, write};

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let image_input: Vec<(&std::path::Path, &str)> =
        args.image.iter().map(|p| (p.as_path(), "the input image")).collect();
    for output in [&args.heatmap, &args.softmax_out].into_iter().flatten() {
        check_output(output, &args.run.run, &image_input)?;
    }
    let (config, model, device, _) = load_run(&args.run)?;
    let (image, name, own_label) = match (&args.image, args.index) {
        (Some(path), _) => (read_png_for(path, &model.image())?, path.display().to_string(), None),
        (None, Some(i)) => {
            let split = args.split.into();
            let mut found = crate::sample_cmd::dataset_images(&config, args.data_dir.as_deref(), split, &[i])?;
            let name = format!("{} {} image {i}", config.data.dataset, split.name());
            (found.images.remove(0), name, found.labels.map(|l| l[0]))
        }
        (None, None) => anyhow::bail!("give --image FILE.png or --index N"),
    };
    // A conditional model scores -log p(x | y) under --class K or the image's own label.
    let label = crate::run_args::class_labels(&model, args.class, own_label.map(|l| vec![l]), 1)?.map(|l| l[0]);
    let s = pixelrnn::score::score(&model, &image, label, &device)?;
    if let Some(path) = &args.heatmap {
        write(path, &heatmap_png(&s.per_pixel(), s.height, s.width, 8))?;
    }
    let distribution =
        args.softmax.map(|pixel| pixelrnn::score::distribution(&model, &image, label, pixel, &device)).transpose()?;
    if let (Some(d), Some(path)) = (&distribution, &args.softmax_out) {
        write(path, softmax_chart(d).as_bytes())?;
    }
    if args.json {
        let mut json = serde_json::to_value(&s)?;
        if let Some(d) = &distribution {
            json["distribution"] = serde_json::to_value(d)?;
        }
        println!("{json}");
        return Ok(());
    }
    println!("{name}: NLL {:.3} nats, {:.4} bits/dim", s.nll_nats, s.bits_per_dim);
    if let Some(d) = &distribution {
        for (c, probs) in d.probabilities.iter().enumerate() {
            let (mode, p_mode) = probs.iter().enumerate().fold((0, 0.0), |m, (v, &p)| if p > m.1 { (v, p) } else { m });
            let v = d.values[c] as usize;
            println!(
                "pixel ({}, {}) channel {c}: value {v} has p = {:.4} ({:.3} nats); most likely {mode} (p = {p_mode:.4})",
                d.row,
                d.col,
                probs[v],
                -probs[v].ln()
            );
        }
    }
    Ok(())
}

/// Probability of each value, one line per channel (red, green, blue; black for grey).
fn softmax_chart(d: &Distribution) -> String {
    let colours: &[&str] = if d.probabilities.len() == 3 { &["#d62728", "#2ca02c", "#1f77b4"] } else { &["#000000"] };
    let names = if d.probabilities.len() == 3 { vec!["R", "G", "B"] } else { vec!["grey"] };
    let points: Vec<Vec<(f64, f64)>> =
        d.probabilities.iter().map(|p| p.iter().enumerate().map(|(v, &q)| (v as f64, q)).collect()).collect();
    let labels: Vec<String> = names.iter().zip(&d.values).map(|(n, v)| format!("{n} (the image: {v})")).collect();
    let series: Vec<pixelrnn::plot::Series> =
        labels.iter().zip(colours).zip(&points).map(|((l, c), p)| (l.as_str(), *c, &p[..])).collect();
    pixelrnn::plot::line_chart(&format!("p(value) at pixel ({}, {})", d.row, d.col), "value", &series)
}
