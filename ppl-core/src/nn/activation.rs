//! Elementwise non-linearities.

use candle_core::Tensor;

use crate::error::Result;
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
    /// [`crate::Error::InvalidParameter`].
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match *self {
            // The fused kernels: candle's relu backward is four passes with fresh allocations.
            Activation::Relu => crate::kernels::relu(x)?,
            Activation::LeakyRelu(slope) => crate::kernels::leaky_relu(x, slope)?,
            Activation::Tanh => x.tanh()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Activation::Softplus => special::softplus(x)?,
            Activation::Identity => x.clone(),
        })
    }
}
