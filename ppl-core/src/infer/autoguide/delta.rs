//! `AutoDelta`: a point-mass guide, for MAP estimation.

use std::collections::HashMap;

use candle_core::Tensor;

use super::{Core, InitLoc};
use crate::dist::{Delta, DistExt};
use crate::error::Result;
use crate::infer::Guide;
use crate::params::Constraint;
use crate::runtime::param_constrained;

/// A point-mass guide (Pyro's `AutoDelta`): every latent site is `Delta(biject_to(support)(loc))`
/// with a learnable unconstrained `loc`, so SVI with it is MAP estimation.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::condition, infer::{AutoDelta, Guide}, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// let mut model = || -> ppl_core::Result<()> {
///     sample("mu", Normal::new(&Tensor::new(0.0f32, &Device::Cpu)?, 1.0)?)?;
///     Ok(())
/// };
/// let mut guide = AutoDelta::new();
/// guide.call(&mut model)?;
/// assert_eq!(guide.median()?["mu"].to_scalar::<f32>()?, 0.0);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AutoDelta {
    core: Core,
}

impl Default for AutoDelta {
    fn default() -> Self {
        AutoDelta {
            core: Core::new("AutoDelta"),
        }
    }
}

impl AutoDelta {
    /// Locations start feasible (zero unconstrained).
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the locations start.
    pub fn init_loc(mut self, init: InitLoc) -> Self {
        self.core.init = init;
        self
    }

    /// The parameter-name prefix (default `"AutoDelta"`).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.core.prefix = prefix.to_string();
        self
    }

    /// The unconstrained location of `site`.
    pub fn loc(&self, site: &str) -> Result<Tensor> {
        self.core.loc(site)
    }

    /// The point estimate of every site, on its support.
    pub fn median(&self) -> Result<HashMap<String, Tensor>> {
        self.core.median()
    }
}

impl Guide for AutoDelta {
    fn call(&mut self, model: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.core.prototype(model)?;
        let core = &self.core;
        core.built()?.run(|site, index| {
            let (s, init) = (site.clone(), core.init.clone());
            let loc = param_constrained(
                core.loc_name(&site.name),
                move || s.init_loc(&init),
                Constraint::Real,
            )?;
            let loc = index(&loc)?;
            let value = match &site.transform {
                Some(t) => t.forward(&loc)?,
                None => loc,
            };
            Ok(Delta::new(&value, site.event_dim)?.shared())
        })
    }
}
