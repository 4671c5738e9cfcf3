//! Logit pre-processing of images and dequantisation of their pixel levels.

use candle_core::Tensor;

use super::Transform;
use crate::dist::Support;
use crate::error::{Error, Result};
use crate::rng::{self, Rng};
use crate::special;

/// `y = logit(α + (1 − 2α) x)`: the pre-processing of RealNVP and Glow, taking pixel intensities
/// in `[0, 1]` to the reals while keeping `0` and `1` at a finite distance (`α` is typically
/// 0.05, or 1e-6 for a plain logit).
///
/// This is the data-to-noise direction. An image flow generates data, so its chain ends with
/// the inverse, `LogitTransform::new(α)?.inv()`, whose codomain is `[0, 1]`. The log-det is
/// `log(1 − 2α) − log p − log(1 − p)` with `p = α + (1 − 2α) x`, computed from `y` as
/// `log(1 − 2α) − log σ(y) − log σ(−y)`, which does not cancel.
///
/// ```
/// use ppl_core::transforms::{LogitTransform, Transform, TransformExt};
/// use ppl_core::candle_core::{Device, Tensor};
///
/// let to_pixels = LogitTransform::new(0.05)?.inv();
/// let u = Tensor::new(&[-30.0f64, 0.0, 30.0], &Device::Cpu)?;
/// let x = to_pixels.forward(&u)?.to_vec1::<f64>()?;
/// assert!(x[0] > -0.06 && x[0] < 0.0 && (x[1] - 0.5).abs() < 1e-15 && x[2] < 1.06);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LogitTransform {
    alpha: f64,
}

impl LogitTransform {
    /// The transform with `alpha` in `[0, 0.5)`: an [`Error::InvalidParameter`] otherwise.
    pub fn new(alpha: f64) -> Result<Self> {
        if !(0.0..0.5).contains(&alpha) {
            return Err(Error::param(
                "LogitTransform",
                "alpha",
                format!("must lie in [0, 0.5), got {alpha}"),
            ));
        }
        Ok(LogitTransform { alpha })
    }

    /// `α`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// `(p, 1 − p)` for `p = α + (1 − 2α) x`.
    fn p_q(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let a = self.alpha;
        let k = 1.0 - 2.0 * a;
        Ok((x.affine(k, a)?, x.affine(-k, 1.0 - a)?))
    }
}

impl Transform for LogitTransform {
    fn name(&self) -> &'static str {
        "LogitTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (p, q) = self.p_q(x)?;
        Ok((p.log()? - q.log()?)?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let a = self.alpha;
        let p = candle_nn::ops::sigmoid(y)?;
        Ok(p.affine(1.0 / (1.0 - 2.0 * a), -a / (1.0 - 2.0 * a))?)
    }

    fn log_abs_det_jacobian(&self, _x: &Tensor, y: &Tensor) -> Result<Tensor> {
        // From y: p = σ(y) and 1 − p = σ(−y) exactly, so log p + log(1 − p) stays finite and
        // accurate even where p rounds to 0 or 1.
        let k = (1.0 - 2.0 * self.alpha).ln();
        let l = (special::log_sigmoid(y)? + special::log_sigmoid(&y.neg()?)?)?;
        Ok(l.affine(-1.0, k)?)
    }

    fn domain(&self) -> Support {
        Support::UnitInterval
    }
}

/// Dequantised pixels: intensities `x` in `[0, 1]` on a grid of `levels` values
/// (`k / (levels − 1)`) become `(k + u) / levels` with `u ~ Uniform(0, 1)` drawn from `rng`, so
/// that a continuous density can be fitted to them (Theis et al. 2016). The continuous
/// log-likelihood minus `D · ln(levels)` (`D` values per image) is a lower bound on the discrete
/// log-likelihood of the levels. Values off the grid are rounded to the nearest level; `levels`
/// below 2 is an error.
pub fn dequantize(x: &Tensor, levels: usize, rng: &mut Rng) -> Result<Tensor> {
    if levels < 2 {
        return Err(Error::param(
            "dequantize",
            "levels",
            format!("must be at least 2, got {levels}"),
        ));
    }
    let top = (levels - 1) as f64;
    let k = x.affine(top, 0.0)?.round()?.clamp(0.0, top)?;
    let u = rng::uniform01(rng, x.dims(), x.dtype(), x.device())?;
    Ok((k + u)?.affine(1.0 / levels as f64, 0.0)?)
}
