//! `pixelrnn bench`: one JSON line per measurement, keys as in the PyTorch reference's (docs/bench-specs.md).

use anyhow::Context;
use pixelrnn::bench::run as time;

use crate::cli::BenchArgs;

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (spec, mode) = (args.spec, args.mode);
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
    let m = time(spec, mode, args.batch_size, args.warmup, args.steps, threads, backend)
        .with_context(|| format!("bench {} {} on --device {backend}", spec.name(), mode.name()))?;
    let line = serde_json::to_string(&m)?;
    if args.json {
        println!("{line}");
    } else {
        eprintln!(
            "{} {}: {:.1} images/s (median step {:.4} s, batch {})",
            m.model, m.mode, m.images_per_sec, m.median_step_s, m.batch
        );
        println!("{line}");
    }
    Ok(())
}
