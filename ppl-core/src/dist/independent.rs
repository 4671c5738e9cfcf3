//! Reinterpreting batch dims as event dims.

use candle_core::{DType, Device, Tensor};

use super::{DistRef, Distribution, Support};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// A distribution whose rightmost `reinterpreted` batch dims are read as event dims: its
/// `log_prob` sums over them (Pyro's `Independent`, made by [`to_event`](super::DistExt::to_event)).
#[derive(Debug, Clone)]
pub struct Independent {
    base: DistRef,
    reinterpreted: usize,
    batch: Vec<usize>,
    event: Vec<usize>,
}

impl Independent {
    /// Reinterprets the rightmost `n` batch dims of `base` as event dims.
    pub fn new(base: DistRef, n: usize) -> Result<Self> {
        let b = base.batch_shape();
        if n > b.len() {
            return Err(Error::Usage(format!(
                "to_event({n}) on {} with batch shape {b:?}: only {} batch dim(s) to reinterpret",
                base.name(),
                b.len()
            )));
        }
        let split = b.len() - n;
        let batch = b[..split].to_vec();
        let mut event = b[split..].to_vec();
        event.extend_from_slice(base.event_shape());
        Ok(Independent {
            base,
            reinterpreted: n,
            batch,
            event,
        })
    }

    /// The distribution underneath.
    pub fn base(&self) -> &DistRef {
        &self.base
    }

    /// How many batch dims were reinterpreted.
    pub fn reinterpreted(&self) -> usize {
        self.reinterpreted
    }
}

impl Distribution for Independent {
    fn name(&self) -> &'static str {
        "Independent"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &self.event
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn device(&self) -> &Device {
        self.base.device()
    }
    fn support(&self) -> Support {
        self.base.support()
    }
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        self.base.sample(rng, sample_shape)
    }
    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn structural(&self) -> Option<&dyn super::Mechanism> {
        self.base
            .structural()
            .map(|_| self as &dyn super::Mechanism)
    }
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        self.base.rsample(rng, sample_shape)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let mut lp = self.base.log_prob(value)?;
        for _ in 0..self.reinterpreted {
            lp = lp.sum(lp.rank() - 1)?;
        }
        Ok(lp)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let mut full = batch_shape.to_vec();
        let b = self.base.batch_shape();
        full.extend_from_slice(&b[b.len() - self.reinterpreted..]);
        Ok(std::sync::Arc::new(Independent::new(
            self.base.expand(&full)?,
            self.reinterpreted,
        )?))
    }
    fn has_enumerate_support(&self) -> bool {
        false
    }
    fn mean(&self) -> Result<Tensor> {
        self.base.mean()
    }
    fn variance(&self) -> Result<Tensor> {
        self.base.variance()
    }
}
