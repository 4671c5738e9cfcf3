//! Inference: exact enumeration, importance sampling (also over vectorised particles,
//! [`weighted_mean`]), predictive distributions, and stochastic variational inference with
//! autoguides.
//!
//! Every algorithm takes models as closures (`|| model(&data)`) and runs them under the handler
//! stack, so they compose with `condition`, `do_` and the counterfactual world handlers unchanged.

mod enumerate;
mod util;

pub use enumerate::{enumerate, Enumerate, Enumeration, Marginal, DEFAULT_MAX_ASSIGNMENTS};
mod guide;
mod importance;
mod predictive;

pub use guide::Guide;
pub use importance::{Importance, ImportanceResults};
pub use predictive::{Predictive, Samples};
mod autoguide;
mod elbo;

pub use autoguide::{AutoDelta, AutoNormal, InitLoc, ProtoSite};
pub use elbo::{ElboEstimate, TraceElbo, PARTICLES_PLATE};
mod svi;
mod weighted;

pub use svi::Svi;
pub use weighted::{weighted_mean, WeightedMean};
