//! A bounds-checked front to the `gemm` crate's blocked matrix product.
//!
//! The `gemm` crate takes raw pointers and strides; every call here first proves that the last
//! element each matrix can touch lies inside its slice, so the kernels above stay in safe Rust.

use gemm::Parallelism;

/// The element types our CPU kernels run on (the `gemm` crate has SIMD kernels for both).
pub(crate) trait Element:
    Copy + Send + Sync + 'static + std::ops::AddAssign + std::fmt::Debug
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// A read-only strided matrix view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> View<'a, T> {
    /// A row-major view with `cols` columns.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        View {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [T], cols: usize) -> Self {
        View {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

/// Whether an `r × c` matrix with strides `rs, cs` fits in `len` elements.
fn fits(len: usize, r: usize, c: usize, rs: usize, cs: usize) -> bool {
    r == 0 || c == 0 || (r - 1) * rs + (c - 1) * cs < len
}

/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)`, where `dst`'s element `(r, c)` is
/// `dst[r * dst_rs + c * dst_cs]`.
///
/// # Panics
/// If a view does not hold its matrix: that is a bug in the calling kernel, never user input.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Element>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: View<'_, T>,
    rhs: View<'_, T>,
    parallelism: Parallelism,
) {
    assert!(fits(dst.len(), m, n, dst_rs, dst_cs), "gemm: dst too small");
    assert!(
        fits(lhs.data.len(), m, k, lhs.rs, lhs.cs),
        "gemm: lhs too small"
    );
    assert!(
        fits(rhs.data.len(), k, n, rhs.rs, rhs.cs),
        "gemm: rhs too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst[r * dst_rs + c * dst_cs] = T::ZERO;
                }
            }
        }
        return;
    }
    // SAFETY: the asserts above show every index the product reads or writes is in bounds; `T` is
    // f32 or f64 (the only `Element`s), which `gemm` dispatches to its SIMD kernels; `dst` is a
    // unique borrow, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: View<'_, f64>, b: View<'_, f64>) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    out[i * n + j] += a.data[i * a.rs + l * a.cs] * b.data[l * b.rs + j * b.cs];
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_product_with_transposes_and_accumulation() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        // a read as its transpose's transpose: stored k × m.
        let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let want = naive(m, n, k, View::rows(&a, k), View::rows(&b, n));
        let mut got = vec![1.0; m * n];
        matmul(
            (m, n, k),
            &mut got,
            (n, 1),
            false,
            View::transposed(&at, m),
            View::rows(&b, n),
            Parallelism::None,
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12);
        }
        matmul(
            (m, n, k),
            &mut got,
            (n, 1),
            true,
            View::rows(&a, k),
            View::rows(&b, n),
            Parallelism::None,
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - 2.0 * w).abs() < 1e-12);
        }
        // A column-major destination: element (r, c) at c * m + r.
        let mut cm = vec![0.0; m * n];
        matmul(
            (m, n, k),
            &mut cm,
            (1, m),
            false,
            View::rows(&a, k),
            View::rows(&b, n),
            Parallelism::None,
        );
        for r in 0..m {
            for c in 0..n {
                assert!((cm[c * m + r] - want[r * n + c]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn empty_inner_dimension_zeroes_or_keeps_dst() {
        let mut dst = vec![3.0f32; 4];
        matmul(
            (2, 2, 0),
            &mut dst,
            (2, 1),
            true,
            View::rows(&[], 0),
            View::rows(&[], 2),
            Parallelism::None,
        );
        assert_eq!(dst, vec![3.0; 4]);
        matmul(
            (2, 2, 0),
            &mut dst,
            (2, 1),
            false,
            View::rows(&[], 0),
            View::rows(&[], 2),
            Parallelism::None,
        );
        assert_eq!(dst, vec![0.0; 4]);
    }
}
