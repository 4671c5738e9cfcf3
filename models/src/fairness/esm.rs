//! Lucas & Kemp's (2015) extended structural model (ESM) counterfactuals over a discrete
//! [`Scm`]: the counterfactual world re-uses each exogenous noise coordinate of the factual
//! world with probability `stickiness` and otherwise redraws it from its prior, then imposes the
//! antecedent — by intervention (`do`) or by observation (conditioning the counterfactual world
//! on the antecedent's value, the "minimal change" reading of a counterfactual).
//!
//! Noise is each [`Scm`] variable's structural noise as ppl's world handlers define it
//! ([`Mechanism`]): a uniform threshold for binary variables (`v = 1[u < p]`), a Gumbel vector
//! for categorical ones (Gumbel-max). Stickiness 1 with an intervention is therefore the
//! twin-world counterfactual of [`counterfactual_exact`](ppl_core::causal::counterfactual_exact);
//! stickiness 0 makes the counterfactual world independent of the factual one (the
//! interventional distribution, whatever the evidence).
//!
//! Two estimators of the same law:
//!
//! - [`Esm::exact`]: enumeration of every (factual, counterfactual) assignment. Since each
//!   variable's noise enters only its own mechanism, the joint factorises over variables, and
//!   one variable's pair of values `(v, v')` under parent configurations `(c, c')` has
//!   probability `s·P_shared(v, v' | c, c') + (1 − s)·P(v | c)·P(v' | c')` — `P_shared` being the
//!   coupling of one noise draw (`max(0, min p − max p)` for thresholds, the closed form of
//!   [`gumbel_pair_prob`] for Gumbel-max). Cost: the product of the squared cardinalities,
//!   pruned by the evidence: small SCMs only.
//! - [`Esm::sample`]: particles in a plate, run through the handlers: each factual variable is
//!   a sample site (observed under [`condition`] by the factual evidence, which supplies the
//!   importance weights), its noise abducted from its value ([`Mechanism::abduct`]), a
//!   `"{name}/keep"` Bernoulli(stickiness) site decides keep or redraw, and the counterfactual
//!   value is the deterministic site `"{name}/cf"`; an observed antecedent adds the factor
//!   `"{name}/cf_obs"` (`log 1[v' = x]`).
//!
//! ```
//! use models::fairness::esm::{Antecedent, Esm};
//! use ppl_core::causal::Scm;
//!
//! let scm = Scm::builder()
//!     .binary("x", &[], vec![0.5])
//!     .binary("y", &["x"], vec![0.1, 0.8])
//!     .build()?;
//! // Given x = 0, y = 0: had x been 1, would y be 1?
//! let q = |s| -> ppl_core::Result<f64> {
//!     let law = Esm::new(&scm, s)?.exact(&[("x", 0), ("y", 0)], &Antecedent::intervene(&[("x", 1)]))?;
//!     law.cf_marginal("y").map(|m| m[1])
//! };
//! // Shared threshold u ∈ [0.1, 1): y' = 1 iff u < 0.8, so 7/9; a fresh one gives 0.8.
//! assert!((q(1.0)? - 7.0 / 9.0).abs() < 1e-12);
//! assert!((q(0.0)? - 0.8).abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ppl_core::causal::{Cpd, Scm};
use ppl_core::dist::{gumbel_pair_prob, Bernoulli, Categorical, DistRef, IntoDist, Mechanism};
use ppl_core::handlers::{condition, seed, trace};
use ppl_core::rng::with_rng;
use ppl_core::runtime::{deterministic, factor, plate, sample};
use ppl_core::{Error, Result};

/// The plate of [`Esm::sample`]'s particles.
pub const PARTICLES: &str = "esm_particles";

/// How the antecedent of a counterfactual is imposed on the counterfactual world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Antecedent {
    /// `do(V = v)`: the counterfactual value is set, whatever its noise.
    Intervene(Vec<(String, usize)>),
    /// The counterfactual world is conditioned on `V = v`: only noise (kept or redrawn) that
    /// produces the value counts.
    Observe(Vec<(String, usize)>),
}

impl Antecedent {
    /// [`Antecedent::Intervene`] from `(name, value)` pairs.
    pub fn intervene(pairs: &[(&str, usize)]) -> Self {
        Antecedent::Intervene(owned(pairs))
    }

    /// [`Antecedent::Observe`] from `(name, value)` pairs.
    pub fn observe(pairs: &[(&str, usize)]) -> Self {
        Antecedent::Observe(owned(pairs))
    }

    fn pairs(&self) -> &[(String, usize)] {
        match self {
            Antecedent::Intervene(p) | Antecedent::Observe(p) => p,
        }
    }
}

fn owned(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
    pairs.iter().map(|&(n, v)| (n.to_string(), v)).collect()
}

/// What the antecedent does to one variable.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    None,
    Set(usize),
    Require(usize),
}

/// The ESM counterfactual engine for one discrete SCM and one stickiness.
#[derive(Debug, Clone)]
pub struct Esm<'a> {
    scm: &'a Scm,
    stickiness: f64,
    cards: Vec<usize>,
    parents: Vec<Vec<usize>>,
    tables: Vec<Vec<Vec<f64>>>,
}

/// One (factual, counterfactual) assignment of every variable (declaration order) with its
/// probability given the evidence and antecedent.
#[derive(Debug, Clone, PartialEq)]
pub struct EsmRow {
    /// The factual world's values.
    pub factual: Vec<usize>,
    /// The counterfactual world's values.
    pub counterfactual: Vec<usize>,
    /// Its conditional probability.
    pub p: f64,
}

/// The exact ESM law of the two worlds given the evidence and antecedent.
#[derive(Debug, Clone, PartialEq)]
pub struct EsmJoint {
    names: Vec<String>,
    cards: Vec<usize>,
    rows: Vec<EsmRow>,
}

/// Weighted particles of the two worlds from [`Esm::sample`].
#[derive(Debug, Clone, PartialEq)]
pub struct EsmSamples {
    names: Vec<String>,
    cards: Vec<usize>,
    /// `factual[k][i]`: particle `k`'s factual value of variable `i`.
    factual: Vec<Vec<usize>>,
    counterfactual: Vec<Vec<usize>>,
    kept: Vec<Vec<bool>>,
    weights: Vec<f64>,
}

fn var_index(names: &[String], name: &str) -> Result<usize> {
    names.iter().position(|n| n == name).ok_or_else(|| {
        Error::usage(format!(
            "the SCM has no variable `{name}`; it has {names:?}"
        ))
    })
}

fn cf_marginal_of<'r>(
    names: &[String],
    cards: &[usize],
    name: &str,
    rows: impl Iterator<Item = (&'r [usize], f64)>,
) -> Result<Vec<f64>> {
    let i = var_index(names, name)?;
    let mut m = vec![0.0; cards[i]];
    for (cf, p) in rows {
        m[cf[i]] += p;
    }
    Ok(m)
}

impl EsmJoint {
    /// The variables' names, in declaration order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Every assignment with positive probability.
    pub fn rows(&self) -> &[EsmRow] {
        &self.rows
    }

    /// `P(pred(factual, counterfactual))`.
    pub fn probability(&self, pred: impl Fn(&[usize], &[usize]) -> bool) -> f64 {
        self.rows
            .iter()
            .filter(|r| pred(&r.factual, &r.counterfactual))
            .map(|r| r.p)
            .sum()
    }

    /// The law of variable `name` in the counterfactual world.
    pub fn cf_marginal(&self, name: &str) -> Result<Vec<f64>> {
        cf_marginal_of(
            &self.names,
            &self.cards,
            name,
            self.rows.iter().map(|r| (r.counterfactual.as_slice(), r.p)),
        )
    }
}

impl EsmSamples {
    /// The variables' names, in declaration order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of particles.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are no particles (never, for a successful [`Esm::sample`]).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Particle `k`'s factual values.
    pub fn factual(&self, k: usize) -> &[usize] {
        &self.factual[k]
    }

    /// Particle `k`'s counterfactual values.
    pub fn counterfactual(&self, k: usize) -> &[usize] {
        &self.counterfactual[k]
    }

    /// Whether particle `k` kept each variable's factual noise.
    pub fn kept(&self, k: usize) -> &[bool] {
        &self.kept[k]
    }

    /// The self-normalised importance weights (summing to 1).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The effective sample size `1 / Σ w_k²`.
    pub fn ess(&self) -> f64 {
        1.0 / self.weights.iter().map(|w| w * w).sum::<f64>()
    }

    fn indicator(&self, pred: &impl Fn(&[usize], &[usize]) -> bool) -> Vec<f64> {
        (0..self.len())
            .map(|k| f64::from(u8::from(pred(&self.factual[k], &self.counterfactual[k]))))
            .collect()
    }

    /// The weighted estimate of `P(pred(factual, counterfactual))`.
    pub fn probability(&self, pred: impl Fn(&[usize], &[usize]) -> bool) -> f64 {
        self.indicator(&pred)
            .iter()
            .zip(&self.weights)
            .map(|(f, w)| f * w)
            .sum()
    }

    /// The delta-method standard error of [`probability`](Self::probability) for
    /// self-normalised importance sampling: `sqrt(Σ w_k² (f_k − p̂)²)`.
    pub fn standard_error(&self, pred: impl Fn(&[usize], &[usize]) -> bool) -> f64 {
        let f = self.indicator(&pred);
        let p: f64 = f.iter().zip(&self.weights).map(|(f, w)| f * w).sum();
        f.iter()
            .zip(&self.weights)
            .map(|(f, w)| (w * (f - p)).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// The weighted law of variable `name` in the counterfactual world.
    pub fn cf_marginal(&self, name: &str) -> Result<Vec<f64>> {
        cf_marginal_of(
            &self.names,
            &self.cards,
            name,
            self.counterfactual
                .iter()
                .zip(&self.weights)
                .map(|(c, &w)| (c.as_slice(), w)),
        )
    }
}

impl<'a> Esm<'a> {
    /// The engine for `scm` (all variables discrete) with keep probability `stickiness` in
    /// `[0, 1]`.
    pub fn new(scm: &'a Scm, stickiness: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&stickiness) {
            return Err(Error::param(
                "Esm",
                "stickiness",
                format!("must lie in [0, 1], got {stickiness}"),
            ));
        }
        let names = scm.names();
        let mut cards = Vec::with_capacity(names.len());
        let mut tables = Vec::with_capacity(names.len());
        for name in &names {
            match scm.cpd(name)? {
                Cpd::Discrete { card, table } => {
                    cards.push(*card);
                    tables.push(table.clone());
                }
                Cpd::LinearGaussian { .. } => {
                    return Err(Error::Unsupported {
                        what: format!("ESM counterfactuals with the continuous variable `{name}`"),
                        why: "the engine enumerates discrete noise cells; use the continuous \
                              keep/redraw kernel (StickyKernel) for continuous noise"
                            .into(),
                    })
                }
            }
        }
        let parents = (0..names.len())
            .map(|i| scm.dag().parents(i).to_vec())
            .collect();
        Ok(Esm {
            scm,
            stickiness,
            cards,
            parents,
            tables,
        })
    }

    /// The keep probability.
    pub fn stickiness(&self) -> f64 {
        self.stickiness
    }

    fn names(&self) -> Vec<String> {
        self.scm.names().into_iter().map(String::from).collect()
    }

    /// Per-variable factual evidence and antecedent action, validated.
    fn plan(
        &self,
        evidence: &[(&str, usize)],
        antecedent: &Antecedent,
    ) -> Result<(Vec<Option<usize>>, Vec<Act>)> {
        let names = self.names();
        let n = names.len();
        let check = |what: &str, name: &str, v: usize| -> Result<usize> {
            let i = var_index(&names, name)?;
            if v >= self.cards[i] {
                return Err(Error::usage(format!(
                    "{what} `{name}` = {v}: `{name}` takes values 0..{}",
                    self.cards[i]
                )));
            }
            Ok(i)
        };
        let mut ev = vec![None; n];
        for &(name, v) in evidence {
            let i = check("evidence", name, v)?;
            if ev[i].is_some_and(|e| e != v) {
                return Err(Error::usage(format!("evidence on `{name}` given twice")));
            }
            ev[i] = Some(v);
        }
        let mut acts = vec![Act::None; n];
        for (name, v) in antecedent.pairs() {
            let i = check("antecedent", name, *v)?;
            if acts[i] != Act::None {
                return Err(Error::usage(format!("antecedent on `{name}` given twice")));
            }
            acts[i] = match antecedent {
                Antecedent::Intervene(_) => Act::Set(*v),
                Antecedent::Observe(_) => Act::Require(*v),
            };
        }
        Ok((ev, acts))
    }

    fn config(&self, i: usize, values: &[usize]) -> usize {
        self.parents[i]
            .iter()
            .fold(0, |c, &p| c * self.cards[p] + values[p])
    }

    /// `P(V_i = v, V'_i = v')` when the two worlds share variable `i`'s noise.
    fn shared(&self, i: usize, c: usize, c2: usize, v: usize, v2: usize) -> f64 {
        let (a, b) = (&self.tables[i][c], &self.tables[i][c2]);
        if self.cards[i] == 2 {
            let (p, q) = (a[1], b[1]);
            match (v, v2) {
                (1, 1) => p.min(q),
                (1, 0) => (p - q).max(0.0),
                (0, 1) => (q - p).max(0.0),
                _ => 1.0 - p.max(q),
            }
        } else {
            let la: Vec<f64> = a.iter().map(|x| x.ln()).collect();
            let lb: Vec<f64> = b.iter().map(|x| x.ln()).collect();
            gumbel_pair_prob(&la, &lb, v, v2)
        }
    }

    /// The exact ESM law of both worlds given factual `evidence` (`(name, value)` pairs) and the
    /// antecedent, by enumeration. Errors when the evidence and antecedent together have
    /// probability zero.
    pub fn exact(&self, evidence: &[(&str, usize)], antecedent: &Antecedent) -> Result<EsmJoint> {
        let (ev, acts) = self.plan(evidence, antecedent)?;
        let n = self.cards.len();
        let mut rows = Vec::new();
        let mut fact = vec![0usize; n];
        let mut cf = vec![0usize; n];
        self.enumerate(0, 1.0, &ev, &acts, &mut fact, &mut cf, &mut rows);
        let z: f64 = rows.iter().map(|r: &EsmRow| r.p).sum();
        if z <= 0.0 {
            return Err(Error::usage(
                "ESM: the evidence and the antecedent have probability zero together",
            ));
        }
        for r in &mut rows {
            r.p /= z;
        }
        Ok(EsmJoint {
            names: self.names(),
            cards: self.cards.clone(),
            rows,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn enumerate(
        &self,
        i: usize,
        p: f64,
        ev: &[Option<usize>],
        acts: &[Act],
        fact: &mut Vec<usize>,
        cf: &mut Vec<usize>,
        out: &mut Vec<EsmRow>,
    ) {
        if i == self.cards.len() {
            out.push(EsmRow {
                factual: fact.clone(),
                counterfactual: cf.clone(),
                p,
            });
            return;
        }
        let k = self.cards[i];
        let s = self.stickiness;
        let c = self.config(i, fact);
        let c2 = self.config(i, cf);
        let fact_values: Vec<usize> = ev[i].map_or((0..k).collect(), |v| vec![v]);
        let cf_values: Vec<usize> = match acts[i] {
            Act::Set(v) | Act::Require(v) => vec![v],
            Act::None => (0..k).collect(),
        };
        for &v in &fact_values {
            let pf = self.tables[i][c][v];
            for &v2 in &cf_values {
                let term = match acts[i] {
                    Act::Set(_) => pf,
                    _ => {
                        let pc = self.tables[i][c2][v2];
                        s * self.shared(i, c, c2, v, v2) + (1.0 - s) * pf * pc
                    }
                };
                if term > 0.0 {
                    fact[i] = v;
                    cf[i] = v2;
                    self.enumerate(i + 1, p * term, ev, acts, fact, cf, out);
                }
            }
        }
    }

    /// Variable `i`'s distribution given its parents' values (f64 tensors of shape `(n,)`).
    fn dist(&self, i: usize, values: &[Tensor], n: usize) -> Result<DistRef> {
        let dev = Device::Cpu;
        let mut config = Tensor::zeros(n, DType::F64, &dev)?;
        for &p in &self.parents[i] {
            config = config.affine(self.cards[p] as f64, 0.0)?.add(&values[p])?;
        }
        let ix = config.to_dtype(DType::U32)?;
        let k = self.cards[i];
        let rows = self.tables[i].len();
        Ok(if k == 2 {
            let p: Vec<f64> = self.tables[i].iter().map(|r| r[1]).collect();
            let p = Tensor::from_vec(p, rows, &dev)?.index_select(&ix, 0)?;
            Bernoulli::from_probs(p)?.into_dist()
        } else {
            let flat: Vec<f64> = self.tables[i].iter().flatten().copied().collect();
            let t = Tensor::from_vec(flat, (rows, k), &dev)?.index_select(&ix, 0)?;
            Categorical::from_probs(t)?.into_dist()
        })
    }

    /// The particle model: both worlds of `n` units in the plate [`PARTICLES`]. Returns the
    /// factual values, counterfactual values and keep indicators (f64, shape `(n,)` each).
    fn model(&self, n: usize, acts: &[Act]) -> Result<[Vec<Tensor>; 3]> {
        let names = self.names();
        plate(PARTICLES, n, |_| {
            let mut fact: Vec<Tensor> = Vec::with_capacity(names.len());
            let mut cf: Vec<Tensor> = Vec::with_capacity(names.len());
            let mut keeps: Vec<Tensor> = Vec::with_capacity(names.len());
            let dev = Device::Cpu;
            for (i, name) in names.iter().enumerate() {
                let df = self.dist(i, &fact, n)?;
                let v = sample(name.clone(), df.clone())?;
                let mech = mechanism(&df, name)?;
                let u = with_rng(|r| mech.abduct(r, &v))?;
                let keep_p = Tensor::full(self.stickiness, n, &dev)?;
                let keep = sample(format!("{name}/keep"), Bernoulli::from_probs(keep_p)?)?;
                let v2 = match acts[i] {
                    Act::Set(x) => Tensor::full(x as f64, n, &dev)?,
                    _ => {
                        let dc = self.dist(i, &cf, n)?;
                        let mc = mechanism(&dc, name)?;
                        let fresh = with_rng(|r| mc.draw_noise(r, &[n]))?;
                        let mut mask = keep.ne(0.0)?;
                        if fresh.rank() == 2 {
                            mask = mask.unsqueeze(1)?.broadcast_as(fresh.dims())?;
                        }
                        mc.push(&mask.where_cond(&u, &fresh)?)?
                    }
                };
                let v2 = deterministic(format!("{name}/cf"), &v2)?;
                if let Act::Require(x) = acts[i] {
                    let ok = v2.eq(x as f64)?.to_dtype(DType::F64)?;
                    factor(format!("{name}/cf_obs"), &ok.log()?)?;
                }
                fact.push(v.to_dtype(DType::F64)?);
                cf.push(v2.to_dtype(DType::F64)?);
                keeps.push(keep);
            }
            Ok([fact, cf, keeps])
        })
    }

    /// `n` (> 0) weighted particles of the ESM law given factual `evidence` and the antecedent,
    /// run through the handlers under `seed(seed_value, ..)`; weights are the likelihood of the
    /// factual evidence times the counterfactual observation's indicator. Errors when every
    /// particle has weight zero.
    pub fn sample(
        &self,
        evidence: &[(&str, usize)],
        antecedent: &Antecedent,
        n: usize,
        seed_value: u64,
    ) -> Result<EsmSamples> {
        if n == 0 {
            return Err(Error::usage("ESM sampling: no particles asked for"));
        }
        let (_, acts) = self.plan(evidence, antecedent)?;
        let data: HashMap<String, Tensor> = evidence
            .iter()
            .map(|&(name, v)| Ok((name.to_string(), Tensor::full(v as f64, n, &Device::Cpu)?)))
            .collect::<Result<_>>()?;
        let (worlds, tr) = seed(seed_value, || {
            trace(|| condition(data.clone(), || self.model(n, &acts)))
        })?;
        let mut lw = vec![0.0f64; n];
        for site in tr.iter().filter(|s| s.scores() && s.observed) {
            let lp = site.scaled_log_prob()?.to_dtype(DType::F64)?;
            let lp = lp.broadcast_as(n)?.to_vec1::<f64>()?;
            for (a, b) in lw.iter_mut().zip(lp) {
                *a += b;
            }
        }
        let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return Err(Error::usage(format!(
                "ESM sampling: all {n} particles contradict the evidence or the antecedent"
            )));
        }
        let w: Vec<f64> = lw.iter().map(|l| (l - m).exp()).collect();
        let total: f64 = w.iter().sum();
        let [fact, cf, keeps] = worlds;
        let per_particle = |ts: &[Tensor]| -> Result<Vec<Vec<f64>>> {
            let cols = ts
                .iter()
                .map(|t| Ok(t.to_dtype(DType::F64)?.to_vec1::<f64>()?))
                .collect::<Result<Vec<_>>>()?;
            Ok((0..n)
                .map(|k| cols.iter().map(|c| c[k]).collect())
                .collect())
        };
        let to_usize = |rows: Vec<Vec<f64>>| -> Vec<Vec<usize>> {
            rows.into_iter()
                .map(|r| r.into_iter().map(|x| x as usize).collect())
                .collect()
        };
        Ok(EsmSamples {
            names: self.names(),
            cards: self.cards.clone(),
            factual: to_usize(per_particle(&fact)?),
            counterfactual: to_usize(per_particle(&cf)?),
            kept: per_particle(&keeps)?
                .into_iter()
                .map(|r| r.into_iter().map(|x| x != 0.0).collect())
                .collect(),
            weights: w.into_iter().map(|x| x / total).collect(),
        })
    }
}

fn mechanism<'d>(d: &'d DistRef, name: &str) -> Result<&'d dyn Mechanism> {
    ppl_core::dist::mechanism_of(&**d).map_err(|e| e.at_site(name))
}
