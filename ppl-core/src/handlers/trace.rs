//! `trace`: records every site of a run, in order.

use std::collections::HashMap;
use std::sync::OnceLock;

use candle_core::Tensor;

use super::named::run_with;
use crate::dist::DistRef;
use crate::error::{Error, Result};
use crate::runtime::{InferConfig, Mask, Message, Messenger, PlateFrame, SiteKind, SiteWorlds};

/// One recorded site of a run.
#[derive(Debug, Clone)]
pub struct Site {
    /// The site's full address.
    pub name: String,
    /// What kind of site it is.
    pub kind: SiteKind,
    /// The distribution of a sample site (broadcast to its plates).
    pub dist: Option<DistRef>,
    /// The value the model saw.
    pub value: Tensor,
    /// Whether the value was data.
    pub observed: bool,
    /// Whether an intervention set the value (its log-density is not part of the joint).
    pub intervened: bool,
    /// The value the site would have had without the intervention.
    pub factual_value: Option<Tensor>,
    /// The multiplier of its log-density.
    pub scale: f64,
    /// Which entries of its log-density count.
    pub mask: Option<Mask>,
    /// The plates active at the site.
    pub plates: Vec<PlateFrame>,
    /// Settings for inference algorithms.
    pub infer: InferConfig,
    /// The counterfactual worlds the value carries (set under `twin_world`/`multi_world`).
    pub worlds: SiteWorlds,
    log_prob: OnceLock<Tensor>,
}

impl Site {
    fn from_message(msg: &Message) -> Result<Self> {
        let value = msg.value.clone().ok_or_else(|| {
            Error::usage(format!(
                "site `{}` reached the trace without a value",
                msg.name
            ))
        })?;
        Ok(Site {
            name: msg.name.clone(),
            kind: msg.kind,
            dist: msg.dist.clone(),
            value,
            observed: msg.observed,
            intervened: msg.intervened,
            factual_value: msg.factual_value.clone(),
            scale: msg.scale,
            mask: msg.mask.clone(),
            plates: msg.plates.clone(),
            infer: msg.infer.clone(),
            worlds: msg.worlds.clone(),
            log_prob: OnceLock::new(),
        })
    }

    /// Whether this is a random variable (sample, observe or factor).
    pub fn is_sample(&self) -> bool {
        self.kind == SiteKind::Sample
    }

    /// Whether this is a latent random variable: sampled, neither observed nor intervened.
    pub fn is_latent(&self) -> bool {
        self.is_sample() && !self.observed && !self.intervened
    }

    /// Whether the site's log-density is part of the joint (sample sites not intervened on).
    pub fn scores(&self) -> bool {
        self.is_sample() && !self.intervened
    }

    /// The unscaled, unmasked log-density of the value (shape: the distribution's batch shape).
    pub fn log_prob(&self) -> Result<&Tensor> {
        if let Some(lp) = self.log_prob.get() {
            return Ok(lp);
        }
        let dist = self
            .dist
            .as_ref()
            .ok_or_else(|| Error::usage(format!("site `{}` has no distribution", self.name)))?;
        let lp = dist
            .log_prob(&self.value)
            .map_err(|e| e.at_site(&self.name))?;
        Ok(self.log_prob.get_or_init(|| lp))
    }

    /// The log-density as it enters the joint: masked, then multiplied by the site's scale.
    pub fn scaled_log_prob(&self) -> Result<Tensor> {
        let mut lp = self.log_prob()?.clone();
        if let Some(m) = &self.mask {
            lp = m.apply(&lp)?;
        }
        if self.scale != 1.0 {
            lp = (lp * self.scale)?;
        }
        Ok(lp)
    }
}

/// The sites of one run, in the order they were reached.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    sites: Vec<Site>,
    index: HashMap<String, usize>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a site; a second site with the same address is an error.
    pub fn push(&mut self, site: Site) -> Result<()> {
        if self.index.contains_key(&site.name) {
            return Err(Error::DuplicateSite { name: site.name });
        }
        self.index.insert(site.name.clone(), self.sites.len());
        self.sites.push(site);
        Ok(())
    }

    /// The site named `name`.
    pub fn get(&self, name: &str) -> Option<&Site> {
        self.index.get(name).map(|&i| &self.sites[i])
    }

    /// The site named `name`, or an `UnknownSite` error listing the sites there are.
    pub fn site(&self, name: &str) -> Result<&Site> {
        self.get(name).ok_or_else(|| Error::UnknownSite {
            handler: "trace",
            names: vec![name.to_string()],
            reached: self.names().map(str::to_string).collect(),
        })
    }

    /// The value of site `name` (an error naming the site if there is none).
    pub fn value(&self, name: &str) -> Result<&Tensor> {
        Ok(&self.site(name)?.value)
    }

    /// Whether a site named `name` was reached.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The sites in order.
    pub fn iter(&self) -> impl Iterator<Item = &Site> {
        self.sites.iter()
    }

    /// The site names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sites.iter().map(|s| s.name.as_str())
    }

    /// The sample sites in order.
    pub fn sample_sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.iter().filter(|s| s.is_sample())
    }

    /// How many sites were recorded.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether no site was recorded.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// The log-joint: the sum over sample sites not intervened on of their masked, scaled
    /// log-densities (Pyro's `log_prob_sum`), as a 0-dim tensor that carries gradients.
    pub fn log_prob_sum(&self) -> Result<Tensor> {
        self.log_prob_sum_where(|_| true)
    }

    /// [`log_prob_sum`](Self::log_prob_sum) over the scoring sites that `keep` accepts.
    pub fn log_prob_sum_where(&self, keep: impl Fn(&Site) -> bool) -> Result<Tensor> {
        let mut terms = Vec::with_capacity(self.sites.len());
        for s in self.sites.iter().filter(|s| s.scores() && keep(s)) {
            let lp = s.scaled_log_prob()?;
            terms.push(if lp.rank() == 0 {
                lp.unsqueeze(0)?
            } else {
                lp.flatten_all()?
            });
        }
        match terms.len() {
            0 => Err(Error::usage("the trace has no scoring sample site to sum")),
            1 => Ok(terms[0].sum_all()?),
            _ => Ok(Tensor::cat(&terms, 0)?.sum_all()?),
        }
    }
}

/// Records every message that reaches it.
#[derive(Debug, Default)]
pub struct TraceMessenger {
    trace: Trace,
}

impl TraceMessenger {
    /// The trace recorded so far.
    pub fn into_trace(self) -> Trace {
        self.trace
    }
}

impl Messenger for TraceMessenger {
    fn postprocess(&mut self, msg: &mut Message) -> Result<()> {
        self.trace.push(Site::from_message(msg)?)
    }
}

/// Runs `f`, recording every site it reaches.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::trace, runtime::sample};
/// let (_, tr) = trace(|| {
///     let x = sample("x", Normal::new(0.0, 1.0)?)?;
///     sample("y", Normal::new(&x, 1.0)?)
/// })?;
/// assert_eq!(tr.names().collect::<Vec<_>>(), ["x", "y"]);
/// let lp = tr.log_prob_sum()?.to_scalar::<f32>()?;
/// assert!(lp.is_finite());
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn trace<R>(f: impl FnOnce() -> Result<R>) -> Result<(R, Trace)> {
    let (out, m) = run_with(TraceMessenger::default(), f);
    Ok((out?, m.into_trace()))
}
