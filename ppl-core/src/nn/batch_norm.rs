//! Batch normalisation with running statistics kept in the parameter store.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::assign;
use crate::error::{Error, Result};

/// Hyper-parameters of [`BatchNorm`] (torch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Weight of the current batch in the running statistics' moving average.
    pub momentum: f64,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// Batch normalisation over dim 1 of `(N, C)` or `(N, C, H, W)` inputs (torch's `BatchNorm1d` /
/// `BatchNorm2d`).
///
/// In training mode a batch is normalised by its own mean and (biased) variance, and the running
/// statistics move towards them (the unbiased variance, as torch); in evaluation mode the
/// running statistics are used, so that one example's output does not depend on the others.
/// `weight` (init 1) and `bias` (init 0) are trainable; `running_mean` (init 0) and
/// `running_var` (init 1) are store entries written in place and never differentiated, so
/// optimisers leave them alone and checkpoints keep them.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    cfg: BatchNormConfig,
}

impl BatchNorm {
    /// Batch normalisation of `channels` channels.
    pub fn new(vb: VarBuilder, channels: usize, cfg: BatchNormConfig) -> Result<Self> {
        if channels == 0 {
            return Err(Error::usage("BatchNorm: channels must be positive"));
        }
        let eps_ok = cfg.eps > 0.0 && cfg.eps.is_finite();
        if !eps_ok || !(0.0..=1.0).contains(&cfg.momentum) {
            return Err(Error::param(
                "BatchNorm",
                "config",
                format!("eps must be positive and momentum in [0, 1], got {cfg:?}"),
            ));
        }
        Ok(BatchNorm {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            running_mean: vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?,
            running_var: vb.get_with_hints(channels, "running_var", Init::Const(1.0))?,
            cfg,
        })
    }

    /// The running mean (a stored buffer).
    pub fn running_mean(&self) -> &Tensor {
        &self.running_mean
    }

    /// The running variance (a stored buffer).
    pub fn running_var(&self) -> &Tensor {
        &self.running_var
    }

    /// Normalises `x`; `train` selects batch statistics (and updates the running ones) or the
    /// running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.weight.dim(0)?;
        let d = x.dims();
        if d.len() < 2 || d[1] != c {
            return Err(Error::shape(
                format!("BatchNorm({c}) input (N, {c}, ...)"),
                &[d.first().copied().unwrap_or(0), c],
                d,
            ));
        }
        // Channel statistics broadcast as (1, C, 1, ..).
        let mut pshape = vec![1usize; d.len()];
        pshape[1] = c;
        let (mean, var) = if train {
            // (N, C, rest) -> (C, N·rest), so that the statistics reduce one dim.
            let per_channel = x.transpose(0, 1)?.contiguous()?.reshape((c, ()))?;
            let count = per_channel.dim(1)?;
            if count < 2 {
                return Err(Error::usage(format!(
                    "BatchNorm: training mode needs more than one value per channel, got input {d:?}"
                )));
            }
            let mean = per_channel.mean_keepdim(1)?;
            let centred = per_channel.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(1)?;
            let (mean, var) = (mean.flatten_all()?, var.flatten_all()?);
            let m = self.cfg.momentum;
            let unbiased = var.affine(count as f64 / (count - 1) as f64, 0.0)?;
            let new_mean = (self.running_mean.detach().affine(1.0 - m, 0.0)?
                + mean.detach().affine(m, 0.0)?)?;
            let new_var = (self.running_var.detach().affine(1.0 - m, 0.0)?
                + unbiased.detach().affine(m, 0.0)?)?;
            assign(&self.running_mean, &new_mean)?;
            assign(&self.running_var, &new_var)?;
            (mean, var)
        } else {
            (self.running_mean.detach(), self.running_var.detach())
        };
        let inv_std = var.affine(1.0, self.cfg.eps)?.sqrt()?.recip()?;
        let scale = (inv_std * &self.weight)?;
        let shift = (&self.bias - (&mean * &scale)?)?;
        let scale = scale.to_dtype(x.dtype())?.reshape(pshape.clone())?;
        let shift = shift.to_dtype(x.dtype())?.reshape(pshape)?;
        Ok(x.broadcast_mul(&scale)?.broadcast_add(&shift)?)
    }
}
