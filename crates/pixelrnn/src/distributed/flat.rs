//! Gradients and parameters as one flat `f32` vector, in the module's own visiting order.
//!
//! Parameter ids are random per process, so ranks cannot match gradients by id; two models
//! built from the same config visit their parameters in the same order, so the position in
//! the flat vector is the match. Parameters without a gradient take no room (which ones have
//! one is a property of the model, the same on every rank).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
pub use crate::models::parameters::flatten_parameters;
use crate::models::PixelRnn;

fn values_of<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data after convert")
}

/// `grads` of `model`'s parameters, concatenated in visiting order.
pub fn flatten_gradients(model: &PixelRnn, grads: &GradientsParams) -> Vec<f32> {
    struct Flatten<'a> {
        grads: &'a GradientsParams,
        out: Vec<f32>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.out.extend(values_of(g));
            }
        }
    }
    let mut v = Flatten { grads, out: Vec::new() };
    model.visit(&mut v);
    v.out
}

/// Puts `flat` (from [`flatten_gradients`] of a model with the same config, possibly in
/// another process) back into `grads`, tensor by tensor, in `model`'s visiting order; the
/// tensors keep their shapes and devices. An error if the lengths do not match.
pub fn unflatten_gradients(model: &PixelRnn, mut grads: GradientsParams, flat: &[f32]) -> Result<GradientsParams> {
    struct Unflatten<'a> {
        grads: &'a mut GradientsParams,
        flat: &'a [f32],
        at: usize,
        short: bool,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(g) = self.grads.remove::<D>(param.id) else { return };
            let shape = g.shape();
            let n = shape.num_elements();
            let Some(values) = self.flat.get(self.at..self.at + n) else {
                self.short = true;
                return;
            };
            self.at += n;
            let t = Tensor::<D>::from_data(TensorData::new(values.to_vec(), shape), &g.device());
            self.grads.register::<D>(param.id, t);
        }
    }
    let mut v = Unflatten { grads: &mut grads, flat, at: 0, short: false };
    model.visit(&mut v);
    if v.short || v.at != flat.len() {
        return Err(Error::Distributed(format!(
            "gradient vector of {} values does not fit this model's {} gradient values",
            flat.len(),
            if v.short { "more".to_string() } else { v.at.to_string() }
        )));
    }
    Ok(grads)
}

/// SHA-256 of the bytes of every parameter: equal on two ranks exactly when their replicas
/// are bitwise identical.
pub fn parameter_digest(model: &PixelRnn) -> [u8; 32] {
    let mut hash = Sha256::new();
    for v in flatten_parameters(model) {
        hash.update(v.to_le_bytes());
    }
    hash.finalize().into()
}
