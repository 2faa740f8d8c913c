//! The CPU kernels (Burn backend extensions on `flex`) against the same computation composed of
//! Burn ops, forward alone and forward + backward, at the shapes of the benchmark specs of
//! docs/bench-specs.md (batch as there).
//!
//! `cargo bench -p pixelrnn --bench kernels`. Names: `op/shape/{fused,composed}/{forward,forward_backward}`.

use burn::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use pixelrnn::kernels::conv_product::{conv_product, conv_product_composed};
use pixelrnn::kernels::lstm_cell::{lstm_cell, lstm_cell_composed};
use pixelrnn::kernels::shifted_taps::{shifted_taps, shifted_taps_composed, TapGeometry};
use pixelrnn::kernels::softmax_nll::{softmax_nll, softmax_nll_composed};
use pixelrnn::nn::skew::{skew, skew_composed, unskew, unskew_composed};

fn values<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|k| ((k * 7919) % 1009) as f32 / 300.0 - 1.7).collect();
    Tensor::from_data(TensorData::new(v, dims), device)
}

/// `x`, tracked for gradients when its device differentiates.
fn tracked<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.device().is_autodiff() {
        x.require_grad()
    } else {
        x
    }
}

type Cell = fn(Tensor<4>, Tensor<4>, Tensor<4>) -> Tensor<4>;
type Taps = fn(Tensor<4>, &TapGeometry) -> Tensor<4>;
type Nll = fn(Tensor<5>, Tensor<4, Int>) -> Tensor<4>;
type Product = fn(Tensor<2>, Tensor<3>, Tensor<1>) -> Tensor<3>;
type Skew = fn(Tensor<4>) -> Tensor<4>;
type Unskew = fn(Tensor<4>, usize) -> Tensor<4>;

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    group
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    for (name, autodiff) in [("forward", false), ("forward_backward", true)] {
        let device = if autodiff { Device::flex().autodiff() } else { Device::flex() };
        // One Row LSTM step of M3 (h = 32, batch 32, width 28), channel-major.
        for (kind, cell) in [("fused", lstm_cell as Cell), ("composed", lstm_cell_composed as Cell)] {
            let (gates, state) = (values([128, 32, 1, 28], &device), values([64, 32, 1, 28], &device));
            group.bench_function(format!("lstm_cell/row_h32_b32_w28/{kind}/{name}"), |b| {
                b.iter(|| {
                    let state = tracked(state.clone());
                    let out = cell(gates.clone(), gates.clone(), state);
                    if autodiff {
                        drop(out.sum().backward());
                    } else {
                        drop(out.into_data());
                    }
                })
            });
        }
        // The 3x3 mask B convolution's taps of an M1 residual block (h = 32, batch 32, 28x28).
        let geometry = TapGeometry {
            taps: vec![[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]],
            kernel: [3, 3],
            padding: [1, 1, 1, 1],
            channel_dim: 1,
        };
        for (kind, taps) in [("fused", shifted_taps as Taps), ("composed", shifted_taps_composed as Taps)] {
            let x = values([32, 32, 28, 28], &device);
            group.bench_function(format!("shifted_taps/3x3_mask_b_h32_b32_28x28/{kind}/{name}"), |b| {
                b.iter(|| {
                    let out = taps(tracked(x.clone()), &geometry);
                    if autodiff {
                        drop(out.sum().backward());
                    } else {
                        drop(out.into_data());
                    }
                })
            });
        }
        // The product of the same convolution: [32, 5 taps x 32] x [32 images, 160, 784] + bias.
        for (kind, product) in [("fused", conv_product as Product), ("composed", conv_product_composed as Product)] {
            let (weight, columns, bias) =
                (values([32, 160], &device), values([32, 160, 784], &device), values([32], &device));
            group.bench_function(format!("conv_product/3x3_mask_b_h32_b32_28x28/{kind}/{name}"), |b| {
                b.iter(|| {
                    let out = product(tracked(weight.clone()), columns.clone(), tracked(bias.clone()));
                    if autodiff {
                        drop(out.sum().backward());
                    } else {
                        drop(out.into_data());
                    }
                })
            });
        }
        // M2's output: 256-way softmax per sub-pixel (batch 16, RGB 32x32).
        for (kind, nll) in [("fused", softmax_nll as Nll), ("composed", softmax_nll_composed as Nll)] {
            let logits = values([16, 3, 256, 32, 32], &device);
            let targets = Tensor::<4, Int>::from_data(
                TensorData::new((0..16 * 3 * 1024).map(|k| (k * 31 % 256) as i64).collect::<Vec<_>>(), [16, 3, 32, 32]),
                &device,
            );
            group.bench_function(format!("softmax_nll/rgb_b16_32x32/{kind}/{name}"), |b| {
                b.iter(|| {
                    let out = nll(tracked(logits.clone()), targets.clone());
                    if autodiff {
                        drop(out.sum().backward());
                    } else {
                        drop(out.into_data());
                    }
                })
            });
        }
        // The Diagonal BiLSTM's skew of M4's gate map and unskew of its hidden map (h = 32,
        // batch 32, 28x28), one after the other.
        let skews = [("fused", skew as Skew, unskew as Unskew), ("composed", skew_composed, unskew_composed)];
        for (kind, skew, unskew) in skews {
            let (gates, hidden) = (values([32, 128, 28, 28], &device), values([32, 32, 28, 55], &device));
            group.bench_function(format!("skew_unskew/h32_b32_28x28/{kind}/{name}"), |b| {
                b.iter(|| {
                    let (skewed, unskewed) = (skew(tracked(gates.clone())), unskew(tracked(hidden.clone()), 28));
                    if autodiff {
                        drop((skewed.sum() + unskewed.sum()).backward());
                    } else {
                        drop((skewed.into_data(), unskewed.into_data()));
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
