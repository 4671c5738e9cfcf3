//! Counterfactual reasoning: structural causal models, world handlers and queries
//! (DESIGN.md section 4).
//!
//! - [`twin_world`] / [`multi_world`] turn every `do_` under them into counterfactual worlds
//!   that share exogenous noise: latent sites draw their noise once, observed sites abduct it
//!   from the data ([`Mechanism`](crate::dist::Mechanism)), and values carry world dims to the
//!   left of every plate ([`frames`](self#dim-scheme)).
//! - [`gather`], [`world`], [`site_world`], [`cf_value`] read worlds out of values and traces;
//!   [`log_prob_by_world`] splits a trace's log-density into factual and counterfactual parts.
//! - [`soft_condition`] observes deterministic mechanisms with explicit noise sites through a
//!   kernel.
//! - [`counterfactual`] (importance sampling) and [`counterfactual_exact`] (enumeration) run
//!   whole queries.
//! - [`cpt`] indexes a conditional probability table by its parents' values, elementwise.
//! - [`Scm`] describes small discrete and linear-Gaussian SCMs for tests and teaching: a model
//!   runnable under the handlers, its exact joint, and d-separation on its graph and the
//!   mutilated graphs of do-calculus ([`Dag`]).
//!
//! Values downstream of an intervention carry world dims and values upstream do not, so model
//! code combines them with candle's broadcasting ops (`broadcast_add`, `broadcast_mul`,
//! `broadcast_maximum`, ..): candle does not broadcast implicitly.
//!
//! # Dim scheme
//!
//! Worlds are batch dims like plates, placed left of every plate: they take dims leftwards from
//! [`DEFAULT_FIRST_WORLD_DIM`] (`-5`, ChiRho's choice, so a twin-world value in one plate at
//! `-1` has shape `(2, 1, 1, 1, N)`), configurable with [`Worlds::first_dim`]. World dims are
//! reserved in the table plates allocate from, so a plate never silently takes one; a plate at
//! or left of a world dim is an error printing the frame table (plates and worlds).

mod coupled;
mod cpt;
mod dag;
mod frames;
mod query;
mod scm;
mod soft;
mod worlds;

pub use cpt::cpt;
pub use dag::Dag;
pub use frames::{
    active_frames, gather, gather_event, gather_in, scatter, scatter_in, site_world, twin_values,
    world, world_in, COUNTERFACTUAL, DEFAULT_FIRST_WORLD_DIM, FACTUAL, TWIN,
};
pub use query::{
    cf_mean, cf_value, counterfactual, counterfactual_exact, factual_log_prob, factual_value,
    log_prob_by_world, WorldLogProb,
};
pub use scm::{Cpd, Scm, ScmBuilder};
pub use soft::{soft_condition, soft_condition_with, Kernel, SoftConditionMessenger};
pub use worlds::{multi_world, twin_world, Worlds};
