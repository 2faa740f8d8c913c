//! Matrix products on row-major f32 slices through `gemm` (the crate and version `flex` uses),
//! and row sums, for the CPU kernels that call them directly.

use gemm::gemm;
pub(crate) use gemm::Parallelism;

/// Strides (column, row) of a row-major matrix with `columns` columns.
pub(crate) fn row_major(columns: usize) -> (isize, isize) {
    (1, columns as isize)
}

/// Strides (column, row) of the transpose of a row-major matrix with `columns` columns.
pub(crate) fn transposed(columns: usize) -> (isize, isize) {
    (columns as isize, 1)
}

/// Adds each row's sum of a row-major matrix with `columns` columns to `sums` (one per row).
pub(crate) fn add_row_sums(sums: &mut [f32], matrix: &[f32], columns: usize) {
    for (sum, row) in sums.iter_mut().zip(matrix.chunks(columns.max(1))) {
        *sum += row.iter().sum::<f32>();
    }
}

/// `dst (m x n) = [dst +] lhs (m x k) rhs (k x n)`, each given as (pointer, column stride,
/// row stride); `dst` row-major.
///
/// # Safety
/// The pointers and strides must describe matrices of these sizes within live slices, and
/// `dst` must not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    (lhs, lhs_cs, lhs_rs): (*const f32, isize, isize),
    (rhs, rhs_cs, rhs_rs): (*const f32, isize, isize),
    parallelism: Parallelism,
) {
    assert!(dst.len() >= m * n, "product: destination too small");
    // SAFETY: as the caller promises; `dst` is a row-major m x n block of a live slice.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
