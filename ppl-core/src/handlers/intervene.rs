//! `do_`: interventions (graph surgery).

use std::collections::HashMap;

use super::named::{collect, run_with, Reached, SiteValue};
use crate::error::Result;
use crate::runtime::{Intervention, Message, Messenger, SiteKind};

/// Replaces the values of the named sites by interventions.
#[derive(Debug)]
pub struct DoMessenger {
    actions: HashMap<String, Intervention>,
    reached: Reached,
}

impl DoMessenger {
    /// Intervenes with `actions`.
    pub fn new(actions: HashMap<String, Intervention>) -> Self {
        DoMessenger {
            actions,
            reached: Reached::default(),
        }
    }

    /// An `UnknownSite` error if some names were never reached.
    pub fn check(&self) -> Result<()> {
        self.reached.check("do", self.actions.keys())
    }
}

impl Messenger for DoMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if !matches!(msg.kind, SiteKind::Sample | SiteKind::Deterministic) {
            return Ok(());
        }
        let a = self.actions.get(&msg.name);
        self.reached.visit(&msg.name, a.is_some())?;
        if let Some(a) = a {
            // Applied after the factual value is known (drawn, observed or replayed), so a
            // function of the factual value sees it and `condition` and `do` commute. Nested
            // `do_`s on one site compose, the outer applied to the inner's result; world
            // handlers read each one from `interventions` to give it its own world.
            msg.intervention = Some(match msg.intervention.take() {
                None => a.clone(),
                Some(inner) => compose(inner, a.clone(), &msg.name),
            });
            msg.interventions.push(a.clone());
        }
        Ok(())
    }
}

/// `outer ∘ inner`: the value `outer` gives the site when `inner` has already set it.
fn compose(inner: Intervention, outer: Intervention, site: &str) -> Intervention {
    if matches!(outer, Intervention::Value(_) | Intervention::Scalar(_)) {
        return outer;
    }
    let site = site.to_string();
    Intervention::func(move |x| outer.apply(&inner.apply(x, &site)?, &site))
}

/// Runs `f` with the named sites intervened on (Pearl's `do`, rung 2): each takes its
/// intervention's value, its log-density leaves the joint, and descendants see the new value.
/// An intervention may be a tensor, a number, or a function of the factual value
/// ([`Intervention::func`]). Nested `do_`s on one site compose, the outer applied to the
/// value the inner gave (for a constant outer action: its constant). A name the run never
/// reaches is an [`UnknownSite`](crate::Error::UnknownSite) error.
///
/// Under [`twin_world`](crate::causal::twin_world) or
/// [`multi_world`](crate::causal::multi_world) the site keeps its factual value in the factual
/// world and its log-density stays in the joint; the intervened value lives in a new world.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::{do_, trace}, runtime::sample};
/// let model = || {
///     let x = sample("x", Normal::new(0.0, 1.0)?)?;
///     sample("y", Normal::new(&(x * 2.0)?, 0.1)?)
/// };
/// let (_, tr) = trace(|| do_([("x", 3.0)], model))?;
/// assert_eq!(tr.value("x")?.to_scalar::<f32>()?, 3.0);
/// assert!(tr.site("x")?.intervened);
/// assert!((tr.value("y")?.to_scalar::<f32>()? - 6.0).abs() < 1.0);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn do_<I, K, V, R>(actions: I, f: impl FnOnce() -> Result<R>) -> Result<R>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: SiteValue<Intervention>,
{
    let (out, m) = run_with(DoMessenger::new(collect(actions)), f);
    let out = out?;
    m.check()?;
    Ok(out)
}
