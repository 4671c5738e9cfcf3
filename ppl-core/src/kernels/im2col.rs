//! Patch extraction (im2col) and its adjoint (col2im) for one image and one channel group, in
//! pixel-major layout, plus the small transposes that move between layouts.
//!
//! The patch matrix has one row per small-image pixel and one column per (tap row, tap column,
//! large-side channel). With the large image stored pixel-major (`H·W × C`), every tap of a
//! patch is one contiguous run of `C` values, so extraction is a series of short memcpys rather
//! than the strided scalar gathers a channel-major layout needs at stride 2.

use super::gemm::Element;
use super::geometry::Geometry;

/// `dst (cols × rows) = srcᵀ` for a row-major `src (rows × cols)`.
pub(crate) fn transpose<T: Element>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    // Eight source rows at a time: each destination row then receives a contiguous run of
    // eight, and the eight row slices let the compiler drop the per-element bounds checks.
    const B: usize = 8;
    let src = &src[..rows * cols];
    let dst = &mut dst[..rows * cols];
    let full = rows / B * B;
    for r0 in (0..full).step_by(B) {
        let block: [&[T]; B] = std::array::from_fn(|i| &src[(r0 + i) * cols..(r0 + i + 1) * cols]);
        for (c, out) in dst.chunks_exact_mut(rows).enumerate() {
            let out = &mut out[r0..r0 + B];
            for (o, row) in out.iter_mut().zip(&block) {
                *o = row[c];
            }
        }
    }
    for r in full..rows {
        for (c, v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
            dst[c * rows + r] = *v;
        }
    }
}

/// The large-image position of small position `o` and tap `t` along one axis, if inside.
#[inline]
fn source(g: &Geometry, o: usize, t: usize, len: usize) -> Option<usize> {
    (o * g.stride + t * g.dilation)
        .checked_sub(g.padding)
        .filter(|&pos| pos < len)
}

#[inline]
fn copy_run<T: Element>(dst: &mut [T], src: &[T]) {
    if dst.len() == 1 {
        // A one-channel run: a plain store beats a memcpy call.
        dst[0] = src[0];
    } else {
        dst.copy_from_slice(src);
    }
}

/// Fills `rows` (`small_len × patch_len`, row-major) with the patches of `x` (one group of one
/// image of the large side, pixel-major `H·W × c_large_group`); taps in the padding read zero.
pub(crate) fn im2col<T: Element>(g: &Geometry, x: &[T], rows: &mut [T]) {
    let (h, w) = g.large;
    let (ho, wo) = g.small;
    let (kh, kw) = g.kernel;
    let cl = g.c_large_group();
    let k = g.patch_len();
    for oh in 0..ho {
        for ow in 0..wo {
            let row = &mut rows[(oh * wo + ow) * k..(oh * wo + ow + 1) * k];
            for (i, seg) in row.chunks_exact_mut(kw * cl).enumerate() {
                let Some(ih) = source(g, oh, i, h) else {
                    seg.fill(T::ZERO);
                    continue;
                };
                for (j, run) in seg.chunks_exact_mut(cl).enumerate() {
                    match source(g, ow, j, w) {
                        Some(iw) => copy_run(run, &x[(ih * w + iw) * cl..(ih * w + iw + 1) * cl]),
                        None => run.fill(T::ZERO),
                    }
                }
            }
            debug_assert_eq!(row.len(), kh * kw * cl);
        }
    }
}

/// Adds the patches in `rows` back onto `x` (pixel-major, one group of one image of the large
/// side): the adjoint of [`im2col`], where overlapping taps sum and taps in the padding drop.
pub(crate) fn col2im<T: Element>(g: &Geometry, rows: &[T], x: &mut [T]) {
    let (h, w) = g.large;
    let (ho, wo) = g.small;
    let kw = g.kernel.1;
    let cl = g.c_large_group();
    let k = g.patch_len();
    for oh in 0..ho {
        for ow in 0..wo {
            let row = &rows[(oh * wo + ow) * k..(oh * wo + ow + 1) * k];
            for (i, seg) in row.chunks_exact(kw * cl).enumerate() {
                let Some(ih) = source(g, oh, i, h) else {
                    continue;
                };
                for (j, run) in seg.chunks_exact(cl).enumerate() {
                    if let Some(iw) = source(g, ow, j, w) {
                        let dst = &mut x[(ih * w + iw) * cl..(ih * w + iw + 1) * cl];
                        for (d, v) in dst.iter_mut().zip(run) {
                            *d += *v;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(
        c_large: usize,
        large: (usize, usize),
        kernel: (usize, usize),
        s: usize,
        p: usize,
        d: usize,
    ) -> Geometry {
        let ho = (large.0 + 2 * p - d * (kernel.0 - 1) - 1) / s + 1;
        let wo = (large.1 + 2 * p - d * (kernel.1 - 1) - 1) / s + 1;
        Geometry {
            batch: 1,
            c_large,
            c_small: 1,
            large,
            small: (ho, wo),
            kernel,
            stride: s,
            padding: p,
            dilation: d,
            groups: 1,
        }
    }

    /// The patch entry by its definition (x pixel-major).
    fn tap(g: &Geometry, x: &[f64], pixel: usize, col: usize) -> f64 {
        let cl = g.c_large_group();
        let kw = g.kernel.1;
        let (i, j, c) = (col / (kw * cl), (col / cl) % kw, col % cl);
        let (oh, ow) = (pixel / g.small.1, pixel % g.small.1);
        let ih = (oh * g.stride + i * g.dilation) as i64 - g.padding as i64;
        let iw = (ow * g.stride + j * g.dilation) as i64 - g.padding as i64;
        let (h, w) = g.large;
        if ih < 0 || iw < 0 || ih >= h as i64 || iw >= w as i64 {
            0.0
        } else {
            x[(ih as usize * w + iw as usize) * cl + c]
        }
    }

    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() {
        for g in [
            geom(2, (5, 6), (3, 2), 1, 1, 1),
            geom(1, (7, 4), (2, 3), 2, 0, 1),
            geom(3, (6, 7), (3, 3), 3, 2, 2),
            geom(2, (4, 4), (1, 1), 1, 0, 1),
            // Taps that miss the image along a whole axis (a transpose's output padding).
            Geometry {
                batch: 1,
                c_large: 2,
                c_small: 1,
                large: (3, 1),
                small: (2, 2),
                kernel: (2, 2),
                stride: 1,
                padding: 0,
                dilation: 2,
                groups: 1,
            },
        ] {
            let len = g.c_large_group() * g.large_len();
            let x: Vec<f64> = (0..len).map(|i| (i as f64 * 0.73).sin()).collect();
            let (k, n) = (g.patch_len(), g.small_len());
            let mut rows = vec![f64::NAN; n * k];
            im2col(&g, &x, &mut rows);
            for r in 0..n {
                for c in 0..k {
                    assert_eq!(
                        rows[r * k + c],
                        tap(&g, &x, r, c),
                        "{g:?} pixel {r} col {c}"
                    );
                }
            }
            // <im2col(x), y> = <x, col2im(y)> for any y.
            let y: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.41).cos()).collect();
            let mut back = vec![0.0; len];
            col2im(&g, &y, &mut back);
            let lhs: f64 = rows.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10, "{g:?}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        for (rows, cols) in [(1, 1), (3, 17), (9, 8), (16, 5)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![0.0; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * cols + c]);
                }
            }
        }
    }
}
