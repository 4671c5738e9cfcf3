//! Inference: exact enumeration, importance sampling, predictive distributions, and stochastic
//! variational inference with autoguides.
//!
//! Every algorithm takes models as closures (`|| model(&data)`) and runs them under the handler
//! stack, so they compose with `condition`, `do_` and the counterfactual world handlers unchanged.

mod enumerate;
mod util;

pub use enumerate::{enumerate, Enumerate, Enumeration, Marginal, DEFAULT_MAX_ASSIGNMENTS};
