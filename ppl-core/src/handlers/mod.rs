//! Effect handlers: each is one small [`Messenger`](crate::runtime::Messenger) and one function
//! that runs a closure under it. Handlers compose by nesting closures:
//!
//! ```
//! use ppl_core::{dist::Normal, handlers::{condition, do_, seed, trace}, runtime::sample};
//! use candle_core::{Device, Tensor};
//!
//! fn model() -> ppl_core::Result<Tensor> {
//!     let x = sample("x", Normal::new(0.0, 1.0)?)?;
//!     let y = sample("y", Normal::new(&x, 1.0)?)?;
//!     sample("z", Normal::new(&y, 1.0)?)
//! }
//!
//! let z_obs = Tensor::new(1.0f32, &Device::Cpu)?;
//! let (_, tr) = trace(|| seed(0, || do_([("x", 2.0)], || condition([("z", &z_obs)], model))))?;
//! assert!(tr.site("x")?.intervened && tr.site("z")?.observed);
//! # Ok::<(), ppl_core::Error>(())
//! ```
//!
//! Strictness: `condition`, `do_` and `replay` given a name that the run never reaches fail with
//! [`UnknownSite`](crate::Error::UnknownSite), listing the sites that were reached; a site
//! address used twice in one run fails with [`DuplicateSite`](crate::Error::DuplicateSite).

mod block;
mod condition;
mod intervene;
mod mask;
mod model;
mod named;
mod replay;
mod scale;
mod scope;
mod seed;
mod substitute;
mod trace;
mod uncondition;

pub use block::{block, BlockMessenger, Hide};
pub use condition::{condition, ConditionMessenger};
pub use intervene::{do_, DoMessenger};
pub use mask::{mask, MaskMessenger};
pub use model::{enter_model, enter_scope_as, in_model, ModelGuard};
pub use named::{collect, SiteValue};
pub use replay::{replay, ReplayMessenger};
pub use scale::{scale, ScaleMessenger};
pub use scope::{scope, ScopeMessenger};
pub use seed::seed;
pub use substitute::{substitute, SubstituteMessenger};
pub use trace::{trace, Site, Trace, TraceMessenger};
pub use uncondition::{uncondition, UnconditionMessenger};

/// The world handlers live in [`causal`](crate::causal); re-exported here with the other handlers.
pub use crate::causal::{multi_world, twin_world};
