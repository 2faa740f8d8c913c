//! Moving values between `flex` tensors and plain slices, for the CPU kernels of the backend
//! extensions (`lstm_cell_op`, `shifted_taps`).

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, TensorData};

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
