//! Geometric ops of the Diagonal BiLSTM (§3.2, Fig. 3), named after what they do to the map:
//! skew / unskew (each diagonal becomes a column and back), mirror, and the shift down of the
//! right-to-left direction. Skew and unskew run as one pass on the CPU kernels
//! (the `kernels::shear` module); their composed forms run elsewhere.

use burn::prelude::*;
use burn::tensor::ops::PadMode;

use crate::kernels::shear::{shear, Shear};

/// Skews a map so that the diagonals become columns: row `r` is shifted right by `r`.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - returns `[batch, channels, height, width + height - 1]`
pub fn skew(x: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    shear(x, Shear { right: true, out_width: width + height - 1 }, skew_composed)
}

/// [`skew`] composed of Burn tensor operations: runs on every backend.
pub fn skew_composed(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    let skewed_width = width + height - 1;
    // Pad each row with `height` zeros, flatten, and re-cut the rows one element shorter:
    // row r then starts r elements later, i.e. shifted right by r.
    x.pad((0, height, 0, 0), PadMode::Constant(0.0)) // [batch, channels, height, width + height]
        .reshape([batch, channels, height * (width + height)])
        .narrow(2, 0, height * skewed_width)
        .reshape([batch, channels, height, skewed_width])
}

/// Inverse of [`skew`]: row `r` is shifted left by `r` and cropped to `width`.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width + height - 1]`
/// - returns `[batch, channels, height, width]`
pub fn unskew(x: Tensor<4>, width: usize) -> Tensor<4> {
    let [_, _, height, skewed_width] = x.dims();
    assert_eq!(skewed_width, width + height - 1, "unskew: map is not a skewed {height}x{width} map");
    shear(x, Shear { right: false, out_width: width }, |x| unskew_composed(x, width))
}

/// [`unskew`] composed of Burn tensor operations: runs on every backend.
pub fn unskew_composed(x: Tensor<4>, width: usize) -> Tensor<4> {
    let [batch, channels, height, skewed_width] = x.dims();
    assert_eq!(skewed_width, width + height - 1, "unskew: map is not a skewed {height}x{width} map");
    x.reshape([batch, channels, height * skewed_width])
        .pad([(0, height)], PadMode::Constant(0.0)) // [batch, channels, height * (width + height)]
        .reshape([batch, channels, height, width + height])
        .narrow(3, 0, width)
}

/// Shifts a map down by one row: a zero row on top, the last row dropped. Applied to the
/// right-to-left direction so that row `i` only sees rows `< i` of it (§3.2).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` -> same
pub fn shift_down(x: Tensor<4>) -> Tensor<4> {
    let [_, _, height, _] = x.dims();
    x.pad((0, 0, 1, 0), PadMode::Constant(0.0)).narrow(2, 0, height)
}

/// Mirrors a map left-right.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` -> same
pub fn mirror(x: Tensor<4>) -> Tensor<4> {
    x.flip([3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(height: usize, width: usize) -> Tensor<4> {
        let data: Vec<f32> = (0..2 * height * width).map(|v| v as f32 + 1.0).collect();
        Tensor::from_data(TensorData::new(data, [1, 2, height, width]), &Device::flex())
    }

    #[test]
    fn skew_shifts_row_r_right_by_r() {
        let s = skew(map(3, 3));
        assert_eq!(s.dims(), [1, 2, 3, 5]);
        let v: Vec<f32> = s.narrow(1, 0, 1).into_data().try_to_vec::<f32>().unwrap();
        #[rustfmt::skip]
        let expected = vec![
            1.0, 2.0, 3.0, 0.0, 0.0,
            0.0, 4.0, 5.0, 6.0, 0.0,
            0.0, 0.0, 7.0, 8.0, 9.0,
        ];
        assert_eq!(v, expected);
    }

    #[test]
    fn unskew_inverts_skew_square_and_non_square() {
        for (h, w) in [(3, 3), (5, 7), (7, 5), (1, 4), (4, 1)] {
            let x = map(h, w);
            let back = unskew(skew(x.clone()), w);
            assert_eq!(back.into_data(), x.into_data(), "{h}x{w}");
        }
    }

    #[test]
    fn skew_and_unskew_equal_their_composed_forms_in_values_and_gradients() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            for (h, w) in [(3, 3), (5, 7), (7, 5), (1, 4), (4, 1)] {
                let input: Vec<f32> = (0..2 * 3 * h * w).map(|v| (v * 7 % 13) as f32 - 6.0).collect();
                let run = |skew: fn(Tensor<4>) -> Tensor<4>, unskew: fn(Tensor<4>, usize) -> Tensor<4>| {
                    let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [2, 3, h, w]), &device);
                    let x = if device.is_autodiff() { x.require_grad() } else { x };
                    let skewed = skew(x.clone());
                    // Weigh every place differently, so that a value moved to the wrong place
                    // changes the gradient; square it, so that the gradient depends on values.
                    let n = skewed.shape().num_elements();
                    let weights = Tensor::<4>::from_data(
                        TensorData::new((0..n).map(|v| (v % 11) as f32 / 5.0).collect(), skewed.dims()),
                        &device,
                    );
                    let moved = skewed.clone() * weights;
                    let back = unskew(moved.clone() * moved, w);
                    let grad = device.is_autodiff().then(|| {
                        let grads = back.clone().sum().backward();
                        x.grad(&grads).expect("tracked").into_data()
                    });
                    (skewed.into_data(), back.into_data(), grad)
                };
                assert_eq!(run(skew, unskew), run(skew_composed, unskew_composed), "{h}x{w}");
            }
        }
    }

    #[test]
    fn skew_reads_strided_views_in_row_major_order() {
        // The CPU kernel reads a strided view (permuted, sliced, flipped: negative strides) in
        // row-major order (`flex_values::values`): the same values as the composed form.
        let x = Tensor::<4>::from_data(
            TensorData::new((0..2 * 3 * 4 * 5).map(|v| v as f32).collect(), [2, 3, 4, 5]),
            &Device::flex(),
        );
        let views = [
            x.clone().swap_dims(2, 3),
            x.clone().permute([3, 0, 2, 1]),
            x.clone().narrow(2, 1, 2),
            x.clone().flip([3]),
            x.clone().flip([0, 2]).swap_dims(0, 3).narrow(1, 1, 2),
        ];
        for (i, view) in views.into_iter().enumerate() {
            assert_eq!(skew(view.clone()).into_data(), skew_composed(view).into_data(), "view {i}");
        }
    }

    #[test]
    fn shift_down_prepends_zero_row_and_drops_last() {
        let v: Vec<f32> = shift_down(map(3, 2)).narrow(1, 0, 1).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
    }
}
