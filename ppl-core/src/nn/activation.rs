//! Elementwise non-linearities.

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::special;

/// An elementwise non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x ≥ 0`, `slope · x` below (the slope must lie in `[0, 1]`).
    LeakyRelu(f64),
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(−x))`.
    Sigmoid,
    /// `log(1 + exp(x))`.
    Softplus,
    /// `x`.
    Identity,
}

impl Activation {
    /// Applies the non-linearity elementwise. A leaky slope outside `[0, 1]` is an
    /// [`Error::InvalidParameter`].
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match *self {
            Activation::Relu => x.relu()?,
            Activation::LeakyRelu(slope) => {
                if !(0.0..=1.0).contains(&slope) {
                    return Err(Error::param(
                        "LeakyRelu",
                        "slope",
                        format!("must lie in [0, 1], got {slope}"),
                    ));
                }
                // For a slope in [0, 1], max(x, slope · x) is the leaky ReLU in two ops.
                x.maximum(&x.affine(slope, 0.0)?)?
            }
            Activation::Tanh => x.tanh()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Activation::Softplus => special::softplus(x)?,
            Activation::Identity => x.clone(),
        })
    }
}
