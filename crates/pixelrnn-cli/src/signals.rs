//! SIGINT (Ctrl-C) and SIGTERM (what `timeout`, Slurm and Kubernetes send): the first asks the
//! work to stop after a checkpoint; another one more than a second later ends the process at
//! once. Signals within that second count as one, because one request often arrives twice:
//! `timeout` signals its command and then the command's process group, a terminal's Ctrl-C
//! reaches mpirun and its ranks (which mpirun forwards it to as well).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Set by the first signal.
pub struct StopRequest {
    /// Whether a stop was asked for.
    pub flag: Arc<AtomicBool>,
    /// The exit code the signal asks for: 130 (SIGINT) or 143 (SIGTERM); 0 before any.
    pub code: Arc<AtomicUsize>,
}

/// The code a time limit stores (no signal has it).
const TIME_LIMIT: usize = 1;

impl StopRequest {
    /// The exit code to end with after stopping on request.
    pub fn exit_code(&self) -> u8 {
        match self.code.load(Ordering::SeqCst) {
            0 | TIME_LIMIT => 130,
            code => code as u8,
        }
    }

    /// Asks the work to stop once `limit` has passed (`train --time-limit`), unless a signal
    /// asked first.
    pub fn after(&self, limit: Duration) {
        let (flag, code) = (self.flag.clone(), self.code.clone());
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if code.compare_exchange(0, TIME_LIMIT, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    }

    /// Whether the stop was the time limit's.
    pub fn timed_out(&self) -> bool {
        self.code.load(Ordering::SeqCst) == TIME_LIMIT
    }
}

/// Starts watching SIGINT and SIGTERM.
pub fn watch() -> anyhow::Result<StopRequest> {
    let request = StopRequest { flag: Arc::new(AtomicBool::new(false)), code: Arc::new(AtomicUsize::new(0)) };
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing the signal handlers")?;
    let (flag, code) = (request.flag.clone(), request.code.clone());
    std::thread::spawn(move || {
        let mut first: Option<Instant> = None;
        for signal in signals.forever() {
            let exit = if signal == SIGINT { 130 } else { 143 };
            match first {
                None => {
                    first = Some(Instant::now());
                    code.store(exit, Ordering::SeqCst);
                    flag.store(true, Ordering::SeqCst);
                }
                Some(at) if at.elapsed() > Duration::from_secs(1) => {
                    eprintln!("second signal: exiting now, without a checkpoint");
                    std::process::exit(exit as i32);
                }
                Some(_) => {}
            }
        }
    });
    Ok(request)
}
