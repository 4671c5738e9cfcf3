//! A fully connected layer.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::error::{Error, Result};

/// `y = x Wᵀ + b` over the last dim of `x`, any number of leading dims (torch's `Linear`).
///
/// Weights `weight` `(out, in)` and `bias` `(out)` are initialised as torch does,
/// uniform on `±1/√in`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer from `in_dim` to `out_dim` features with a bias, parameters `weight` and `bias`
    /// under `vb`'s prefix.
    pub fn new(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        check_dims(in_dim, out_dim)?;
        let bound = 1.0 / (in_dim as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Ok(Linear {
            weight: vb.get_with_hints((out_dim, in_dim), "weight", init)?,
            bias: Some(vb.get_with_hints(out_dim, "bias", init)?),
        })
    }

    /// A layer whose weight and bias start at zero, so that it outputs zeros until trained: the
    /// last layer of a conditioner that should start at the identity map.
    pub fn zeros(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        check_dims(in_dim, out_dim)?;
        Ok(Linear {
            weight: vb.get_with_hints((out_dim, in_dim), "weight", Init::Const(0.0))?,
            bias: Some(vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?),
        })
    }

    /// The weight `(out, in)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `(out)`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Applies the layer to `x` of shape `(..., in)`, giving `(..., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (out_dim, in_dim) = self.weight.dims2()?;
        let dims = x.dims();
        if dims.last() != Some(&in_dim) {
            return Err(Error::shape(
                format!("Linear({in_dim} → {out_dim}) input (..., {in_dim})"),
                &[in_dim],
                dims,
            ));
        }
        let lead = &dims[..dims.len() - 1];
        let n: usize = lead.iter().product();
        let flat = x.reshape((n, in_dim))?;
        let mut y = flat.matmul(&self.weight.t()?)?;
        if let Some(b) = &self.bias {
            y = crate::kernels::add_bias(&y, b, 1)?;
        }
        let mut shape = lead.to_vec();
        shape.push(out_dim);
        Ok(y.reshape(shape)?)
    }
}

fn check_dims(in_dim: usize, out_dim: usize) -> Result<()> {
    if in_dim == 0 || out_dim == 0 {
        return Err(Error::usage(format!(
            "Linear: feature counts must be positive, got {in_dim} → {out_dim}"
        )));
    }
    Ok(())
}
