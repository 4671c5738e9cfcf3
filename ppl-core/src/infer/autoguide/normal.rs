//! `AutoNormal`: a mean-field Normal guide in the unconstrained space.

use std::collections::HashMap;

use candle_core::Tensor;

use super::{Core, InitLoc};
use crate::dist::{DistExt, DistRef, Normal, TransformedDistribution};
use crate::error::Result;
use crate::infer::Guide;
use crate::params::{Constraint, ParamStore};
use crate::runtime::param_constrained;

/// A mean-field Normal guide (Pyro's `AutoNormal`): every latent site is
/// `biject_to(support)(Normal(loc, scale))` with its own learnable `loc` and `scale` of the
/// site's shape. Defaults as Pyro's: locations start feasible (zero unconstrained), scales at
/// `init_scale = 0.1`, parameterised through softplus.
///
/// ```
/// use ppl_core::{dist::{LogNormal, Normal}, infer::{AutoNormal, Guide}, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// let mut model = || -> ppl_core::Result<()> {
///     sample("sigma", LogNormal::new(&Tensor::new(0.0f32, &Device::Cpu)?, 1.0)?)?;
///     Ok(())
/// };
/// let mut guide = AutoNormal::new();
/// guide.call(&mut model)?;                       // builds itself from the model
/// assert_eq!(guide.loc("sigma")?.to_scalar::<f32>()?, 0.0);
/// assert!((guide.scale("sigma")?.to_scalar::<f32>()? - 0.1).abs() < 1e-6);
/// assert!((guide.median()?["sigma"].to_scalar::<f32>()? - 1.0).abs() < 1e-6); // exp(0)
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AutoNormal {
    core: Core,
    init_scale: f64,
}

impl Default for AutoNormal {
    fn default() -> Self {
        AutoNormal {
            core: Core::new("AutoNormal"),
            init_scale: 0.1,
        }
    }
}

impl AutoNormal {
    /// Pyro's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The initial scale of every site (default 0.1).
    pub fn init_scale(mut self, scale: f64) -> Self {
        self.init_scale = scale;
        self
    }

    /// Where the locations start (default: feasible).
    pub fn init_loc(mut self, init: InitLoc) -> Self {
        self.core.init = init;
        self
    }

    /// The parameter-name prefix (default `"AutoNormal"`); two guides in one store need two.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.core.prefix = prefix.to_string();
        self
    }

    /// The unconstrained location of `site` (from the current store).
    pub fn loc(&self, site: &str) -> Result<Tensor> {
        self.core.loc(site)
    }

    /// The scale of `site`, in the unconstrained space.
    pub fn scale(&self, site: &str) -> Result<Tensor> {
        self.core.site(site)?;
        let name = format!("{}.scales.{site}", self.core.prefix);
        ParamStore::current().get(&name)?.ok_or_else(|| {
            crate::Error::usage(format!("parameter `{name}` is not in the current store"))
        })
    }

    /// The guide's median of every site, on the support (each location pushed through its
    /// bijection).
    pub fn median(&self) -> Result<HashMap<String, Tensor>> {
        self.core.median()
    }

    /// The sites the guide covers, in model order (empty before the first call).
    pub fn sites(&self) -> Vec<String> {
        self.core
            .proto
            .as_ref()
            .map(|p| p.sites.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }
}

impl Guide for AutoNormal {
    fn call(&mut self, model: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.core.prototype(model)?;
        let (core, init_scale) = (&self.core, self.init_scale);
        core.built()?.run(|site, index| {
            let (s, init) = (site.clone(), core.init.clone());
            let loc = param_constrained(
                core.loc_name(&site.name),
                move || s.init_loc(&init),
                Constraint::Real,
            )?;
            let (shape, dtype, device) = (site.shape.clone(), site.dtype, site.device.clone());
            let scale = param_constrained(
                format!("{}.scales.{}", core.prefix, site.name),
                move || Ok((Tensor::ones(shape, dtype, &device)? * init_scale)?),
                Constraint::SoftplusPositive,
            )?;
            let base = Normal::new(&index(&loc)?, &index(&scale)?)?.to_event(site.event_dim)?;
            let dist: DistRef = match &site.transform {
                Some(t) => TransformedDistribution::new(base, vec![t.clone()])?.shared(),
                None => base.shared(),
            };
            Ok(dist)
        })
    }
}
