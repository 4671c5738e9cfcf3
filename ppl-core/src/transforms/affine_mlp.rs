//! A conditional affine map whose location and log-scale come from an MLP of the context.

use std::sync::Arc;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::{ConditionalTransform, LearnableAffine, TransformRef};
use crate::error::{Error, Result};
use crate::nn::{Activation, Mlp};

/// `y = loc(c) + exp(log_scale(c)) · x` with `(loc, log_scale) = MLP(c)` (Pyro's
/// `ConditionalAffineTransform` on a `DenseNN`): the location-scale mechanism of a site whose
/// `dim` values depend on a context of `context_dim` features (the parents, concatenated).
///
/// The network is `net` under the builder's prefix: ReLU layers through `hidden`, then one
/// layer of `2 · dim` outputs, the locations first.
///
/// ```
/// use ppl_core::params::ParamStore;
/// use ppl_core::transforms::{ConditionalTransform, MlpConditionalAffine, Transform};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// ppl_core::rng::set_seed(0);
/// let store = ParamStore::new();
/// let vb = store.var_builder(DType::F64, &Device::Cpu);
/// let mech = MlpConditionalAffine::new(vb.pp("intensity"), 1, 1, &[8])?;
/// let t = Tensor::new(&[[0.5f64], [2.0]], &Device::Cpu)?; // two parents
/// let u = Tensor::new(&[[0.0f64], [1.0]], &Device::Cpu)?;
/// let f = mech.condition(&t)?;
/// let x = f.forward(&u)?;
/// let back = f.inverse(&x)?.to_vec2::<f64>()?;
/// assert!((back[1][0] - 1.0).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MlpConditionalAffine {
    net: Mlp,
    dim: usize,
    event_dim: usize,
}

impl MlpConditionalAffine {
    /// A mechanism for `dim` values given `context_dim` context features, through ReLU layers
    /// of widths `hidden`.
    pub fn new(vb: VarBuilder, dim: usize, context_dim: usize, hidden: &[usize]) -> Result<Self> {
        if dim == 0 || context_dim == 0 {
            return Err(Error::usage(format!(
                "MlpConditionalAffine: dim and context_dim must be positive, got {dim} and {context_dim}"
            )));
        }
        let mut dims = vec![context_dim];
        dims.extend_from_slice(hidden);
        dims.push(2 * dim);
        Ok(MlpConditionalAffine {
            net: Mlp::new(vb.pp("net"), &dims, Activation::Relu)?,
            dim,
            event_dim: 0,
        })
    }

    /// The map read as acting jointly on the rightmost `event_dim` dims (1 for a vector-valued
    /// site whose log-density sums over its `dim` values).
    pub fn with_event_dim(mut self, event_dim: usize) -> Self {
        self.event_dim = event_dim;
        self
    }

    /// The network.
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The affine map for `context` `(..., context_dim)`: parameters of shape `(..., dim)`.
    pub fn affine(&self, context: &Tensor) -> Result<LearnableAffine> {
        let out = self.net.forward(context)?;
        let last = out.rank() - 1;
        let loc = out.narrow(last, 0, self.dim)?;
        let log_scale = out.narrow(last, self.dim, self.dim)?;
        Ok(LearnableAffine::from_tensors(loc, log_scale)?.with_event_dim(self.event_dim))
    }
}

impl ConditionalTransform for MlpConditionalAffine {
    fn condition(&self, context: &Tensor) -> Result<TransformRef> {
        Ok(Arc::new(self.affine(context)?))
    }
}
