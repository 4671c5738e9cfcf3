//! The continuous uniform distribution.

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};

use super::common::{
    broadcast_params, draw_shape, expand_param, host_values, log_prob_shape, select, to_shape,
    validate, Domain,
};
use super::{validation_enabled, DistRef, Distribution, Param, Support};
use crate::error::{Error, Result};
use crate::rng::{uniform01, Rng};

/// The uniform distribution on `[low, high]`, elementwise over its batch shape.
///
/// ```
/// use ppl_core::dist::{Distribution, Uniform};
/// use candle_core::{Device, Tensor};
///
/// let d = Uniform::new(-1.0, 3.0)?;
/// let lp = d.log_prob(&Tensor::new(&[0.0f32, 5.0], &Device::Cpu)?)?.to_vec1::<f32>()?;
/// assert_eq!(lp, vec![-(4.0f32).ln(), f32::NEG_INFINITY]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Uniform {
    low: Tensor,
    high: Tensor,
    batch: Vec<usize>,
    // The bounds as numbers, known at once for scalar parameters and read from the device on
    // first use otherwise (only `support()` needs them).
    bounds: Arc<OnceLock<Support>>,
}

impl Uniform {
    /// The uniform distribution on `[low, high]`; both finite, `low < high` elementwise, and
    /// broadcasting together.
    pub fn new(low: impl Into<Param>, high: impl Into<Param>) -> Result<Self> {
        let (low, high) = (low.into(), high.into());
        validate("Uniform", "low", &low, Domain::Finite)?;
        validate("Uniform", "high", &high, Domain::Finite)?;
        let bounds = OnceLock::new();
        if let (Param::Scalar(l), Param::Scalar(h)) = (&low, &high) {
            let _ = bounds.set(Support::Interval(*l, *h));
        }
        let ([low, high], batch) = broadcast_params("Uniform", ["low", "high"], [&low, &high])?;
        if validation_enabled() {
            let (l, h) = (host_values(&low)?, host_values(&high)?);
            if let Some(i) = l.iter().zip(&h).position(|(l, h)| l >= h) {
                return Err(Error::param(
                    "Uniform",
                    "high",
                    format!(
                        "must exceed low, got low = {} and high = {} at flat index {i} of \
                         the batch shape {batch:?}",
                        l[i], h[i]
                    ),
                ));
            }
        }
        Ok(Uniform {
            low,
            high,
            batch,
            bounds: Arc::new(bounds),
        })
    }

    /// The lower bound, broadcast to the batch shape.
    pub fn low(&self) -> &Tensor {
        &self.low
    }

    /// The upper bound, broadcast to the batch shape.
    pub fn high(&self) -> &Tensor {
        &self.high
    }

    fn width(&self) -> Result<Tensor> {
        Ok(self.high.sub(&self.low)?)
    }
}

impl Distribution for Uniform {
    fn name(&self) -> &'static str {
        "Uniform"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.low.dtype()
    }
    fn device(&self) -> &Device {
        self.low.device()
    }
    /// `Interval(low, high)`. With tensor bounds that differ across the batch this is the hull
    /// `[min low, max high]`; the exact bounds are [`low`](Uniform::low) and
    /// [`high`](Uniform::high).
    fn support(&self) -> Support {
        *self.bounds.get_or_init(|| {
            let lo = self.low.min_all().and_then(|t| t.to_dtype(DType::F64));
            let hi = self.high.max_all().and_then(|t| t.to_dtype(DType::F64));
            match (
                lo.and_then(|t| t.to_scalar::<f64>()),
                hi.and_then(|t| t.to_scalar::<f64>()),
            ) {
                (Ok(l), Ok(h)) => Support::Interval(l, h),
                // A device that cannot be read has bigger problems; claim nothing false.
                _ => Support::Real,
            }
        })
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
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let shape = draw_shape(sample_shape, &self.batch, &[]);
        let u = uniform01(rng, shape, self.dtype(), self.device())?;
        Ok(u.broadcast_mul(&self.width()?)?.broadcast_add(&self.low)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape("Uniform", value, self.dtype(), &self.batch, &[])?;
        let inside = value
            .broadcast_ge(&self.low)?
            .mul(&value.broadcast_le(&self.high)?)?;
        let lp = to_shape(&self.width()?.log()?.neg()?, &out)?;
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(Uniform {
            low: expand_param("Uniform", &self.low, &self.batch, batch_shape)?,
            high: expand_param("Uniform", &self.high, &self.batch, batch_shape)?,
            batch: batch_shape.to_vec(),
            bounds: self.bounds.clone(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.low.add(&self.high)?.affine(0.5, 0.0)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.width()?.sqr()?.affine(1.0 / 12.0, 0.0)?)
    }
}
