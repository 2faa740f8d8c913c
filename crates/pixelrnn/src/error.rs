//! The library's error type. Every variant names the file or operation and what was expected.

use std::path::PathBuf;

/// Errors returned by the pixelrnn library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named file.
    // The I/O error is part of the message, not a `source`: the CLI prints an error's chain,
    // and would print the operating system's words twice.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A dataset file that is missing, truncated, corrupt or of the wrong format.
    #[error("{}: {reason}", path.display())]
    Dataset {
        /// The offending file (or folder).
        path: PathBuf,
        /// What was expected and what was found.
        reason: String,
    },
    /// A checkpoint that cannot be used.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A compute device that cannot be used (not compiled in, no loader, no adapter).
    #[error("device {device}: {reason}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why it cannot be used, and what was found instead.
        reason: String,
    },
    /// Work stopped on request before it was complete (a client gone, a time limit passed).
    #[error("stopped: {0}")]
    Cancelled(String),
    /// An invalid configuration or request.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A tensor of the wrong shape.
    #[error("{op}: expected shape {expected}, got {got}")]
    Shape {
        /// The operation that checked the shape.
        op: &'static str,
        /// The shape it needs.
        expected: String,
        /// The shape it was given.
        got: String,
    },
    /// Training diverged (NaN or infinite loss).
    #[error(
        "training diverged at step {step}: loss is {loss} (last good checkpoint kept; try a lower --lr or --grad-clip)"
    )]
    Diverged {
        /// The step at which the loss stopped being finite.
        step: u64,
        /// The loss value seen.
        loss: f64,
    },
    /// Compressed data (`.prnn`) that cannot be decoded: truncated, corrupt, another format
    /// version, coded with another model.
    #[error("{0}")]
    Codec(String),
    /// Weights (safetensors) that do not fit the model: a missing, extra or wrongly shaped
    /// tensor, metadata that disagrees with them, not a safetensors file.
    #[error("{0}")]
    Weights(String),
    /// Data-parallel training that cannot go on here: the replicas diverged, the ranks disagree,
    /// this rank failed (another rank's failure is [`Error::PeerFailed`]).
    #[error("distributed training: {0}")]
    Distributed(String),
    /// Data-parallel training stopped because another rank of the group failed (the cause is
    /// that rank's own error); `code` is what it aborted with.
    #[error("distributed training: another rank of the group failed (code {code})")]
    PeerFailed {
        /// The aborting rank's code.
        code: i32,
    },
    /// A download that failed or delivered the wrong bytes.
    #[error("download {url}: {reason}")]
    Download {
        /// The address fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An output that would destroy something: a target that is not a regular file (a device,
    /// a FIFO, a socket, a folder, a symbolic link), one of the command's own inputs, or a run
    /// directory's own file (see [`crate::fsio`]).
    #[error("refusing to write {}: {reason}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What is there, or which input it is.
        reason: String,
    },
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io { path: path.into(), cause }
    }

    /// A dataset error for `path`.
    pub fn dataset(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Dataset { path: path.into(), reason: reason.into() }
    }
}
