//! The normal (Gaussian) distribution.

use std::sync::Arc;

use candle_core::{DType, Device, Shape, Tensor};

use super::common::{
    broadcast_params, check_float, draw_shape, expand_param, filled, log_prob_shape, to_shape,
    validate, Domain,
};
use super::{DistRef, Distribution, Param, Support};
use crate::error::Result;
use crate::rng::{standard_normal, Rng};

/// `0.5 ln(2π)`.
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The normal distribution `N(loc, scale²)`, elementwise over its batch shape.
///
/// ```
/// use ppl_core::dist::{Distribution, Normal};
/// use candle_core::{DType, Device, Tensor};
///
/// let d = Normal::new(Tensor::new(&[0.0f64, 1.0], &Device::Cpu)?, 2.0)?;
/// assert_eq!(d.batch_shape(), &[2]);
/// let lp = d.log_prob(&Tensor::new(&[0.0f64, 1.0], &Device::Cpu)?)?.to_vec1::<f64>()?;
/// let want = -(2.0f64).ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
/// assert!((lp[0] - want).abs() < 1e-12 && (lp[1] - want).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Normal {
    name: &'static str,
    loc: Tensor,
    scale: Tensor,
    // The parameters as plain numbers when they were given so: the hot path then uses one
    // affine op in place of broadcast tensor ops.
    loc_num: Option<f64>,
    scale_num: Option<f64>,
    batch: Vec<usize>,
}

fn number(p: &Param) -> Option<f64> {
    match p {
        Param::Scalar(x) => Some(*x),
        Param::Tensor(_) => None,
    }
}

impl Normal {
    /// `N(loc, scale²)`; `loc` and `scale` broadcast together to the batch shape. Errors if
    /// `loc` is not finite, `scale` is not finite and positive (while validation is on), or the
    /// shapes do not broadcast.
    pub fn new(loc: impl Into<Param>, scale: impl Into<Param>) -> Result<Self> {
        Self::named("Normal", loc.into(), scale.into())
    }

    /// A normal distribution that reports errors under `name` (for distributions built on it).
    pub(crate) fn named(name: &'static str, loc: Param, scale: Param) -> Result<Self> {
        validate(name, "loc", &loc, Domain::Finite)?;
        validate(name, "scale", &scale, Domain::Positive)?;
        let (loc_num, scale_num) = (number(&loc), number(&scale));
        let ([loc, scale], batch) = broadcast_params(name, ["loc", "scale"], [&loc, &scale])?;
        Ok(Normal {
            name,
            loc,
            scale,
            loc_num,
            scale_num,
            batch,
        })
    }

    /// The standard normal `N(0, 1)` with batch shape `shape`.
    pub fn standard(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Self> {
        check_float("Normal", dtype)?;
        let shape = shape.into();
        let batch = shape.dims().to_vec();
        Ok(Normal {
            name: "Normal",
            loc: filled(0.0, &batch, dtype, device)?,
            scale: filled(1.0, &batch, dtype, device)?,
            loc_num: Some(0.0),
            scale_num: Some(1.0),
            batch,
        })
    }

    /// The mean, broadcast to the batch shape.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }

    /// The standard deviation, broadcast to the batch shape.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }

    /// `loc + scale · eps`, with gradients to the parameters.
    pub(crate) fn transform_noise(&self, eps: &Tensor) -> Result<Tensor> {
        Ok(match (self.loc_num, self.scale_num) {
            (Some(m), Some(s)) => eps.affine(s, m)?,
            (None, Some(s)) => eps.affine(s, 0.0)?.broadcast_add(&self.loc)?,
            _ => eps.broadcast_mul(&self.scale)?.broadcast_add(&self.loc)?,
        })
    }

    /// `(x − loc) / scale`: the noise of the location-scale mechanism that gives `x`.
    pub(crate) fn standardize(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match (self.loc_num, self.scale_num) {
            (Some(m), Some(s)) => x.affine(1.0 / s, -m / s)?,
            (None, Some(s)) => x.broadcast_sub(&self.loc)?.affine(1.0 / s, 0.0)?,
            _ => x.broadcast_sub(&self.loc)?.broadcast_div(&self.scale)?,
        })
    }

    /// Standard normal noise of `sample_shape + batch_shape`: the exogenous noise of the
    /// location-scale mechanism `loc + scale · eps`.
    pub(crate) fn noise(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let shape = draw_shape(sample_shape, &self.batch, &[]);
        standard_normal(rng, shape, self.dtype(), self.device())
    }

    pub(crate) fn expanded(&self, batch_shape: &[usize]) -> Result<Self> {
        let loc = expand_param(self.name, &self.loc, &self.batch, batch_shape)?;
        let scale = expand_param(self.name, &self.scale, &self.batch, batch_shape)?;
        Ok(Normal {
            loc,
            scale,
            batch: batch_shape.to_vec(),
            ..*self
        })
    }
}

impl Distribution for Normal {
    fn name(&self) -> &'static str {
        self.name
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.loc.dtype()
    }
    fn device(&self) -> &Device {
        self.loc.device()
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
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        self.transform_noise(&self.noise(rng, sample_shape)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape(self.name, value, self.dtype(), &self.batch, &[])?;
        // With a number for the scale, `-(x - loc)² / (2 scale²) - ln scale - ½ ln 2π` is one
        // affine op after the square: 2 to 4 ops in all on the hot path.
        Ok(match (self.loc_num, self.scale_num) {
            (Some(m), Some(s)) => {
                let x = to_shape(value, &out)?;
                let d = if m == 0.0 { x } else { x.affine(1.0, -m)? };
                d.sqr()?.affine(-0.5 / (s * s), -HALF_LN_2PI - s.ln())?
            }
            (None, Some(s)) => value
                .broadcast_sub(&self.loc)?
                .sqr()?
                .affine(-0.5 / (s * s), -HALF_LN_2PI - s.ln())?,
            _ => match crate::kernels::fused::normal_log_prob(value, &self.loc, &self.scale, &out)?
            {
                Some(lp) => lp,
                None => value
                    .broadcast_sub(&self.loc)?
                    .broadcast_div(&self.scale)?
                    .sqr()?
                    .affine(-0.5, -HALF_LN_2PI)?
                    .broadcast_sub(&self.scale.log()?)?,
            },
        })
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(self.expanded(batch_shape)?))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.scale.sqr()?)
    }
}
