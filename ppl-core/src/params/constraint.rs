//! Constraints: the sets parameters live in, and the bijections from the unconstrained space.

use candle_core::Tensor;

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
        })
    }

    /// Maps a constrained value back to the unconstrained space; an error if it lies outside.
    pub fn to_unconstrained(&self, name: &str, x: &Tensor) -> Result<Tensor> {
        let inside = match *self {
            Constraint::Real => crate::dist::Support::Real,
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
            Constraint::UnitInterval | Constraint::Interval(..) => unreachable!("handled above"),
        })
    }
}
