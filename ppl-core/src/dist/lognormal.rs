//! The log-normal distribution.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::common::{log_prob_shape, select, to_shape};
use super::{DistRef, Distribution, Normal, Param, Support};
use crate::error::Result;
use crate::rng::Rng;

/// The distribution of `exp(X)` for `X ~ N(loc, scale²)`.
///
/// ```
/// use ppl_core::dist::{Distribution, LogNormal};
/// use candle_core::{Device, Tensor};
///
/// let d = LogNormal::new(0.0, 1.0)?;
/// let lp = d.log_prob(&Tensor::new(&[1.0f32, -1.0], &Device::Cpu)?)?.to_vec1::<f32>()?;
/// assert!((lp[0] + 0.918_938_5).abs() < 1e-6);
/// assert_eq!(lp[1], f32::NEG_INFINITY);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LogNormal {
    base: Normal,
}

impl LogNormal {
    /// `exp(N(loc, scale²))`; `loc` must be finite and `scale` finite and positive.
    pub fn new(loc: impl Into<Param>, scale: impl Into<Param>) -> Result<Self> {
        Ok(LogNormal {
            base: Normal::named("LogNormal", loc.into(), scale.into())?,
        })
    }

    /// The mean of `ln X`.
    pub fn loc(&self) -> &Tensor {
        self.base.loc()
    }

    /// The standard deviation of `ln X`.
    pub fn scale(&self) -> &Tensor {
        self.base.scale()
    }

    /// The normal distribution of `ln X`.
    pub fn base(&self) -> &Normal {
        &self.base
    }
}

impl Distribution for LogNormal {
    fn name(&self) -> &'static str {
        "LogNormal"
    }
    fn batch_shape(&self) -> &[usize] {
        self.base.batch_shape()
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn device(&self) -> &Device {
        self.base.device()
    }
    fn support(&self) -> Support {
        Support::Positive
    }
    fn structural(&self) -> Option<&dyn super::Mechanism> {
        Some(self)
    }
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        Ok(self.base.sample(rng, sample_shape)?.exp()?)
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        Ok(self.base.rsample(rng, sample_shape)?.exp()?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape("LogNormal", value, self.dtype(), self.batch_shape(), &[])?;
        let (loc, scale) = (self.base.loc(), self.base.scale());
        if let Some(lp) = crate::kernels::fused::log_normal_log_prob(value, loc, scale, &out)? {
            return Ok(lp);
        }
        let inside = value.gt(0.0)?.mul(&value.lt(f64::INFINITY)?)?;
        let y = select(&inside, value, 1.0)?.log()?;
        let lp = self.base.log_prob(&y)?.broadcast_sub(&y)?;
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(LogNormal {
            base: self.base.expanded(batch_shape)?,
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        let s2 = self.scale().sqr()?;
        Ok(self.loc().add(&s2.affine(0.5, 0.0)?)?.exp()?)
    }
    fn variance(&self) -> Result<Tensor> {
        let s2 = self.scale().sqr()?;
        let two_m_s2 = self.loc().affine(2.0, 0.0)?.add(&s2)?;
        Ok(crate::special::expm1(&s2)?.mul(&two_m_s2.exp()?)?)
    }
}
