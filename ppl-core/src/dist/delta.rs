//! The point mass.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::common::{
    check_float, draw_shape, expand_param, filled, log_prob_shape, select, to_shape, validate,
    Domain,
};
use super::{broadcast_shapes, DistRef, Distribution, Param, Support};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// A point mass at `value` (Pyro's `Delta`): draws are `value`, and `log_prob(x)` is
/// `log_density` where `x` equals `value` on every element of an event and `-inf` elsewhere.
/// The rightmost `event_dim` dims of `value` form the event. `rsample` is differentiable in
/// `value` (what `AutoDelta` guides rely on).
///
/// ```
/// use ppl_core::dist::{Delta, Distribution};
/// use candle_core::{Device, Tensor};
///
/// let v = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu)?;
/// let d = Delta::new(&v, 1)?;
/// assert_eq!((d.batch_shape(), d.event_shape()), (&[2usize][..], &[2usize][..]));
/// let x = Tensor::new(&[[1.0f32, 2.0], [3.0, 5.0]], &Device::Cpu)?;
/// assert_eq!(d.log_prob(&x)?.to_vec1::<f32>()?, vec![0.0, f32::NEG_INFINITY]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Delta {
    value: Tensor,
    log_density: Option<Tensor>,
    batch: Vec<usize>,
    event: Vec<usize>,
}

impl Delta {
    /// A point mass at `value`, whose rightmost `event_dim` dims are the event. The value must
    /// be floating point and (while validation is on) finite.
    pub fn new(value: &Tensor, event_dim: usize) -> Result<Self> {
        check_float("Delta", value.dtype())?;
        let dims = value.dims();
        if event_dim > dims.len() {
            return Err(Error::param(
                "Delta",
                "event_dim",
                format!(
                    "{event_dim} exceeds the rank {} of the value (shape {dims:?})",
                    dims.len()
                ),
            ));
        }
        validate(
            "Delta",
            "value",
            &Param::Tensor(value.clone()),
            Domain::Finite,
        )?;
        let split = dims.len() - event_dim;
        Ok(Delta {
            value: value.clone(),
            log_density: None,
            batch: dims[..split].to_vec(),
            event: dims[split..].to_vec(),
        })
    }

    /// The same point mass with log-density `log_density` at its value (Pyro's `log_density`,
    /// e.g. a log-Jacobian); it must broadcast to the batch shape.
    pub fn with_log_density(mut self, log_density: &Tensor) -> Result<Self> {
        if broadcast_shapes(log_density.dims(), &self.batch).as_deref() != Some(&self.batch[..]) {
            return Err(Error::shape(
                "Delta::with_log_density: the log-density must broadcast to the batch shape",
                &self.batch,
                log_density.dims(),
            ));
        }
        if log_density.dtype() != self.value.dtype() {
            return Err(Error::usage(format!(
                "Delta::with_log_density: dtype {:?} differs from the value's {:?}",
                log_density.dtype(),
                self.value.dtype()
            )));
        }
        self.log_density = Some(log_density.clone());
        Ok(self)
    }

    /// The point the mass sits at.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The log-density at the point, if one was given (else 0).
    pub fn log_density(&self) -> Option<&Tensor> {
        self.log_density.as_ref()
    }
}

impl Distribution for Delta {
    fn name(&self) -> &'static str {
        "Delta"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &self.event
    }
    fn dtype(&self) -> DType {
        self.value.dtype()
    }
    fn device(&self) -> &Device {
        self.value.device()
    }
    fn support(&self) -> Support {
        Support::Real
    }
    fn structural(&self) -> Option<&dyn super::Mechanism> {
        Some(self)
    }
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        Ok(self.rsample(rng, sample_shape)?.detach())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, _rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        if sample_shape.is_empty() {
            return Ok(self.value.clone());
        }
        let shape = draw_shape(sample_shape, &self.batch, &self.event);
        Ok(self.value.broadcast_as(shape)?.contiguous()?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape("Delta", value, self.dtype(), &self.batch, &self.event)?;
        let full = draw_shape(&out, &[], &self.event);
        let equal = to_shape(&value.broadcast_eq(&self.value)?, &full)?;
        let zeros = filled(0.0, &full, self.dtype(), self.device())?;
        let mut lp = select(&equal, &zeros, f64::NEG_INFINITY)?;
        for _ in 0..self.event.len() {
            lp = lp.sum(lp.rank() - 1)?;
        }
        match &self.log_density {
            Some(ld) => Ok(lp.broadcast_add(ld)?),
            None => Ok(lp),
        }
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let value = expand_param("Delta", &self.value, &self.batch, batch_shape)?;
        let log_density = match &self.log_density {
            Some(ld) => Some(ld.broadcast_as(batch_shape)?),
            None => None,
        };
        Ok(Arc::new(Delta {
            value,
            log_density,
            batch: batch_shape.to_vec(),
            event: self.event.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.value.clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.value.zeros_like()?)
    }
}
