//! Autoguides: guides built automatically from a model's latent sites.
//!
//! An autoguide runs the model once (hidden from every handler) the first time it is called,
//! reads off the latent sites, their shapes, plates and supports, and from then on samples each
//! site from a learnable distribution in the unconstrained space, mapped onto the support by
//! [`biject_to`](crate::transforms::biject_to). Parameters live in the current
//! [`ParamStore`](crate::params::ParamStore) under `"{prefix}.locs.{site}"` (and
//! `"{prefix}.scales.{site}"`), at the plates' full sizes, indexed by each run's minibatch.

mod delta;
mod normal;
mod prototype;

pub use delta::AutoDelta;
pub use normal::AutoNormal;
pub use prototype::{InitLoc, ProtoSite};

use std::collections::HashMap;

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::params::ParamStore;
use prototype::Prototype;

/// What every autoguide holds: its name prefix, its initialisation, and its prototype once built.
#[derive(Debug, Clone)]
struct Core {
    prefix: String,
    init: InitLoc,
    proto: Option<Prototype>,
}

impl Core {
    fn new(prefix: &str) -> Self {
        Core {
            prefix: prefix.to_string(),
            init: InitLoc::Feasible,
            proto: None,
        }
    }

    fn prototype(&mut self, model: &mut dyn FnMut() -> Result<()>) -> Result<&Prototype> {
        if self.proto.is_none() {
            self.proto = Some(Prototype::build(model, &self.prefix)?);
        }
        Ok(self.proto.as_ref().expect("just built"))
    }

    fn built(&self) -> Result<&Prototype> {
        self.proto.as_ref().ok_or_else(|| {
            Error::usage(format!(
                "{} has not been run yet: call it (or take an SVI step) first",
                self.prefix
            ))
        })
    }

    fn site(&self, name: &str) -> Result<&ProtoSite> {
        let proto = self.built()?;
        proto
            .sites
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::UnknownSite {
                handler: "autoguide",
                names: vec![name.to_string()],
                reached: proto.sites.iter().map(|s| s.name.clone()).collect(),
            })
    }

    fn loc_name(&self, site: &str) -> String {
        format!("{}.locs.{site}", self.prefix)
    }

    /// The stored unconstrained location of `site`.
    fn loc(&self, site: &str) -> Result<Tensor> {
        self.site(site)?;
        let name = self.loc_name(site);
        ParamStore::current()
            .get(&name)?
            .ok_or_else(|| Error::usage(format!("parameter `{name}` is not in the current store")))
    }

    /// Each site's location mapped onto its support: the guide's median.
    fn median(&self) -> Result<HashMap<String, Tensor>> {
        self.built()?
            .sites
            .iter()
            .map(|s| {
                let loc = self.loc(&s.name)?;
                let v = match &s.transform {
                    Some(t) => t.forward(&loc)?,
                    None => loc,
                };
                Ok((s.name.clone(), v))
            })
            .collect()
    }
}
