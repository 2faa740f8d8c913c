//! `pixelrnn experiment`: the paper's tables, each model trained, scored and summarized by the
//! library's `reproduce` module; this file resolves the flags, shows progress and prints the
//! tables. Ctrl-C / SIGTERM stop after a checkpoint; running the command again continues.

use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::{default_data_dir, DatasetName, LoadOptions};
use pixelrnn::reproduce::{plan, run_table, Summary, TableEvent, TableName};
use pixelrnn::train::TrainEvent;

use crate::cli::{ExperimentArgs, ExperimentName};
use crate::data_cmd::fetch_and_load;

pub fn run(args: ExperimentArgs) -> anyhow::Result<ExitCode> {
    let tables: Vec<TableName> = match args.name {
        ExperimentName::Table4 => vec![TableName::Table4],
        ExperimentName::Table5 => vec![TableName::Table5],
        ExperimentName::Table2 => vec![TableName::Table2],
        ExperimentName::Table3 => vec![TableName::Table3],
        ExperimentName::All => TableName::ALL.to_vec(),
    };
    let device = crate::device::select(args.device)?;
    let machine = pixelrnn::device::describe(args.device.into());
    let stop = crate::signals::watch()?;
    for table in tables {
        let mut plan = plan(table, args.scale)?;
        plan.steps = args.steps.unwrap_or(plan.steps);
        plan.valid_every = (plan.steps / 10).max(1);
        plan.batch_size = args.batch_size.unwrap_or(plan.batch_size);
        let (flag, dir) = match plan.dataset {
            DatasetName::BinarizedMnist => ("--mnist-dir", &args.mnist_dir),
            _ => ("--cifar-dir", &args.cifar_dir),
        };
        let data_dir = dir.clone().unwrap_or_else(|| default_data_dir(plan.dataset));
        let data_dir = std::path::absolute(&data_dir).with_context(|| format!("{flag} {}", data_dir.display()))?;
        let options = LoadOptions { no_verify: args.no_verify, ..LoadOptions::default() };
        let data =
            fetch_and_load(plan.dataset, &data_dir, &options).with_context(|| format!("{}: {flag}", table.name()))?;
        eprintln!("{}: {} [{}]", table.name(), plan.title, plan.note);
        let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(plan.steps) };
        bar.set_style(
            ProgressStyle::with_template("{prefix:24} {bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
                .expect("valid template"),
        );
        // Log lines: above the bar, or plain with --quiet (a hidden bar prints nothing).
        let say = |line: String| if args.quiet { eprintln!("{line}") } else { bar.println(line) };
        let mut observer = |event: &TableEvent| match event {
            TableEvent::RunStarted { run, index, total, from_step } => {
                bar.reset();
                bar.set_prefix(format!("[{index}/{total}] {}", run.name));
                bar.set_position(*from_step);
                if *from_step > 0 {
                    say(format!("{}: resuming at step {from_step}", run.name));
                }
            }
            TableEvent::Training(TrainEvent::Step { step, loss_nats, bits_per_dim, .. }) => {
                bar.set_position(*step);
                bar.set_message(format!("loss {loss_nats:.2} nats ({bits_per_dim:.4} bits/dim)"));
            }
            TableEvent::Training(_) => {}
            TableEvent::Scoring { run } => bar.set_message(format!("scoring {} on {}", run.name, plan.split.name())),
            TableEvent::RowDone { row, already } => say(format!(
                "{}: {:.3} nats, {:.4} bits/dim on {} {} images after {} steps{}",
                row.run,
                row.nll_nats,
                row.bits_per_dim,
                row.images,
                row.split,
                row.steps,
                if *already { " (done before)" } else { "" }
            )),
        };
        let outcome =
            run_table(&plan, &data, &data_dir, args.no_verify, &args.out, &machine, &device, &stop.flag, &mut observer)
                .with_context(|| format!("{} in {}", table.name(), args.out.display()))?;
        bar.finish_and_clear();
        print_table(&outcome.summary, args.json)?;
        if outcome.interrupted {
            eprintln!("interrupted; run the same command again to continue where it stopped");
            return Ok(ExitCode::from(stop.exit_code()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(summary: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(summary)?);
        return Ok(());
    }
    let unit = &summary.unit;
    println!("{} ({}, {}): {}", summary.experiment, summary.dataset, summary.split, summary.title);
    println!("  {:36} {:>12} {:>10} {:>9} {:>10}", "model", format!("ours, {unit}"), "paper", "steps", "train s");
    for row in &summary.rows {
        let ours = if unit == "nats" { row.nll_nats } else { row.bits_per_dim };
        let paper = row.paper.map_or("-".into(), |p| format!("{p:.2}"));
        println!("  {:36} {ours:>12.3} {paper:>10} {:>9} {:>10.0}", row.label, row.steps, row.train_secs);
    }
    Ok(())
}
