//! # pixelrnn
//!
//! PixelCNN, Row LSTM and Diagonal BiLSTM from *Pixel Recurrent Neural Networks*
//! (van den Oord, Kalchbrenner, Kavukcuoglu, ICML 2016, <https://arxiv.org/abs/1601.06759>),
//! on Burn.
//!
//! Module map:
//! - [`masks`]: mask A / B visibility with R->G->B colour groups, as pure data;
//! - [`image_spec`]: the images a model is built for, their input scaling and logits layout;
//! - [`nn`]: the paper's layers: masked convolution, Row LSTM and Diagonal LSTM layers,
//!   skew/unskew, output stack, each with its per-position step form;
//! - [`kernels`]: the CPU kernels the layers run on (fused LSTM cell and scan, tap stacking,
//!   convolution product, softmax NLL, shear), each beside its composed reference;
//! - [`models`]: the three architectures behind [`models::PixelRnn`], their config and presets,
//!   and the model's incremental form ([`models::Incremental`]) that sampling drives;
//! - [`device`]: the CPU (`flex`) or a GPU (Vulkan / wgpu features), chosen at run time;
//! - [`distribution`]: what the output predicts of one sub-pixel (sigmoid or softmax): its
//!   parameter layout, tensor NLL and host probabilities, for training, sampling, codec and score;
//! - [`likelihood`]: exact NLL in nats and bits/dim (one function used everywhere);
//! - [`codec`]: lossless compression of images with a model (`.prnn` files);
//! - [`interop`]: weights to and from safetensors (ours, or the PyTorch twin's layout);
//! - [`ema`]: Polyak averaging of the weights, kept in the checkpoint;
//! - [`distributed`]: data-parallel training's collective operations (threads, MPI);
//! - [`reproduce`]: the paper's tables 2-5 as runs, scored and summarized;
//! - [`run`]: the run directory (config, checkpoints, metrics, plot);
//! - [`fsio`]: files written and read under one policy (atomic, never onto a device, a link or
//!   an input; bounded reads), a leaf that `data`, `run` and the codec share;
//! - [`error`]: the library's error type.
//!
//! ```
//! use burn::prelude::*;
//! use pixelrnn::image_spec::ImageSpec;
//! use pixelrnn::models::{Architecture, ModelConfig, Preset};
//!
//! let device = Device::flex();
//! let image = ImageSpec { channels: 1, height: 8, width: 8, levels: 2 };
//! let config = ModelConfig::preset(Preset::Tiny, Architecture::DiagonalBilstm, image).unwrap();
//! let model = config.init(&device, 42).unwrap();
//! let images = Tensor::<4, Int>::zeros([2, 1, 8, 8], &device);
//! let nats: Vec<f32> = model.nll(images).into_data().try_to_vec::<f32>().unwrap(); // one NLL per image
//! let bits = pixelrnn::likelihood::bits_per_dim(nats[0] as f64, image.dims());
//! assert!(bits > 0.0);
//! ```
#![deny(missing_docs)]
// `unsafe` only in the CPU kernels (allowed on that module alone).
#![deny(unsafe_code)]

pub mod bench;
pub mod checkpoint;
pub mod codec;
pub mod data;
pub mod device;
pub mod distributed;
pub mod distribution;
pub mod ema;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod field;
// The floating-point environment (control registers): `unsafe` allowed on this module alone, as
// on `kernels`.
#[allow(unsafe_code)]
pub mod fpenv;
pub mod fsio;
pub mod image_spec;
pub mod images;
pub mod interop;
#[allow(unsafe_code)]
pub mod kernels;
pub mod likelihood;
pub mod masks;
pub mod models;
pub mod nn;
pub mod plot;
pub mod png;
pub mod reproduce;
pub mod resources;
pub mod run;
pub mod sample;
pub mod score;
pub mod train;

pub use error::{Error, Result};
