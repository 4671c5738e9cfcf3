//! `biject_to`: the bijection from the reals onto a support, as autoguides and constrained
//! parameters need it.

use std::sync::Arc;

use super::{AffineTransform, ExpTransform, SigmoidTransform, TransformExt, TransformRef};
use crate::dist::Support;
use crate::error::{Error, Result};

/// The bijection from unconstrained reals onto `support` (Pyro's `biject_to`), or `None` where
/// the support is the reals already. Discrete supports have none: an
/// [`Error::Unsupported`] naming the support.
///
/// ```
/// use ppl_core::{dist::Support, transforms::{biject_to, Transform}};
/// use candle_core::{Device, Tensor};
/// let t = biject_to(Support::Interval(-1.0, 3.0))?.unwrap();
/// let y = t.forward(&Tensor::new(&[0.0f64], &Device::Cpu)?)?.to_vec1::<f64>()?;
/// assert!((y[0] - 1.0).abs() < 1e-12);  // the midpoint
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn biject_to(support: Support) -> Result<Option<TransformRef>> {
    Ok(match support {
        Support::Real | Support::Any => None,
        Support::Positive => Some(Arc::new(ExpTransform)),
        Support::GreaterThan(lo) => {
            Some(ExpTransform.then(AffineTransform::new(lo, 1.0)?).shared())
        }
        Support::UnitInterval => Some(Arc::new(SigmoidTransform)),
        Support::Interval(lo, hi) => Some(
            SigmoidTransform
                .then(AffineTransform::new(lo, hi - lo)?)
                .shared(),
        ),
        Support::Boolean | Support::IntegerInterval(..) | Support::Simplex => {
            return Err(Error::Unsupported {
                what: format!("a bijection from the reals onto {support}"),
                why: "the support is discrete or not yet supported by biject_to".into(),
            })
        }
    })
}
