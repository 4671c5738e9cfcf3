//! Proposal kernels `z → z'` in a generator's noise space: the Gaussian copula and Lucas &
//! Kemp's sticky kernel.

use candle_core::{DType, Tensor};
use ppl_core::rng::{self, Rng};
use ppl_core::{Error, Result};
use rand_distr::Distribution as _;
use statrs::function::erf::{erfc, erfc_inv};

use crate::fairness::sticky::{NoisePrior, StickyKernel};

/// Draws a counterfactual latent `z'` for each factual row of `z` (`[n, d]`); the samplers in
/// [`noise_cf`](super) condition or intervene on what these proposals generate. The kernel's
/// prior must be the generator's.
pub trait NoiseKernel {
    /// One proposal per row of `z`, of its shape, dtype and device.
    fn propose(&self, z: &Tensor, rng: &mut Rng) -> Result<Tensor>;

    /// A short name for reports (`"Gaussian(ρ=0.8)"`, `"ESM(s=0.9)"`).
    fn describe(&self) -> String;
}

/// The Gaussian counterfactual kernel: `z'` is tied to `z` by a Gaussian copula with
/// correlation `rho`. Each coordinate `u` is mapped to a standard normal `a = Φ⁻¹(F(u))`
/// (`F` the prior's CDF; for the DCGAN's uniform prior `F(u) = (u + 1)/2`), mixed as
/// `a' = ρ·a + √(1 − ρ²)·ε` with fresh `ε ~ N(0, 1)`, and mapped back, `u' = F⁻¹(Φ(a'))`: each
/// `z'` coordinate has the prior's marginal, `ρ = 1` keeps `z`, `ρ = 0` draws `z'` independently.
///
/// `GaussianSampler::gan(0.9)?` is the kernel for DCGAN latents; values of `z` outside a
/// uniform prior's support (latents moved by an intervention) are clamped to it first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianSampler {
    rho: f64,
    prior: NoisePrior,
}

/// Distance kept from the ends of a uniform prior, so that `Φ⁻¹` stays finite.
const EDGE: f64 = 1e-12;

fn phi(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn phi_inv(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

impl GaussianSampler {
    /// The kernel with correlation `rho ∈ [−1, 1]` for latents with `prior`.
    pub fn new(rho: f64, prior: NoisePrior) -> Result<Self> {
        if !(-1.0..=1.0).contains(&rho) {
            return Err(Error::param(
                "GaussianSampler",
                "rho",
                format!("must lie in [-1, 1], got {rho}"),
            ));
        }
        // Validates the prior the same way the sticky kernel does.
        StickyKernel::new(1.0, prior)
            .map_err(|_| Error::param("GaussianSampler", "prior", format!("{prior:?}")))?;
        Ok(GaussianSampler { rho, prior })
    }

    /// The kernel for DCGAN latents (uniform on `(−1, 1)`).
    pub fn gan(rho: f64) -> Result<Self> {
        Self::new(
            rho,
            NoisePrior::Uniform {
                low: -1.0,
                high: 1.0,
            },
        )
    }

    /// The copula's correlation.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    fn normal_score(&self, u: f64) -> f64 {
        match self.prior {
            NoisePrior::StandardNormal => u,
            NoisePrior::Uniform { low, high } => {
                phi_inv(((u - low) / (high - low)).clamp(EDGE, 1.0 - EDGE))
            }
        }
    }

    fn prior_value(&self, a: f64) -> f64 {
        match self.prior {
            NoisePrior::StandardNormal => a,
            NoisePrior::Uniform { low, high } => low + (high - low) * phi(a),
        }
    }
}

impl NoiseKernel for GaussianSampler {
    /// The copula runs on the host in f64: its fresh normals are drawn there anyway (as every
    /// draw in ppl), and `Φ⁻¹` has no tensor op; one download of `z` and one upload of `z'`.
    fn propose(&self, z: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        if self.rho == 1.0 {
            // The identity by definition; the round trip through Φ⁻¹ and Φ would not be exact.
            return Ok(z.clone());
        }
        let zs = z.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let keep = (1.0 - self.rho * self.rho).sqrt();
        let out: Vec<f64> = zs
            .iter()
            .map(|&u| {
                let eps: f64 = rand_distr::StandardNormal.sample(rng);
                self.prior_value(self.rho * self.normal_score(u) + keep * eps)
            })
            .collect();
        rng::tensor_from_f64(out, z.dims(), z.dtype(), z.device())
    }

    fn describe(&self) -> String {
        format!("Gaussian(ρ={})", self.rho)
    }
}

/// Lucas & Kemp's extended-structural-model kernel: each coordinate of `z` is kept with
/// probability `stickiness`, else redrawn from the prior
/// ([`StickyKernel`](crate::fairness::sticky::StickyKernel)). `EsmSampler::gan(0.9)?` is the
/// kernel for DCGAN latents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EsmSampler {
    kernel: StickyKernel,
}

impl EsmSampler {
    /// The kernel with keep probability `stickiness ∈ [0, 1]` and redraws from `prior`.
    pub fn new(stickiness: f64, prior: NoisePrior) -> Result<Self> {
        Ok(EsmSampler {
            kernel: StickyKernel::new(stickiness, prior)?,
        })
    }

    /// The kernel for DCGAN latents (uniform on `(−1, 1)`).
    pub fn gan(stickiness: f64) -> Result<Self> {
        Ok(EsmSampler {
            kernel: StickyKernel::gan_uniform(stickiness)?,
        })
    }

    /// The keep probability.
    pub fn stickiness(&self) -> f64 {
        self.kernel.stickiness()
    }
}

impl NoiseKernel for EsmSampler {
    fn propose(&self, z: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        Ok(self.kernel.apply(z, rng)?.z)
    }

    fn describe(&self) -> String {
        format!("ESM(s={})", self.kernel.stickiness())
    }
}
