//! The distribution behind `factor`: an empty value with a given log-density.

use candle_core::{DType, Device, Tensor};

use super::{DistRef, Distribution, Support};
use crate::error::Result;
use crate::rng::Rng;

/// A distribution over an empty value whose log-density is a given tensor (Pyro's `Unit`);
/// `factor` adds its log-density to the joint.
#[derive(Debug, Clone)]
pub struct Unit {
    log_factor: Tensor,
    batch: Vec<usize>,
}

impl Unit {
    /// A unit distribution contributing `log_factor` (any shape: its shape is the batch shape).
    pub fn new(log_factor: Tensor) -> Self {
        let batch = log_factor.dims().to_vec();
        Unit { log_factor, batch }
    }

    /// The log-density it contributes.
    pub fn log_factor(&self) -> &Tensor {
        &self.log_factor
    }
}

impl Distribution for Unit {
    fn name(&self) -> &'static str {
        "Unit"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.log_factor.dtype()
    }
    fn device(&self) -> &Device {
        self.log_factor.device()
    }
    fn support(&self) -> Support {
        Support::Any
    }
    fn sample(&self, _rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(&self.batch);
        Ok(Tensor::zeros(shape, self.dtype(), self.device())?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let shape = super::broadcast_shapes(value.dims(), &self.batch)
            .ok_or_else(|| crate::Error::shape("Unit::log_prob", &self.batch, value.dims()))?;
        Ok(self.log_factor.broadcast_as(shape)?.contiguous()?)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(std::sync::Arc::new(Unit {
            log_factor: self.log_factor.broadcast_as(batch_shape)?.contiguous()?,
            batch: batch_shape.to_vec(),
        }))
    }
}
