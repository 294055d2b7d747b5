//! A safe wrapper around the `gemm` crate's f32 matrix product, the one place where the
//! layers touch raw pointers.

/// `c (+)= a · b` for row-major matrices: `a` is m×k with row stride `lda`, `b` k×n with row
/// stride `ldb`, `c` m×n with row stride `ldc`; with `accumulate` the product is added to `c`,
/// otherwise it replaces it. With `threads` > 1 the product is split over that many threads of
/// the current rayon pool (a tile alone on its pool), else it runs on the calling thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The slices must cover every element the product touches: checked here, always, because
    // the call below trusts them.
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm: c too small"
    );
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                c[row * ldc..row * ldc + n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        lda >= k && a.len() >= (m - 1) * lda + k,
        "gemm: a too small"
    );
    assert!(
        ldb >= n && b.len() >= (k - 1) * ldb + n,
        "gemm: b too small"
    );
    // SAFETY: the asserts above guarantee that every index the product reads or writes
    // (row * stride + column, within m×k, k×n and m×n) lies inside the slices; `c` is borrowed
    // mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            accumulate,
            a.as_ptr(),
            1,
            lda as isize,
            b.as_ptr(),
            1,
            ldb as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_product_with_strides() {
        // a = [[1,2],[3,4]] (stride 3), b = [[5,6],[7,8]] (stride 2)
        let a = [1.0, 2.0, 0.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [100.0, 100.0, -1.0, 100.0, 100.0];
        sgemm(2, 2, 2, &a, 3, &b, 2, &mut c, 3, false, 1);
        assert_eq!(c, [19.0, 22.0, -1.0, 43.0, 50.0]);
        sgemm(2, 2, 2, &a, 3, &b, 2, &mut c, 3, true, 2);
        assert_eq!(c, [38.0, 44.0, -1.0, 86.0, 100.0]);
    }
}
