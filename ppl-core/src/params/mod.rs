//! Named learnable parameters.
//!
//! A [`ParamStore`] maps names to candle [`Var`]s held in an unconstrained space, each with the
//! [`Constraint`] that maps it to the space the model sees. The `param` primitive reads the
//! thread's current store ([`ParamStore::current`]); [`ParamStore::scope`] makes another store
//! current for a closure.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{Tensor, Var};

use crate::error::{Error, Result};

mod constraint;
pub(crate) mod io;
mod module;

pub use constraint::Constraint;
pub use module::Init;

/// One stored parameter.
#[derive(Debug, Clone)]
pub struct ParamEntry {
    /// The unconstrained variable that optimisers update.
    pub var: Var,
    /// The constraint mapping it to the model's space.
    pub constraint: Constraint,
}

/// A shared store of named parameters (cloning shares it).
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    inner: Arc<Mutex<BTreeMap<String, ParamEntry>>>,
}

thread_local! {
    static CURRENT: RefCell<ParamStore> = RefCell::new(ParamStore::default());
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The thread's current store (shared: changes are seen by every holder).
    pub fn current() -> ParamStore {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Runs `f` with `self` as the thread's current store, restoring the previous one after
    /// (also when `f` panics).
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<ParamStore>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(prev) = self.0.take() {
                    CURRENT.with(|c| *c.borrow_mut() = prev);
                }
            }
        }
        let prev = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), self.clone()));
        let _restore = Restore(Some(prev));
        f()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ParamEntry>> {
        // A panic while the lock was held cannot leave a half-written map: every write is one
        // insert, so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The constrained value of `name`, creating it from `init` (a constrained value) the first
    /// time.
    pub fn get_or_init(
        &self,
        name: &str,
        init: Option<crate::runtime::ParamInit>,
        constraint: Constraint,
    ) -> Result<Tensor> {
        if let Some(e) = self.lock().get(name).cloned() {
            return e.constraint.to_constrained(e.var.as_tensor());
        }
        let init = init.ok_or_else(|| {
            Error::value(
                name,
                "parameter has no value in the store and no initial value",
            )
        })?;
        let x = init().map_err(|e| e.at_site(name))?;
        let u = constraint.to_unconstrained(name, &x)?;
        let var = Var::from_tensor(&u.detach())?;
        let value = constraint.to_constrained(var.as_tensor())?;
        self.lock()
            .insert(name.to_string(), ParamEntry { var, constraint });
        Ok(value)
    }

    /// The constrained value of `name`, if stored.
    pub fn get(&self, name: &str) -> Result<Option<Tensor>> {
        match self.lock().get(name).cloned() {
            Some(e) => Ok(Some(e.constraint.to_constrained(e.var.as_tensor())?)),
            None => Ok(None),
        }
    }

    /// The entry of `name`, if stored.
    pub fn entry(&self, name: &str) -> Option<ParamEntry> {
        self.lock().get(name).cloned()
    }

    /// All entries, sorted by name.
    pub fn entries(&self) -> Vec<(String, ParamEntry)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The stored names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// How many parameters are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Removes every parameter (Pyro's `clear_param_store`).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
