//! A spline whose parameters come from an MLP of a context.

use std::sync::Arc;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::spline::{SplineConfig, SplineOrder, SplineTransform};
use super::{ConditionalTransform, TransformRef};
use crate::error::{Error, Result};
use crate::nn::{Activation, Mlp};

/// An elementwise spline over `dim` values whose bin widths, heights, derivatives (and lambdas)
/// are an MLP of a context of `context_dim` features (Pyro's `ConditionalSpline` on a
/// `DenseNN`): the mechanism of a continuous site given its parents.
///
/// The network is `net` under the builder's prefix: ReLU layers through `hidden`, then one layer
/// of `dim · (3K − 1)` outputs (`dim · (4K − 1)` for the linear-rational spline), read as
/// widths `(dim, K)`, heights `(dim, K)`, derivatives `(dim, K − 1)` and lambdas `(dim, K)`.
///
/// ```
/// use ppl_core::dist::{ConditionalTransformedDistribution, Distribution, Normal};
/// use ppl_core::params::ParamStore;
/// use ppl_core::transforms::{ConditionalSpline, SplineConfig, TransformStep};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// ppl_core::rng::set_seed(0);
/// let store = ParamStore::new();
/// let vb = store.var_builder(DType::F64, &Device::Cpu);
/// // intensity | thickness: one value, one parent.
/// let spline = ConditionalSpline::new(vb.pp("intensity"), 1, 1, &[16, 16], SplineConfig::default())?;
/// let mech = ConditionalTransformedDistribution::new(
///     Normal::standard(1, DType::F64, &Device::Cpu)?,
///     vec![TransformStep::conditional(spline)],
/// );
/// let thickness = Tensor::new(&[[1.5f64], [2.5], [3.0]], &Device::Cpu)?;
/// let given = mech.condition(&thickness)?; // a distribution with batch shape [3, 1]
/// assert_eq!(given.batch_shape(), &[3, 1]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConditionalSpline {
    net: Mlp,
    dim: usize,
    cfg: SplineConfig,
}

impl ConditionalSpline {
    /// A spline over `dim` values conditioned on `context_dim` features through ReLU layers of
    /// widths `hidden`.
    pub fn new(
        vb: VarBuilder,
        dim: usize,
        context_dim: usize,
        hidden: &[usize],
        cfg: SplineConfig,
    ) -> Result<Self> {
        cfg.check()?;
        if dim == 0 || context_dim == 0 {
            return Err(Error::usage(format!(
                "ConditionalSpline: dim and context_dim must be positive, got {dim} and {context_dim}"
            )));
        }
        let mut dims = vec![context_dim];
        dims.extend_from_slice(hidden);
        dims.push(dim * cfg.params_per_dim());
        Ok(ConditionalSpline {
            net: Mlp::new(vb.pp("net"), &dims, Activation::Relu)?,
            dim,
            cfg,
        })
    }

    /// The network.
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The spline for `context` `(..., context_dim)`: parameters of batch shape `(..., dim)`.
    pub fn spline(&self, context: &Tensor) -> Result<SplineTransform> {
        let out = self.net.forward(context)?;
        let last = out.rank() - 1;
        let k = self.cfg.count_bins;
        let lead = &out.dims()[..last];
        let mut offset = 0;
        let mut take = |n: usize| -> Result<Tensor> {
            let t = out.narrow(last, offset * self.dim, n * self.dim)?;
            offset += n;
            let mut shape = lead.to_vec();
            shape.extend_from_slice(&[self.dim, n]);
            Ok(t.reshape(shape)?)
        };
        let widths = take(k)?;
        let heights = take(k)?;
        let derivatives = take(k - 1)?;
        let lambdas = match self.cfg.order {
            SplineOrder::Quadratic => None,
            SplineOrder::Linear => Some(take(k)?),
        };
        SplineTransform::new(
            &widths,
            &heights,
            &derivatives,
            lambdas.as_ref(),
            self.cfg.bound,
        )
    }
}

impl ConditionalTransform for ConditionalSpline {
    fn condition(&self, context: &Tensor) -> Result<TransformRef> {
        Ok(Arc::new(self.spline(context)?))
    }
}
