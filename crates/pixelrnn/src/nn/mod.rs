//! The paper's layers, one concept per file: masked convolution (§3.4), the Row LSTM (§3.1)
//! and Diagonal LSTM (§3.2) layers, the scan of Eq. (3) they share, the skew and the other
//! geometric ops of the Diagonal BiLSTM, the output stack (Table 1), initialisation, and the
//! per-position maps of the layers' step forms. The CPU kernels they run on live in
//! [`crate::kernels`]; each op picks its own path, so these files read as the paper.

pub mod diagonal_lstm;
pub mod dropout;
pub mod init;
pub mod masked_conv;
pub mod output;
pub(crate) mod position_map;
pub mod row_lstm;
pub(crate) mod scan;
pub mod skew;
