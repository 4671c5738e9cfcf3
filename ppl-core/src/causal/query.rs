//! Counterfactual queries end to end, and the split of a trace's log-density by world.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::frames::{axis_of, site_world, world_in, COUNTERFACTUAL, FACTUAL, TWIN};
use super::worlds::Worlds;
use crate::error::{Error, Result};
use crate::handlers::{collect, condition, do_, Site, SiteValue, Trace};
use crate::infer::{Enumerate, Enumeration, Importance, ImportanceResults};
use crate::runtime::Intervention;

/// A trace's log-joint split by world: the factual world's part and the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorldLogProb {
    /// The log-density of the factual world: equal to the un-intervened model's log-density of
    /// the same observations and latent values.
    pub factual: f64,
    /// The rest of the joint law across worlds (zero when every other world is a function of
    /// the factual one, as with invertible mechanisms and observed sites).
    pub counterfactual: f64,
}

impl WorldLogProb {
    /// `factual + counterfactual`: the trace's log-joint.
    pub fn total(&self) -> f64 {
        self.factual + self.counterfactual
    }
}

fn sum_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
}

/// Splits the log-joint of a trace recorded under a world handler into its factual part (the
/// slot of every site's log-density where each world index is 0) and its counterfactual part
/// (the rest). The two add up to [`Trace::log_prob_sum`].
pub fn log_prob_by_world(trace: &Trace) -> Result<WorldLogProb> {
    let mut out = WorldLogProb {
        factual: 0.0,
        counterfactual: 0.0,
    };
    for site in trace.iter().filter(|s| s.scores()) {
        let lp = site.scaled_log_prob()?;
        let total = sum_f64(&lp)?;
        let mut fact = lp.clone();
        for f in &site.worlds.frames {
            if let Some(a) = axis_of(fact.dims(), f.dim, 0) {
                if fact.dims()[a] == f.size {
                    fact = fact.narrow(a, FACTUAL, 1)?;
                }
            }
        }
        let factual = sum_f64(&fact)?;
        out.factual += factual;
        out.counterfactual += total - factual;
    }
    Ok(out)
}

/// The masked, scaled log-density of a recorded site in its factual world, without world dims
/// (its whole log-density if it carries none): per-element factual likelihoods, for example
/// importance weights of particles in a plate. Works after the world handler has returned.
pub fn factual_log_prob(site: &Site) -> Result<Tensor> {
    let lp = site.scaled_log_prob()?;
    let index: Vec<(&str, usize)> = site
        .worlds
        .frames
        .iter()
        .map(|f| (&*f.name, FACTUAL))
        .collect();
    world_in(&site.worlds.frames, &lp, &index, 0).map_err(|e| e.at_site(&site.name))
}

/// The value of site `name` in the counterfactual world of a twin-world trace, without world
/// dims (its shared value if it has none).
pub fn cf_value(trace: &Trace, name: &str) -> Result<Tensor> {
    site_world(trace.site(name)?, &[(TWIN, COUNTERFACTUAL)])
}

/// The value of site `name` in the factual world of a twin-world trace, without world dims.
pub fn factual_value(trace: &Trace, name: &str) -> Result<Tensor> {
    site_world(trace.site(name)?, &[(TWIN, FACTUAL)])
}

/// Counterfactual samples by importance sampling with the prior as proposal: `num_samples`
/// runs of `model` under `twin_world(do_(interventions, condition(observations, model)))`,
/// weighted by the likelihood of the observations in the factual world. Latent exogenous causes
/// are inferred by the weights; each trace's counterfactual world ([`cf_value`]) holds the
/// answer under that sample of the noise.
///
/// ```
/// use ppl_core::causal::{cf_value, counterfactual};
/// use ppl_core::{dist::Normal, runtime::{sample, Intervention}};
/// use candle_core::{Device, Tensor};
///
/// // z ~ N(0,1) latent; x = z + u_x; y = 2x + z + u_y. Observe x, y; do(x = x + 1).
/// let model = || {
///     let z = sample("z", Normal::new(Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?)?;
///     let x = sample("x", Normal::new(&z, 1.0)?)?;
///     sample("y", Normal::new((&x * 2.0)?.broadcast_add(&z)?, 1.0)?)
/// };
/// let obs = [("x", Tensor::new(0.5f64, &Device::Cpu)?), ("y", Tensor::new(1.0f64, &Device::Cpu)?)];
/// let post = counterfactual(model, obs, [("x", Intervention::func(|x| Ok((x + 1.0)?)))], 50)?;
/// for tr in post.traces() {
///     // u_y and z are shared: y_cf = y + 2 whatever z was.
///     let y_cf = cf_value(tr, "y")?.to_scalar::<f64>()?;
///     assert!((y_cf - 3.0).abs() < 1e-12);
/// }
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn counterfactual<R, O, OK, OV, I, IK, IV>(
    mut model: impl FnMut() -> Result<R>,
    observations: O,
    interventions: I,
    num_samples: usize,
) -> Result<ImportanceResults>
where
    O: IntoIterator<Item = (OK, OV)>,
    OK: AsRef<str>,
    OV: SiteValue<Tensor>,
    I: IntoIterator<Item = (IK, IV)>,
    IK: AsRef<str>,
    IV: SiteValue<Intervention>,
{
    let obs: HashMap<String, Tensor> = collect(observations);
    let acts: HashMap<String, Intervention> = collect(interventions);
    Importance::new(num_samples)
        .run(|| Worlds::twin().run(|| do_(acts.clone(), || condition(obs.clone(), &mut model))))
}

/// The exact counterfactual distribution of a discrete model by enumeration: every latent
/// discrete site is enumerated, and observed discrete sites downstream of an intervention are
/// scored by their joint law across the two worlds under shared noise
/// ([`Worlds::enumerable`]). Read the counterfactual world of each assignment with
/// [`cf_value`].
///
/// ```
/// use ppl_core::causal::{cf_value, counterfactual_exact};
/// use ppl_core::{dist::Bernoulli, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// // Probability of necessity for y = x OR w, w ~ Bernoulli(0.3): P(y_{x=0} = 0 | x = 1, y = 1).
/// let model = || {
///     let w = sample("w", Bernoulli::from_probs(Tensor::new(0.3f64, &Device::Cpu)?)?)?;
///     let x = sample("x", Bernoulli::from_probs(Tensor::new(0.5f64, &Device::Cpu)?)?)?;
///     sample("y", Bernoulli::from_probs(x.broadcast_maximum(&w)?)?)
/// };
/// let one = Tensor::new(1.0f64, &Device::Cpu)?;
/// let post = counterfactual_exact(model, [("x", &one), ("y", &one)], [("x", 0.0)])?;
/// let pn = post.probability(|tr| Ok(cf_value(tr, "y")?.to_scalar::<f64>()? == 0.0))?;
/// assert!((pn - 0.7).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn counterfactual_exact<R, O, OK, OV, I, IK, IV>(
    mut model: impl FnMut() -> Result<R>,
    observations: O,
    interventions: I,
) -> Result<Enumeration>
where
    O: IntoIterator<Item = (OK, OV)>,
    OK: AsRef<str>,
    OV: SiteValue<Tensor>,
    I: IntoIterator<Item = (IK, IV)>,
    IK: AsRef<str>,
    IV: SiteValue<Intervention>,
{
    let obs: HashMap<String, Tensor> = collect(observations);
    let acts: HashMap<String, Intervention> = collect(interventions);
    Enumerate::new().run(|| {
        Worlds::twin()
            .enumerable(true)
            .run(|| do_(acts.clone(), || condition(obs.clone(), &mut model)))
    })
}

/// The weighted mean of site `name`'s counterfactual value over importance samples, element by
/// element.
pub fn cf_mean(samples: &ImportanceResults, name: &str) -> Result<Vec<f64>> {
    let mut acc: Option<Vec<f64>> = None;
    for (tr, w) in samples.traces().iter().zip(samples.normalized_weights()) {
        let v = cf_value(tr, name)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let acc = acc.get_or_insert_with(|| vec![0.0; v.len()]);
        if acc.len() != v.len() {
            return Err(Error::shape(
                format!("counterfactual values of `{name}` across samples"),
                &[acc.len()],
                &[v.len()],
            ));
        }
        for (a, x) in acc.iter_mut().zip(v) {
            *a += w * x;
        }
    }
    acc.ok_or_else(|| Error::usage("no samples"))
}
