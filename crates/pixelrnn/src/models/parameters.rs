//! A model's float parameters as one flat `f32` vector in the module's own visiting order (the
//! same for every model built from one config), and back: what the weight average and the
//! data-parallel replicas work on.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::error::{Error, Result};
use crate::models::PixelRnn;

fn values_of<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data after convert")
}

/// Every float parameter of `model`, concatenated in visiting order.
pub fn flatten_parameters(model: &PixelRnn) -> Vec<f32> {
    struct Flatten(Vec<f32>);
    impl ModuleVisitor for Flatten {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(values_of(param.val()));
        }
    }
    let mut v = Flatten(Vec::new());
    model.visit(&mut v);
    v.0
}

/// The number of float parameter values of `model` (the length of [`flatten_parameters`]).
pub fn parameter_count(model: &PixelRnn) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 += param.shape().num_elements();
        }
    }
    let mut v = Count(0);
    model.visit(&mut v);
    v.0
}

/// `model` with its float parameters replaced by `flat` (from [`flatten_parameters`] of a
/// model with the same config): shapes, devices and parameter ids are kept. An error if the
/// length does not match.
pub fn with_parameters(model: PixelRnn, flat: &[f32]) -> Result<PixelRnn> {
    let expected = parameter_count(&model);
    if flat.len() != expected {
        return Err(Error::Shape {
            op: "with_parameters",
            expected: format!("{expected} parameter values"),
            got: format!("{} values", flat.len()),
        });
    }
    struct Replace<'a> {
        flat: &'a [f32],
        at: usize,
    }
    impl ModuleMapper for Replace<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let n = param.shape().num_elements();
            let values = &self.flat[self.at..self.at + n];
            self.at += n;
            param.map(|tensor| {
                let grad = tensor.is_require_grad();
                let replaced =
                    Tensor::<D>::from_data(TensorData::new(values.to_vec(), tensor.shape()), &tensor.device());
                if grad {
                    replaced.require_grad()
                } else {
                    replaced
                }
            })
        }
    }
    Ok(model.map(&mut Replace { flat, at: 0 }))
}

/// A model whose parameters are the gradients in `grads` (zero where a parameter has none) of
/// `model`'s: how the first step's gradients are written with the weights' names and layout
/// (`train --gradients-out`, read by the parity harness).
pub fn gradients_as_model(model: &PixelRnn, grads: &burn::optim::GradientsParams) -> PixelRnn {
    struct AsParams<'a>(&'a burn::optim::GradientsParams);
    impl burn::module::ModuleMapper for AsParams<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let id = param.id;
            let value = param.val();
            let grad = self.0.get::<D>(id).unwrap_or_else(|| value.zeros_like());
            Param::initialized(id, grad)
        }
    }
    model.valid().map(&mut AsParams(grads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_spec::ImageSpec;
    use crate::models::{Architecture, ModelConfig, Preset};

    #[test]
    fn parameters_go_out_and_back_unchanged_and_a_wrong_length_is_refused() {
        let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
        let config = ModelConfig::preset(Preset::Tiny, Architecture::DiagonalBilstm, image).unwrap();
        let device = Device::flex();
        let a = config.init(&device, 1).unwrap();
        let b = config.init(&device, 2).unwrap();
        let flat_a = flatten_parameters(&a);
        assert_eq!(flat_a.len(), parameter_count(&a));
        assert_ne!(flat_a, flatten_parameters(&b));
        let b = with_parameters(b, &flat_a).unwrap();
        assert_eq!(flatten_parameters(&b), flat_a);
        let images = Tensor::<4, Int>::ones([1, 1, 4, 4], &device);
        let (na, nb) = (a.nll(images.clone()).into_scalar::<f32>(), b.nll(images).into_scalar::<f32>());
        assert_eq!(na, nb, "the same parameters give the same NLL");
        let err = with_parameters(b, &flat_a[1..]).unwrap_err().to_string();
        assert!(err.contains("parameter values"), "{err}");
    }
}
