//! The three batched CPU kernels every 2-d convolution and gradient reduces to.
//!
//! - [`gather`]: large → small, `y = W · im2col(x)` (conv2d forward; conv_transpose2d's input
//!   gradient).
//! - [`scatter`]: small → large, `x = col2im(Wᵀ · y)` (conv_transpose2d forward; conv2d's input
//!   gradient).
//! - [`weight_grad`]: `∂W = Σ_b y_b · im2col(x_b)ᵀ` (both ops' weight gradient).
//!
//! Tensors come and go as contiguous NCHW (weights `(C_small, C_large / groups, kH, kW)`).
//! Inside, each large image is turned pixel-major and the weight tap-major `(C_small, kH, kW,
//! C_large / groups)` so that patches are contiguous channel runs (see [`super::im2col`]); the
//! small side stays channel-major, read and written in place through the product's strides.
//!
//! Work is split over the batch on candle's CPU worker pool (sized by `CANDLE_NUM_THREADS` or
//! `RAYON_NUM_THREADS`, like candle's own ops), with one set of scratch buffers per task. That
//! pool rather than rayon's: candle's element-wise ops run on it and its workers spin for a
//! while after each op, so kernels on a second pool fought them for the cores (measured on the
//! B4 stack with ReLUs on 2 cores: about 15% slower). When the batch is smaller than the pool,
//! the matrix products themselves run in parallel (on rayon, inside `gemm`).

use std::sync::Mutex;

use gemm::Parallelism;

use super::gemm::{matmul, View};
use super::geometry::Geometry;
use super::im2col::{col2im, im2col, transpose};
use super::scratch::{with_scratch, Scratch, Slot};

/// Threads that run the kernels: candle's CPU worker pool plus the calling thread.
fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Runs `f(i, chunk_i)` for each `chunk`-long piece of `data`, in parallel on candle's CPU
/// worker pool (the one its element-wise ops use, so that the two never compete for cores).
fn for_each_chunk<T: Send>(data: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    // Each piece sits behind its own (never contended) lock: the pool hands out indices,
    // not disjoint borrows.
    let pieces: Vec<Mutex<&mut [T]>> = data.chunks_mut(chunk).map(Mutex::new).collect();
    candle_core::utils::barrier_pool().execute_chunked(pieces.len(), |range| {
        for i in range {
            let mut piece = pieces[i].lock().unwrap_or_else(|e| e.into_inner());
            f(i, &mut piece);
        }
    });
}

/// How the batch is cut into tasks: images per task, and the products' own parallelism.
fn plan(batch: usize) -> (usize, Parallelism) {
    let threads = threads();
    if batch >= threads {
        // A few tasks per thread so that a busy core does not hold back the others.
        let tasks = (threads * 2).min(batch);
        (batch.div_ceil(tasks), Parallelism::None)
    } else {
        (1, Parallelism::Rayon(threads))
    }
}

/// Reorders each output channel's weight block from `(C, kH, kW)` to `(kH, kW, C)` (or back,
/// with `to_tap_major` false), matching the patch columns.
fn reorder_weight<T: Scratch>(g: &Geometry, w: &[T], to_tap_major: bool, out: &mut [T]) {
    let (cl, taps, k) = (g.c_large_group(), g.kernel.0 * g.kernel.1, g.patch_len());
    for (src, dst) in w.chunks_exact(k).zip(out.chunks_exact_mut(k)) {
        if to_tap_major {
            transpose(src, cl, taps, dst);
        } else {
            transpose(src, taps, cl, dst);
        }
    }
}

/// Runs `f` with the weight reordered tap-major, in this thread's scratch.
fn with_tap_major_weight<T: Scratch, R>(g: &Geometry, w: &[T], f: impl FnOnce(&[T]) -> R) -> R {
    with_scratch(Slot::Weight, w.len(), |wt| {
        reorder_weight(g, w, true, wt);
        f(wt)
    })
}

/// One task's buffers: a pixel-major copy of one large-image group and its patch matrix.
struct Buffers<'a, T> {
    pixels: &'a mut [T],
    patches: &'a mut [T],
}

impl<T: Scratch> Buffers<'_, T> {
    /// Runs `f` with buffers sized for `g`, from this thread's scratch.
    fn with<R>(g: &Geometry, f: impl FnOnce(Buffers<'_, T>) -> R) -> R {
        let cl = g.c_large_group();
        let pixels = if cl > 1 { cl * g.large_len() } else { 0 };
        let patches = if g.is_pointwise() {
            0
        } else {
            g.small_len() * g.patch_len()
        };
        with_scratch(Slot::Task, pixels + patches, |buf| {
            let (pixels, patches) = buf.split_at_mut(pixels);
            f(Buffers { pixels, patches })
        })
    }

    /// The patch matrix (`small_len × patch_len`) of one channel-major large-image group.
    fn patches<'a>(&'a mut self, g: &Geometry, xg: &'a [T]) -> &'a [T] {
        let cl = g.c_large_group();
        let pixels = if cl == 1 {
            xg
        } else {
            transpose(xg, cl, g.large_len(), self.pixels);
            &self.pixels[..]
        };
        if g.is_pointwise() {
            pixels
        } else {
            im2col(g, pixels, self.patches);
            &self.patches[..]
        }
    }
}

/// Conv2d forward: `x` large `(B, C_large, H, W)`, `w` weight → small `(B, C_small, Ho, Wo)`.
pub(crate) fn gather<T: Scratch>(g: &Geometry, x: &[T], w: &[T]) -> Vec<T> {
    let (per_x, per_y) = (g.c_large * g.large_len(), g.c_small * g.small_len());
    let mut y = vec![T::ZERO; g.batch * per_y];
    if y.is_empty() {
        return y;
    }
    let (cl, cs, k, n) = (
        g.c_large_group(),
        g.c_small_group(),
        g.patch_len(),
        g.small_len(),
    );
    let (chunk, par) = plan(g.batch);
    with_tap_major_weight(g, w, |wt| {
        for_each_chunk(&mut y, chunk * per_y, |task, ys| {
            Buffers::with(g, |mut bufs| {
                for (i, yb) in ys.chunks_exact_mut(per_y).enumerate() {
                    let b = task * chunk + i;
                    let xb = &x[b * per_x..(b + 1) * per_x];
                    for grp in 0..g.groups {
                        let xg = &xb[grp * cl * g.large_len()..(grp + 1) * cl * g.large_len()];
                        let patches = bufs.patches(g, xg);
                        // yᵀ (pixels × C_small) = patches · wᵀ, written channel-major.
                        matmul(
                            (n, cs, k),
                            &mut yb[grp * cs * n..(grp + 1) * cs * n],
                            (1, n),
                            false,
                            View::rows(patches, k),
                            View::transposed(&wt[grp * cs * k..(grp + 1) * cs * k], k),
                            par,
                        );
                    }
                }
            })
        })
    });
    y
}

/// The adjoint of [`gather`] in its image: `y` small `(B, C_small, Ho, Wo)`, `w` weight →
/// large `(B, C_large, H, W)`.
pub(crate) fn scatter<T: Scratch>(g: &Geometry, y: &[T], w: &[T]) -> Vec<T> {
    let (per_x, per_y) = (g.c_large * g.large_len(), g.c_small * g.small_len());
    let mut x = vec![T::ZERO; g.batch * per_x];
    if x.is_empty() {
        return x;
    }
    let (cl, cs, k, n) = (
        g.c_large_group(),
        g.c_small_group(),
        g.patch_len(),
        g.small_len(),
    );
    let (chunk, par) = plan(g.batch);
    with_tap_major_weight(g, w, |wt| {
        for_each_chunk(&mut x, chunk * per_x, |task, xs| {
            Buffers::with(g, |bufs: Buffers<'_, T>| {
                for (i, xb) in xs.chunks_exact_mut(per_x).enumerate() {
                    let b = task * chunk + i;
                    let yb = &y[b * per_y..(b + 1) * per_y];
                    for grp in 0..g.groups {
                        let xg = &mut xb[grp * cl * g.large_len()..(grp + 1) * cl * g.large_len()];
                        // One channel is its own pixel-major layout: accumulate straight into
                        // the (zeroed) output.
                        let pixels = if cl == 1 {
                            &mut xg[..]
                        } else {
                            bufs.pixels.fill(T::ZERO);
                            &mut bufs.pixels[..]
                        };
                        // patches (pixels × taps) = yᵀ · w, reading y channel-major.
                        let yt = View::transposed(&yb[grp * cs * n..(grp + 1) * cs * n], n);
                        let wg = View::rows(&wt[grp * cs * k..(grp + 1) * cs * k], k);
                        if g.is_pointwise() {
                            matmul((n, k, cs), pixels, (k, 1), false, yt, wg, par);
                        } else {
                            matmul((n, k, cs), bufs.patches, (k, 1), false, yt, wg, par);
                            col2im(g, bufs.patches, pixels);
                        }
                        if cl > 1 {
                            transpose(bufs.pixels, g.large_len(), cl, xg);
                        }
                    }
                }
            })
        })
    });
    x
}

/// The weight gradient: `x` large `(B, C_large, H, W)`, `y` small `(B, C_small, Ho, Wo)` (the
/// output's gradient) → `(C_small, C_large / groups, kH, kW)`.
pub(crate) fn weight_grad<T: Scratch>(g: &Geometry, x: &[T], y: &[T]) -> Vec<T> {
    let (per_x, per_y) = (g.c_large * g.large_len(), g.c_small * g.small_len());
    let (cl, cs, k, n) = (
        g.c_large_group(),
        g.c_small_group(),
        g.patch_len(),
        g.small_len(),
    );
    let w_len = g.c_small * k;
    if w_len == 0 || g.batch == 0 {
        return vec![T::ZERO; w_len];
    }
    let (chunk, par) = plan(g.batch);
    let tasks = g.batch.div_ceil(chunk);
    // One tap-major partial sum per task, added up at the end.
    let mut partials = vec![T::ZERO; tasks * w_len];
    for_each_chunk(&mut partials, w_len, |task, gw| {
        Buffers::with(g, |mut bufs| {
            for b in task * chunk..((task + 1) * chunk).min(g.batch) {
                let xb = &x[b * per_x..(b + 1) * per_x];
                let yb = &y[b * per_y..(b + 1) * per_y];
                for grp in 0..g.groups {
                    let xg = &xb[grp * cl * g.large_len()..(grp + 1) * cl * g.large_len()];
                    let patches = bufs.patches(g, xg);
                    matmul(
                        (cs, k, n),
                        &mut gw[grp * cs * k..(grp + 1) * cs * k],
                        (k, 1),
                        true,
                        View::rows(&yb[grp * cs * n..(grp + 1) * cs * n], n),
                        View::rows(patches, k),
                        par,
                    );
                }
            }
        })
    });
    let (total, rest) = partials.split_at_mut(w_len);
    for part in rest.chunks_exact(w_len) {
        for (t, p) in total.iter_mut().zip(part) {
            *t += *p;
        }
    }
    let mut out = vec![T::ZERO; w_len];
    reorder_weight(g, total, false, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conv2d by its definition.
    fn direct(g: &Geometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (h, wd) = g.large;
        let (ho, wo) = g.small;
        let (kh, kw) = g.kernel;
        let (cl, cs) = (g.c_large_group(), g.c_small_group());
        let mut y = vec![0.0; g.batch * g.c_small * ho * wo];
        for b in 0..g.batch {
            for co in 0..g.c_small {
                let grp = co / cs;
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut acc = 0.0;
                        for ci in 0..cl {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let ih =
                                        (oh * g.stride + i * g.dilation) as i64 - g.padding as i64;
                                    let iw =
                                        (ow * g.stride + j * g.dilation) as i64 - g.padding as i64;
                                    if ih < 0 || iw < 0 || ih >= h as i64 || iw >= wd as i64 {
                                        continue;
                                    }
                                    let xc = grp * cl + ci;
                                    acc += w[((co * cl + ci) * kh + i) * kw + j]
                                        * x[((b * g.c_large + xc) * h + ih as usize) * wd
                                            + iw as usize];
                                }
                            }
                        }
                        y[((b * g.c_small + co) * ho + oh) * wo + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn filled(len: usize, f: f64) -> Vec<f64> {
        (0..len).map(|i| ((i as f64 + 1.0) * f).sin()).collect()
    }

    #[test]
    fn kernels_agree_with_the_definition_and_are_mutual_adjoints() {
        let cases = [
            // batch, c_large, c_small, large, small, kernel, stride, padding, dilation, groups
            (3, 4, 6, (6, 5), (3, 3), (3, 2), 2, 1, 1, 2),
            (1, 1, 2, (5, 5), (5, 5), (1, 1), 1, 0, 1, 1),
            (2, 4, 6, (3, 5), (3, 5), (1, 1), 1, 0, 1, 2),
            (9, 3, 3, (7, 6), (3, 2), (2, 3), 2, 0, 2, 3),
            (2, 2, 1, (4, 4), (6, 6), (3, 3), 1, 2, 1, 1),
        ];
        for (batch, c_large, c_small, large, small, kernel, stride, padding, dilation, groups) in
            cases
        {
            let g = Geometry {
                batch,
                c_large,
                c_small,
                large,
                small,
                kernel,
                stride,
                padding,
                dilation,
                groups,
            };
            let x = filled(batch * c_large * g.large_len(), 0.37);
            let w = filled(g.weight_shape().iter().product(), 0.91);
            let y = filled(batch * c_small * g.small_len(), 0.53);
            let fwd = gather(&g, &x, &w);
            for (a, b) in fwd.iter().zip(direct(&g, &x, &w)) {
                assert!((a - b).abs() < 1e-12, "{g:?}");
            }
            // <gather(x, w), y> = <x, scatter(y, w)> = <w, weight_grad(x, y)>.
            let want = dot(&fwd, &y);
            assert!(
                (dot(&x, &scatter(&g, &y, &w)) - want).abs() < 1e-10,
                "{g:?}"
            );
            assert!(
                (dot(&w, &weight_grad(&g, &x, &y)) - want).abs() < 1e-10,
                "{g:?}"
            );
        }
    }
}
