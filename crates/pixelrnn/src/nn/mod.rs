//! Layers: masked convolutions, the two PixelRNN LSTM layers, the geometric ops they use,
//! and the output stack.

pub mod diagonal_lstm;
pub mod init;
pub mod masked_conv;
pub mod ops;
pub mod output;
pub mod row_lstm;
