//! `pixelrnn data fetch|info`, and the fetch-on-first-use used by `train`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pixelrnn::data::download::DownloadEvent;
use pixelrnn::data::registry::{checksum_status, ensure_present};
use pixelrnn::data::{default_data_dir, load, DatasetName, LoadOptions, Splits};

use crate::cli::DataCommand;

pub fn run(command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Fetch { name, data_dir, mirror } => {
            let dir = data_dir.unwrap_or_else(|| default_data_dir(name));
            let options = LoadOptions { valid_size: None, mirror, no_verify: false };
            // "Ready" means what training will find: files present and checked against their
            // published checksums, not only present.
            fetch(name, &dir, &options)?;
            pixelrnn::data::registry::verify_present(name, &dir)
                .with_context(|| format!("checking {name} in {}", dir.display()))?;
            println!("{name} ready in {}", dir.display());
            Ok(())
        }
        DataCommand::Info { name, data_dir, valid_size } => {
            let dir = data_dir.unwrap_or_else(|| default_data_dir(name));
            info(name, &dir, valid_size)
        }
    }
}

/// Makes sure the dataset's files are in `dir`, downloading them with a progress bar if not.
pub fn fetch(name: DatasetName, dir: &Path, options: &LoadOptions) -> anyhow::Result<()> {
    let bar = ProgressBar::hidden();
    let mut observer = |event: DownloadEvent| match event {
        DownloadEvent::Started { name, total, resumed_from } => {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_length(total.unwrap_or(0));
            bar.set_position(resumed_from);
            bar.set_message(if resumed_from > 0 { format!("{name} (resumed)") } else { name });
        }
        DownloadEvent::Progress { done } => bar.set_position(done),
        DownloadEvent::AlreadyPresent { name } => eprintln!("{name}: present, checksum ok"),
        DownloadEvent::Finished { path } => {
            bar.finish_and_clear();
            eprintln!("{}: downloaded, checksum ok", path.display());
        }
    };
    ensure_present(name, dir, options, &mut observer).with_context(|| {
        format!("fetching {name} into {} (offline? pass --data-dir with the dataset's files)", dir.display())
    })
}

/// Fetches if needed, then loads.
pub fn fetch_and_load(name: DatasetName, dir: &Path, options: &LoadOptions) -> anyhow::Result<Splits> {
    fetch(name, dir, options)?;
    load(name, dir, options).with_context(|| format!("loading {name} from {}", dir.display()))
}

fn info(name: DatasetName, dir: &Path, valid_size: Option<usize>) -> anyhow::Result<()> {
    let splits = load(name, dir, &LoadOptions { valid_size, mirror: None, no_verify: true })
        .with_context(|| format!("loading {name} from {}", dir.display()))?;
    println!("dataset: {name}");
    println!("folder:  {}", dir.display());
    let s = splits.train.spec();
    println!("images:  {} channel(s), {}x{} (height x width), {} levels", s.channels, s.height, s.width, s.levels);
    println!("files:");
    let mut files: Vec<PathBuf> = Vec::new();
    for f in &splits.files {
        if f.is_dir() {
            files.push(f.clone());
            continue;
        }
        if f.is_file() {
            files.push(f.clone());
        }
    }
    for f in files {
        if f.is_dir() {
            println!("  {}/ (folder of PNGs)", f.display());
        } else {
            let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            println!("  {} ({len} bytes): {}", f.display(), checksum_status(name, &f)?);
        }
    }
    for (label, set) in
        [("train", Some(&splits.train)), ("valid", splits.valid.as_ref()), ("test", splits.test.as_ref())]
    {
        match set {
            Some(set) => {
                let counts = set.class_counts();
                let classes =
                    if counts.is_empty() { String::from("no labels") } else { format!("per class {counts:?}") };
                println!("{label:>6}: {} images, {classes}", set.len());
            }
            None => println!("{label:>6}: none"),
        }
    }
    for note in &splits.notes {
        println!("note: {note}");
    }
    Ok(())
}
