//! The CPU kernels: Burn backend extensions on the `flex` backend, each with a hand-written
//! derivative under autodiff and tested against the same computation composed of Burn tensor
//! operations, which every other backend (the GPU) runs. Every op here chooses its own path
//! (fused on `flex` f32 tensors, composed elsewhere), so the layers of [`crate::nn`] call one
//! function. All of the crate's `unsafe` code is here.
//!
//! - [`lstm_cell`]: Eq. (3), one step (loops in `lstm_cell_cpu`, also the incremental engine's
//!   host Eq. 3);
//! - `lstm_scan`: a whole LSTM layer's scan, forward and back-propagation through the steps;
//! - [`shifted_taps`] and [`conv_product`]: a masked convolution as one product over its
//!   visible taps;
//! - [`softmax_nll`]: the 256-way softmax's negative log-likelihood (§5.1);
//! - [`gated_unit`]: Gated PixelCNN's tanh(a) * sigmoid(b);
//! - [`fma_peak`]: the machine's measured FMA peak (the bench's denominator);
//! - `position_product`: the step form's product at one position, across SIMD lanes;
//! - [`exact_exp`]: the host side's bit-reproducible e^x, one value or a slice at a time;
//! - `shear`: skew / unskew in one pass; `rows`, `contiguous`, `strided_copy`: slices and
//!   layout copies; `matrix`, `par_blocks`, `fast_math`, `flex_values`: shared machinery.

pub(crate) mod contiguous;
pub mod conv_product;
pub mod exact_exp;
pub(crate) mod fast_math;
pub(crate) mod flex_values;
pub mod fma_peak;
pub mod gated_unit;
mod gated_unit_op;
pub mod lstm_cell;
pub(crate) mod lstm_cell_cpu;
mod lstm_cell_op;
pub(crate) mod lstm_scan;
mod matrix;
mod par_blocks;
pub(crate) mod position_product;
pub(crate) mod rows;
pub(crate) mod shear;
pub mod shifted_taps;
pub mod softmax_nll;
mod strided_copy;
