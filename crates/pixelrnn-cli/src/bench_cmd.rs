//! `pixelrnn bench`: one JSON line per measurement, keys as in the PyTorch reference's (docs/bench-specs.md).

use anyhow::Context;
use pixelrnn::bench::{run_workload as time, Workload};
use pixelrnn::run::RunDir;

use crate::cli::BenchArgs;

/// `--spec`'s model, or `--run`'s (named by its folder, at its training batch size).
fn workload(args: &BenchArgs) -> anyhow::Result<Workload> {
    match (args.spec, &args.run) {
        (Some(spec), _) => Ok(spec.into()),
        (None, Some(run)) => {
            let config = RunDir::new(run).load_config().with_context(|| format!("--run {}", run.display()))?;
            let name = run.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            Ok(Workload {
                name: name.unwrap_or_else(|| run.display().to_string()),
                config: config.model,
                batch: config.training.batch_size,
            })
        }
        (None, None) => anyhow::bail!("give --spec or --run"),
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (workload, mode) = (workload(&args)?, args.mode);
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    // The CPU backend and the fast sampler both run on rayon's global pool.
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
    let backend = pixelrnn::device::Backend::from(args.device);
    if args.steps == 0 {
        anyhow::bail!("--steps must be at least 1");
    }
    let m = time(&workload, mode, args.batch_size, args.warmup, args.steps, threads, backend)
        .with_context(|| format!("bench {} {} on --device {backend}", workload.name, mode.name()))?;
    let line = serde_json::to_string(&m)?;
    if args.json {
        println!("{line}");
    } else {
        let peak = match (m.conv_gflops, m.fma_peak_gflops, m.fraction_of_fma_peak) {
            (Some(g), Some(p), Some(f)) => format!("; convolutions {g:.1} GFLOP/s, {f:.2} of the FMA peak {p:.1}"),
            _ => String::new(),
        };
        eprintln!(
            "{} {}: {:.1} images/s (median step {:.4} s, batch {}){peak}",
            m.model, m.mode, m.images_per_sec, m.median_step_s, m.batch
        );
        println!("{line}");
    }
    Ok(())
}
