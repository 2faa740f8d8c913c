//! Layers: masked convolutions, the two PixelRNN LSTM layers, the geometric ops they use,
//! and the output stack.

mod contiguous;
pub mod diagonal_lstm;
mod fast_math;
mod flex_values;
pub mod init;
pub mod lstm_cell;
mod lstm_cell_cpu;
mod lstm_cell_op;
pub mod masked_conv;
pub mod ops;
pub mod output;
pub mod row_lstm;
pub mod shifted_taps;
pub mod softmax_nll;
mod strided_copy;
