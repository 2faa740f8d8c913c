//! The matrix product at the heart of every masked convolution, `y_b = W x_b + bias` for each
//! image b, as one operation on the CPU backend (a Burn backend extension calling `gemm`
//! directly, with a hand-written derivative).
//!
//! Why: composed of Burn ops it is a batched product with the weight broadcast over the batch,
//! then a bias add; `flex`'s product zero-fills its output and copies it into an aligned
//! buffer, the bias add is another pass, and under autodiff the weight's gradient is a batched
//! product (one weight-sized matrix per image) followed by a sum over images (measured: 8% of a
//! PixelCNN training step in the output copies alone). Here the bias is the product's starting
//! value, and each thread accumulates its images' weight gradient in place.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use rayon::prelude::*;

use crate::kernels::flex_values::{from_values, runs_cpu_kernels, values};

/// Backends with a fused convolution product.
#[backend_extension(Flex, Autodiff)]
pub trait ConvProductBackend: Backend {
    /// See [`conv_product`].
    fn conv_product(
        weight: FloatTensor<Self>,
        columns: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl ConvProductBackend for Flex {
    fn conv_product(weight: FlexTensor, columns: FlexTensor, bias: FlexTensor) -> FlexTensor {
        forward(&weight, &columns, &bias)
    }
}

impl<C: CheckpointStrategy> ConvProductBackend for Autodiff<Flex, C> {
    fn conv_product(
        weight: FloatTensor<Self>,
        columns: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (weight, weight_node) = weight.into_parts();
        let (columns, columns_node) = columns.into_parts();
        let (bias, bias_node) = bias.into_parts();
        match ConvProductDerivative.prepare::<C>([weight_node, columns_node, bias_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = forward(&weight, &columns, &bias);
                prep.finish((weight, columns), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&weight, &columns, &bias)),
        }
    }
}

#[derive(Debug)]
struct ConvProductDerivative;

impl Backward<Flex, 3> for ConvProductDerivative {
    /// (weight, columns).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [weight_node, columns_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (weight, columns) = ops.state;
        let [batch, k, positions] = columns.shape().dims::<3>();
        let out = weight.shape().dims::<2>()[0];
        let sizes = Sizes { batch, out, k, positions };
        let (grad, weight_values, column_values) = (values(&grad), values(&weight), values(&columns));
        if let Some(node) = columns_node {
            let grad_columns = kernels::grad_columns(&weight_values, &grad, sizes);
            grads.register::<Flex>(node.id, from_values(grad_columns, columns.shape()));
        }
        if weight_node.is_some() || bias_node.is_some() {
            let (grad_weight, grad_bias) = kernels::grad_weight_and_bias(&column_values, &grad, sizes);
            if let Some(node) = weight_node {
                grads.register::<Flex>(node.id, from_values(grad_weight, weight.shape()));
            }
            if let Some(node) = bias_node {
                grads.register::<Flex>(node.id, from_values(grad_bias, Shape::new([out])));
            }
        }
    }
}

fn forward(weight: &FlexTensor, columns: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let [batch, k, positions] = columns.shape().dims::<3>();
    let [out, weight_k] = weight.shape().dims::<2>();
    assert_eq!(k, weight_k, "conv product: weight [{out}, {weight_k}] against columns of {k} rows");
    let sizes = Sizes { batch, out, k, positions };
    let output = kernels::forward(&values(weight), &values(columns), &values(bias), sizes);
    from_values(output, Shape::new([batch, out, positions]))
}

/// `y_b = weight x_b + bias` for every image b.
///
/// # Shapes
/// - `weight`: `[out, k]`
/// - `columns`: `[batch, k, positions]` (e.g. the stacked taps, positions = height x width)
/// - `bias`: `[out]`
/// - returns `[batch, out, positions]`
pub fn conv_product(weight: Tensor<2>, columns: Tensor<3>, bias: Tensor<1>) -> Tensor<3> {
    if !runs_cpu_kernels(&columns) {
        return conv_product_composed(weight, columns, bias);
    }
    Tensor::from_dispatch(<Dispatch as ConvProductBackend>::conv_product(
        weight.into_dispatch(),
        columns.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// [`conv_product`] composed of Burn tensor operations: runs on every backend.
pub fn conv_product_composed(weight: Tensor<2>, columns: Tensor<3>, bias: Tensor<1>) -> Tensor<3> {
    let [out, k] = weight.dims();
    weight.reshape([1, out, k]).matmul(columns) + bias.reshape([1, out, 1])
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    batch: usize,
    out: usize,
    k: usize,
    positions: usize,
}

/// The products, with `gemm` on row-major f32 slices. Images run in parallel, a few per task
/// with one single-threaded product each; a single image's product is parallel itself.
mod kernels {
    use super::*;
    use crate::kernels::matrix::{add_row_sums, product, row_major, transposed, Parallelism};
    use crate::kernels::par_blocks::par_blocks;

    /// Images per rayon task, and the parallelism inside each product. Fixed, not derived from
    /// the thread count, so that the weight gradient's sum over tasks is added in the same
    /// order on every machine (the same training run for the same seed).
    fn split(batch: usize) -> (usize, Parallelism) {
        const IMAGES_PER_TASK: usize = 2;
        if batch >= IMAGES_PER_TASK {
            (IMAGES_PER_TASK, Parallelism::None)
        } else {
            (1, Parallelism::Rayon(0))
        }
    }

    pub(super) fn forward(weight: &[f32], columns: &[f32], bias: &[f32], s: Sizes) -> Vec<f32> {
        let Sizes { batch, out, k, positions } = s;
        assert!(weight.len() == out * k && columns.len() == batch * k * positions && bias.len() == out);
        per_image(batch * out * positions, batch, |b, y, parallelism| {
            // The bias is the product's starting value.
            for (row, &value) in y.chunks_mut(positions.max(1)).zip(bias) {
                row.fill(value);
            }
            let x = &columns[b * k * positions..][..k * positions];
            let (w_cs, w_rs) = row_major(k);
            let (x_cs, x_rs) = row_major(positions);
            // SAFETY: weight is out x k, x is k x positions, y is out x positions, all
            // row-major within their slices; y is a distinct buffer.
            unsafe {
                product(
                    [out, positions, k],
                    y,
                    true,
                    (weight.as_ptr(), w_cs, w_rs),
                    (x.as_ptr(), x_cs, x_rs),
                    parallelism,
                )
            };
        })
    }

    /// A new buffer of `len` values in `batch` equal blocks, one per image: runs
    /// `each(b, block, parallelism)` on every image's (zeroed) block, in rayon tasks of
    /// [`split`]'s size.
    fn per_image(len: usize, batch: usize, each: impl Fn(usize, &mut [f32], Parallelism) + Sync) -> Vec<f32> {
        let block = len / batch.max(1);
        let (per_task, parallelism) = split(batch);
        par_blocks(len, per_task * block, 1, |task, chunk| {
            for (i, image) in chunk.chunks_mut(block.max(1)).enumerate() {
                each(task * per_task + i, image, parallelism);
            }
        })
    }

    /// d/d columns: `weight^T grad_b` for every image.
    pub(super) fn grad_columns(weight: &[f32], grad: &[f32], s: Sizes) -> Vec<f32> {
        let Sizes { batch, out, k, positions } = s;
        per_image(batch * k * positions, batch, |b, dx, parallelism| {
            let g = &grad[b * out * positions..][..out * positions];
            let (wt_cs, wt_rs) = transposed(k);
            let (g_cs, g_rs) = row_major(positions);
            // SAFETY: weight^T is k x out (weight row-major out x k, read transposed), g is
            // out x positions, dx is k x positions; dx is a distinct buffer.
            unsafe {
                product(
                    [k, positions, out],
                    dx,
                    false,
                    (weight.as_ptr(), wt_cs, wt_rs),
                    (g.as_ptr(), g_cs, g_rs),
                    parallelism,
                )
            };
        })
    }

    /// d/d weight: `sum_b grad_b columns_b^T`; d/d bias: `sum_b sum_p grad_b`. Each task sums
    /// its images into its own buffers, then the tasks' buffers are added in task order (the
    /// same order whatever the thread timing).
    pub(super) fn grad_weight_and_bias(columns: &[f32], grad: &[f32], s: Sizes) -> (Vec<f32>, Vec<f32>) {
        let Sizes { batch, out, k, positions } = s;
        let (per_task, parallelism) = split(batch);
        let tasks = batch.div_ceil(per_task.max(1));
        let partial: Vec<(Vec<f32>, Vec<f32>)> = (0..tasks)
            .into_par_iter()
            .map(|task| {
                let mut grad_weight = vec![0.0; out * k];
                let mut grad_bias = vec![0.0; out];
                for b in task * per_task..((task + 1) * per_task).min(batch) {
                    let g = &grad[b * out * positions..][..out * positions];
                    let x = &columns[b * k * positions..][..k * positions];
                    let (g_cs, g_rs) = row_major(positions);
                    let (xt_cs, xt_rs) = transposed(positions);
                    // SAFETY: g is out x positions, x^T is positions x k (x row-major k x
                    // positions, read transposed), grad_weight is out x k; distinct buffers.
                    unsafe {
                        product(
                            [out, k, positions],
                            &mut grad_weight,
                            true,
                            (g.as_ptr(), g_cs, g_rs),
                            (x.as_ptr(), xt_cs, xt_rs),
                            parallelism,
                        )
                    };
                    add_row_sums(&mut grad_bias, g, positions);
                }
                (grad_weight, grad_bias)
            })
            .collect();
        let mut total = (vec![0.0; out * k], vec![0.0; out]);
        for (grad_weight, grad_bias) in partial {
            total.0.iter_mut().zip(&grad_weight).for_each(|(t, v)| *t += v);
            total.1.iter_mut().zip(&grad_bias).for_each(|(t, v)| *t += v);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(dims: [usize; D], seed: usize, device: &Device) -> Tensor<D> {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i * 37 + seed * 11) % 23) as f32 / 7.0 - 1.5).collect();
        Tensor::from_data(TensorData::new(v, dims), device)
    }

    fn assert_close(a: Vec<f32>, b: Vec<f32>, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}[{i}]: fused {x} vs composed {y}");
        }
    }

    fn data<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Batches below and above the thread count (the two ways of splitting the work).
    const SHAPES: [[usize; 4]; 3] = [[1, 5, 7, 9], [3, 4, 6, 10], [13, 8, 3, 17]]; // [batch, out, k, positions]

    #[test]
    fn equals_the_broadcast_matmul_plus_bias() {
        let device = Device::flex();
        for [batch, out, k, positions] in SHAPES {
            let (w, x, b) =
                (values([out, k], 1, &device), values([batch, k, positions], 2, &device), values([out], 3, &device));
            let fused = data(conv_product(w.clone(), x.clone(), b.clone()));
            assert_close(fused, data(conv_product_composed(w, x, b)), "y");
        }
    }

    #[test]
    fn gradients_equal_autodiff_through_the_composition() {
        let device = Device::flex().autodiff();
        for [batch, out, k, positions] in SHAPES {
            let gradients = |f: fn(Tensor<2>, Tensor<3>, Tensor<1>) -> Tensor<3>| {
                let w = values([out, k], 1, &device).require_grad();
                // A transposed view, as strided inputs reach the op.
                let x = values([batch, positions, k], 2, &device).require_grad();
                let b = values([out], 3, &device).require_grad();
                let y = f(w.clone(), x.clone().swap_dims(1, 2), b.clone());
                let grads = (y * values([batch, out, positions], 4, &device)).sum().backward();
                [w.grad(&grads).map(data), x.grad(&grads).map(data), b.grad(&grads).map(data)]
                    .map(|g| g.expect("tracked"))
            };
            let (fused, composed) = (gradients(conv_product), gradients(conv_product_composed));
            for (name, (f, c)) in ["weight", "columns", "bias"].iter().zip(fused.into_iter().zip(composed)) {
                assert_close(f, c, name);
            }
        }
    }
}
