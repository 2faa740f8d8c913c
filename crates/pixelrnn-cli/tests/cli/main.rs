//! End-to-end tests of the `pixelrnn` binary on tiny presets (seconds each): one test binary,
//! one module per command, shared helpers in `common`.

mod bench;
mod browser;
mod common;
mod compress;
mod conditional;
mod data;
mod distributed;
mod eval;
mod experiment;
mod field;
mod gated;
mod interop;
mod mixture;
mod outputs;
mod pretrained;
mod sample;
mod serve;
mod train;
