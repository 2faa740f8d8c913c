//! `pixelrnn`: train PixelCNN / Row LSTM / Diagonal BiLSTM models, evaluate their exact
//! log-likelihood, and manage datasets. A thin layer over the `pixelrnn` library; the commands
//! themselves are in this crate's library (`lib.rs`), which the Python module shares.

use std::process::ExitCode;

/// mimalloc keeps freed pages for reuse; glibc's malloc returns the large per-step buffers of
/// training to the kernel and faults them back in every step. Measured (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in `mi_option_e` (mimalloc.h, v2.1 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed pages to the kernel (unless `MIMALLOC_PURGE_DELAY` says
/// otherwise). By default it returns them after 10 ms, and a training step, which frees and
/// re-allocates the same large buffers, then spends up to a third of its time in the kernel
/// zeroing them again (transparent huge pages: 2 MiB per fault). Measured in BENCHMARKS.md.
/// The resident memory stays at the peak of a step, which it reaches every step anyway.
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists (mimalloc's
        // options are not synchronised); the option index and value are mimalloc's own.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// Restores the default action of SIGPIPE, so that `pixelrnn ... | head` ends quietly when the
/// reader goes away, as other command-line tools do (Rust ignores SIGPIPE, and `println!` then
/// panics on the broken pipe).
fn quiet_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // action for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Exit codes: 0 success, 1 an error (printed as one line with its causes), 2 a usage error
/// (clap), 130 training stopped by Ctrl-C after saving its checkpoint.
fn main() -> ExitCode {
    quiet_on_closed_stdout();
    keep_freed_pages();
    let cli = pixelrnn_cli::cli::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match pixelrnn_cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_pages_are_kept() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("skipped: MIMALLOC_PURGE_DELAY is set, and wins");
            return;
        }
        super::keep_freed_pages();
        // SAFETY: reading an option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, -1);
    }
}
