//! # pixelrnn
//!
//! PixelCNN, Row LSTM and Diagonal BiLSTM from *Pixel Recurrent Neural Networks*
//! (van den Oord, Kalchbrenner, Kavukcuoglu, ICML 2016, <https://arxiv.org/abs/1601.06759>),
//! on Burn.
//!
//! Module map:
//! - [`masks`]: mask A / B visibility with R->G->B colour groups, as pure data;
//! - [`nn`]: masked convolution, Row LSTM and Diagonal LSTM layers, skew/unskew, output stack,
//!   and the CPU kernels (fused LSTM cell, tap stacking, convolution product, softmax NLL);
//! - [`models`]: the three architectures behind [`models::PixelRnn`], their config and presets;
//! - [`device`]: the CPU (`flex`) or a GPU (Vulkan / wgpu features), chosen at run time;
//! - [`likelihood`]: exact NLL in nats and bits/dim (one function used everywhere);
//! - [`error`]: the library's error type.
//!
//! ```
//! use burn::prelude::*;
//! use pixelrnn::models::{Architecture, ImageSpec, ModelConfig};
//!
//! let device = Device::flex();
//! let image = ImageSpec { channels: 1, height: 8, width: 8, levels: 2 };
//! let config = ModelConfig::preset("tiny", Architecture::DiagonalBilstm, image).unwrap();
//! let model = config.init(&device, 42).unwrap();
//! let images = Tensor::<4, Int>::zeros([2, 1, 8, 8], &device);
//! let nats: Vec<f32> = model.nll(images).into_data().try_to_vec::<f32>().unwrap(); // one NLL per image
//! let bits = pixelrnn::likelihood::bits_per_dim(nats[0] as f64, image.dims());
//! assert!(bits > 0.0);
//! ```
#![deny(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod images;
pub mod likelihood;
pub mod masks;
pub mod models;
pub mod nn;
pub mod plot;
pub mod sample;
pub mod score;
pub mod train;

pub use error::{Error, Result};
