//! The inverse of a transform.

use candle_core::Tensor;

use super::{IntoTransform, Transform, TransformRef};
use crate::dist::Support;
use crate::error::Result;

/// `y = f⁻¹(x)` for a transform `f`: forward and inverse swap, the log-det changes sign, domain
/// and codomain swap (Pyro's `_InverseTransform`, made by [`inv`](super::TransformExt::inv)).
///
/// ```
/// use ppl_core::transforms::{ExpTransform, Transform, TransformExt};
/// use candle_core::{Device, Tensor};
///
/// let log = ExpTransform.inv(); // y = log x
/// let x = Tensor::new(&[std::f64::consts::E], &Device::Cpu)?;
/// assert!((log.forward(&x)?.to_vec1::<f64>()?[0] - 1.0).abs() < 1e-15);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct InverseTransform {
    inner: TransformRef,
}

impl InverseTransform {
    /// The inverse of `inner`.
    pub fn new(inner: impl IntoTransform) -> Self {
        InverseTransform {
            inner: inner.into_transform(),
        }
    }

    /// The transform being inverted.
    pub fn inner(&self) -> &TransformRef {
        &self.inner
    }
}

impl Transform for InverseTransform {
    fn name(&self) -> &'static str {
        "InverseTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.inner.inverse(x)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.inner.forward(y)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        // The inner transform maps our output `y` back to our input `x`.
        Ok(self.inner.log_abs_det_jacobian(y, x)?.neg()?)
    }

    fn event_dim(&self) -> usize {
        self.inner.event_dim()
    }

    fn domain(&self) -> Support {
        self.inner.codomain()
    }

    fn codomain(&self) -> Support {
        self.inner.domain()
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.inner.inverse_shape(shape)
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.inner.forward_shape(shape)
    }
}
