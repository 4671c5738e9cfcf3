//! Adam (torch's update) and ClippedAdam (Pyro's: clamped gradients and a decaying rate).

use std::sync::Arc;

use super::lr::LearningRates;
use super::slots::{Rule, Slots};

/// Adam with torch's update and defaults (betas `(0.9, 0.999)`, eps `1e-8`, no weight decay):
/// `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`, `p ← p - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + ε)`,
/// with `t` counted per parameter from its own first step. Weight decay is torch's L2 form
/// (`g ← g + w·p`).
///
/// ```
/// use ppl_core::optim::{Adam, Optimizer};
/// use ppl_core::params::{Init, ParamStore};
/// use ppl_core::candle_core::{DType, Device};
///
/// let store = ParamStore::new();
/// let x = store.var("x", 3, Init::Const(2.0), DType::F32, &Device::Cpu)?;
/// let mut adam = Adam::new(0.1).betas(0.9, 0.99);
/// for _ in 0..200 {
///     let loss = x.sqr()?.sum_all()?; // minimum at x = 0
///     adam.step(&store, &loss.backward()?)?;
/// }
/// assert!(x.abs()?.max_all()?.to_scalar::<f32>()? < 0.05);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adam {
    lrs: LearningRates,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    slots: Slots,
}

impl Adam {
    /// Adam with base learning rate `lr` and torch's defaults.
    pub fn new(lr: f64) -> Self {
        Adam {
            lrs: LearningRates::new(lr),
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            slots: Slots::default(),
        }
    }

    /// The decay rates of the first and second moment averages (each in `[0, 1)`).
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.betas = (b1, b2);
        self
    }

    /// The term added to the denominator (`>= 0`).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The L2 penalty added to the gradient (`>= 0`).
    pub fn weight_decay(mut self, w: f64) -> Self {
        self.weight_decay = w;
        self
    }

    /// Gives parameters whose name starts with `prefix` the rate `lr` (the longest matching
    /// prefix wins; see [`lr_fn`](Self::lr_fn) for the order of rules).
    pub fn lr_for_prefix(mut self, prefix: impl Into<String>, lr: f64) -> Self {
        self.lrs.set_prefix(prefix.into(), lr);
        self
    }

    /// Gives each parameter the rate `f(name)`, like Pyro's per-parameter callable. It is called
    /// once per parameter, when the optimiser first sees it; prefix rules take precedence.
    pub fn lr_fn(mut self, f: impl Fn(&str) -> f64 + Send + Sync + 'static) -> Self {
        self.lrs.set_fn(Arc::new(f));
        self
    }

    fn rule(&self) -> Rule {
        Rule::Adam {
            b1: self.betas.0,
            b2: self.betas.1,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }

    #[cfg(test)]
    pub(crate) fn force_unfused(mut self) -> Self {
        self.slots.force_unfused = true;
        self
    }
}

/// Pyro's `ClippedAdam`: each gradient element is first clamped to `[-clip_norm, clip_norm]`
/// (Pyro's name; it clamps elements, it does not rescale by a norm), and each parameter's rate
/// decays by `lrd` per step: at its `t`-th step the rate is `lr · lrdᵗ` and
/// `p ← p - lr·lrdᵗ · √(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)` (Pyro's placement of `ε`). Defaults:
/// betas `(0.9, 0.999)`, eps `1e-8`, clip_norm `10`, lrd `1`, no weight decay.
#[derive(Debug, Clone)]
pub struct ClippedAdam {
    lrs: LearningRates,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    clip_norm: f64,
    lrd: f64,
    slots: Slots,
}

impl ClippedAdam {
    /// ClippedAdam with base learning rate `lr` and Pyro's defaults.
    pub fn new(lr: f64) -> Self {
        ClippedAdam {
            lrs: LearningRates::new(lr),
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: 10.0,
            lrd: 1.0,
            slots: Slots::default(),
        }
    }

    /// The decay rates of the first and second moment averages (each in `[0, 1)`).
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.betas = (b1, b2);
        self
    }

    /// The term added to the denominator (`>= 0`).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The L2 penalty added to the (clamped) gradient (`>= 0`).
    pub fn weight_decay(mut self, w: f64) -> Self {
        self.weight_decay = w;
        self
    }

    /// The bound each gradient element is clamped to (`> 0`).
    pub fn clip_norm(mut self, c: f64) -> Self {
        self.clip_norm = c;
        self
    }

    /// The factor the rate is multiplied by at every step of a parameter (`> 0`; 1 keeps it).
    pub fn lrd(mut self, lrd: f64) -> Self {
        self.lrd = lrd;
        self
    }

    /// Gives parameters whose name starts with `prefix` the rate `lr` (see [`Adam::lr_for_prefix`]).
    pub fn lr_for_prefix(mut self, prefix: impl Into<String>, lr: f64) -> Self {
        self.lrs.set_prefix(prefix.into(), lr);
        self
    }

    /// Gives each parameter the rate `f(name)` (see [`Adam::lr_fn`]).
    pub fn lr_fn(mut self, f: impl Fn(&str) -> f64 + Send + Sync + 'static) -> Self {
        self.lrs.set_fn(Arc::new(f));
        self
    }

    fn rule(&self) -> Rule {
        Rule::ClippedAdam {
            b1: self.betas.0,
            b2: self.betas.1,
            eps: self.eps,
            weight_decay: self.weight_decay,
            clip_norm: self.clip_norm,
            lrd: self.lrd,
        }
    }

    #[cfg(test)]
    pub(crate) fn force_unfused(mut self) -> Self {
        self.slots.force_unfused = true;
        self
    }
}

macro_rules! impl_optimizer {
    ($ty:ty) => {
        impl $crate::optim::Optimizer for $ty {
            fn step(
                &mut self,
                store: &$crate::params::ParamStore,
                grads: &candle_core::backprop::GradStore,
            ) -> $crate::error::Result<()> {
                let rule = self.rule();
                self.slots.step(&rule, &self.lrs, store, grads)
            }

            fn learning_rate(&self) -> f64 {
                self.lrs.base()
            }

            fn kind(&self) -> &'static str {
                self.rule().kind()
            }

            fn state_tensors(
                &self,
            ) -> $crate::error::Result<std::collections::BTreeMap<String, candle_core::Tensor>>
            {
                self.slots.export(&self.rule())
            }

            fn load_state(
                &mut self,
                tensors: &std::collections::BTreeMap<String, candle_core::Tensor>,
            ) -> $crate::error::Result<()> {
                let rule = self.rule();
                self.slots.import(&rule, &self.lrs, tensors)
            }
        }
    };
}
pub(crate) use impl_optimizer;

impl_optimizer!(Adam);
impl_optimizer!(ClippedAdam);
