//! Activation normalisation (Glow): a per-channel affine map initialised from data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::{DType, Tensor};
use candle_nn::{Init, VarBuilder};

use super::{check_event_rank, Transform};
use crate::error::{Error, Result};
use crate::nn::assign;

const NAME: &str = "ActNorm";

/// Glow's activation normalisation on images `(..., C, H, W)`: `y = loc + exp(log_scale) · x`
/// per channel, with log-det `H · W · Σ log_scale` (event dim 3).
///
/// Parameters `loc` and `log_scale` `(C)` live in the store, with a buffer `initialized` `(1)`.
/// They start at the identity; the first batch this layer **inverts** (the data direction, as
/// `log_prob` does) sets them so that the batch maps to zero mean and unit variance per channel
/// (data-dependent initialisation), and marks the buffer. A layer built from a store that was
/// already initialised (a shared module or a loaded checkpoint) keeps its parameters. Call
/// [`initialize`](Self::initialize) to do it explicitly.
#[derive(Debug, Clone)]
pub struct ActNorm {
    loc: Tensor,
    log_scale: Tensor,
    initialized: Tensor,
    /// Cached once `initialized` reads 1, so that the host read happens only until then.
    ready: Arc<AtomicBool>,
}

impl ActNorm {
    /// An activation normalisation of `channels` channels.
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        if channels == 0 {
            return Err(Error::usage("ActNorm: channels must be positive"));
        }
        Ok(ActNorm {
            loc: vb.get_with_hints(channels, "loc", Init::Const(0.0))?,
            log_scale: vb.get_with_hints(channels, "log_scale", Init::Const(0.0))?,
            initialized: vb.get_with_hints(1, "initialized", Init::Const(0.0))?,
            ready: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The per-channel location.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }

    /// The per-channel log-scale.
    pub fn log_scale(&self) -> &Tensor {
        &self.log_scale
    }

    /// Whether the parameters have been initialised from data (one host read until they have).
    pub fn is_initialized(&self) -> Result<bool> {
        if self.ready.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let flag = self
            .initialized
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?[0];
        let ready = flag != 0.0;
        if ready {
            self.ready.store(true, Ordering::Relaxed);
        }
        Ok(ready)
    }

    /// Sets the parameters so that `data` `(..., C, H, W)` maps back to zero mean and unit
    /// variance per channel, and marks the layer initialised.
    pub fn initialize(&self, data: &Tensor) -> Result<()> {
        let c = self.channels(data, "initialize")?;
        let per_channel = data
            .detach()
            .to_dtype(self.loc.dtype())?
            .transpose(0, data.rank() - 3)?
            .contiguous()?
            .reshape((c, ()))?;
        let mean = per_channel.mean_keepdim(1)?;
        let std = per_channel
            .broadcast_sub(&mean)?
            .sqr()?
            .mean_keepdim(1)?
            .sqrt()?;
        // A constant channel keeps unit scale instead of dividing by zero.
        let log_scale = std.affine(1.0, 1e-6)?.log()?;
        assign(&self.loc, &mean.flatten_all()?)?;
        assign(&self.log_scale, &log_scale.flatten_all()?)?;
        assign(&self.initialized, &self.initialized.ones_like()?)?;
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn channels(&self, v: &Tensor, what: &str) -> Result<usize> {
        check_event_rank(v, 3, &format!("{NAME}::{what}"))?;
        let c = self.loc.dim(0)?;
        let got = v.dims()[v.rank() - 3];
        if got != c {
            return Err(Error::shape(
                format!("{NAME}::{what}: a value of shape (..., C, H, W) with C = {c}"),
                &[c],
                &[got],
            ));
        }
        Ok(c)
    }

    fn params(&self, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let c = self.loc.dim(0)?;
        Ok((
            self.loc.to_dtype(v.dtype())?.reshape((c, 1, 1))?,
            self.log_scale.to_dtype(v.dtype())?.reshape((c, 1, 1))?,
        ))
    }
}

impl Transform for ActNorm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.channels(x, "forward")?;
        let (loc, ls) = self.params(x)?;
        Ok(x.broadcast_mul(&ls.exp()?)?.broadcast_add(&loc)?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.channels(y, "inverse")?;
        if !self.is_initialized()? {
            self.initialize(y)?;
        }
        let (loc, ls) = self.params(y)?;
        Ok(y.broadcast_sub(&loc)?.broadcast_mul(&ls.neg()?.exp()?)?)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        self.channels(x, "log_abs_det_jacobian")?;
        let d = x.dims();
        let r = x.rank();
        let pixels = (d[r - 2] * d[r - 1]) as f64;
        let total = self
            .log_scale
            .to_dtype(x.dtype())?
            .sum_all()?
            .affine(pixels, 0.0)?;
        Ok(total.broadcast_as(&d[..r - 3])?.contiguous()?)
    }

    fn event_dim(&self) -> usize {
        3
    }
}
