//! Complementary latents for latent-space de-biasing (Ramaswamy, Kim & Russakovsky 2021): for
//! a latent `z`, the point `z'` with the same target-attribute score and the negated
//! protected-attribute score, so that a generator paired with `z` and `z'` shows the target
//! attribute equally often in both protected groups.
//!
//! With unit normals `w_g` (protected) and `w_a` (target) and `c = w_gᵀw_a`,
//!
//! `z' = z − 2 (w_gᵀz + b_g) / (1 − c²) · (w_g − c·w_a)`.
//!
//! The step is orthogonal to `w_a` (`w_aᵀ(w_g − c w_a) = 0`), so `w_aᵀz' + b_a = w_aᵀz + b_a`;
//! along `w_g` it moves by `w_gᵀ(w_g − c w_a) = 1 − c²` times the coefficient, so
//! `w_gᵀz' + b_g = −(w_gᵀz + b_g)`.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use models::fairness::{debias::complementary_latents, svm::Hyperplane};
//!
//! let g = Hyperplane::new(vec![1.0, 0.0], 0.5)?;
//! let a = Hyperplane::new(vec![1.0, 1.0], 0.0)?;
//! let z = Tensor::new(&[[1.0f32, 2.0]], &Device::Cpu)?;
//! let zc = complementary_latents(&z, &g, &a)?;
//! let (s, sc) = (g.scores(&z)?.to_vec1::<f32>()?, g.scores(&zc)?.to_vec1::<f32>()?);
//! assert!((s[0] + sc[0]).abs() < 1e-6);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::Tensor;
use ppl_core::{Error, Result};

use super::svm::Hyperplane;

/// How close to parallel the two normals may be: `1 − c²` below this makes the step blow up.
pub const MIN_SIN2: f64 = 1e-6;

/// The complementary latents of the rows of `z` (`(n, d)`, or one latent `(d,)`), on `z`'s
/// device in its dtype. Errors when the hyperplanes' dimension differs from `z`'s or their
/// normals are parallel (`1 − (w_gᵀw_a)² < MIN_SIN2`: the target score cannot be kept while the
/// protected one changes).
pub fn complementary_latents(
    z: &Tensor,
    protected: &Hyperplane,
    target: &Hyperplane,
) -> Result<Tensor> {
    let d = protected.dim();
    if target.dim() != d {
        return Err(Error::shape(
            "complementary_latents: target vs protected hyperplane",
            &[d],
            &[target.dim()],
        ));
    }
    let single = z.rank() == 1;
    let z2 = if single { z.unsqueeze(0)? } else { z.clone() };
    if z2.rank() != 2 || z2.dims()[1] != d {
        return Err(Error::shape(
            "complementary_latents: latents (n, d) or (d,)",
            &[z2.dims().first().copied().unwrap_or(1), d],
            z.dims(),
        ));
    }
    let c = protected.cos(target)?;
    let sin2 = 1.0 - c * c;
    if sin2 < MIN_SIN2 {
        return Err(Error::usage(format!(
            "complementary_latents: the protected and target hyperplanes are (nearly) parallel \
             (w_g·w_a = {c}), so no latent keeps the target score while negating the protected one"
        )));
    }
    let dir: Vec<f64> = protected
        .w()
        .iter()
        .zip(target.w())
        .map(|(g, a)| g - c * a)
        .collect();
    let dir = ppl_core::rng::tensor_from_f64(dir, (1, d), z2.dtype(), z2.device())?;
    let coef = protected
        .scores(&z2)?
        .affine(-2.0 / sin2, 0.0)?
        .unsqueeze(1)?;
    let out = z2.broadcast_add(&coef.broadcast_mul(&dir)?)?;
    Ok(if single { out.squeeze(0)? } else { out })
}
