//! Site-keyed values given to handlers, and the bookkeeping that makes handlers strict: a name
//! that the run never reaches is an error, not a silent no-op.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::runtime::{self, Intervention, Messenger};

/// A value that can be given for a site: `Tensor`/`&Tensor` for data, and also `f64` or
/// [`Intervention`] for interventions.
pub trait SiteValue<V> {
    /// The value as the handler stores it.
    fn into_site_value(self) -> V;
}

impl SiteValue<Tensor> for Tensor {
    fn into_site_value(self) -> Tensor {
        self
    }
}

impl SiteValue<Tensor> for &Tensor {
    fn into_site_value(self) -> Tensor {
        self.clone()
    }
}

impl<T: Into<Intervention>> SiteValue<Intervention> for T {
    fn into_site_value(self) -> Intervention {
        self.into()
    }
}

/// Collects `(name, value)` pairs (arrays, vectors, maps, or references to maps) into a map.
pub fn collect<V, I, K, X>(values: I) -> HashMap<String, V>
where
    I: IntoIterator<Item = (K, X)>,
    K: AsRef<str>,
    X: SiteValue<V>,
{
    values
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.into_site_value()))
        .collect()
}

/// Which of a handler's names the run reached, and which sample sites it saw.
#[derive(Debug, Default)]
pub(crate) struct Reached {
    matched: HashMap<String, usize>,
    seen: Vec<String>,
}

impl Reached {
    /// Records that sample site `name` passed by, and whether the handler had a value for it.
    /// A name matched twice in one run is a duplicate site.
    pub(crate) fn visit(&mut self, name: &str, matched: bool) -> Result<()> {
        self.seen.push(name.to_string());
        if matched {
            let n = self.matched.entry(name.to_string()).or_insert(0);
            *n += 1;
            if *n > 1 {
                return Err(Error::DuplicateSite {
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }

    /// An `UnknownSite` error if some of `names` were never reached.
    pub(crate) fn check<'a>(
        &self,
        handler: &'static str,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<()> {
        let mut missing: Vec<String> = names
            .filter(|n| !self.matched.contains_key(*n))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        Err(Error::UnknownSite {
            handler,
            names: missing,
            reached: self.seen.clone(),
        })
    }
}

/// Runs `f` with `messenger` on the stack and hands the messenger back afterwards (popped also
/// on error or panic).
pub(crate) fn run_with<M: Messenger + 'static, R>(
    messenger: M,
    f: impl FnOnce() -> Result<R>,
) -> (Result<R>, M) {
    let (rc, guard) = runtime::enter(messenger);
    let out = f();
    drop(guard);
    (out, unwrap(rc))
}

fn unwrap<M>(rc: Rc<RefCell<M>>) -> M {
    match Rc::try_unwrap(rc) {
        Ok(cell) => cell.into_inner(),
        Err(_) => unreachable!("the guard was the only other holder and has been dropped"),
    }
}
