//! Transforms whose parameters are functions of a context (the parents of a site).

use std::fmt::Debug;
use std::sync::Arc;

use candle_core::Tensor;

use super::TransformRef;
use crate::error::Result;

/// A family of transforms indexed by a context tensor: given the parents of a site it yields the
/// site's mechanism (Pyro's `ConditionalTransform`). Neural conditioners (an MLP producing the
/// parameters, spline and coupling flows) implement this trait too.
pub trait ConditionalTransform: Debug + Send + Sync {
    /// The transform for `context`.
    fn condition(&self, context: &Tensor) -> Result<TransformRef>;
}

/// A shared conditional transform.
pub type ConditionalTransformRef = Arc<dyn ConditionalTransform>;

/// One step of a [`ConditionalTransformedDistribution`](crate::dist::ConditionalTransformedDistribution):
/// a fixed transform, or a conditional one that is conditioned on the context first.
#[derive(Debug, Clone)]
pub enum TransformStep {
    /// A transform that does not depend on the context.
    Plain(TransformRef),
    /// A transform built from the context.
    Conditional(ConditionalTransformRef),
}

impl TransformStep {
    /// The transform this step is for `context`.
    pub fn condition(&self, context: &Tensor) -> Result<TransformRef> {
        match self {
            TransformStep::Plain(t) => Ok(t.clone()),
            TransformStep::Conditional(c) => c.condition(context),
        }
    }

    /// A conditional step from any conditional transform.
    pub fn conditional(c: impl ConditionalTransform + 'static) -> Self {
        TransformStep::Conditional(Arc::new(c))
    }

    /// A plain step from any transform.
    pub fn plain(t: impl super::IntoTransform) -> Self {
        TransformStep::Plain(t.into_transform())
    }
}

impl From<TransformRef> for TransformStep {
    fn from(t: TransformRef) -> Self {
        TransformStep::Plain(t)
    }
}

impl From<ConditionalTransformRef> for TransformStep {
    fn from(c: ConditionalTransformRef) -> Self {
        TransformStep::Conditional(c)
    }
}
