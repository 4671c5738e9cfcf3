//! Stochastic gradient descent with torch's momentum, dampening and Nesterov options.

use std::sync::Arc;

use super::adam::impl_optimizer;
use super::lr::LearningRates;
use super::slots::{Rule, Slots};

/// torch's SGD: `d = g + w·p`; with momentum `μ`, the buffer is `d` at a parameter's first step
/// and `μ·buf + (1 - dampening)·d` after, and the step follows the buffer (or `d + μ·buf` with
/// Nesterov); `p ← p - lr·d`. Defaults: no momentum, dampening or weight decay.
///
/// ```
/// use ppl_core::optim::{Optimizer, Sgd};
/// use ppl_core::params::{Init, ParamStore};
/// use ppl_core::candle_core::{DType, Device};
///
/// let store = ParamStore::new();
/// let x = store.var("x", 2, Init::Const(1.0), DType::F64, &Device::Cpu)?;
/// let mut sgd = Sgd::new(0.25);
/// let loss = x.sqr()?.sum_all()?; // gradient 2x = 2
/// sgd.step(&store, &loss.backward()?)?;
/// assert_eq!(x.to_vec1::<f64>()?, [0.5, 0.5]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    lrs: LearningRates,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    slots: Slots,
}

impl Sgd {
    /// Plain SGD with base learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lrs: LearningRates::new(lr),
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            slots: Slots::default(),
        }
    }

    /// The momentum factor (`>= 0`).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// The dampening of new gradients in the momentum buffer (in `[0, 1]`).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// The L2 penalty added to the gradient (`>= 0`).
    pub fn weight_decay(mut self, w: f64) -> Self {
        self.weight_decay = w;
        self
    }

    /// Gives parameters whose name starts with `prefix` the rate `lr` (see
    /// [`Adam::lr_for_prefix`](super::Adam::lr_for_prefix)).
    pub fn lr_for_prefix(mut self, prefix: impl Into<String>, lr: f64) -> Self {
        self.lrs.set_prefix(prefix.into(), lr);
        self
    }

    /// Gives each parameter the rate `f(name)` (see [`Adam::lr_fn`](super::Adam::lr_fn)).
    pub fn lr_fn(mut self, f: impl Fn(&str) -> f64 + Send + Sync + 'static) -> Self {
        self.lrs.set_fn(Arc::new(f));
        self
    }

    fn rule(&self) -> Rule {
        Rule::Sgd {
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
        }
    }

    #[cfg(test)]
    pub(crate) fn force_unfused(mut self) -> Self {
        self.slots.force_unfused = true;
        self
    }
}

impl_optimizer!(Sgd);
