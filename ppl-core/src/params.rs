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

/// The set a parameter lives in, and so the bijection from the unconstrained space it is stored
/// and optimised in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Constraint {
    /// Any real value (stored as is).
    Real,
    /// `(0, inf)`, through `exp`.
    Positive,
    /// `(lower, inf)`, through `lower + exp`.
    GreaterThan(f64),
    /// `(0, 1)`, through the logistic sigmoid.
    UnitInterval,
    /// `(lower, upper)`, through a scaled sigmoid.
    Interval(f64, f64),
}

impl Constraint {
    /// Maps an unconstrained tensor into the constrained space (differentiably).
    pub fn to_constrained(&self, u: &Tensor) -> Result<Tensor> {
        Ok(match *self {
            Constraint::Real => u.clone(),
            Constraint::Positive => u.exp()?,
            Constraint::GreaterThan(lo) => (u.exp()? + lo)?,
            Constraint::UnitInterval => candle_nn::ops::sigmoid(u)?,
            Constraint::Interval(lo, hi) => candle_nn::ops::sigmoid(u)?.affine(hi - lo, lo)?,
        })
    }

    /// Maps a constrained value back to the unconstrained space; an error if it lies outside.
    pub fn to_unconstrained(&self, name: &str, x: &Tensor) -> Result<Tensor> {
        let inside = match *self {
            Constraint::Real => crate::dist::Support::Real,
            Constraint::Positive => crate::dist::Support::Positive,
            Constraint::GreaterThan(lo) => crate::dist::Support::GreaterThan(lo),
            Constraint::UnitInterval | Constraint::Interval(..) => {
                let (lo, hi) = match *self {
                    Constraint::Interval(lo, hi) => (lo, hi),
                    _ => (0.0, 1.0),
                };
                let strictly = x.gt(lo)?.mul(&x.lt(hi)?)?;
                let n = strictly
                    .to_dtype(candle_core::DType::F64)?
                    .sum_all()?
                    .to_scalar::<f64>()?;
                if n as usize != x.elem_count() {
                    return Err(Error::value(
                        name,
                        format!("initial value lies outside the open interval ({lo}, {hi})"),
                    ));
                }
                let p = x.affine(1.0 / (hi - lo), -lo / (hi - lo))?;
                return Ok((p.log()? - (1.0 - &p)?.log()?)?);
            }
        };
        if !inside.check(x)? {
            return Err(Error::value(
                name,
                format!("initial value lies outside {inside} (constraint {self:?})"),
            ));
        }
        Ok(match *self {
            Constraint::Real => x.clone(),
            Constraint::Positive => x.log()?,
            Constraint::GreaterThan(lo) => (x - lo)?.log()?,
            Constraint::UnitInterval | Constraint::Interval(..) => unreachable!("handled above"),
        })
    }
}

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
