//! Reshaping the event dims of a value.

use candle_core::Tensor;

use super::{check_event_rank, Transform};
use crate::error::{Error, Result};

const NAME: &str = "ReshapeTransform";

/// Reshapes the rightmost dims of a value from `from` to `to` (same element count, same
/// number of dims), e.g. `(1, 28, 28)` images to `(4, 14, 14)` blocks. Its log-det is zero.
///
/// Event shapes of different ranks are refused: a transform here declares one event dim for
/// both sides, and a log-det summed over a different number of dims on each side would be
/// misread by [`TransformedDistribution`](crate::dist::TransformedDistribution).
///
/// ```
/// use ppl_core::transforms::{ReshapeTransform, Transform};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// let t = ReshapeTransform::new(&[1, 4, 4], &[4, 2, 2])?;
/// let x = Tensor::zeros((5, 1, 4, 4), DType::F32, &Device::Cpu)?;
/// assert_eq!(t.forward(&x)?.dims(), &[5, 4, 2, 2]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReshapeTransform {
    from: Vec<usize>,
    to: Vec<usize>,
}

impl ReshapeTransform {
    /// Reshapes events of shape `from` to `to`.
    pub fn new(from: &[usize], to: &[usize]) -> Result<Self> {
        let (a, b): (usize, usize) = (from.iter().product(), to.iter().product());
        if from.len() != to.len() || a != b || from.is_empty() {
            return Err(Error::usage(format!(
                "{NAME}: the shapes must have the same, non-zero, number of dims and of elements, \
                 got {from:?} ({a} elements) and {to:?} ({b})"
            )));
        }
        Ok(ReshapeTransform {
            from: from.to_vec(),
            to: to.to_vec(),
        })
    }

    fn swap(&self, shape: &[usize], a: &[usize], b: &[usize], what: &str) -> Result<Vec<usize>> {
        let n = a.len();
        if shape.len() < n || shape[shape.len() - n..] != *a {
            let mut want = vec![];
            want.extend_from_slice(a);
            return Err(Error::shape(
                format!("{NAME}::{what}: a value of shape (..., {a:?})"),
                &want,
                shape,
            ));
        }
        let mut out = shape[..shape.len() - n].to_vec();
        out.extend_from_slice(b);
        Ok(out)
    }
}

impl Transform for ReshapeTransform {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.swap(x.dims(), &self.from, &self.to, "forward")?;
        Ok(x.reshape(s)?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let s = self.swap(y.dims(), &self.to, &self.from, "inverse")?;
        Ok(y.reshape(s)?)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let n = self.from.len();
        check_event_rank(x, n, NAME)?;
        Ok(Tensor::zeros(
            &x.dims()[..x.rank() - n],
            x.dtype(),
            x.device(),
        )?)
    }

    fn event_dim(&self) -> usize {
        self.from.len()
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.swap(shape, &self.from, &self.to, "forward_shape")
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.swap(shape, &self.to, &self.from, "inverse_shape")
    }
}
