//! An affine map whose location and scale are functions of a context.

use std::fmt;
use std::sync::Arc;

use candle_core::Tensor;

use super::{AffineTransform, ConditionalTransform, TransformRef};
use crate::error::Result;

/// A user function from a context to a pair of tensors: `(loc, scale)` or `(loc, log_scale)`.
pub type AffineParamsFn = Arc<dyn Fn(&Tensor) -> Result<(Tensor, Tensor)> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Linear,
    Log,
}

/// `y = loc(c) + scale(c) · x` for a context `c`: the location-scale mechanism of a structural
/// equation whose parameters depend on the parents (Pyro's `ConditionalAffineTransform`, with a
/// plain function in place of the network).
///
/// ```
/// use ppl_core::transforms::{ConditionalAffine, ConditionalTransform, Transform};
/// use candle_core::{Device, Tensor};
///
/// // intensity = 2 · thickness + exp(0.1 · thickness) · u
/// let mech = ConditionalAffine::from_log_scale(|t: &Tensor| Ok((t.affine(2.0, 0.0)?, t.affine(0.1, 0.0)?)));
/// let t = Tensor::new(&[1.0f64, 3.0], &Device::Cpu)?;
/// let u = Tensor::new(&[0.0f64, 1.0], &Device::Cpu)?;
/// let y = mech.condition(&t)?.forward(&u)?.to_vec1::<f64>()?;
/// assert!((y[1] - (6.0 + 0.3f64.exp())).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ConditionalAffine {
    params: AffineParamsFn,
    scale: Scale,
    event_dim: usize,
}

impl ConditionalAffine {
    /// `f(context) = (loc, scale)`; the scale is validated as [`AffineTransform::new`] does.
    pub fn new(f: impl Fn(&Tensor) -> Result<(Tensor, Tensor)> + Send + Sync + 'static) -> Self {
        Self::from_arc(Arc::new(f), Scale::Linear)
    }

    /// `f(context) = (loc, log_scale)`: the parameterisation of flows, with `log_scale` as the
    /// log-det.
    pub fn from_log_scale(
        f: impl Fn(&Tensor) -> Result<(Tensor, Tensor)> + Send + Sync + 'static,
    ) -> Self {
        Self::from_arc(Arc::new(f), Scale::Log)
    }

    /// A shared `(loc, scale)` function.
    pub fn with_scale_fn(f: AffineParamsFn) -> Self {
        Self::from_arc(f, Scale::Linear)
    }

    /// A shared `(loc, log_scale)` function.
    pub fn with_log_scale_fn(f: AffineParamsFn) -> Self {
        Self::from_arc(f, Scale::Log)
    }

    fn from_arc(params: AffineParamsFn, scale: Scale) -> Self {
        ConditionalAffine {
            params,
            scale,
            event_dim: 0,
        }
    }

    /// The map read as acting jointly on the rightmost `event_dim` dims (see
    /// [`AffineTransform::with_event_dim`]).
    pub fn with_event_dim(mut self, event_dim: usize) -> Self {
        self.event_dim = event_dim;
        self
    }

    /// The affine transform for `context`, as its concrete type.
    pub fn affine(&self, context: &Tensor) -> Result<AffineTransform> {
        let (loc, s) = (self.params)(context)?;
        let t = match self.scale {
            Scale::Linear => AffineTransform::new(loc, s)?,
            Scale::Log => AffineTransform::from_log_scale(loc, s)?,
        };
        Ok(t.with_event_dim(self.event_dim))
    }
}

impl fmt::Debug for ConditionalAffine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionalAffine")
            .field("params", &"<fn>")
            .field("log_scale", &(self.scale == Scale::Log))
            .field("event_dim", &self.event_dim)
            .finish()
    }
}

impl ConditionalTransform for ConditionalAffine {
    fn condition(&self, context: &Tensor) -> Result<TransformRef> {
        Ok(Arc::new(self.affine(context)?))
    }
}
