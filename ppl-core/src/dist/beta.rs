//! The beta distribution.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::common::{
    below_one, broadcast_params, expand_param, log_prob_shape, select, to_shape, validate, xlogy,
    Domain,
};
use super::gamma::{standard_gamma, tiny};
use super::{DistRef, Distribution, Param, Support};
use crate::error::Result;
use crate::rng::Rng;
use crate::special;

/// The beta distribution on `[0, 1]` with concentrations α (`concentration1`, the weight of 1)
/// and β (`concentration0`): density `x^(α-1) (1-x)^(β-1) / B(α, β)`.
///
/// Draws are `X / (X + Y)` for `X ~ Gamma(α)`, `Y ~ Gamma(β)`, so `rsample` differentiates
/// through the gamma draws' implicit gradients. Draws are kept inside the open interval (at
/// least the dtype's smallest normal number from either end), as Pyro's.
///
/// ```
/// use ppl_core::dist::{Beta, Distribution};
/// use candle_core::{Device, Tensor};
///
/// let d = Beta::new(2.0, 2.0)?;
/// let lp = d.log_prob(&Tensor::new(&[0.5f64], &Device::Cpu)?.to_dtype(d.dtype())?)?;
/// assert!((lp.to_vec1::<f32>()?[0] - 1.5f32.ln()).abs() < 1e-5);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Beta {
    concentration1: Tensor,
    concentration0: Tensor,
    batch: Vec<usize>,
}

impl Beta {
    /// `Beta(concentration1, concentration0)`, both finite and positive, broadcasting together.
    pub fn new(concentration1: impl Into<Param>, concentration0: impl Into<Param>) -> Result<Self> {
        let (c1, c0) = (concentration1.into(), concentration0.into());
        validate("Beta", "concentration1", &c1, Domain::Positive)?;
        validate("Beta", "concentration0", &c0, Domain::Positive)?;
        let ([concentration1, concentration0], batch) =
            broadcast_params("Beta", ["concentration1", "concentration0"], [&c1, &c0])?;
        Ok(Beta {
            concentration1,
            concentration0,
            batch,
        })
    }

    /// α, the concentration of 1, broadcast to the batch shape.
    pub fn concentration1(&self) -> &Tensor {
        &self.concentration1
    }

    /// β, the concentration of 0, broadcast to the batch shape.
    pub fn concentration0(&self) -> &Tensor {
        &self.concentration0
    }

    fn draw(&self, rng: &mut Rng, sample_shape: &[usize], grad: bool) -> Result<Tensor> {
        let x = standard_gamma(rng, &self.concentration1, sample_shape, grad)?;
        let y = standard_gamma(rng, &self.concentration0, sample_shape, grad)?;
        let b = x.div(&x.add(&y)?)?;
        let dtype = self.dtype();
        Ok(b.clamp(tiny(dtype), below_one(dtype))?)
    }
}

impl Distribution for Beta {
    fn name(&self) -> &'static str {
        "Beta"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.concentration1.dtype()
    }
    fn device(&self) -> &Device {
        self.concentration1.device()
    }
    fn support(&self) -> Support {
        Support::UnitInterval
    }
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        Ok(self.draw(rng, sample_shape, false)?.detach())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        self.draw(rng, sample_shape, true)
    }
    /// At the ends 0 and 1 the limit of the density is used (`x^0` taken as 1).
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape("Beta", value, self.dtype(), &self.batch, &[])?;
        let inside = value.ge(0.0)?.mul(&value.le(1.0)?)?;
        let x = to_shape(&select(&inside, value, 0.5)?, &out)?;
        let a1 = to_shape(&self.concentration1.affine(1.0, -1.0)?, &out)?;
        let b1 = to_shape(&self.concentration0.affine(1.0, -1.0)?, &out)?;
        let lbeta = special::lbeta(&self.concentration1, &self.concentration0)?;
        let lp = xlogy(&a1, &x)?
            .add(&xlogy(&b1, &x.affine(-1.0, 1.0)?)?)?
            .broadcast_sub(&lbeta)?;
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let e = |t: &Tensor| expand_param("Beta", t, &self.batch, batch_shape);
        Ok(Arc::new(Beta {
            concentration1: e(&self.concentration1)?,
            concentration0: e(&self.concentration0)?,
            batch: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        let total = self.concentration1.add(&self.concentration0)?;
        Ok(self.concentration1.div(&total)?)
    }
    fn variance(&self) -> Result<Tensor> {
        let total = self.concentration1.add(&self.concentration0)?;
        let num = self.concentration1.mul(&self.concentration0)?;
        let den = total.sqr()?.mul(&total.affine(1.0, 1.0)?)?;
        Ok(num.div(&den)?)
    }
}
