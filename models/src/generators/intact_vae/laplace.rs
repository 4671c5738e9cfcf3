//! A Laplace distribution with a fixed scale, for pixel noise: its log-density is
//! `−|y − μ|/b − ln 2b`, so maximum likelihood fits the conditional median, which is what a mean
//! absolute error rewards (a Normal's conditional mean smears an uncertain edge over its
//! possible positions).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use ppl_core::dist::{DistRef, Distribution, Support};
use ppl_core::rng::{open01, tensor_from_f64, Rng};
use ppl_core::{Error, Result};

/// `Laplace(loc, b)` elementwise with one scale `b` for every element; batch shape = `loc`'s.
#[derive(Debug, Clone)]
pub struct Laplace {
    loc: Tensor,
    scale: f64,
}

impl Laplace {
    /// `Laplace(loc, scale)`, `scale` positive and finite.
    pub fn new(loc: &Tensor, scale: f64) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::param(
                "Laplace",
                "scale",
                format!("must be positive and finite, got {scale}"),
            ));
        }
        Ok(Laplace {
            loc: loc.clone(),
            scale,
        })
    }

    /// The location (the median), of the batch shape.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }
}

impl Distribution for Laplace {
    fn name(&self) -> &'static str {
        "Laplace"
    }
    fn batch_shape(&self) -> &[usize] {
        self.loc.dims()
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
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        Ok(self.rsample(rng, sample_shape)?.detach())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    /// `μ + b·(±Exp(1))`, the sign from a fair coin: an exponential magnitude with a random sign
    /// is Laplace.
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(self.loc.dims());
        let n: usize = shape.iter().product();
        let e: Vec<f64> = (0..n)
            .map(|_| {
                let m = -open01(rng).ln() * self.scale;
                if open01(rng) < 0.5 {
                    -m
                } else {
                    m
                }
            })
            .collect();
        let e = tensor_from_f64(e, shape.as_slice(), self.dtype(), self.device())?;
        Ok(e.broadcast_add(&self.loc)?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let d = value
            .to_dtype(self.dtype())?
            .broadcast_sub(&self.loc)?
            .abs()?;
        Ok(d.affine(-1.0 / self.scale, -(2.0 * self.scale).ln())?)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(Laplace {
            loc: self.loc.broadcast_as(batch_shape)?.contiguous()?,
            scale: self.scale,
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.clone())
    }
    fn variance(&self) -> Result<Tensor> {
        Ok((self.loc.ones_like()? * (2.0 * self.scale * self.scale))?)
    }
}
