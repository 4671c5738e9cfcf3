//! # ppl-core
//!
//! The runtime of ppl: distributions and transforms on candle tensors, the effect-handler stack
//! (trace, replay, condition, do, block, scale, mask, seed, substitute, plate), and the
//! primitives that models call (`sample`, `observe`, `param`, `deterministic`, `factor`).
//! Learnable parameters live in a `params::ParamStore` (saved and loaded as safetensors) and are
//! trained by the named-parameter optimisers of `optim`.
//!
//! Most users depend on the facade crate `ppl`, whose `prelude` re-exports this crate.

#![warn(missing_docs)]

pub mod causal;
pub mod dist;
pub mod error;
pub mod handlers;
pub mod infer;
pub mod kernels;
pub mod nn;
pub mod optim;
pub mod params;
pub mod rng;
pub mod runtime;
pub mod special;
pub mod transforms;

pub use error::{Error, Result};

/// Re-export of candle so that downstream crates and generated code name one version.
pub use candle_core;
