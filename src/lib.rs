//! # ppl
//!
//! A probabilistic programming language embedded in Rust for causal and counterfactual
//! inference over deep generative models: Pyro + ChiRho rebuilt on candle tensors.
//!
//! This is the facade crate: it re-exports the runtime ([`ppl_core`]), the `#[model]` macro
//! ([`ppl_macros`]) and the model zoo ([`models`]). Most programs need only the [`prelude`].
//!
//! ```
//! use ppl::prelude::*;
//!
//! // A tiny structural causal model: x -> y.
//! fn scm() -> Result<Tensor> {
//!     let x = sample("x", Normal::new(0.0, 1.0)?)?;
//!     sample("y", Normal::new(&(x * 2.0)?, 0.5)?)
//! }
//!
//! // Interventional query: y under do(x = 1), traced with a fixed seed.
//! let (_, tr) = trace(|| seed(0, || do_([("x", 1.0)], scm)))?;
//! assert_eq!(tr.value("x")?.to_scalar::<f32>()?, 1.0);
//! # Ok::<(), ppl::Error>(())
//! ```

pub use models;
pub use ppl_core;
pub use ppl_core::{
    candle_core, causal, dist, error, handlers, infer, kernels, nn, optim, params, rng, runtime,
    special, transforms,
};
pub use ppl_core::{Error, Result};
pub use ppl_macros::{deterministic, factor, model, observe, param, plate, sample, scope};

pub mod workloads;

/// Everything a model or a query usually needs, in one import.
pub mod prelude {
    pub use candle_core::{DType, Device, Tensor};
    pub use ppl_core::causal::{
        cf_value, counterfactual, counterfactual_exact, factual_log_prob, factual_value, gather,
        log_prob_by_world, multi_world, scatter, site_world, soft_condition, twin_world, world,
        Dag, Kernel, Scm, Worlds, COUNTERFACTUAL, FACTUAL, TWIN,
    };
    pub use ppl_core::dist::{
        Bernoulli, Beta, Categorical, Delta, DistExt, DistRef, Distribution, Exponential, Gamma,
        Independent, LogNormal, Normal, TransformedDistribution, Uniform,
    };
    pub use ppl_core::handlers::{
        block, condition, do_, mask, replay, scale, scope, seed, substitute, trace, Hide, Trace,
    };
    pub use ppl_core::infer::{
        enumerate, AutoDelta, AutoNormal, Guide, Importance, Predictive, Svi, TraceElbo,
    };
    pub use ppl_core::optim::{Adam, ClippedAdam, Optimizer, Sgd};
    pub use ppl_core::params::{Constraint, ParamStore};
    pub use ppl_core::runtime::{
        deterministic, factor, observe, param, param_constrained, plate, sample, Intervention,
        Plate,
    };
    pub use ppl_core::{Error, Result};
    pub use ppl_macros::{deterministic, factor, model, observe, param, plate, sample, scope};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Writing models with `#[model]`: the tutorial of `ppl-macros`, whose examples are tested here.
#[doc = include_str!("../ppl-macros/doc/tutorial.md")]
pub mod model_guide {}
