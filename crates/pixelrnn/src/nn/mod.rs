//! Layers: masked convolutions, the two PixelRNN LSTM layers, the geometric ops they use,
//! and the output stack; and the CPU kernels behind them (`lstm_cell`, `shifted_taps`,
//! `softmax_nll`, `conv_product`, `contiguous`, `rows`, `shear`, `lstm_scan`: Burn backend extensions on the `flex` backend, each with a
//! hand-written derivative and a composed-of-Burn-ops equivalent that other backends run).

mod contiguous;
pub mod conv_product;
pub mod diagonal_lstm;
mod fast_math;
mod flex_values;
pub mod init;
pub mod lstm_cell;
mod lstm_cell_cpu;
mod lstm_cell_op;
mod lstm_scan;
pub mod masked_conv;
mod matrix;
pub mod ops;
pub mod output;
mod par_blocks;
pub mod row_lstm;
mod rows;
mod shear;
pub mod shifted_taps;
pub mod softmax_nll;
mod strided_copy;
