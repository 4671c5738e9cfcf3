//! `enter_model`: how models nest. A model called from inside another model's body has its sites
//! scoped under its own name (`encoder/z`); called at the top level, its sites keep their names
//! (`z`), so the same function is both a sub-model and a model one can condition directly.
//!
//! `#[model]` calls [`enter_model`] first thing in every model body and [`enter_scope_as`] for
//! `scope!("enc2", encoder(x))`; code written without the macro may call them by hand.
//!
//! ```
//! use ppl_core::{dist::Normal, handlers::{enter_model, trace}, runtime::sample};
//! use candle_core::Tensor;
//!
//! fn encoder() -> ppl_core::Result<Tensor> {
//!     let _model = enter_model("encoder");
//!     sample("z", Normal::new(0.0, 1.0)?)
//! }
//! fn vae() -> ppl_core::Result<Tensor> {
//!     let _model = enter_model("vae");
//!     let z = encoder()?;
//!     sample("x", Normal::new(&z, 1.0)?)
//! }
//! let (_, tr) = trace(vae)?;
//! assert_eq!(tr.names().collect::<Vec<_>>(), ["encoder/z", "x"]);
//! let (_, tr) = trace(encoder)?;
//! assert_eq!(tr.names().collect::<Vec<_>>(), ["z"]);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::cell::Cell;

use super::scope::ScopeMessenger;
use crate::runtime::{self, HandlerGuard};

thread_local! {
    /// Whether the code now running is inside the body of a model (on this thread).
    static IN_MODEL: Cell<bool> = const { Cell::new(false) };
}

/// Keeps a model body (or a renamed sub-model scope) open; dropping it pops its scope and
/// restores the nesting state, also on early return, error or panic.
#[must_use = "the model's scope ends when the guard is dropped"]
pub struct ModelGuard {
    was_in_model: bool,
    _scope: Option<HandlerGuard>,
}

impl Drop for ModelGuard {
    fn drop(&mut self) {
        IN_MODEL.with(|c| c.set(self.was_in_model));
    }
}

/// Opens the body of the model `name` until the guard drops. Called from inside another model's
/// body, the sites reached meanwhile are scoped under `name/`; at the top level they keep
/// their names.
pub fn enter_model(name: &str) -> ModelGuard {
    let nested = IN_MODEL.with(|c| c.replace(true));
    let scope = nested.then(|| runtime::enter(ScopeMessenger::new(name)).1);
    ModelGuard {
        was_in_model: nested,
        _scope: scope,
    }
}

/// Scopes the sites reached until the guard drops under `prefix/`, with the models called
/// meanwhile taking `prefix` in place of their own name: the second of two calls of one
/// sub-model names its sites `enc2/z`, not `encoder/z` again.
pub fn enter_scope_as(prefix: impl Into<String>) -> ModelGuard {
    let was = IN_MODEL.with(|c| c.replace(false));
    let scope = runtime::enter(ScopeMessenger::new(prefix)).1;
    ModelGuard {
        was_in_model: was,
        _scope: Some(scope),
    }
}

/// Whether the code now running is inside a model's body.
pub fn in_model() -> bool {
    IN_MODEL.with(|c| c.get())
}
