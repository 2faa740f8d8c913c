//! The LSTM state update of Eq. (3), shared by the Row LSTM (§3.1) and the Diagonal BiLSTM
//! (§3.2): c_i = f * c_{i-1} + i * g;  h_i = o * tanh(c_i), with [o, f, i, g] = sigma of the
//! summed input-to-state and state-to-state convolutions (sigmoid for o, f, i; tanh for g).
//!
//! On the CPU backend this is one fused operation per scan step (`lstm_cell_op`); on other
//! backends (GPU) it is composed from Burn's tensor operations ([`lstm_cell_composed`], also
//! the reference the fused one is tested against).

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::kernels::flex_values::runs_cpu_kernels;
use crate::kernels::lstm_cell_op::LstmCellBackend;

/// One step of Eq. (3) on channel-major maps.
///
/// # Shapes
/// - `input_gates`, `state_gates`: `[4h, ..]`, the o, f, i, g pre-activations in that order
///   along dimension 0 (K^is * x and K^ss * h_{i-1}; they are summed)
/// - `state`: `[2h, ..]`, the previous cell then the previous hidden state
/// - returns the new state `[2h, ..]`, cell then hidden
pub fn lstm_cell(input_gates: Tensor<4>, state_gates: Tensor<4>, state: Tensor<4>) -> Tensor<4> {
    if !runs_cpu_kernels(&state) {
        return lstm_cell_composed(input_gates, state_gates, state);
    }
    Tensor::from_dispatch(<Dispatch as LstmCellBackend>::lstm_cell(
        input_gates.into_dispatch(),
        state_gates.into_dispatch(),
        state.into_dispatch(),
    ))
}

/// [`lstm_cell`] composed of Burn tensor operations: runs on every backend.
pub fn lstm_cell_composed(input_gates: Tensor<4>, state_gates: Tensor<4>, state: Tensor<4>) -> Tensor<4> {
    let h = state.dims()[0] / 2;
    let gates = input_gates + state_gates;
    let mut parts = gates.chunk(4, 0).into_iter();
    let mut next = || parts.next().expect("gates split into exactly 4 chunks");
    let (o, f, i, g) = (sigmoid(next()), sigmoid(next()), sigmoid(next()), next().tanh());
    let cell = f * state.narrow(0, 0, h) + i * g;
    let hidden = o * cell.clone().tanh();
    Tensor::cat(vec![cell, hidden], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(shape: [usize; 4], seed: u32, device: &Device) -> Tensor<4> {
        let values = crate::kernels::lstm_cell_cpu::test_values(shape.iter().product(), seed);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn assert_close(got: Tensor<4>, want: Tensor<4>, what: &str) {
        let (got, want) = (got.into_data().try_to_vec::<f32>().unwrap(), want.into_data().try_to_vec::<f32>().unwrap());
        assert_eq!(got.len(), want.len(), "{what}: sizes");
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}[{k}]: fused {a} vs composed {b}");
        }
    }

    #[test]
    fn fused_equals_composed_without_autodiff() {
        let device = Device::flex();
        let (h, rest) = (3, [2, 4, 5]);
        let x = random([4 * h, rest[0], rest[1], rest[2]], 1, &device);
        let s = random([4 * h, rest[0], rest[1], rest[2]], 2, &device);
        let state = random([2 * h, rest[0], rest[1], rest[2]], 3, &device);
        assert!(runs_cpu_kernels(&state), "the CPU backend takes the fused path");
        let fused = lstm_cell(x.clone(), s.clone(), state.clone());
        assert_close(fused, lstm_cell_composed(x, s, state), "new state");
    }

    /// The fused derivative against autodiff through the composed operations, with inputs that
    /// are strided views (as the scans pass them) and a loss that weights cell and hidden.
    #[test]
    fn fused_gradients_equal_composed_gradients() {
        let device = Device::flex().autodiff();
        assert!(
            runs_cpu_kernels(&Tensor::<4>::zeros([1, 1, 1, 1], &device)),
            "autodiff on the CPU backend takes the fused path"
        );
        let h = 2;
        let run = |cell: fn(Tensor<4>, Tensor<4>, Tensor<4>) -> Tensor<4>| {
            let x = random([2, 4 * h, 3, 5], 4, &device).require_grad();
            let s = random([4 * h, 2, 3, 5], 5, &device).require_grad();
            let state = random([2 * h, 2, 3, 5], 6, &device).require_grad();
            let weights = random([2 * h, 2, 3, 5], 7, &device);
            // A second step, so the gradient flows through the first one's state output.
            let first = cell(x.clone().swap_dims(0, 1), s.clone(), state.clone());
            let second = cell(x.clone().swap_dims(0, 1), s.clone(), first);
            let grads = (second * weights).sum().backward();
            [x.grad(&grads), s.grad(&grads), state.grad(&grads)].map(|g| g.expect("tracked").into_data())
        };
        let fused = run(lstm_cell);
        let composed = run(lstm_cell_composed);
        for (name, (f, c)) in ["input gates", "state gates", "state"].iter().zip(fused.into_iter().zip(composed)) {
            let (f, c) = (f.try_to_vec::<f32>().unwrap(), c.try_to_vec::<f32>().unwrap());
            for (k, (a, b)) in f.iter().zip(&c).enumerate() {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "d {name}[{k}]: fused {a} vs composed {b}");
            }
        }
    }
}
