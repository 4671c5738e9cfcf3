//! `y = exp(x)`.

use candle_core::Tensor;

use super::Transform;
use crate::dist::Support;
use crate::error::Result;

/// The elementwise map `y = exp(x)` from the reals onto `(0, inf)`, whose log-det is `x` itself
/// (Pyro's `ExpTransform`). A Normal pushed through it is a LogNormal.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpTransform;

impl Transform for ExpTransform {
    fn name(&self) -> &'static str {
        "ExpTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.exp()?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.log()?)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn codomain(&self) -> Support {
        Support::Positive
    }

    fn forward_and_log_det(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((x.exp()?, x.clone()))
    }
}
