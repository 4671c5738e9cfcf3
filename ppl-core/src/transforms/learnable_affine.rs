//! `y = loc + exp(log_scale) · x` with tensor parameters, learnable or computed.

use candle_core::{Shape, Tensor};
use candle_nn::{Init, VarBuilder};

use super::{check_event_rank, sum_rightmost, Transform};
use crate::dist::broadcast_shapes;
use crate::error::{Error, Result};

const NAME: &str = "LearnableAffine";

/// The affine map `y = loc + exp(log_scale) · x` with tensor parameters: learnable ones in the
/// parameter store ([`new`](Self::new)), or tensors computed by a network
/// ([`from_tensors`](Self::from_tensors), which [`MlpConditionalAffine`](super::MlpConditionalAffine)
/// uses).
///
/// Unlike [`AffineTransform`](super::AffineTransform) it validates nothing on the host, because
/// `exp` of a real is positive by construction: it is meant for training loops. Its log-det is
/// `log_scale` itself, summed over the rightmost [`event_dim`](Self::with_event_dim) dims.
/// Parameters are cast to the value's dtype.
///
/// ```
/// use ppl_core::params::ParamStore;
/// use ppl_core::transforms::{LearnableAffine, Transform};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// let store = ParamStore::new();
/// let vb = store.var_builder(DType::F64, &Device::Cpu);
/// let t = LearnableAffine::new(vb.pp("norm"), 2)?; // starts at the identity
/// assert_eq!(store.names(), ["norm.loc", "norm.log_scale"]);
/// let x = Tensor::new(&[[1.0f64, 2.0]], &Device::Cpu)?;
/// assert_eq!(t.forward(&x)?.to_vec2::<f64>()?, vec![vec![1.0, 2.0]]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LearnableAffine {
    loc: Tensor,
    log_scale: Tensor,
    param_shape: Vec<usize>,
    event_dim: usize,
}

impl LearnableAffine {
    /// Learnable `loc` (init 0) and `log_scale` (init 0) of `shape` under `vb`'s prefix: the
    /// identity map until trained.
    pub fn new(vb: VarBuilder, shape: impl Into<Shape>) -> Result<Self> {
        let shape: Shape = shape.into();
        let loc = vb.get_with_hints(shape.clone(), "loc", Init::Const(0.0))?;
        let log_scale = vb.get_with_hints(shape, "log_scale", Init::Const(0.0))?;
        Self::from_tensors(loc, log_scale)
    }

    /// The map with the given `loc` and `log_scale`, whose shapes must broadcast.
    pub fn from_tensors(loc: Tensor, log_scale: Tensor) -> Result<Self> {
        let param_shape = broadcast_shapes(loc.dims(), log_scale.dims()).ok_or_else(|| {
            Error::shape(
                format!("{NAME}: `loc` does not broadcast with `log_scale`"),
                log_scale.dims(),
                loc.dims(),
            )
        })?;
        Ok(LearnableAffine {
            loc,
            log_scale,
            param_shape,
            event_dim: 0,
        })
    }

    /// The same map read as acting jointly on the rightmost `event_dim` dims.
    pub fn with_event_dim(mut self, event_dim: usize) -> Self {
        self.event_dim = event_dim;
        self
    }

    /// The location.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }

    /// The log-scale.
    pub fn log_scale(&self) -> &Tensor {
        &self.log_scale
    }

    fn out_shape(&self, dims: &[usize], what: &str) -> Result<Vec<usize>> {
        broadcast_shapes(dims, &self.param_shape).ok_or_else(|| {
            Error::shape(
                format!("{NAME}::{what}: the value does not broadcast with loc/log_scale"),
                &self.param_shape,
                dims,
            )
        })
    }

    fn params(&self, v: &Tensor, what: &str) -> Result<(Tensor, Tensor, Vec<usize>)> {
        check_event_rank(v, self.event_dim, &format!("{NAME}::{what}"))?;
        let shape = self.out_shape(v.dims(), what)?;
        Ok((
            self.loc.to_dtype(v.dtype())?,
            self.log_scale.to_dtype(v.dtype())?,
            shape,
        ))
    }
}

impl Transform for LearnableAffine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (loc, ls, _) = self.params(x, "forward")?;
        Ok(x.broadcast_mul(&ls.exp()?)?.broadcast_add(&loc)?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (loc, ls, _) = self.params(y, "inverse")?;
        Ok(y.broadcast_sub(&loc)?.broadcast_mul(&ls.neg()?.exp()?)?)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let (_, ls, shape) = self.params(x, "log_abs_det_jacobian")?;
        let full = ls.broadcast_as(shape.as_slice())?;
        Ok(sum_rightmost(&full, self.event_dim, NAME)?.contiguous()?)
    }

    fn event_dim(&self) -> usize {
        self.event_dim
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.out_shape(shape, "forward_shape")
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.out_shape(shape, "inverse_shape")
    }
}
