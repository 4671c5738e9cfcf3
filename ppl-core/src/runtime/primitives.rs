//! The primitives a model calls: `sample`, `observe`, `param`, `deterministic`, `factor`.
//!
//! Each builds a [`Message`] and sends it through the handler stack; with no handler on the
//! stack they simply draw, score nothing and return the value.

use candle_core::Tensor;

use super::message::{InferConfig, Message, ParamSpec, SiteKind};
use super::stack::apply_stack;
use crate::dist::{IntoDist, SiteDist, Unit};
use crate::error::{Error, Result};
use crate::params::Constraint;

fn send(mut msg: Message) -> Result<Tensor> {
    let name_on_error = msg.name.clone();
    apply_stack(&mut msg)?;
    msg.value.ok_or_else(|| {
        Error::usage(format!(
            "site `{name_on_error}` finished handling without a value"
        ))
    })
}

/// Draws a value for the random variable `name` from `dist` (or takes the value a handler gives
/// it: conditioned, replayed, intervened, ..). `dist` may also be the `Result` of a constructor,
/// so that an invalid parameter is reported as an error at this site.
///
/// ```
/// use ppl_core::{dist::Normal, runtime::sample};
/// let x = sample("x", Normal::new(0.0, 1.0)?)?;
/// assert_eq!(x.dims(), &[] as &[usize]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn sample(name: impl Into<String>, dist: impl SiteDist) -> Result<Tensor> {
    let name = name.into();
    let dist = dist.into_site_dist().map_err(|e| e.at_site(&name))?;
    let mut msg = Message::new(SiteKind::Sample, name);
    msg.dist = Some(dist);
    send(msg)
}

/// Like [`sample`], with settings for inference algorithms (e.g. exact enumeration).
pub fn sample_with(
    name: impl Into<String>,
    dist: impl SiteDist,
    infer: InferConfig,
) -> Result<Tensor> {
    let name = name.into();
    let dist = dist.into_site_dist().map_err(|e| e.at_site(&name))?;
    let mut msg = Message::new(SiteKind::Sample, name);
    msg.dist = Some(dist);
    msg.infer = infer;
    send(msg)
}

/// Scores the observed `value` of the random variable `name` under `dist` and returns it.
pub fn observe(name: impl Into<String>, dist: impl SiteDist, value: &Tensor) -> Result<Tensor> {
    let name = name.into();
    let dist = dist.into_site_dist().map_err(|e| e.at_site(&name))?;
    let mut msg = Message::new(SiteKind::Sample, name);
    msg.dist = Some(dist);
    msg.value = Some(value.clone());
    msg.observed = true;
    send(msg)
}

/// The learnable real parameter `name`, created from `init` the first time it is seen and read
/// from the current [`ParamStore`](crate::params::ParamStore) after.
pub fn param(
    name: impl Into<String>,
    init: impl FnOnce() -> Result<Tensor> + 'static,
) -> Result<Tensor> {
    param_constrained(name, init, Constraint::Real)
}

/// The learnable parameter `name`, living in the set `constraint` (optimised unconstrained).
pub fn param_constrained(
    name: impl Into<String>,
    init: impl FnOnce() -> Result<Tensor> + 'static,
    constraint: Constraint,
) -> Result<Tensor> {
    let mut msg = Message::new(SiteKind::Param, name.into());
    msg.param = Some(ParamSpec {
        init: Some(Box::new(init)),
        constraint,
    });
    send(msg)
}

/// Records `value` as the named deterministic site `name` (interventions may replace it).
pub fn deterministic(name: impl Into<String>, value: &Tensor) -> Result<Tensor> {
    let mut msg = Message::new(SiteKind::Deterministic, name.into());
    msg.value = Some(value.clone());
    send(msg)
}

/// Adds `log_factor` to the model's log-density (Pyro's `factor`).
pub fn factor(name: impl Into<String>, log_factor: &Tensor) -> Result<()> {
    let mut msg = Message::new(SiteKind::Sample, name.into());
    let unit = Unit::new(log_factor.clone());
    msg.value = Some(Tensor::zeros(
        log_factor.dims(),
        log_factor.dtype(),
        log_factor.device(),
    )?);
    msg.dist = Some(unit.into_dist());
    msg.observed = true;
    send(msg).map(|_| ())
}
