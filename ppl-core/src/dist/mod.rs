//! Probability distributions over candle tensors.
//!
//! Shapes follow Pyro: a draw has shape `sample_shape + batch_shape + event_shape`, and
//! `log_prob(value)` has shape `sample_shape + batch_shape` (event dims summed). Constructors
//! validate their parameters (while [validation](set_validation) is on, the default) and return
//! a typed [`Error`] naming the parameter at fault.
//!
//! ```
//! use ppl_core::dist::{Distribution, DistExt, Normal};
//! use candle_core::{Device, Tensor};
//!
//! let loc = Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu)?;
//! let d = Normal::new(&loc, 1.0)?.to_event(1)?;        // one event of 3 values
//! assert_eq!(d.batch_shape(), &[] as &[usize]);
//! assert_eq!(d.event_shape(), &[3]);
//! let x = d.sample(&mut ppl_core::rng::from_seed(0), &[])?;
//! assert_eq!(d.log_prob(&x)?.dims(), &[] as &[usize]);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::rng::Rng;

mod param;
mod structural;
mod support;
mod unit;

pub use param::Param;
pub use structural::{gumbel_pair_prob, mechanism_of, Abduction, Mechanism};
pub use support::Support;
pub use unit::Unit;

/// A shared, immutable distribution: what sites, traces and handlers hold.
pub type DistRef = Arc<dyn Distribution>;

/// A probability distribution with a batch and an event shape.
pub trait Distribution: Debug + Send + Sync {
    /// The distribution's name, used in error messages (`"Normal"`).
    fn name(&self) -> &'static str;

    /// Independent, not necessarily identical, copies of the distribution.
    fn batch_shape(&self) -> &[usize];

    /// The shape of one draw of one copy.
    fn event_shape(&self) -> &[usize];

    /// The dtype of draws.
    fn dtype(&self) -> DType;

    /// The device that draws live on.
    fn device(&self) -> &Device;

    /// The set each element of a draw lies in.
    fn support(&self) -> Support;

    /// A draw of shape `sample_shape + batch_shape + event_shape`, with no gradient path to the
    /// parameters.
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor>;

    /// Whether [`rsample`](Self::rsample) is available.
    fn has_rsample(&self) -> bool {
        false
    }

    /// A reparameterised draw: differentiable with respect to the parameters.
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let _ = (rng, sample_shape);
        Err(Error::NotReparameterizable { dist: self.name() })
    }

    /// The log-density (or log-mass) of `value`, of shape `sample_shape + batch_shape`; `-inf`
    /// outside the support, with gradients that stay finite there.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor>;

    /// The same distribution broadcast to a larger batch shape.
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef>;

    /// The distribution with batch dim `dim` narrowed to `start..start + len`, its parameters
    /// narrowed as views; `None` (the default) where that is not available. World handlers use
    /// it to score only the factual world of an observed site.
    fn narrow_batch(&self, _dim: usize, _start: usize, _len: usize) -> Result<Option<DistRef>> {
        Ok(None)
    }

    /// Whether the support is discrete and finite, so that it can be enumerated.
    fn has_enumerate_support(&self) -> bool {
        false
    }

    /// Every value of the support, stacked along a new leftmost dim, of shape
    /// `[n] + batch_shape + event_shape` when `expand`, else `[n] + [1; batch dims] + event_shape`.
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let _ = expand;
        Err(Error::Unsupported {
            what: format!("enumerating the support of {}", self.name()),
            why: "its support is not discrete and finite".into(),
        })
    }

    /// The structural form: exogenous noise, the value as a function of noise and parameters,
    /// and abduction ([`Mechanism`]); `None` for a distribution that has none
    /// ([`mechanism_of`] turns that into an error naming it).
    fn structural(&self) -> Option<&dyn Mechanism> {
        None
    }

    /// The mean, where it has a closed form.
    fn mean(&self) -> Result<Tensor> {
        Err(Error::Unsupported {
            what: format!("the mean of {}", self.name()),
            why: "no closed form is implemented".into(),
        })
    }

    /// The variance, where it has a closed form.
    fn variance(&self) -> Result<Tensor> {
        Err(Error::Unsupported {
            what: format!("the variance of {}", self.name()),
            why: "no closed form is implemented".into(),
        })
    }
}

/// Conversion into a [`DistRef`], so that primitives accept any distribution by value or shared.
pub trait IntoDist {
    /// The shared distribution.
    fn into_dist(self) -> DistRef;
}

impl<D: Distribution + 'static> IntoDist for D {
    fn into_dist(self) -> DistRef {
        Arc::new(self)
    }
}

impl IntoDist for DistRef {
    fn into_dist(self) -> DistRef {
        self
    }
}

impl IntoDist for &DistRef {
    fn into_dist(self) -> DistRef {
        self.clone()
    }
}

/// What a sample site accepts: a distribution, or the `Result` of building one, so that
/// `sample("x", Normal::new(0.0, scale))` reports a bad parameter as an error naming the site.
pub trait SiteDist {
    /// The shared distribution, or the error that building it gave.
    fn into_site_dist(self) -> Result<DistRef>;
}

impl<D: IntoDist> SiteDist for D {
    fn into_site_dist(self) -> Result<DistRef> {
        Ok(self.into_dist())
    }
}

impl<D: IntoDist> SiteDist for Result<D> {
    fn into_site_dist(self) -> Result<DistRef> {
        self.map(IntoDist::into_dist)
    }
}

/// Methods every distribution gets: reinterpreting batch dims as event dims, and sharing.
pub trait DistExt: IntoDist + Sized {
    /// Reinterprets the rightmost `n` batch dims as event dims (Pyro's `to_event`).
    fn to_event(self, n: usize) -> Result<Independent> {
        Independent::new(self.into_dist(), n)
    }

    /// The distribution as a shared [`DistRef`].
    fn shared(self) -> DistRef {
        self.into_dist()
    }
}

impl<T: IntoDist> DistExt for T {}

static VALIDATION: AtomicBool = AtomicBool::new(true);

/// Turns parameter and support validation on or off for every thread (Pyro's
/// `enable_validation`). On by default; turning it off saves a host read per constructor.
pub fn set_validation(on: bool) {
    VALIDATION.store(on, Ordering::Relaxed);
}

/// Whether parameter and support validation is on.
pub fn validation_enabled() -> bool {
    VALIDATION.load(Ordering::Relaxed)
}

/// The broadcast of two shapes (numpy rules), or `None` if they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

pub use independent::Independent;
mod independent;
pub use transformed::{ConditionalTransformedDistribution, TransformedDistribution};
mod transformed;
pub use bernoulli::Bernoulli;
pub use beta::Beta;
pub use categorical::Categorical;
pub use delta::Delta;
pub use exponential::Exponential;
pub use gamma::Gamma;
pub use lognormal::LogNormal;
pub use normal::Normal;
pub use uniform::Uniform;
mod bernoulli;
mod beta;
mod categorical;
mod common;
pub(crate) use common::{to_shape, violation};
mod delta;
mod exponential;
mod gamma;
mod lognormal;
mod normal;
mod uniform;
