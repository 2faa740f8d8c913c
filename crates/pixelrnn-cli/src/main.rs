//! `pixelrnn`: train PixelCNN / Row LSTM / Diagonal BiLSTM models, evaluate their exact
//! log-likelihood, and manage datasets. A thin layer over the `pixelrnn` library.

mod bench_cmd;
mod cli;
mod data_cmd;
mod device;
mod eval_cmd;
mod sample_cmd;
mod train_cmd;

use clap::Parser;

/// mimalloc keeps freed pages for reuse; glibc's malloc returns the large per-step buffers of
/// training to the kernel and faults them back in every step. Measured (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Train(args) => train_cmd::run(args),
        cli::Command::Eval(args) => eval_cmd::run(args),
        cli::Command::Sample(args) => sample_cmd::sample(args),
        cli::Command::Complete(args) => sample_cmd::complete(args),
        cli::Command::Score(args) => sample_cmd::score(args),
        cli::Command::Bench(args) => bench_cmd::run(args),
        cli::Command::Data { command } => data_cmd::run(command),
    }
}
