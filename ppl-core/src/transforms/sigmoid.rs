//! `y = 1 / (1 + exp(-x))`.

use candle_core::{DType, Tensor};

use super::Transform;
use crate::dist::Support;
use crate::error::Result;
use crate::special;

/// The elementwise logistic map from the reals onto `(0, 1)` (Pyro's `SigmoidTransform`).
///
/// As in Pyro, values are clamped to `[tiny, 1 - eps]` of their dtype on the way out and on the
/// way back, so that a sigmoid that rounds to 0 or 1 still inverts to a finite value. The log-det
/// `−softplus(−x) − softplus(x)` is computed from `x`, never from the rounded `y`, so it stays
/// exact in the tails.
#[derive(Debug, Clone, Copy, Default)]
pub struct SigmoidTransform;

fn clamp_unit(p: &Tensor) -> Result<Tensor> {
    let (tiny, eps) = match p.dtype() {
        DType::F64 => (f64::MIN_POSITIVE, f64::EPSILON),
        DType::F32 => (f32::MIN_POSITIVE as f64, f32::EPSILON as f64),
        // Half precision: its own smallest normal and epsilon.
        DType::F16 => (6.103_515_625e-5, 9.765_625e-4),
        _ => (1.175_494_4e-38, 7.812_5e-3),
    };
    Ok(p.clamp(tiny, 1.0 - eps)?)
}

impl Transform for SigmoidTransform {
    fn name(&self) -> &'static str {
        "SigmoidTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        clamp_unit(&candle_nn::ops::sigmoid(x)?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        special::logit(&clamp_unit(y)?)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        // log σ'(x) = log σ(x) + log σ(−x) = −softplus(−x) − softplus(x)
        let a = special::softplus(&x.neg()?)?;
        let b = special::softplus(x)?;
        Ok(a.add(&b)?.neg()?)
    }

    fn codomain(&self) -> Support {
        Support::UnitInterval
    }
}
