//! Self-normalised importance-sampling estimates over vectorised particles (a plate of
//! particles in one trace, as in a twin-world query over a million individuals).

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::kernels::elementwise::{chunked, with_cpu, Real};

/// Accumulator lanes per sum.
const LANES: usize = 8;
/// Weights computed per tile before they are summed.
const TILE: usize = 256;

/// What [`weighted_mean`] returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightedMean {
    /// `Σ wᵢ fᵢ / Σ wᵢ`.
    pub mean: f64,
    /// The effective sample size `(Σ wᵢ)² / Σ wᵢ²`.
    pub ess: f64,
    /// `ln((1/n) Σ wᵢ)`: the log evidence when the particles were drawn from the prior.
    pub log_evidence: f64,
}

/// The self-normalised estimate of `E[f]` from particles with log weights `log_w` and values
/// `values` (`wᵢ = exp(log_wᵢ)`, computed relative to the largest so that nothing overflows),
/// with its effective sample size and log evidence. Both tensors have one shape; sums are taken
/// in f64. On the CPU it is two passes over the particles, split over threads, with the same
/// result whatever the thread count.
///
/// ```
/// use ppl_core::candle_core::{Device, Tensor};
/// use ppl_core::infer::weighted_mean;
///
/// let log_w = Tensor::new(&[0.0f32, f32::NEG_INFINITY, 2f32.ln()], &Device::Cpu)?;
/// let f = Tensor::new(&[1.0f32, 100.0, 4.0], &Device::Cpu)?;
/// let est = weighted_mean(&log_w, &f)?;
/// assert!((est.mean - 3.0).abs() < 1e-6); // (1·1 + 2·4) / 3
/// assert!((est.ess - 9.0 / 5.0).abs() < 1e-6);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn weighted_mean(log_w: &Tensor, values: &Tensor) -> Result<WeightedMean> {
    if log_w.dims() != values.dims() {
        return Err(Error::shape(
            "weighted_mean: log weights and values differ in shape",
            log_w.dims(),
            values.dims(),
        ));
    }
    let n = log_w.elem_count();
    if n == 0 {
        return Err(Error::usage("weighted_mean: no particles"));
    }
    let sums = if log_w.dtype() == values.dtype() {
        match log_w.dtype() {
            DType::F32 => cpu_sums::<f32>(log_w, values)?,
            DType::F64 => cpu_sums::<f64>(log_w, values)?,
            _ => None,
        }
    } else {
        None
    };
    let (max, [sw, sw2, swf]) = match sums {
        Some(s) => s,
        None => tensor_sums(log_w, values)?,
    };
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if max.is_nan() || max == f64::NEG_INFINITY || !positive(sw) {
        return Err(Error::usage(
            "weighted_mean: every particle has weight zero (log weight -inf or NaN)",
        ));
    }
    Ok(WeightedMean {
        mean: swf / sw,
        ess: sw * sw / sw2,
        log_evidence: max + (sw / n as f64).ln(),
    })
}

/// `(max log w, [Σ w, Σ w², Σ w f])` with `w = exp(log w − max)`, on the CPU.
fn cpu_sums<T: Real>(log_w: &Tensor, values: &Tensor) -> Result<Option<(f64, [f64; 3])>> {
    let (lw, f) = (log_w.contiguous()?, values.contiguous()?);
    Ok(with_cpu::<T, _, 2>([&lw, &f], |[a, b], [la, lb]| {
        let (Some((s1, e1)), Some((s2, e2))) = (la.contiguous_offsets(), lb.contiguous_offsets())
        else {
            return None;
        };
        let (a, b) = (&a[s1..e1], &b[s2..e2]);
        let max = chunked(a.len(), |r| {
            // Lane-wise maxima (vectorises), then across lanes.
            let a = &a[r];
            let mut lanes = [T::NEG_INFINITY; LANES];
            for c in a.chunks_exact(LANES) {
                for k in 0..LANES {
                    lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
                }
            }
            let tail = a.len() - a.len() % LANES;
            a[tail..]
                .iter()
                .chain(&lanes)
                .fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64()))
        })
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max);
        if max.is_nan() || max == f64::NEG_INFINITY {
            return Some((max, [0.0; 3]));
        }
        let m = T::from_f64(max);
        let parts = chunked(a.len(), |r| {
            // Weights of a tile first (a plain loop over `exp`, which vectorises), then
            // eight independent f64 accumulators per sum (one chain of additions would not).
            let (a, b) = (&a[r.clone()], &b[r]);
            let mut acc = [[0.0f64; LANES]; 3];
            let mut w = [T::ZERO; TILE];
            for (ta, tb) in a.chunks(TILE).zip(b.chunks(TILE)) {
                let w = &mut w[..ta.len()];
                for (wk, &l) in w.iter_mut().zip(ta) {
                    *wk = (l - m).exp();
                }
                let whole = w.len() - w.len() % LANES;
                for (cw, cv) in w[..whole]
                    .chunks_exact(LANES)
                    .zip(tb[..whole].chunks_exact(LANES))
                {
                    for k in 0..LANES {
                        let (wk, v) = (cw[k].to_f64(), cv[k].to_f64());
                        acc[0][k] += wk;
                        acc[1][k] += wk * wk;
                        acc[2][k] += wk * v;
                    }
                }
                for (&wk, &v) in w[whole..].iter().zip(&tb[whole..]) {
                    let (wk, v) = (wk.to_f64(), v.to_f64());
                    acc[0][0] += wk;
                    acc[1][0] += wk * wk;
                    acc[2][0] += wk * v;
                }
            }
            acc.map(|s| s.iter().sum::<f64>())
        });
        let mut total = [0.0f64; 3];
        for p in parts {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        Some((max, total))
    })
    .flatten())
}

/// The same sums with tensor ops, for other devices and dtypes.
fn tensor_sums(log_w: &Tensor, values: &Tensor) -> Result<(f64, [f64; 3])> {
    let lw = log_w.to_dtype(DType::F64)?.flatten_all()?;
    let f = values.to_dtype(DType::F64)?.flatten_all()?;
    let max = lw.max(0)?.to_scalar::<f64>()?;
    if max.is_nan() || max == f64::NEG_INFINITY {
        return Ok((max, [0.0; 3]));
    }
    let w = lw.affine(1.0, -max)?.exp()?;
    let s = |t: &Tensor| -> Result<f64> { Ok(t.sum_all()?.to_scalar::<f64>()?) };
    Ok((max, [s(&w)?, s(&w.sqr()?)?, s(&(&w * &f)?)?]))
}
