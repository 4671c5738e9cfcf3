//! `y = log(1 + exp(x))`.

use candle_core::Tensor;

use super::Transform;
use crate::dist::Support;
use crate::error::Result;
use crate::special;

/// The elementwise map `y = log(1 + exp(x))` from the reals onto `(0, inf)` (Pyro's
/// `SoftplusTransform`), a smooth alternative to `exp` for positive parameters that grows
/// linearly instead of exponentially.
///
/// The inverse `x = y + log(−expm1(−y))` and the log-det `−softplus(−x)` are written so that
/// neither loses digits in the tails (`y → 0` and `y → inf`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftplusTransform;

impl Transform for SoftplusTransform {
    fn name(&self) -> &'static str {
        "SoftplusTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        special::softplus(x)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let t = special::expm1(&y.neg()?)?.neg()?.log()?;
        Ok(y.add(&t)?)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // d/dx softplus(x) = σ(x), and log σ(x) = −softplus(−x)
        special::log_sigmoid(x)
    }

    fn codomain(&self) -> Support {
        Support::Positive
    }
}
