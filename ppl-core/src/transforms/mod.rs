//! Invertible transforms with tractable Jacobians: the pieces of transformed distributions,
//! normalizing flows and constrained parameters.
//!
//! Every transform here is shape-preserving: `forward` and `inverse` keep the rightmost
//! [`event_dim`](Transform::event_dim) dims and broadcast the others against the transform's own
//! parameters (see [`Transform::forward_shape`]). Chains are built with [`ComposeTransform`] or
//! [`TransformExt::then`]; transforms whose parameters depend on parent tensors implement
//! [`ConditionalTransform`] and become plain transforms once given a context.
//!
//! ```
//! use ppl_core::transforms::{AffineTransform, ExpTransform, Transform, TransformExt};
//! use candle_core::{Device, Tensor};
//!
//! // y = exp(1 + 2 x)
//! let t = AffineTransform::new(1.0, 2.0)?.then(ExpTransform);
//! let x = Tensor::new(&[0.0f64, 0.5], &Device::Cpu)?;
//! let y = t.forward(&x)?;
//! let back = t.inverse(&y)?.to_vec1::<f64>()?;
//! assert!((back[1] - 0.5).abs() < 1e-12);
//! // log|dy/dx| = log 2 + (1 + 2x)
//! let ladj = t.log_abs_det_jacobian(&x, &y)?.to_vec1::<f64>()?;
//! assert!((ladj[0] - (2f64.ln() + 1.0)).abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::fmt::Debug;
use std::sync::Arc;

use candle_core::Tensor;

use crate::dist::Support;
use crate::error::{Error, Result};

mod actnorm;
mod affine;
mod affine_mlp;
mod biject;
mod cache;
mod channel_subset;
mod compose;
mod conditional;
mod conditional_affine;
mod conv1x1;
mod coupling;
mod exp;
mod independent;
mod inverse;
mod learnable_affine;
mod logit;
mod permute;
mod realnvp;
mod reshape;
mod sigmoid;
mod softplus;
mod spline;
mod spline_conditional;
mod spline_knots;
mod squeeze;

pub use actnorm::ActNorm;
pub use affine::AffineTransform;
pub use affine_mlp::MlpConditionalAffine;
pub use biject::biject_to;
pub use channel_subset::ChannelSubset;
pub use compose::ComposeTransform;
pub use conditional::{ConditionalTransform, ConditionalTransformRef, TransformStep};
pub use conditional_affine::{AffineParamsFn, ConditionalAffine};
pub use conv1x1::InvertibleConv1x1;
pub use coupling::{AffineCoupling, CouplingMask, CouplingTransform};
pub use exp::ExpTransform;
pub use independent::IndependentTransform;
pub use inverse::InverseTransform;
pub use learnable_affine::LearnableAffine;
pub use logit::{dequantize, LogitTransform};
pub use permute::ChannelPermutation;
pub use realnvp::{RealNvp, RealNvpConfig};
pub use reshape::ReshapeTransform;
pub use sigmoid::SigmoidTransform;
pub use softplus::SoftplusTransform;
pub use spline::{Spline, SplineConfig, SplineOrder, SplineTransform};
pub use spline_conditional::ConditionalSpline;
pub use squeeze::SqueezeTransform;

/// A shared transform.
pub type TransformRef = Arc<dyn Transform>;

/// A bijection `y = forward(x)` with its inverse and the log of the absolute determinant of its
/// Jacobian.
pub trait Transform: Debug + Send + Sync {
    /// The transform's name, used in error messages.
    fn name(&self) -> &'static str;

    /// `y = f(x)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// `x = f⁻¹(y)`.
    fn inverse(&self, y: &Tensor) -> Result<Tensor>;

    /// `log |det ∂y/∂x|` at `(x, y = f(x))`. Its shape is `x`'s shape with the rightmost
    /// [`event_dim`](Self::event_dim) dims summed out.
    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor>;

    /// How many rightmost dims the transform acts on jointly (0 for elementwise transforms).
    fn event_dim(&self) -> usize {
        0
    }

    /// The set `x` lies in.
    fn domain(&self) -> Support {
        Support::Real
    }

    /// The set `y` lies in.
    fn codomain(&self) -> Support {
        Support::Real
    }

    /// The shape of `forward(x)` for an `x` of `shape`: `shape` broadcast against the
    /// transform's parameters. An error when they do not broadcast.
    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        Ok(shape.to_vec())
    }

    /// The shape of `inverse(y)` for a `y` of `shape`.
    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        Ok(shape.to_vec())
    }

    /// `(forward(x), log_abs_det_jacobian(x, forward(x)))` in one pass. Chains override it so
    /// that intermediate values are computed once.
    fn forward_and_log_det(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let y = self.forward(x)?;
        let ladj = self.log_abs_det_jacobian(x, &y)?;
        Ok((y, ladj))
    }
}

/// Conversion into a [`TransformRef`], so that constructors accept any transform by value or
/// shared.
pub trait IntoTransform {
    /// The shared transform.
    fn into_transform(self) -> TransformRef;
}

impl<T: Transform + 'static> IntoTransform for T {
    fn into_transform(self) -> TransformRef {
        Arc::new(self)
    }
}

impl IntoTransform for TransformRef {
    fn into_transform(self) -> TransformRef {
        self
    }
}

impl IntoTransform for &TransformRef {
    fn into_transform(self) -> TransformRef {
        self.clone()
    }
}

/// Methods every transform gets: chaining, inverting, reinterpreting dims, sharing.
pub trait TransformExt: IntoTransform + Sized {
    /// `self` followed by `next`: `x ↦ next(self(x))`.
    fn then(self, next: impl IntoTransform) -> ComposeTransform {
        ComposeTransform::new(vec![self.into_transform(), next.into_transform()])
    }

    /// The inverse transform, `y ↦ self⁻¹(y)`.
    fn inv(self) -> InverseTransform {
        InverseTransform::new(self)
    }

    /// The transform acting jointly on `n` more rightmost dims: its log-det is summed over them
    /// (Pyro's `IndependentTransform`).
    fn independent(self, n: usize) -> IndependentTransform {
        IndependentTransform::new(self, n)
    }

    /// The transform as a shared [`TransformRef`].
    fn shared(self) -> TransformRef {
        self.into_transform()
    }
}

impl<T: IntoTransform> TransformExt for T {}

/// Sums the rightmost `n` dims of `t` (a log-det or log-density over event dims).
///
/// An [`Error::ShapeMismatch`] when `t` has fewer than `n` dims; `context` names the caller.
pub fn sum_rightmost(t: &Tensor, n: usize, context: &str) -> Result<Tensor> {
    if n == 0 {
        return Ok(t.clone());
    }
    let rank = t.rank();
    if n > rank {
        return Err(Error::ShapeMismatch {
            context: format!(
                "{context}: summing {n} rightmost event dim(s) of a rank-{rank} value"
            ),
            expected: vec![1; n],
            got: t.dims().to_vec(),
        });
    }
    let dims: Vec<usize> = (rank - n..rank).collect();
    Ok(t.sum(dims)?)
}

/// Checks that `x` has at least `event_dim` dims, as a transform acting on them jointly needs.
pub(crate) fn check_event_rank(x: &Tensor, event_dim: usize, context: &str) -> Result<()> {
    if x.rank() < event_dim {
        return Err(Error::ShapeMismatch {
            context: format!(
                "{context}: the transform acts on {event_dim} rightmost dim(s) but the value has rank {}",
                x.rank()
            ),
            expected: vec![1; event_dim],
            got: x.dims().to_vec(),
        });
    }
    Ok(())
}
