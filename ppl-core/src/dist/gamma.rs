//! The gamma distribution, with implicit reparameterisation gradients.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::Rng as _;
use statrs::function::gamma::{checked_gamma_lr, ln_gamma};

use super::common::{
    broadcast_params, draw_shape, expand_param, host_values, log_prob_shape, select, to_shape,
    validate, xlogy, Domain,
};
use super::{DistRef, Distribution, Param, Support};
use crate::error::Result;
use crate::rng::{open01, tensor_from_f64, Rng};
use crate::special;

/// The gamma distribution with shape `concentration` (α) and `rate` (β): density
/// `β^α x^(α-1) e^(-βx) / Γ(α)` on `x > 0`.
///
/// `rsample` is differentiable in both parameters: the draw is made on the host and its
/// derivative in α attached by implicit reparameterisation (Figurnov et al., 2018).
///
/// ```
/// use ppl_core::dist::{Distribution, Gamma};
/// use candle_core::{Device, Tensor};
///
/// let d = Gamma::new(2.0, 3.0)?;
/// let lp = d.log_prob(&Tensor::new(&[1.0f32], &Device::Cpu)?)?.to_vec1::<f32>()?;
/// assert!((lp[0] - (9.0f32.ln() - 3.0)).abs() < 1e-5);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gamma {
    concentration: Tensor,
    rate: Tensor,
    batch: Vec<usize>,
}

impl Gamma {
    /// `Gamma(concentration, rate)`, both finite and positive, broadcasting together.
    pub fn new(concentration: impl Into<Param>, rate: impl Into<Param>) -> Result<Self> {
        let (c, r) = (concentration.into(), rate.into());
        validate("Gamma", "concentration", &c, Domain::Positive)?;
        validate("Gamma", "rate", &r, Domain::Positive)?;
        let ([concentration, rate], batch) =
            broadcast_params("Gamma", ["concentration", "rate"], [&c, &r])?;
        Ok(Gamma {
            concentration,
            rate,
            batch,
        })
    }

    /// The shape parameter α, broadcast to the batch shape.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }

    /// The rate β, broadcast to the batch shape.
    pub fn rate(&self) -> &Tensor {
        &self.rate
    }

    fn draw(&self, rng: &mut Rng, sample_shape: &[usize], grad: bool) -> Result<Tensor> {
        let z = standard_gamma(rng, &self.concentration, sample_shape, grad)?;
        Ok(z.broadcast_div(&self.rate)?)
    }
}

/// One `Gamma(alpha, 1)` draw by Marsaglia and Tsang (2000). For `alpha < 1` it uses the boost
/// `Gamma(alpha) = Gamma(alpha + 1) · U^(1/alpha)`, in logs so that tiny `alpha` underflows only
/// at the end.
pub(crate) fn standard_gamma_draw(rng: &mut Rng, alpha: f64) -> f64 {
    if alpha < 1.0 {
        let g = standard_gamma_draw(rng, alpha + 1.0);
        let u = open01(rng);
        return (g.ln() + u.ln() / alpha).exp();
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x: f64 = rng.sample(rand_distr::StandardNormal);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = open01(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// `dz/dα` of a `Gamma(α, 1)` draw `z` at fixed CDF value: `-(∂F/∂α)(z; α) / f(z; α)`, with
/// `∂F/∂α` by a central difference of the regularised lower incomplete gamma function. Zero
/// where it cannot be evaluated (a draw that underflowed to the smallest positive number).
pub(crate) fn standard_gamma_grad(alpha: f64, z: f64) -> f64 {
    let h = 1e-5 * alpha;
    let (Ok(hi), Ok(lo)) = (
        checked_gamma_lr(alpha + h, z),
        checked_gamma_lr(alpha - h, z),
    ) else {
        return 0.0;
    };
    let dfda = (hi - lo) / (2.0 * h);
    let ln_density = (alpha - 1.0) * z.ln() - z - ln_gamma(alpha);
    let g = -dfda / ln_density.exp();
    if g.is_finite() {
        g
    } else {
        0.0
    }
}

/// The smallest positive normal number of `dtype`: draws are clamped to it, so that a value
/// never rounds to 0, where the log-density of a small concentration is infinite.
pub(crate) fn tiny(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::MIN_POSITIVE,
        DType::F16 => 6.103_515_625e-5,
        _ => f64::from(f32::MIN_POSITIVE),
    }
}

/// `Gamma(alpha, 1)` draws of shape `sample_shape + alpha.dims()`, made on the host. With
/// `grad`, the result carries the implicit gradient in `alpha` through the surrogate
/// `z + (α - stopgrad(α)) · dz/dα`, whose value is exactly `z`.
pub(crate) fn standard_gamma(
    rng: &mut Rng,
    alpha: &Tensor,
    sample_shape: &[usize],
    grad: bool,
) -> Result<Tensor> {
    let (dtype, device) = (alpha.dtype(), alpha.device());
    let alphas = host_values(alpha)?;
    let shape = draw_shape(sample_shape, alpha.dims(), &[]);
    let n: usize = shape.iter().product();
    let floor = tiny(dtype);
    let z: Vec<f64> = (0..n)
        .map(|i| standard_gamma_draw(rng, alphas[i % alphas.len()]).max(floor))
        .collect();
    let dz: Option<Vec<f64>> = grad.then(|| {
        z.iter()
            .enumerate()
            .map(|(i, &z)| standard_gamma_grad(alphas[i % alphas.len()], z))
            .collect()
    });
    let z = tensor_from_f64(z, shape.as_slice(), dtype, device)?;
    match dz {
        None => Ok(z),
        Some(dz) => {
            let dz = tensor_from_f64(dz, shape.as_slice(), dtype, device)?;
            let a = alpha.broadcast_as(shape.as_slice())?;
            Ok(z.add(&a.sub(&a.detach())?.mul(&dz)?)?)
        }
    }
}

impl Distribution for Gamma {
    fn name(&self) -> &'static str {
        "Gamma"
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
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        Ok(self.draw(rng, sample_shape, false)?.detach())
    }
    fn has_rsample(&self) -> bool {
        true
    }
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        self.draw(rng, sample_shape, true)
    }
    /// At `x = 0` (the boundary) the limit of the density is used: `-inf` for α > 1, `ln β` for
    /// α = 1, `+inf` for α < 1.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let out = log_prob_shape("Gamma", value, self.dtype(), &self.batch, &[])?;
        let inside = value.ge(0.0)?.mul(&value.lt(f64::INFINITY)?)?;
        let x = to_shape(&select(&inside, value, 1.0)?, &out)?;
        // The parameter-only terms are computed on the batch shape, not per value.
        let a = &self.concentration;
        let norm = a.mul(&self.rate.log()?)?.sub(&special::lgamma(a)?)?;
        let lp = xlogy(&to_shape(&a.affine(1.0, -1.0)?, &out)?, &x)?
            .sub(&x.broadcast_mul(&self.rate)?)?
            .broadcast_add(&norm)?;
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(Gamma {
            concentration: expand_param("Gamma", &self.concentration, &self.batch, batch_shape)?,
            rate: expand_param("Gamma", &self.rate, &self.batch, batch_shape)?,
            batch: batch_shape.to_vec(),
        }))
    }
    fn mean(&self) -> Result<Tensor> {
        Ok(self.concentration.div(&self.rate)?)
    }
    fn variance(&self) -> Result<Tensor> {
        Ok(self.concentration.div(&self.rate.sqr()?)?)
    }
}
