//! The commands of the `pixelrnn` binary, as a library: `main.rs` parses and dispatches here,
//! and the Python module (`crates/pixelrnn-python`) runs `train` through
//! [`train_cmd::train_embedded`], so that `pixelrnn.train(...)` takes exactly the CLI's flags.

mod bench_cmd;
pub mod cli;
mod compress_cmd;
mod compress_report;
pub mod data_cmd;
mod device;
mod eval_cmd;
mod experiment_cmd;
mod field_cmd;
mod interop_cmd;
pub mod run_args;
mod sample_cmd;
mod score_cmd;
mod serve;
mod signals;
pub mod train_cmd;

use std::process::ExitCode;

/// Runs a parsed command line; the exit code says how it ended (130/143: training stopped by a
/// signal after its checkpoint).
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    match cli.command {
        cli::Command::Train(args) => train_cmd::run(args),
        cli::Command::Eval(args) => done(eval_cmd::run(args)),
        cli::Command::Sample(args) => done(sample_cmd::sample(args)),
        cli::Command::Complete(args) => done(sample_cmd::complete(args)),
        cli::Command::Score(args) => done(score_cmd::run(args)),
        cli::Command::Compress(args) => done(compress_cmd::compress(args)),
        cli::Command::Decompress(args) => done(compress_cmd::decompress(args)),
        cli::Command::Export(args) => done(interop_cmd::export(args)),
        cli::Command::Import(args) => done(interop_cmd::import(args)),
        cli::Command::ReceptiveField(args) => done(field_cmd::run(args)),
        cli::Command::Experiment(args) => experiment_cmd::run(args),
        cli::Command::Serve(args) => done(serve::run(args)),
        cli::Command::Bench(args) => done(bench_cmd::run(args)),
        cli::Command::Data { command } => done(data_cmd::run(command)),
    }
}
