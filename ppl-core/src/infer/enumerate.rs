//! Exact inference by enumeration: every assignment of a model's discrete latent sites, weighted
//! by its joint probability. Slow for large models, exact for small ones — the oracle of the
//! property tests and of discrete counterfactual queries.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::handlers::{trace, Trace};
use crate::runtime::{self, Message, Messenger, SiteKind};

use super::util::{log_sum_exp, to_f64s};

/// The default bound on the number of complete assignments ([`Enumerate::max_assignments`]).
pub const DEFAULT_MAX_ASSIGNMENTS: usize = 1 << 20;

/// Sequential exact enumeration of a model's discrete latent sites.
///
/// The model is re-run once per complete assignment. A site is enumerated when it is a latent
/// sample site (not observed; an intervention by a constant makes its factual value irrelevant,
/// so such sites are drawn, not enumerated) whose distribution
/// [has an enumerable support](crate::dist::Distribution::has_enumerate_support). A site with a
/// batch of `n` elements, each with `k` values, contributes `k^n` assignments. A continuous
/// latent site is an error naming it.
///
/// ```
/// use ppl_core::{dist::Bernoulli, handlers::condition, infer::enumerate, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// // Two coins; we see that at least one came up heads.
/// let model = || {
///     let a = sample("a", Bernoulli::from_probs(0.5)?)?;
///     let b = sample("b", Bernoulli::from_probs(0.5)?)?;
///     let p = ((a.maximum(&b)? * 0.98)? + 0.01)?;
///     sample("seen", Bernoulli::from_probs(&p)?)
/// };
/// let one = Tensor::new(1.0f32, &Device::Cpu)?;
/// let post = enumerate(|| condition([("seen", &one)], model))?;
/// let p_a = post.probability(|tr| Ok(tr.value("a")?.to_scalar::<f32>()? == 1.0))?;
/// // P(a | seen) = 0.5·0.99 / (0.75·0.99 + 0.25·0.01)
/// assert!((p_a - 0.495 / 0.745).abs() < 1e-6);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn enumerate<R>(model: impl FnMut() -> Result<R>) -> Result<Enumeration> {
    Enumerate::new().run(model)
}

/// Settings of an enumeration ([`enumerate`] uses the defaults).
#[derive(Debug, Clone)]
pub struct Enumerate {
    max_assignments: usize,
}

impl Default for Enumerate {
    fn default() -> Self {
        Enumerate {
            max_assignments: DEFAULT_MAX_ASSIGNMENTS,
        }
    }
}

impl Enumerate {
    /// The default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse models with more complete assignments than `n` (an error, not a hang).
    pub fn max_assignments(mut self, n: usize) -> Self {
        self.max_assignments = n.max(1);
        self
    }

    /// Runs `model` once per complete assignment of its discrete latent sites.
    pub fn run<R>(&self, mut model: impl FnMut() -> Result<R>) -> Result<Enumeration> {
        let mut pending: Vec<HashMap<String, u64>> = vec![HashMap::new()];
        let mut leaves = Vec::new();
        while let Some(assignment) = pending.pop() {
            if leaves.len() + pending.len() >= self.max_assignments {
                return Err(Error::usage(format!(
                    "enumeration exceeded {} complete assignments; enumerate fewer or smaller \
                     discrete sites, or raise Enumerate::max_assignments",
                    self.max_assignments
                )));
            }
            let (rc, guard) = runtime::enter(Enumerator {
                assignment,
                branches: Vec::new(),
                enumerated: Vec::new(),
                limit: self.max_assignments as u64,
            });
            let out = trace(&mut model);
            drop(guard);
            let (_, tr) = out?;
            let mut e = rc.borrow_mut();
            pending.append(&mut e.branches);
            let log_weight = log_joint(&tr, &e.enumerated)?;
            leaves.push(Leaf {
                trace: tr,
                log_weight,
            });
        }
        Enumeration::new(leaves)
    }
}

/// Chooses the values of enumerated sites for one run, and records the branches not taken.
struct Enumerator {
    /// Choice index of each site enumerated so far on this branch.
    assignment: HashMap<String, u64>,
    /// Assignments still to run: this branch with another choice at a site first met here.
    branches: Vec<HashMap<String, u64>>,
    /// The sites this run enumerated.
    enumerated: Vec<String>,
    limit: u64,
}

impl Messenger for Enumerator {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if msg.kind != SiteKind::Sample || msg.observed || msg.value.is_some() {
            return Ok(());
        }
        if matches!(
            msg.intervention,
            Some(crate::runtime::Intervention::Value(_) | crate::runtime::Intervention::Scalar(_))
        ) {
            return Ok(());
        }
        runtime::broadcast_to_plates(msg)?;
        let dist = msg.dist.as_ref().ok_or_else(|| {
            Error::usage(format!("sample site `{}` has no distribution", msg.name))
        })?;
        if !dist.has_enumerate_support() {
            return Err(Error::Unsupported {
                what: format!(
                    "enumerating latent site `{}` ({}, support {})",
                    msg.name,
                    dist.name(),
                    dist.support()
                ),
                why: "exact enumeration needs every latent site to be discrete and finite; \
                      observe it, intervene on it, or use Importance or Svi"
                    .into(),
            });
        }
        let support = dist
            .enumerate_support(false)
            .map_err(|e| e.at_site(&msg.name))?;
        let k = support.dim(0)? as u64;
        let batch = dist.batch_shape().to_vec();
        let n: usize = batch.iter().product();
        let choices = (k as f64).powi(n as i32);
        if choices > self.limit as f64 {
            return Err(Error::usage(format!(
                "site `{}` alone has {k}^{n} assignments, more than the enumeration bound {}",
                msg.name, self.limit
            )));
        }
        let choices = k.pow(n as u32);
        let choice = match self.assignment.get(&msg.name) {
            Some(&c) => c,
            None => {
                for c in 1..choices {
                    let mut a = self.assignment.clone();
                    a.insert(msg.name.clone(), c);
                    self.branches.push(a);
                }
                self.assignment.insert(msg.name.clone(), 0);
                0
            }
        };
        msg.value = Some(
            assignment_value(&support, choice, k, &batch, dist.event_shape())
                .map_err(|e| e.at_site(&msg.name))?,
        );
        self.enumerated.push(msg.name.clone());
        Ok(())
    }
}

/// The value of a batched site under choice `choice`: element `j` takes support value number
/// `j`-th base-`k` digit of `choice`.
fn assignment_value(
    support: &Tensor,
    mut choice: u64,
    k: u64,
    batch: &[usize],
    event: &[usize],
) -> Result<Tensor> {
    let n: usize = batch.iter().product();
    let event_numel: usize = event.iter().product();
    let rows = support.reshape((k as usize, event_numel))?;
    let mut idx = Vec::with_capacity(n);
    for _ in 0..n {
        idx.push((choice % k) as u32);
        choice /= k;
    }
    // Element 0 is the last digit read: reverse so the first element varies slowest.
    idx.reverse();
    let idx = Tensor::from_vec(idx, n, support.device())?;
    let mut shape = batch.to_vec();
    shape.extend_from_slice(event);
    Ok(rows.index_select(&idx, 0)?.reshape(shape)?)
}

/// The log-joint of one complete run: the trace's log-joint, plus the factual log-density of
/// enumerated sites that a function intervention replaced (their factual value mattered).
fn log_joint(tr: &Trace, enumerated: &[String]) -> Result<f64> {
    let mut total = if tr.iter().any(|s| s.scores()) {
        tr.log_prob_sum()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
    } else {
        0.0
    };
    for name in enumerated {
        let site = tr.site(name)?;
        if let (true, Some(factual), Some(dist)) =
            (site.intervened, &site.factual_value, &site.dist)
        {
            let mut lp = dist.log_prob(factual).map_err(|e| e.at_site(name))?;
            if let Some(m) = &site.mask {
                lp = m.apply(&lp)?;
            }
            total += site.scale * lp.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    Ok(total)
}

struct Leaf {
    trace: Trace,
    log_weight: f64,
}

/// The result of an exact enumeration: every complete assignment with its probability.
pub struct Enumeration {
    leaves: Vec<Leaf>,
    log_evidence: f64,
}

impl std::fmt::Debug for Enumeration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enumeration")
            .field("assignments", &self.leaves.len())
            .field("log_evidence", &self.log_evidence)
            .finish()
    }
}

impl Enumeration {
    fn new(leaves: Vec<Leaf>) -> Result<Self> {
        let lws: Vec<f64> = leaves.iter().map(|l| l.log_weight).collect();
        if let Some(bad) = leaves.iter().find(|l| l.log_weight.is_nan()) {
            return Err(Error::NonFinite {
                site: non_finite_site(&bad.trace).unwrap_or_else(|| "<model>".into()),
                what: "log-joint of an enumerated assignment is NaN".into(),
            });
        }
        let log_evidence = log_sum_exp(&lws);
        if log_evidence == f64::NEG_INFINITY {
            return Err(Error::usage(
                "every enumerated assignment has probability zero: the evidence is impossible \
                 under the model",
            ));
        }
        Ok(Enumeration {
            leaves,
            log_evidence,
        })
    }

    /// How many complete assignments there are.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether there are none (never true for a successful enumeration).
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The log-probability of the observations (log of the sum of every assignment's joint):
    /// the log evidence `log p(data)`.
    pub fn log_evidence(&self) -> f64 {
        self.log_evidence
    }

    /// Each assignment's trace with its posterior probability.
    pub fn iter(&self) -> impl Iterator<Item = (&Trace, f64)> {
        self.leaves
            .iter()
            .map(|l| (&l.trace, (l.log_weight - self.log_evidence).exp()))
    }

    /// The posterior expectation of `f`.
    pub fn expectation(&self, mut f: impl FnMut(&Trace) -> Result<f64>) -> Result<f64> {
        let mut total = 0.0;
        for (tr, p) in self.iter() {
            if p > 0.0 {
                total += p * f(tr)?;
            }
        }
        Ok(total)
    }

    /// The posterior probability of `event`.
    pub fn probability(&self, mut event: impl FnMut(&Trace) -> Result<bool>) -> Result<f64> {
        self.expectation(|tr| Ok(if event(tr)? { 1.0 } else { 0.0 }))
    }

    /// The posterior marginal of site `name`: each distinct value (flattened) with its
    /// probability, sorted by value.
    pub fn marginal(&self, name: &str) -> Result<Marginal> {
        let mut acc: BTreeMap<Vec<OrderedF64>, f64> = BTreeMap::new();
        for (tr, p) in self.iter() {
            let v = to_f64s(tr.value(name)?)?;
            *acc.entry(v.into_iter().map(OrderedF64).collect())
                .or_default() += p;
        }
        let (values, probs) = acc
            .into_iter()
            .map(|(k, p)| (k.into_iter().map(|x| x.0).collect(), p))
            .unzip();
        Ok(Marginal { values, probs })
    }
}

fn non_finite_site(tr: &Trace) -> Option<String> {
    tr.iter().filter(|s| s.scores()).find_map(|s| {
        let lp = s.scaled_log_prob().ok()?;
        let v = lp
            .to_dtype(DType::F64)
            .ok()?
            .sum_all()
            .ok()?
            .to_scalar::<f64>()
            .ok()?;
        (!v.is_finite()).then(|| s.name.clone())
    })
}

/// A total order on the f64 values a discrete site takes (never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedF64(f64);

impl Eq for OrderedF64 {}

impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A discrete marginal: distinct values (each flattened to f64s) and their probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Marginal {
    /// The distinct values, sorted.
    pub values: Vec<Vec<f64>>,
    /// Their probabilities (summing to one).
    pub probs: Vec<f64>,
}

impl Marginal {
    /// The probability of `value` (0 if it never occurs).
    pub fn prob(&self, value: &[f64]) -> f64 {
        self.values
            .iter()
            .position(|v| v.as_slice() == value)
            .map_or(0.0, |i| self.probs[i])
    }

    /// The mean, element by element.
    pub fn mean(&self) -> Vec<f64> {
        let n = self.values.first().map_or(0, Vec::len);
        let mut m = vec![0.0; n];
        for (v, p) in self.values.iter().zip(&self.probs) {
            for (mi, vi) in m.iter_mut().zip(v) {
                *mi += p * vi;
            }
        }
        m
    }
}
