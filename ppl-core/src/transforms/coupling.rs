//! Conditional affine coupling layers on images (RealNVP).

use std::sync::Arc;

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use super::cache::LogDetCache;
use super::{ConditionalTransform, Transform, TransformRef};
use crate::dist::broadcast_shapes;
use crate::error::{Error, Result};
use crate::kernels::Conv2dConfig;
use crate::nn::{from_nchw, Conv2d};
use crate::rng;

const NAME: &str = "AffineCoupling";

/// Which values of an image condition the others in a coupling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouplingMask {
    /// Pixels with `(row + column)` even (`parity = false`) or odd (`true`) pass through and
    /// condition the rest.
    Checkerboard {
        /// Which squares pass through.
        parity: bool,
    },
    /// The first half of the channels (`parity = false`) or the second (`true`) passes through
    /// and conditions the other half. Needs an even channel count.
    Channel {
        /// Which half passes through.
        parity: bool,
    },
}

/// The most a coupling layer's log-scale can reach, `±CLAMP`: a soft bound `CLAMP · tanh(s /
/// CLAMP)` that keeps early training from blowing up (Pyro clamps its coupling scales too).
const CLAMP: f64 = 2.0;

/// RealNVP's affine coupling layer on images `(..., C, H, W)`, conditioned on a context:
/// the values selected by the [`CouplingMask`] pass through, the others become
/// `x · exp(s) + t` with `(s, t)` a small convolutional network of the passing values and the
/// context (a vector of `context_dim` features per image, broadcast over the pixels as extra
/// input channels). Log-det `Σ s`, event dim 3; both directions run the network once.
///
/// The network, under the builder's prefix: `net.conv0` (3×3, to `hidden` channels), ReLU,
/// `net.conv1` (1×1), ReLU, `net.conv2` (3×3, to the `s` and `t` channels), the last starting
/// at zero so that the layer starts as the identity (Glow). `s` is soft-clamped to `(−2, 2)`.
#[derive(Debug, Clone)]
pub struct AffineCoupling {
    conv0: Conv2d,
    conv1: Conv2d,
    conv2: Conv2d,
    mask: CouplingMask,
    channels: usize,
    context_dim: usize,
}

impl AffineCoupling {
    /// A coupling layer on `channels` channels with a context of `context_dim` features (0 for
    /// none) and `hidden` channels in its network.
    pub fn new(
        vb: VarBuilder,
        channels: usize,
        context_dim: usize,
        hidden: usize,
        mask: CouplingMask,
    ) -> Result<Self> {
        if channels == 0 || hidden == 0 {
            return Err(Error::usage(format!(
                "{NAME}: channels and hidden channels must be positive, got {channels} and {hidden}"
            )));
        }
        let (cond, out) = match mask {
            CouplingMask::Checkerboard { .. } => (channels, channels),
            CouplingMask::Channel { .. } => {
                if !channels.is_multiple_of(2) {
                    return Err(Error::usage(format!(
                        "{NAME}: a channel mask needs an even channel count, got {channels}"
                    )));
                }
                (channels / 2, channels / 2)
            }
        };
        let vb = vb.pp("net");
        let same = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(AffineCoupling {
            conv0: Conv2d::new(vb.pp("conv0"), cond + context_dim, hidden, 3, same)?,
            conv1: Conv2d::new(vb.pp("conv1"), hidden, hidden, 1, Conv2dConfig::default())?,
            conv2: Conv2d::zeros(vb.pp("conv2"), hidden, 2 * out, 3, same)?,
            mask,
            channels,
            context_dim,
        })
    }

    /// The mask.
    pub fn mask(&self) -> CouplingMask {
        self.mask
    }

    /// The layer without a context (`context_dim` must be 0).
    pub fn transform(&self) -> Result<CouplingTransform> {
        if self.context_dim != 0 {
            return Err(Error::usage(format!(
                "{NAME}: the layer expects a context of {} features; use condition",
                self.context_dim
            )));
        }
        Ok(CouplingTransform {
            layer: self.clone(),
            context: None,
            cache: LogDetCache::default(),
        })
    }

    /// The layer given a context `(..., context_dim)`, whose leading dims broadcast with the
    /// images' batch dims.
    pub fn conditioned(&self, context: &Tensor) -> Result<CouplingTransform> {
        let d = context.dims();
        if self.context_dim == 0 || d.last() != Some(&self.context_dim) {
            return Err(Error::shape(
                format!("{NAME}: the context (..., context_dim)"),
                &[self.context_dim],
                d,
            ));
        }
        Ok(CouplingTransform {
            layer: self.clone(),
            context: Some(context.clone()),
            cache: LogDetCache::default(),
        })
    }

    /// `(s, t)` for the passing values `cond` `(N, C', H, W)` and context `(N, k)`.
    fn scale_shift(&self, cond: &Tensor, ctx: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let (n, _, h, w) = cond.dims4()?;
        let input = match ctx {
            Some(c) => {
                let k = c.dim(1)?;
                let planes = c
                    .to_dtype(cond.dtype())?
                    .reshape((n, k, 1, 1))?
                    .broadcast_as((n, k, h, w))?;
                Tensor::cat(&[cond, &planes], 1)?
            }
            None => cond.clone(),
        };
        let hdn = crate::kernels::relu(&self.conv0.forward(&input)?)?;
        let hdn = crate::kernels::relu(&self.conv1.forward(&hdn)?)?;
        let out = self.conv2.forward(&hdn)?;
        let half = out.dim(1)? / 2;
        let s = out.narrow(1, 0, half)?;
        let t = out.narrow(1, half, half)?;
        let s = s.affine(1.0 / CLAMP, 0.0)?.tanh()?.affine(CLAMP, 0.0)?;
        Ok((s, t))
    }

    /// The checkerboard `(1, 1, H, W)` of passing pixels.
    fn checkerboard(&self, like: &Tensor, parity: bool) -> Result<Tensor> {
        let (_, _, h, w) = like.dims4()?;
        let v: Vec<f64> = (0..h * w)
            .map(|k| {
                let odd = (k / w + k % w) % 2 == 1;
                if odd == parity {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        rng::tensor_from_f64(v, (1, 1, h, w), like.dtype(), like.device())
    }

    /// One pass on flattened images `(N, C, H, W)`: `(output, forward log-det (N))`.
    fn pass(&self, v: &Tensor, ctx: Option<&Tensor>, inverse: bool) -> Result<(Tensor, Tensor)> {
        match self.mask {
            CouplingMask::Checkerboard { parity } => {
                let m = self.checkerboard(v, parity)?;
                let free = m.affine(-1.0, 1.0)?;
                let (s, t) = self.scale_shift(&v.broadcast_mul(&m)?, ctx)?;
                let s = s.broadcast_mul(&free)?;
                let t = t.broadcast_mul(&free)?;
                let out = if inverse {
                    (v - t)?.mul(&s.neg()?.exp()?)?
                } else {
                    v.mul(&s.exp()?)?.add(&t)?
                };
                Ok((out, s.flatten_from(1)?.sum(D::Minus1)?))
            }
            CouplingMask::Channel { parity } => {
                let half = self.channels / 2;
                let (a, b) = (v.narrow(1, 0, half)?, v.narrow(1, half, half)?);
                let (kept, moved) = if parity { (b, a) } else { (a, b) };
                let (s, t) = self.scale_shift(&kept, ctx)?;
                let moved = if inverse {
                    (moved - t)?.mul(&s.neg()?.exp()?)?
                } else {
                    moved.mul(&s.exp()?)?.add(&t)?
                };
                let out = if parity {
                    Tensor::cat(&[&moved, &kept], 1)?
                } else {
                    Tensor::cat(&[&kept, &moved], 1)?
                };
                Ok((out, s.flatten_from(1)?.sum(D::Minus1)?))
            }
        }
    }
}

impl ConditionalTransform for AffineCoupling {
    fn condition(&self, context: &Tensor) -> Result<TransformRef> {
        Ok(Arc::new(self.conditioned(context)?))
    }
}

/// An [`AffineCoupling`] layer with its context bound: a [`Transform`] of event dim 3.
#[derive(Debug, Clone)]
pub struct CouplingTransform {
    layer: AffineCoupling,
    context: Option<Tensor>,
    cache: LogDetCache,
}

impl CouplingTransform {
    /// The broadcast batch shape of a value's leading dims and the context's.
    fn lead(&self, shape: &[usize], what: &str) -> Result<Vec<usize>> {
        let c = self.layer.channels;
        if shape.len() < 3 || shape[shape.len() - 3] != c {
            return Err(Error::shape(
                format!("{NAME}::{what}: a value of shape (..., C, H, W) with C = {c}"),
                &[c],
                shape,
            ));
        }
        let lead = &shape[..shape.len() - 3];
        match &self.context {
            None => Ok(lead.to_vec()),
            Some(ctx) => {
                let cl = &ctx.dims()[..ctx.rank() - 1];
                broadcast_shapes(lead, cl).ok_or_else(|| {
                    Error::shape(
                        format!("{NAME}::{what}: the images' batch dims do not broadcast with the context's"),
                        cl,
                        lead,
                    )
                })
            }
        }
    }

    fn run(&self, v: &Tensor, inverse: bool) -> Result<(Tensor, Tensor)> {
        let what = if inverse { "inverse" } else { "forward" };
        let lead = self.lead(v.dims(), what)?;
        let event = &v.dims()[v.rank() - 3..];
        let mut full = lead.clone();
        full.extend_from_slice(event);
        let n: usize = lead.iter().product();
        let flat = v
            .broadcast_as(full.as_slice())?
            .reshape((n, event[0], event[1], event[2]))?;
        let ctx = match &self.context {
            Some(c) => {
                let k = self.layer.context_dim;
                let mut cs = lead.clone();
                cs.push(k);
                Some(c.broadcast_as(cs.as_slice())?.reshape((n, k))?)
            }
            None => None,
        };
        let (out, ladj) = self.layer.pass(&flat, ctx.as_ref(), inverse)?;
        Ok((from_nchw(&out, &lead)?, ladj.reshape(lead)?))
    }
}

impl Transform for CouplingTransform {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (y, ladj) = self.run(x, false)?;
        self.cache.put(x, &y, &ladj);
        Ok(y)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (x, ladj) = self.run(y, true)?;
        self.cache.put(&x, y, &ladj);
        Ok(x)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if let Some(l) = self.cache.get(x, y) {
            return Ok(l);
        }
        Ok(self.run(x, false)?.1)
    }

    fn event_dim(&self) -> usize {
        3
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let mut out = self.lead(shape, "forward_shape")?;
        out.extend_from_slice(&shape[shape.len() - 3..]);
        Ok(out)
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.forward_shape(shape)
    }

    fn forward_and_log_det(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (y, ladj) = self.run(x, false)?;
        self.cache.put(x, &y, &ladj);
        Ok((y, ladj))
    }
}
