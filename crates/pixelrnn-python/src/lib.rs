//! The native part of the `pixelrnn` Python package (PyO3, abi3): the library's models,
//! likelihoods, sampler, codec and training loop behind a small flat API of bytes and shapes.
//! The typed Python layer (`python/pixelrnn/__init__.py`) turns NumPy arrays into these bytes
//! and back and checks dtypes and shapes; everything long runs with the GIL released.
//!
//! Images cross as raw `uint8` bytes, `[count][channels][height][width]` row-major, the layout
//! of [`pixelrnn::data::ImageSet::pixels`]; labels as one byte per image.

mod model;
mod train;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

/// mimalloc, as the `pixelrnn` binary uses, so that the Python module runs at the CLI's speed
/// (BENCHMARKS.md: glibc's malloc returns a training step's large buffers to the kernel and
/// faults them back in every step). Rust's allocations only; Python's own are untouched.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _native,
    PixelRnnError,
    PyException,
    "An error of the pixelrnn library: a damaged or mismatched file, an image the model cannot take, a run that cannot be loaded."
);

/// The library's error (with its causes, on one line) as a Python exception.
pub(crate) fn error(e: impl std::fmt::Display) -> PyErr {
    PixelRnnError::new_err(e.to_string())
}

/// An `anyhow` error with its causes.
pub(crate) fn anyhow_error(e: anyhow::Error) -> PyErr {
    PixelRnnError::new_err(format!("{e:#}"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    model::keep_freed_pages();
    m.add("PixelRnnError", m.py().get_type::<PixelRnnError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    Ok(())
}
