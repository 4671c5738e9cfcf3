//! Special functions on tensors, built from candle ops so they run on any device and
//! differentiate.
//!
//! candle has no `lgamma`, `digamma`, `log1p`, `expm1` or `softplus`. Each function here is a
//! short composition of elementwise candle ops, valid for f32 and f64, so autograd goes through it
//! unchanged: the derivative of [`lgamma`] is (to series accuracy) [`digamma`], because the
//! Stirling series differentiates term by term into the asymptotic series of the digamma function.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use ppl_core::special;
//!
//! let x = Tensor::new(&[0.5f64, 1.0, 10.0], &Device::Cpu)?;
//! let lg = special::lgamma(&x)?.to_vec1::<f64>()?;
//! assert!((lg[0] - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
//! assert!(lg[1].abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::{DType, Tensor};

use crate::error::Result;

/// How far arguments are shifted up before the asymptotic series. In f64, from 7 on the terms
/// kept below leave a truncation error under 1e-14. Lower precisions shift by 3 only (truncation
/// error ~1e-8, below an f32 ulp): the shift's sum of logs cancels against the series, and a
/// smaller shift means smaller terms and less rounding left over.
fn shift_for(dtype: DType) -> usize {
    if dtype == DType::F64 {
        7
    } else {
        3
    }
}

/// `0.5 ln(2π)`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Stirling-series coefficients of `ln Γ(z) - [(z - ½) ln z - z + ½ ln 2π]` in powers of `1/z²`,
/// after the leading `1/z`: `B_{2k} / (2k (2k - 1))`.
const STIRLING: [f64; 7] = [
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360_360.0,
    1.0 / 156.0,
];

/// Coefficients of `ψ(z) - [ln z - 1/(2z)]` in powers of `1/z²`, starting at `1/z²`:
/// `-B_{2k} / (2k)`.
const DIGAMMA: [f64; 7] = [
    -1.0 / 12.0,
    1.0 / 120.0,
    -1.0 / 252.0,
    1.0 / 240.0,
    -1.0 / 132.0,
    691.0 / 32760.0,
    -1.0 / 12.0,
];

/// `Σ_k c_k t^k` by Horner's rule, with `t` a tensor and `c` constants.
fn horner(t: &Tensor, coeffs: &[f64]) -> Result<Tensor> {
    let n = coeffs.len();
    let mut acc = t.affine(coeffs[n - 1], coeffs[n - 2])?;
    for &c in coeffs[..n - 2].iter().rev() {
        acc = acc.mul(t)?.affine(1.0, c)?;
    }
    Ok(acc)
}

/// `x + k` for `k` below the shift, stacked along a new last dim: one broadcast instead of one op
/// per shift keeps small-tensor overhead down.
fn shifts(x: &Tensor) -> Result<Tensor> {
    let ks: Vec<f64> = (0..shift_for(x.dtype())).map(|k| k as f64).collect();
    let ks = Tensor::new(ks.as_slice(), x.device())?;
    let ks = if x.dtype() == DType::F64 {
        ks
    } else {
        ks.to_dtype(x.dtype())?
    };
    Ok(x.unsqueeze(x.rank())?.broadcast_add(&ks)?)
}

/// `ln Γ(x)` for `x > 0` (NaN for `x <= 0`).
///
/// Shifts the argument to `z = x + n` with `ln Γ(x) = ln Γ(z) - Σ_{k<n} ln(x + k)` (`n` = 7 in
/// f64, 3 otherwise) and evaluates the Stirling series at `z`. Within about 1e-14 of
/// `max(1, |ln Γ(x)|)` in f64 and a few ulps of it in f32; its autograd derivative is
/// [`digamma`] to the same accuracy.
pub fn lgamma(x: &Tensor) -> Result<Tensor> {
    let z = x.affine(1.0, shift_for(x.dtype()) as f64)?;
    let ln_z = z.log()?;
    let r = z.recip()?;
    let series = horner(&r.sqr()?, &STIRLING)?.mul(&r)?;
    let stirling = z
        .affine(1.0, -0.5)?
        .mul(&ln_z)?
        .sub(&z)?
        .add(&series)?
        .affine(1.0, HALF_LN_2PI)?;
    let log_prod = shifts(x)?.log()?.sum(x.rank())?;
    Ok(stirling.sub(&log_prod)?)
}

/// The digamma function `ψ(x) = d/dx ln Γ(x)` for `x > 0`.
///
/// Shifts by the recurrence `ψ(x) = ψ(x + n) - Σ_{k<n} 1/(x + k)` (`n` as in [`lgamma`]) and
/// evaluates the asymptotic series at `x + n`; within about 1e-13 of `max(1, |ψ(x)|)` in f64.
pub fn digamma(x: &Tensor) -> Result<Tensor> {
    let z = x.affine(1.0, shift_for(x.dtype()) as f64)?;
    let r = z.recip()?;
    let r2 = r.sqr()?;
    let series = horner(&r2, &DIGAMMA)?.mul(&r2)?;
    let asym = z.log()?.sub(&r.affine(0.5, 0.0)?)?.add(&series)?;
    let recips = shifts(x)?.recip()?.sum(x.rank())?;
    Ok(asym.sub(&recips)?)
}

/// `ln(1 + x)`, accurate for small `|x|` (where `ln` of `1 + x` would lose the digits of `x`).
///
/// With `u = 1 + x` rounded, `ln(1 + x) ≈ ln(u) - ((u - 1) - x)/u`: the correction is the
/// rounding error of `u`, to first order. It is only non-zero for `x` in `(-0.5, 1)` (outside,
/// `1 + x` is exact or the error is negligible), so it is evaluated at `x` clamped there, which
/// keeps `log1p(-1) = -inf` and `log1p(inf) = inf` free of NaN.
pub fn log1p(x: &Tensor) -> Result<Tensor> {
    if let Some(y) = crate::kernels::fused::log1p(x)? {
        return Ok(y);
    }
    let u = x.affine(1.0, 1.0)?;
    let xc = x.clamp(-0.5, 1.0)?;
    let uc = xc.affine(1.0, 1.0)?;
    let err = uc.affine(1.0, -1.0)?.sub(&xc)?.div(&uc)?;
    Ok(u.log()?.sub(&err)?)
}

/// `exp(x) - 1`, accurate for small `|x|`.
///
/// With `u = exp(x)` rounded, `exp(x) - 1 = (u - 1) + u·(x - ln u)` to first order in the rounding
/// error of `u`; `u - 1` is exact near `x = 0`. The correction matters only for small `|x|`, so it
/// is evaluated at `x` clamped to `[-1, 1]`, which keeps large `|x|` free of `inf - inf`.
pub fn expm1(x: &Tensor) -> Result<Tensor> {
    let u = x.exp()?;
    let xc = x.clamp(-1.0, 1.0)?;
    let uc = xc.exp()?;
    let err = uc.mul(&xc.sub(&uc.log()?)?)?;
    Ok(u.affine(1.0, -1.0)?.add(&err)?)
}

/// `ln(1 + exp(x))`, stable for every `x`: `max(x, 0) + log1p(exp(-|x|))`.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    if let Some(y) = crate::kernels::fused::softplus(x)? {
        return Ok(y);
    }
    let tail = log1p(&x.abs()?.neg()?.exp()?)?;
    Ok(x.relu()?.add(&tail)?)
}

/// `ln(p / (1 - p))`, the inverse of the sigmoid, for `p` in `[0, 1]`.
pub fn logit(p: &Tensor) -> Result<Tensor> {
    // 1 - p is exact for p >= 0.5 (Sterbenz), and below 0.5 its rounding error is small
    // relative to ln(1 - p), so no log1p is needed.
    Ok(p.log()?.sub(&p.affine(-1.0, 1.0)?.log()?)?)
}

/// `ln σ(x) = -softplus(-x)`, stable for every `x`.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok(softplus(&x.neg()?)?.neg()?)
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b)` for positive `a`, `b` (broadcast together).
pub fn lbeta(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = crate::dist::broadcast_shapes(a.dims(), b.dims())
        .ok_or_else(|| crate::Error::shape("lbeta", a.dims(), b.dims()))?;
    let a = a.broadcast_as(shape.as_slice())?;
    let b = b.broadcast_as(shape.as_slice())?;
    let ab = a.add(&b)?;
    // One lgamma over the three arguments stacked costs a third of three separate calls.
    let lg = lgamma(&Tensor::stack(&[&a, &b, &ab], 0)?)?;
    Ok(lg.get(0)?.add(&lg.get(1)?)?.sub(&lg.get(2)?)?)
}
