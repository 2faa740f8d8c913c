//! Moving values between `flex` tensors and plain slices, for the CPU kernels of the backend
//! extensions, and the test of whether a tensor goes to those kernels at all.

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;

/// Whether `x` goes to the CPU kernels: f32 on the `flex` backend, with or without autodiff.
/// Elsewhere (GPU backends, other float types) each operation takes its composed path.
pub(crate) fn runs_cpu_kernels<const D: usize>(x: &Tensor<D>) -> bool {
    x.device().inner() == Device::flex() && x.dtype() == DType::F32
}

/// The tensor's values in row-major order: borrowed when they already lie so in memory (the
/// common case), copied otherwise (e.g. a transposed view).
pub(crate) fn values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => Cow::Borrowed(values),
        None => {
            Cow::Owned(tensor.clone().into_data().try_into_vec::<f32>().expect("the CPU kernels run on f32 tensors"))
        }
    }
}

/// A contiguous f32 tensor holding `values`.
pub(crate) fn from_values(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
