//! Constraints: the sets parameters live in, and the bijections from the unconstrained space.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// The set a parameter lives in, and so the bijection from the unconstrained space it is stored
/// and optimised in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Constraint {
    /// Any real value (stored as is).
    Real,
    /// `(0, inf)`, through `exp`.
    Positive,
    /// `(0, inf)`, through `softplus`: grows linearly, so optimisers take even steps in scale
    /// (Pyro's `softplus_positive`, the default for autoguide scales).
    SoftplusPositive,
    /// `(lower, inf)`, through `lower + exp`.
    GreaterThan(f64),
    /// `(0, 1)`, through the logistic sigmoid.
    UnitInterval,
    /// `(lower, upper)`, through a scaled sigmoid.
    Interval(f64, f64),
    /// Positive vectors summing to one along the last dim, through stick-breaking (torch's
    /// `StickBreakingTransform`). The unconstrained value has one element fewer in its last dim:
    /// a simplex of `K` elements is stored as `K - 1` reals.
    Simplex,
}

impl Constraint {
    /// Maps an unconstrained tensor into the constrained space (differentiably).
    pub fn to_constrained(&self, u: &Tensor) -> Result<Tensor> {
        Ok(match *self {
            Constraint::Real => u.clone(),
            Constraint::Positive => u.exp()?,
            Constraint::SoftplusPositive => crate::special::softplus(u)?,
            Constraint::GreaterThan(lo) => (u.exp()? + lo)?,
            Constraint::UnitInterval => candle_nn::ops::sigmoid(u)?,
            Constraint::Interval(lo, hi) => candle_nn::ops::sigmoid(u)?.affine(hi - lo, lo)?,
            Constraint::Simplex => stick_breaking(u)?,
        })
    }

    /// Maps a constrained value back to the unconstrained space; an error if it lies outside.
    pub fn to_unconstrained(&self, name: &str, x: &Tensor) -> Result<Tensor> {
        let inside = match *self {
            Constraint::Real => crate::dist::Support::Real,
            Constraint::Simplex => return stick_breaking_inverse(name, x),
            Constraint::Positive | Constraint::SoftplusPositive => crate::dist::Support::Positive,
            Constraint::GreaterThan(lo) => crate::dist::Support::GreaterThan(lo),
            Constraint::UnitInterval | Constraint::Interval(..) => {
                let (lo, hi) = match *self {
                    Constraint::Interval(lo, hi) => (lo, hi),
                    _ => (0.0, 1.0),
                };
                let strictly = x.gt(lo)?.mul(&x.lt(hi)?)?;
                let n = strictly
                    .to_dtype(candle_core::DType::F64)?
                    .sum_all()?
                    .to_scalar::<f64>()?;
                if n as usize != x.elem_count() {
                    return Err(Error::value(
                        name,
                        format!("initial value lies outside the open interval ({lo}, {hi})"),
                    ));
                }
                let p = x.affine(1.0 / (hi - lo), -lo / (hi - lo))?;
                return Ok((p.log()? - (1.0 - &p)?.log()?)?);
            }
        };
        if !inside.check(x)? {
            return Err(Error::value(
                name,
                format!("initial value lies outside {inside} (constraint {self:?})"),
            ));
        }
        Ok(match *self {
            Constraint::Real => x.clone(),
            Constraint::Positive => x.log()?,
            Constraint::SoftplusPositive => {
                use crate::transforms::Transform;
                crate::transforms::SoftplusTransform.inverse(x)?
            }
            Constraint::GreaterThan(lo) => (x - lo)?.log()?,
            Constraint::UnitInterval | Constraint::Interval(..) | Constraint::Simplex => {
                unreachable!("handled above")
            }
        })
    }
}

/// `log(K - 1 - i)` for `i = 0..K-1`, on the device and dtype of `like`: shifting stick `i` by
/// it makes the zero vector map to the uniform simplex.
fn stick_offsets(k1: usize, like: &Tensor) -> Result<Tensor> {
    let n = k1 as f64;
    Ok(Tensor::arange(0.0, n, like.device())?
        .affine(-1.0, n)?
        .log()?
        .to_dtype(like.dtype())?)
}

/// Stick-breaking from `K - 1` reals to a `K`-simplex, in log space so that no stick's
/// remaining length underflows: `y_i = z_i ∏_{j<i} (1 - z_j)`, `y_{K-1} = ∏_j (1 - z_j)` with
/// `z = σ(u - offset)`.
fn stick_breaking(u: &Tensor) -> Result<Tensor> {
    let dims = u.dims();
    let Some(&k1) = dims.last() else {
        return Err(Error::usage(
            "the Simplex constraint needs a value with at least one dim",
        ));
    };
    if k1 == 0 {
        let mut out = dims.to_vec();
        *out.last_mut().expect("rank >= 1") = 1;
        return Ok(Tensor::ones(out, u.dtype(), u.device())?);
    }
    let last = dims.len() - 1;
    let t = u.broadcast_sub(&stick_offsets(k1, u)?)?;
    let log_z = crate::special::log_sigmoid(&t)?;
    let log_rest = crate::special::log_sigmoid(&t.neg()?)?;
    let mut one = dims.to_vec();
    one[last] = 1;
    let zero = Tensor::zeros(one, u.dtype(), u.device())?;
    let left = Tensor::cat(&[&log_z, &zero], last)?;
    let right = Tensor::cat(&[&zero, &log_rest.cumsum(last)?], last)?;
    Ok((left + right)?.exp()?)
}

/// The inverse of [`stick_breaking`]: `u_i = log y_i - log(Σ_{j>i} y_j) + offset_i`. The tail
/// sums are summed directly rather than taken as `1 - cumsum`, so small trailing elements keep
/// their precision.
fn stick_breaking_inverse(name: &str, x: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let k = match dims.last() {
        Some(&k) if k >= 2 => k,
        _ => {
            return Err(Error::value(
                name,
                format!(
                "a Simplex parameter needs at least 2 elements in its last dim, got shape {dims:?}"
            ),
            ))
        }
    };
    let positive = x
        .gt(0.0)?
        .to_dtype(DType::F64)?
        .sum_all()?
        .to_scalar::<f64>()?;
    if positive as usize != x.elem_count() || !crate::dist::Support::Simplex.check(x)? {
        return Err(Error::value(
            name,
            "initial value does not lie in the open simplex (positive elements summing to 1 \
             along the last dim)",
        ));
    }
    let last = dims.len() - 1;
    let rows = x.elem_count() / k;
    // tail[i] = Σ_{j>i} y_j as one product with a 0/1 matrix.
    let mask: Vec<f64> = (0..k)
        .flat_map(|j| (0..k - 1).map(move |i| if j > i { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (k, k - 1), x.device())?.to_dtype(x.dtype())?;
    let tail = x.reshape((rows, k))?.matmul(&mask)?;
    let mut out = dims.clone();
    out[last] = k - 1;
    let tail = tail.reshape(out)?;
    let head = x.narrow(last, 0, k - 1)?;
    Ok((head.log()? - tail.log()?)?.broadcast_add(&stick_offsets(k - 1, x)?)?)
}
