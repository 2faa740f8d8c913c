//! `train`: the CLI's `train` command run in-process ([`pixelrnn_cli::train_cmd::train_embedded`]),
//! so it takes exactly the CLI's flags and writes the same run directory. Progress goes to a
//! Python callback; Ctrl-C (the interpreter's SIGINT handler, polled between steps) stops
//! training after a checkpoint, as SIGINT stops `pixelrnn train`, and is then raised as
//! `KeyboardInterrupt`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixelrnn::train::TrainEvent;
use pyo3::prelude::*;

use crate::anyhow_error;

/// How often the GIL is taken between steps to look for a pending Ctrl-C when no callback is
/// given (a callback is called, and signals checked, at every event).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Trains with `train`'s command-line `flags`; `callback(event_json)` is called with each
/// training event (`started`, `step`, `validation`, `checkpoint`) as a JSON object. Returns
/// `(step, interrupted, best_valid_bits_per_dim)`; a Ctrl-C stops after a checkpoint and raises
/// `KeyboardInterrupt`, an exception raised by the callback stops the same way and is re-raised.
#[pyfunction]
#[pyo3(signature = (flags, callback = None))]
pub fn train(py: Python<'_>, flags: Vec<String>, callback: Option<Py<PyAny>>) -> PyResult<(u64, bool, Option<f64>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut raised: Option<PyErr> = None;
    let mut last_poll = Instant::now();
    let outcome = py.detach(|| {
        let mut observer = |event: &TrainEvent| {
            if raised.is_some() {
                return;
            }
            let poll = callback.is_some() || last_poll.elapsed() >= SIGNAL_POLL;
            if !poll {
                return;
            }
            last_poll = Instant::now();
            let result = Python::attach(|py| -> PyResult<()> {
                py.check_signals()?;
                if let Some(callback) = &callback {
                    let json = serde_json::to_string(event).unwrap_or_default();
                    callback.call1(py, (json,))?;
                }
                Ok(())
            });
            if let Err(e) = result {
                raised = Some(e);
                stop.store(true, Ordering::SeqCst);
            }
        };
        pixelrnn_cli::train_cmd::train_embedded(&flags, &stop, &mut observer)
    });
    let outcome = outcome.map_err(anyhow_error);
    // The interruption (or the callback's exception) wins over an error it caused.
    if let Some(e) = raised {
        return Err(e);
    }
    let outcome = outcome?;
    Ok((outcome.step, outcome.interrupted, outcome.best_valid_bits_per_dim))
}
