//! Output heads: a linear layer producing distribution parameters.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::Linear;
use crate::error::{Error, Result};
use crate::special;

/// How a real output becomes a positive scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleLink {
    /// `softplus(raw)`: grows linearly, the usual choice for encoder scales.
    Softplus,
    /// `exp(raw)`: the raw output is the log-scale.
    Exp,
}

impl ScaleLink {
    /// The scale `link(raw) + min_scale`; the floor keeps a scale that underflows a valid
    /// distribution parameter.
    pub fn apply(&self, raw: &Tensor, min_scale: f64) -> Result<Tensor> {
        let s = match self {
            ScaleLink::Softplus => special::softplus(raw)?,
            ScaleLink::Exp => raw.exp()?,
        };
        Ok(s.affine(1.0, min_scale)?)
    }
}

/// A linear layer producing `(loc, scale)` of `out_dim` features each, e.g. the Normal of an
/// amortised encoder `q(z | x)`. Its parameters are those of one [`Linear`] layer of width
/// `2 · out_dim` under the builder's prefix: the first half is the location, the second the raw
/// scale.
#[derive(Debug, Clone)]
pub struct LocScaleHead {
    linear: Linear,
    out_dim: usize,
    link: ScaleLink,
    min_scale: f64,
}

impl LocScaleHead {
    /// A head from `in_dim` features to `out_dim` locations and scales, with a scale floor of
    /// `1e-6`.
    pub fn new(vb: VarBuilder, in_dim: usize, out_dim: usize, link: ScaleLink) -> Result<Self> {
        Ok(LocScaleHead {
            linear: Linear::new(vb, in_dim, 2 * out_dim)?,
            out_dim,
            link,
            min_scale: 1e-6,
        })
    }

    /// The same head with another non-negative scale floor.
    pub fn with_min_scale(mut self, min_scale: f64) -> Result<Self> {
        if !(min_scale >= 0.0 && min_scale.is_finite()) {
            return Err(Error::param(
                "LocScaleHead",
                "min_scale",
                format!("must be finite and non-negative, got {min_scale}"),
            ));
        }
        self.min_scale = min_scale;
        Ok(self)
    }

    /// `(loc, scale)`, each `(..., out_dim)`, for features `(..., in_dim)`.
    pub fn forward(&self, h: &Tensor) -> Result<(Tensor, Tensor)> {
        let raw = self.linear.forward(h)?;
        let last = raw.rank() - 1;
        let loc = raw.narrow(last, 0, self.out_dim)?;
        let s = raw.narrow(last, self.out_dim, self.out_dim)?;
        Ok((loc, self.link.apply(&s, self.min_scale)?))
    }
}

/// A linear layer producing logits (of a Bernoulli or Categorical), `(..., out_dim)`.
#[derive(Debug, Clone)]
pub struct LogitsHead {
    linear: Linear,
}

impl LogitsHead {
    /// A head from `in_dim` features to `out_dim` logits.
    pub fn new(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(LogitsHead {
            linear: Linear::new(vb, in_dim, out_dim)?,
        })
    }

    /// The logits for features `(..., in_dim)`.
    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        self.linear.forward(h)
    }
}
