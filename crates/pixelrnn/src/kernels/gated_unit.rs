//! The gated activation unit of Gated PixelCNN (van den Oord et al. 2016, "Conditional Image
//! Generation with PixelCNN Decoders", Eq. 2): y = tanh(a) * sigmoid(b), where `[a | b]` are the
//! two halves of a map's channels.
//!
//! On the CPU backend this is one fused operation (`gated_unit_op`: one vectorised pass forward,
//! one back, with the crate's branch-free `tanh`/`sigmoid`); composed of Burn's operations it
//! was five (two slices, two activations, a product) with their autodiff records, and Burn's
//! activations call libm one element at a time (measured: 16% of an M5 training step in
//! `tanhf`/`expm1f`/`expf`, BENCHMARKS.md). On other backends (GPU) it is composed
//! ([`gated_unit_composed`], also the reference the fused one is tested against).

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::kernels::flex_values::runs_cpu_kernels;
use crate::kernels::gated_unit_op::GatedUnitBackend;

/// tanh(a) * sigmoid(b) of the two halves `[a | b]` of `x` along the channels.
///
/// # Shapes
/// - `x`: `[batch, 2n, height, width]` -> `[batch, n, height, width]`
pub fn gated_unit(x: Tensor<4>) -> Tensor<4> {
    if !runs_cpu_kernels(&x) {
        return gated_unit_composed(x);
    }
    Tensor::from_dispatch(<Dispatch as GatedUnitBackend>::gated_unit(x.into_dispatch()))
}

/// [`gated_unit`] composed of Burn tensor operations: runs on every backend.
pub fn gated_unit_composed(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    let n = channels / 2;
    let a = x.clone().slice([0..batch, 0..n, 0..height, 0..width]);
    let b = x.slice([0..batch, n..2 * n, 0..height, 0..width]);
    a.tanh() * sigmoid(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lstm_cell_cpu::test_values;

    fn random(shape: [usize; 4], seed: u32, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(test_values(shape.iter().product(), seed), shape), device)
    }

    fn assert_close(got: Vec<f32>, want: Vec<f32>, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: sizes");
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}[{k}]: fused {a} vs composed {b}");
        }
    }

    #[test]
    fn fused_equals_composed_without_autodiff() {
        let device = Device::flex();
        // Large enough to be split across tasks, odd sizes so no chunk is whole.
        let x = random([3, 2 * 7, 33, 29], 1, &device);
        assert!(runs_cpu_kernels(&x), "the CPU backend takes the fused path");
        let fused = gated_unit(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_close(fused, gated_unit_composed(x).into_data().try_to_vec::<f32>().unwrap(), "y");
    }

    /// The fused derivative against autodiff through the composed operations, with an input
    /// that is a strided view and an output used twice.
    #[test]
    fn fused_gradients_equal_composed_gradients() {
        let device = Device::flex().autodiff();
        let run = |unit: fn(Tensor<4>) -> Tensor<4>| {
            let x = random([6, 2, 5, 7], 2, &device).require_grad(); // viewed as [2, 6, 5, 7]
            let weights = random([2, 3, 5, 7], 3, &device);
            let y = unit(x.clone().swap_dims(0, 1));
            let loss = (y.clone() * weights).sum() + (y.clone() * y).sum();
            x.grad(&loss.backward()).expect("tracked").into_data().try_to_vec::<f32>().unwrap()
        };
        assert_close(run(gated_unit), run(gated_unit_composed), "dx");
    }

    #[test]
    fn odd_channel_counts_are_refused_with_a_message() {
        let x = random([1, 3, 2, 2], 4, &Device::flex());
        let result = std::panic::catch_unwind(|| gated_unit(x));
        assert!(result.is_err(), "an odd channel count has no two halves");
    }
}
