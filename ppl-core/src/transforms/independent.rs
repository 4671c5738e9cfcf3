//! Reinterpreting batch dims of a transform as event dims.

use candle_core::Tensor;

use super::{sum_rightmost, IntoTransform, Transform, TransformRef};
use crate::dist::Support;
use crate::error::Result;

/// A transform read as acting jointly on `reinterpreted` more rightmost dims: values are mapped
/// as by the base transform and the log-det is summed over those dims (Pyro's
/// `IndependentTransform`, made by [`independent`](super::TransformExt::independent)).
///
/// ```
/// use ppl_core::transforms::{ExpTransform, Transform, TransformExt};
/// use candle_core::{Device, Tensor};
///
/// let t = ExpTransform.independent(1);
/// let x = Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0]], &Device::Cpu)?;
/// let ladj = t.log_abs_det_jacobian(&x, &t.forward(&x)?)?;
/// assert_eq!(ladj.to_vec1::<f64>()?, vec![3.0, 7.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct IndependentTransform {
    base: TransformRef,
    reinterpreted: usize,
}

impl IndependentTransform {
    /// `base` acting jointly on `reinterpreted` more rightmost dims.
    pub fn new(base: impl IntoTransform, reinterpreted: usize) -> Self {
        IndependentTransform {
            base: base.into_transform(),
            reinterpreted,
        }
    }

    /// The transform underneath.
    pub fn base(&self) -> &TransformRef {
        &self.base
    }

    /// How many dims were reinterpreted.
    pub fn reinterpreted(&self) -> usize {
        self.reinterpreted
    }
}

impl Transform for IndependentTransform {
    fn name(&self) -> &'static str {
        "IndependentTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.base.forward(x)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.base.inverse(y)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let l = self.base.log_abs_det_jacobian(x, y)?;
        sum_rightmost(&l, self.reinterpreted, "IndependentTransform")
    }

    fn event_dim(&self) -> usize {
        self.base.event_dim() + self.reinterpreted
    }

    fn domain(&self) -> Support {
        self.base.domain()
    }

    fn codomain(&self) -> Support {
        self.base.codomain()
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.base.forward_shape(shape)
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.base.inverse_shape(shape)
    }

    fn forward_and_log_det(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (y, l) = self.base.forward_and_log_det(x)?;
        Ok((
            y,
            sum_rightmost(&l, self.reinterpreted, "IndependentTransform")?,
        ))
    }
}
