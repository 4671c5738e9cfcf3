//! The exponential distribution.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::common::{
    broadcast_params, draw_shape, expand_param, log_prob_shape, select, to_shape, validate, Domain,
};
use super::{DistRef, Distribution, Param, Support};
use crate::error::Result;
use crate::rng::{open01, tensor_from_f64, Rng};

/// The exponential distribution with `rate` λ: density `λ e^(-λx)` on `x >= 0`.
///
/// ```
/// use ppl_core::dist::{Distribution, Exponential};
/// use candle_core::{Device, Tensor};
///
/// let d = Exponential::new(2.0)?;
/// let lp = d.log_prob(&Tensor::new(&[0.5f32, -1.0], &Device::Cpu)?)?.to_vec1::<f32>()?;
/// assert!((lp[0] - (2.0f32.ln() - 1.0)).abs() < 1e-6);
/// assert_eq!(lp[1], f32::NEG_INFINITY);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Exponential {
    rate: Tensor,
    batch: Vec<usize>,
}

impl Exponential {
    /// `Exponential(rate)`, the rate finite and positive.
    pub fn new(rate: impl Into<Param>) -> Result<Self> {
        let rate = rate.into();
        validate("Exponential", "rate", &rate, Domain::Positive)?;
        let ([rate], batch) = broadcast_params("Exponential", ["rate"], [&rate])?;
        Ok(Exponential { rate, batch })
    }

    /// The rate λ, of the batch shape.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }
}

impl Distribution for Exponential {
    fn name(&self) -> &'static str {
        "Exponential"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.rate.dtype()
    }
    fn device(&self) -> &Device {
        self.rate.device()
    }
    fn support(&self) -> Support {
        Support::Positive
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
    /// `-ln(u) / λ` with `u` uniform, differentiable in λ.
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let shape = draw_shape(sample_shape, &self.batch, &[]);
        let n: usize = shape.iter().product();
        let e: Vec<f64> = (0..n).map(|_| -open01(rng).ln()).collect();
        let e = tensor_from_f64(e, shape, self.dtype(), self.device())?;
        Ok(e.broadcast_div(&self.rate)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape("Exponential", value, self.dtype(), &self.batch, &[])?;
        let inside = value.ge(0.0)?.mul(&value.lt(f64::INFINITY)?)?;
        let x = select(&inside, value, 0.0)?;
        let lp = x
            .broadcast_mul(&self.rate)?
            .neg()?
            .broadcast_add(&self.rate.log()?)?;
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(Exponential {
            rate: expand_param("Exponential", &self.rate, &self.batch, batch_shape)?,
            batch: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.rate.recip()?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.rate.sqr()?.recip()?)
    }
}
