//! The keep/redraw kernel of Lucas & Kemp's extended structural model on a continuous noise
//! tensor — a GAN's latent `z ∈ [−1, 1]^d` with a uniform prior, for instance: each coordinate
//! is kept with probability `stickiness`, else redrawn from the prior. Conditioning the
//! generated image on an antecedent (an attribute classifier's verdict) is the caller's: draw
//! proposals with this kernel and weight or reject them.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use models::fairness::sticky::StickyKernel;
//!
//! let z = Tensor::zeros((4, 100), DType::F32, &Device::Cpu)?;
//! let k = StickyKernel::gan_uniform(1.0)?;
//! let out = k.apply(&z, &mut ppl_core::rng::from_seed(0))?;
//! assert_eq!(out.z.flatten_all()?.to_vec1::<f32>()?, vec![0.0; 400]);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::Tensor;
use ppl_core::rng::{self, open01, Rng};
use ppl_core::{Error, Result};
use rand_distr::Distribution as _;

/// The prior a redrawn coordinate comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoisePrior {
    /// Uniform on `(low, high)` (DCGAN latents: `(−1, 1)`).
    Uniform {
        /// The lower end.
        low: f64,
        /// The upper end (> `low`).
        high: f64,
    },
    /// The standard normal.
    StandardNormal,
}

/// The keep/redraw kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StickyKernel {
    stickiness: f64,
    prior: NoisePrior,
}

/// One application of the kernel.
#[derive(Debug, Clone)]
pub struct StickyDraw {
    /// The counterfactual noise, of the input's shape, dtype and device.
    pub z: Tensor,
    /// `1` where the coordinate was kept, `0` where redrawn (`u8`, same shape and device).
    pub keep: Tensor,
}

impl StickyKernel {
    /// The kernel with keep probability `stickiness` in `[0, 1]` and redraws from `prior`.
    pub fn new(stickiness: f64, prior: NoisePrior) -> Result<Self> {
        if !(0.0..=1.0).contains(&stickiness) {
            return Err(Error::param(
                "StickyKernel",
                "stickiness",
                format!("must lie in [0, 1], got {stickiness}"),
            ));
        }
        if let NoisePrior::Uniform { low, high } = prior {
            if !(low < high && low.is_finite() && high.is_finite()) {
                return Err(Error::param(
                    "StickyKernel",
                    "prior",
                    format!("a uniform prior needs finite low < high, got ({low}, {high})"),
                ));
            }
        }
        Ok(StickyKernel { stickiness, prior })
    }

    /// The kernel for DCGAN latents: uniform on `(−1, 1)`.
    pub fn gan_uniform(stickiness: f64) -> Result<Self> {
        Self::new(
            stickiness,
            NoisePrior::Uniform {
                low: -1.0,
                high: 1.0,
            },
        )
    }

    /// The keep probability.
    pub fn stickiness(&self) -> f64 {
        self.stickiness
    }

    /// The prior of redrawn coordinates.
    pub fn prior(&self) -> NoisePrior {
        self.prior
    }

    /// Keeps each coordinate of `z` with probability `stickiness`, else replaces it by a prior
    /// draw. Keep flags and fresh draws come from `rng` on the host (as every draw in ppl) and
    /// are combined with `z` on its device.
    pub fn apply(&self, z: &Tensor, rng: &mut Rng) -> Result<StickyDraw> {
        let n = z.elem_count();
        let keep: Vec<f64> = (0..n)
            .map(|_| f64::from(u8::from(open01(rng) < self.stickiness)))
            .collect();
        let fresh: Vec<f64> = match self.prior {
            NoisePrior::Uniform { low, high } => {
                (0..n).map(|_| low + (high - low) * open01(rng)).collect()
            }
            NoisePrior::StandardNormal => (0..n)
                .map(|_| rand_distr::StandardNormal.sample(rng))
                .collect(),
        };
        let keep = rng::tensor_from_f64(keep, z.dims(), z.dtype(), z.device())?.ne(0.0)?;
        let fresh = rng::tensor_from_f64(fresh, z.dims(), z.dtype(), z.device())?;
        Ok(StickyDraw {
            z: keep.where_cond(z, &fresh)?,
            keep,
        })
    }
}
