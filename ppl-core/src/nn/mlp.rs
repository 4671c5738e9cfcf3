//! A multi-layer perceptron.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::{Activation, Linear};
use crate::error::{Error, Result};

/// Fully connected layers with a non-linearity between them and none after the last (Pyro's
/// `DenseNN` without the parameter split). Layers are named `layers.0`, `layers.1`, … under the
/// builder's prefix.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
}

impl Mlp {
    /// An MLP through the feature counts `dims = [in, hidden…, out]` (at least two entries).
    pub fn new(vb: VarBuilder, dims: &[usize], activation: Activation) -> Result<Self> {
        Self::build(vb, dims, activation, false)
    }

    /// As [`new`](Self::new), with the last layer starting at zero: the network outputs zeros
    /// until trained, so a conditioner built on it starts at a known map.
    pub fn zero_last(vb: VarBuilder, dims: &[usize], activation: Activation) -> Result<Self> {
        Self::build(vb, dims, activation, true)
    }

    fn build(vb: VarBuilder, dims: &[usize], activation: Activation, zero: bool) -> Result<Self> {
        if dims.len() < 2 {
            return Err(Error::usage(format!(
                "Mlp: give at least the input and output feature counts, got {dims:?}"
            )));
        }
        let vb = vb.pp("layers");
        let n = dims.len() - 1;
        let layers = (0..n)
            .map(|i| {
                let (a, b) = (dims[i], dims[i + 1]);
                if zero && i == n - 1 {
                    Linear::zeros(vb.pp(i), a, b)
                } else {
                    Linear::new(vb.pp(i), a, b)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp { layers, activation })
    }

    /// The input feature count.
    pub fn in_dim(&self) -> usize {
        self.layers[0].weight().dims()[1]
    }

    /// The output feature count.
    pub fn out_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].weight().dims()[0]
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// Applies the network to `x` of shape `(..., in)`, giving `(..., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i < last {
                h = self.activation.apply(&h)?;
            }
        }
        Ok(h)
    }
}
