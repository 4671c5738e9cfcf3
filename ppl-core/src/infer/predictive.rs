//! Prior and posterior predictive distributions.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

use super::guide::{erase, Guide};
use crate::error::{Error, Result};
use crate::handlers::{replay, substitute, trace, uncondition, Trace};

/// Draws from a model's predictive distribution: the prior predictive (the model alone), the
/// posterior predictive under a guide, or under given posterior samples. Observed sites are
/// drawn too (the data are ignored) unless [`keep_observed`](Self::keep_observed) is set.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::seed, infer::Predictive, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// let model = || {
///     let mu = sample("mu", Normal::new(&Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?)?;
///     sample("y", Normal::new(&mu, 1.0)?)
/// };
/// let draws = seed(0, || Predictive::new(2000).run(model))?;
/// let y = &draws["y"];
/// assert_eq!(y.dims(), &[2000]);
/// // Var(y) = 2 under the prior.
/// let var = y.sqr()?.mean_all()?.to_scalar::<f64>()?;
/// assert!((var - 2.0).abs() < 0.2);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Predictive {
    num_samples: usize,
    return_sites: Option<Vec<String>>,
    keep_observed: bool,
}

/// Predictive draws by site name, each stacked along a new leading dim of size `num_samples`.
pub type Samples = BTreeMap<String, Tensor>;

impl Predictive {
    /// `num_samples` draws of every sample and deterministic site.
    pub fn new(num_samples: usize) -> Self {
        Predictive {
            num_samples: num_samples.max(1),
            return_sites: None,
            keep_observed: false,
        }
    }

    /// Return only these sites (an error names any the model never reaches).
    pub fn return_sites<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, sites: I) -> Self {
        self.return_sites = Some(sites.into_iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// Keep observed sites at their data instead of drawing them.
    pub fn keep_observed(mut self) -> Self {
        self.keep_observed = true;
        self
    }

    /// The prior predictive.
    pub fn run<R>(&self, mut model: impl FnMut() -> Result<R>) -> Result<Samples> {
        self.collect(|| self.traced(&mut model))
    }

    /// The posterior predictive under `guide`: latents drawn from the guide, everything else
    /// from the model.
    pub fn run_with_guide<R>(
        &self,
        mut model: impl FnMut() -> Result<R>,
        guide: &mut impl Guide,
    ) -> Result<Samples> {
        self.collect(|| {
            let (_, gtr) = trace(|| guide.call(&mut erase(&mut model)))?;
            self.traced(|| replay(&gtr, &mut model))
        })
    }

    /// The posterior predictive given posterior samples (each stacked along a leading dim of
    /// size `num_samples`, as [`Importance`](super::Importance) resampling or MCMC give them).
    pub fn run_with_samples<R>(
        &self,
        mut model: impl FnMut() -> Result<R>,
        samples: &HashMap<String, Tensor>,
    ) -> Result<Samples> {
        for (name, t) in samples {
            if t.dims().first() != Some(&self.num_samples) {
                return Err(Error::shape(
                    format!("posterior samples of `{name}` (leading dim = num_samples)"),
                    &[self.num_samples],
                    t.dims(),
                ));
            }
        }
        let mut i = 0;
        self.collect(|| {
            let row: Vec<(String, Tensor)> = samples
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.get(i)?)))
                .collect::<Result<_>>()?;
            i += 1;
            self.traced(|| substitute(row, &mut model))
        })
    }

    fn traced<R>(&self, model: impl FnOnce() -> Result<R>) -> Result<Trace> {
        let (_, tr) = if self.keep_observed {
            trace(model)?
        } else {
            trace(|| uncondition(model))?
        };
        Ok(tr)
    }

    fn collect(&self, mut draw: impl FnMut() -> Result<Trace>) -> Result<Samples> {
        let mut columns: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
        for _ in 0..self.num_samples {
            let tr = draw()?;
            if let Some(wanted) = &self.return_sites {
                for name in wanted {
                    let v = tr.value(name)?.clone();
                    columns.entry(name.clone()).or_default().push(v);
                }
            } else {
                for s in tr
                    .iter()
                    .filter(|s| s.is_sample() || s.kind == crate::runtime::SiteKind::Deterministic)
                {
                    if s.dist.as_ref().is_some_and(|d| d.name() == "Unit") {
                        continue;
                    }
                    columns
                        .entry(s.name.clone())
                        .or_default()
                        .push(s.value.clone());
                }
            }
        }
        columns
            .into_iter()
            .map(|(name, vs)| {
                if vs.len() != self.num_samples {
                    return Err(Error::usage(format!(
                        "site `{name}` was reached in {} of {} predictive runs; pass \
                         return_sites to choose sites every run reaches",
                        vs.len(),
                        self.num_samples
                    )));
                }
                let stacked = Tensor::stack(&vs, 0).map_err(|e| Error::from(e).at_site(&name))?;
                Ok((name, stacked))
            })
            .collect()
    }
}
