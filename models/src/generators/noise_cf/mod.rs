//! Noise-space counterfactuals of any [`LatentGenerator`] read through any
//! [`AttributeScorer`] (issue 11, part 3): "given a woman, what if she had a moustache".
//!
//! A [`CfQuery`] names the factual evidence, the antecedent and the consequents to report.
//! The factual world is the prior conditioned on the evidence: latents `z` are drawn from the
//! prior until the scorer reads the evidence in `G(z)` ([`sample_factuals`], rejection with a
//! cap). The counterfactual latent `z'` comes from a [`NoiseKernel`] tied to `z` —
//! [`GaussianSampler`] (a Gaussian copula with correlation `ρ`) or [`EsmSampler`] (Lucas &
//! Kemp's sticky kernel) — with the antecedent imposed in one of two [`AntecedentForm`]s:
//!
//! - **observation**: proposals `z' ~ K(z, ·)` are redrawn until the scorer reads the
//!   antecedent in `G(z')` (rejection, at most [`CfOptions::max_proposals`] per unit), so `z'`
//!   follows `K(z, ·)` conditioned on the antecedent;
//! - **intervention**: the proposal is moved across the antecedent attributes' latent
//!   hyperplanes ([`LatentIntervention`]) to a target margin; nothing is rejected, and the
//!   scorer's agreement with the antecedent is reported as the edit's effectiveness.
//!
//! ```no_run
//! use models::data::cartoon::Attr;
//! use models::fairness::scorer::OracleScorer;
//! use models::generators::dcgan::Dcgan;
//! use models::generators::noise_cf::{counterfactuals, seed_queries, AntecedentForm, CfOptions, EsmSampler};
//!
//! let gan = Dcgan::load("runs/dcgan", &candle_core::Device::Cpu)?;
//! let oracle = OracleScorer::new(&Attr::ALL);
//! for q in seed_queries() {
//!     let r = counterfactuals(&gan, &oracle, &EsmSampler::gan(0.9)?, &q,
//!                             &AntecedentForm::Observation, &CfOptions::default())?;
//!     println!("{}: {:?} -> {:?}", r.query, r.factual_freq, r.counterfactual_freq);
//! }
//! # Ok::<(), ppl_core::Error>(())
//! ```

mod intervention;
mod kernels;
mod query;

use candle_core::{DType, Tensor};
use ppl_core::rng::{self, Rng};
use ppl_core::{Error, Result};

pub use intervention::LatentIntervention;
pub use kernels::{EsmSampler, GaussianSampler, NoiseKernel};
use query::{columns, present, satisfied};
pub use query::{seed_queries, AttributeValue, CfQuery};

use super::LatentGenerator;
use crate::fairness::scorer::AttributeScorer;

/// How the antecedent is imposed on the counterfactual latent.
#[derive(Debug, Clone, PartialEq)]
pub enum AntecedentForm {
    /// Condition the kernel's proposals on the scorer reading the antecedent (rejection).
    Observation,
    /// Move the proposals across the antecedent's latent hyperplanes (no rejection).
    Intervention(LatentIntervention),
}

/// Sizes, caps and seed of a counterfactual run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CfOptions {
    /// Factual units to draw.
    pub units: usize,
    /// Latents generated and scored at a time.
    pub batch_size: usize,
    /// The most prior draws spent finding the factual units; reaching it is an error naming
    /// the query.
    pub max_factual_draws: usize,
    /// The most proposals per unit in the observation form.
    pub max_proposals: usize,
    /// Drop (and count) units whose proposals all failed instead of failing the query.
    pub skip_unresolved: bool,
    /// Seeds the factual draws and the proposals.
    pub seed: u64,
}

impl Default for CfOptions {
    /// 256 units in batches of 256, at most 100 000 factual draws and 200 proposals per unit,
    /// unresolved units an error, seed 0.
    fn default() -> Self {
        CfOptions {
            units: 256,
            batch_size: 256,
            max_factual_draws: 100_000,
            max_proposals: 200,
            skip_unresolved: false,
            seed: 0,
        }
    }
}

impl CfOptions {
    fn validate(&self) -> Result<()> {
        if self.units == 0 || self.batch_size == 0 || self.max_proposals == 0 {
            return Err(Error::param(
                "CfOptions",
                "units",
                format!(
                    "units, batch_size and max_proposals must be positive, got {}, {}, {}",
                    self.units, self.batch_size, self.max_proposals
                ),
            ));
        }
        Ok(())
    }
}

/// Factual units: prior latents whose images show the evidence.
#[derive(Debug, Clone)]
pub struct Factuals {
    /// `[units, latent_dim]` latents on the generator's device.
    pub z: Tensor,
    /// Prior draws made to find them (whole batches, so possibly more than needed).
    pub draws: usize,
    /// How many of those draws showed the evidence (at least the units kept).
    pub accepted: usize,
}

impl Factuals {
    /// The fraction of prior draws that showed the evidence.
    pub fn acceptance(&self) -> Result<f64> {
        Ok(self.accepted as f64 / self.draws.max(1) as f64)
    }
}

/// The counterfactual answer to one query by one sampler.
#[derive(Debug, Clone)]
pub struct CfResult {
    /// The query's label.
    pub query: String,
    /// The kernel and antecedent form (`"ESM(s=0.9), observation"`).
    pub method: String,
    /// The consequents, in the query's order.
    pub consequents: Vec<String>,
    /// Per consequent, the fraction of factual images the scorer reads it in.
    pub factual_freq: Vec<f64>,
    /// Per consequent, the fraction of counterfactual images the scorer reads it in.
    pub counterfactual_freq: Vec<f64>,
    /// Per consequent, the fraction of units whose verdict differs between the worlds.
    pub flip_rate: Vec<f64>,
    /// Prior draws spent on the factual units.
    pub factual_draws: usize,
    /// Prior draws showing the evidence per prior draw.
    pub factual_acceptance: f64,
    /// Kernel proposals made.
    pub proposals: usize,
    /// Accepted proposals per proposal (observation form; `None` for interventions).
    pub cf_acceptance: Option<f64>,
    /// The fraction of counterfactual images the scorer reads the antecedent in (1 in the
    /// observation form by construction).
    pub antecedent_agreement: f64,
    /// Units dropped because their proposals all failed ([`CfOptions::skip_unresolved`]).
    pub unresolved: usize,
    /// `[m, d]` factual latents of the resolved units.
    pub z: Tensor,
    /// `[m, d]` their counterfactual latents, row for row.
    pub z_cf: Tensor,
}

/// The scorer's probabilities `[n, k]` of `gen`'s images of `z`, `batch` latents at a time.
pub(crate) fn scores(
    gen: &(impl LatentGenerator + ?Sized),
    scorer: &(impl AttributeScorer + ?Sized),
    z: &Tensor,
    batch: usize,
) -> Result<Tensor> {
    let n = z.dim(0)?;
    let mut parts = Vec::with_capacity(n.div_ceil(batch.max(1)));
    let mut i = 0;
    while i < n {
        let m = batch.min(n - i);
        parts.push(scorer.attribute_probs(&gen.generate(&z.narrow(0, i, m)?)?)?);
        i += m;
    }
    if parts.is_empty() {
        return Err(Error::usage("scoring an empty batch of latents"));
    }
    Ok(Tensor::cat(&parts, 0)?)
}

fn ids(idx: &[usize], z: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        idx.len(),
        z.device(),
    )?)
}

/// `opts.units` prior latents of `gen` whose images `scorer` reads the query's evidence in,
/// drawn `opts.batch_size` at a time with `rng`. More than `opts.max_factual_draws` draws is
/// an error naming the query and the acceptance so far.
pub fn sample_factuals(
    gen: &(impl LatentGenerator + ?Sized),
    scorer: &(impl AttributeScorer + ?Sized),
    query: &CfQuery,
    opts: &CfOptions,
    rng: &mut Rng,
) -> Result<Factuals> {
    opts.validate()?;
    let cols = columns(scorer, &query.evidence)?;
    let mut kept: Vec<Tensor> = Vec::new();
    let (mut found, mut draws, mut accepted) = (0usize, 0usize, 0usize);
    while found < opts.units {
        if draws >= opts.max_factual_draws {
            return Err(Error::usage(format!(
                "query {:?}: only {found} of {} factual units after {draws} prior draws \
                 (acceptance {:.2e}); the evidence is rare or unreadable in the generator's images",
                query.label,
                opts.units,
                accepted as f64 / draws.max(1) as f64
            )));
        }
        let m = opts.batch_size.min(opts.max_factual_draws - draws);
        let z = gen.sample_latents(m, rng)?;
        draws += m;
        let ok = satisfied(&scores(gen, scorer, &z, m)?, &cols)?.to_vec1::<u8>()?;
        let all: Vec<usize> = (0..m).filter(|&i| ok[i] == 1).collect();
        accepted += all.len();
        let hits = &all[..all.len().min(opts.units - found)];
        if !hits.is_empty() {
            kept.push(z.index_select(&ids(hits, &z)?, 0)?);
            found += hits.len();
        }
    }
    Ok(Factuals {
        z: Tensor::cat(&kept, 0)?,
        draws,
        accepted,
    })
}

/// Answers `query` with `kernel` and the antecedent `form`: draws the factual units
/// ([`sample_factuals`], from `opts.seed`), then their counterfactuals
/// ([`counterfactuals_from`]).
pub fn counterfactuals(
    gen: &(impl LatentGenerator + ?Sized),
    scorer: &(impl AttributeScorer + ?Sized),
    kernel: &(impl NoiseKernel + ?Sized),
    query: &CfQuery,
    form: &AntecedentForm,
    opts: &CfOptions,
) -> Result<CfResult> {
    check_query(scorer, query, form)?;
    let factuals = sample_factuals(gen, scorer, query, opts, &mut rng::from_seed(opts.seed))?;
    counterfactuals_from(gen, scorer, kernel, query, form, &factuals, opts)
}

fn check_query(
    scorer: &(impl AttributeScorer + ?Sized),
    query: &CfQuery,
    form: &AntecedentForm,
) -> Result<()> {
    columns(scorer, &query.evidence)?;
    columns(scorer, &query.antecedent)?;
    for c in &query.consequents {
        scorer.column(c)?;
    }
    if let AntecedentForm::Intervention(iv) = form {
        iv.check(scorer, &query.antecedent)?;
    }
    Ok(())
}

/// The counterfactuals of given factual units (so that several kernels can be compared on the
/// same units); proposals are drawn from `opts.seed` on their own stream.
pub fn counterfactuals_from(
    gen: &(impl LatentGenerator + ?Sized),
    scorer: &(impl AttributeScorer + ?Sized),
    kernel: &(impl NoiseKernel + ?Sized),
    query: &CfQuery,
    form: &AntecedentForm,
    factuals: &Factuals,
    opts: &CfOptions,
) -> Result<CfResult> {
    opts.validate()?;
    check_query(scorer, query, form)?;
    let ant = columns(scorer, &query.antecedent)?;
    let mut rng = rng::from_seed(opts.seed);
    rng.set_stream(1);
    let z = &factuals.z;
    let n = z.dim(0)?;
    let (z, z_cf, proposals, unresolved, method) = match form {
        AntecedentForm::Observation => {
            let (resolved, z_cf, proposals) =
                observe(gen, scorer, kernel, z, &ant, opts, &mut rng)?;
            let unresolved = n - resolved.len();
            if unresolved > 0 && (!opts.skip_unresolved || resolved.is_empty()) {
                return Err(Error::usage(format!(
                    "query {:?}: {unresolved} of {n} units found no counterfactual showing the \
                     antecedent in {} proposals each ({})",
                    query.label,
                    opts.max_proposals,
                    kernel.describe()
                )));
            }
            let z = z.index_select(&ids(&resolved, z)?, 0)?;
            (z, z_cf, proposals, unresolved, "observation".to_string())
        }
        AntecedentForm::Intervention(iv) => {
            let proposal = kernel.propose(z, &mut rng)?;
            let z_cf = iv.impose(z, &proposal, &query.antecedent)?;
            let how = format!("intervention(m={})", iv.margin());
            (z.clone(), z_cf, n, 0, how)
        }
    };
    let cons = query
        .consequents
        .iter()
        .map(|c| scorer.column(c))
        .collect::<Result<Vec<_>>>()?;
    let fac_probs = scores(gen, scorer, &z, opts.batch_size)?;
    let cf_probs = scores(gen, scorer, &z_cf, opts.batch_size)?;
    let mean_cols =
        |t: &Tensor| -> Result<Vec<f64>> { Ok(t.mean(0)?.to_dtype(DType::F64)?.to_vec1::<f64>()?) };
    let (fac, cf) = (present(&fac_probs, &cons)?, present(&cf_probs, &cons)?);
    let agreement = satisfied(&cf_probs, &ant)?
        .to_dtype(DType::F64)?
        .mean_all()?;
    let m = z.dim(0)?;
    Ok(CfResult {
        query: query.label.clone(),
        method: format!("{}, {method}", kernel.describe()),
        consequents: query.consequents.clone(),
        factual_freq: mean_cols(&fac)?,
        counterfactual_freq: mean_cols(&cf)?,
        flip_rate: mean_cols(&(&fac - &cf)?.abs()?)?,
        factual_draws: factuals.draws,
        factual_acceptance: factuals.acceptance()?,
        proposals,
        cf_acceptance: matches!(form, AntecedentForm::Observation)
            .then(|| m as f64 / proposals.max(1) as f64),
        antecedent_agreement: agreement.to_scalar::<f64>()?,
        unresolved,
        z,
        z_cf,
    })
}

/// The observation form: every pending unit proposes until its image shows the antecedent or
/// its proposals run out. Returns the resolved units (ascending), their counterfactual latents
/// row for row, and the proposals made.
fn observe(
    gen: &(impl LatentGenerator + ?Sized),
    scorer: &(impl AttributeScorer + ?Sized),
    kernel: &(impl NoiseKernel + ?Sized),
    z: &Tensor,
    ant: &[(usize, bool)],
    opts: &CfOptions,
    rng: &mut Rng,
) -> Result<(Vec<usize>, Tensor, usize)> {
    let n = z.dim(0)?;
    let mut rows: Vec<Option<Tensor>> = vec![None; n];
    let mut pending: Vec<usize> = (0..n).collect();
    let mut proposals = 0;
    for _ in 0..opts.max_proposals {
        if pending.is_empty() {
            break;
        }
        let zp = kernel.propose(&z.index_select(&ids(&pending, z)?, 0)?, rng)?;
        proposals += pending.len();
        let ok = satisfied(&scores(gen, scorer, &zp, opts.batch_size)?, ant)?.to_vec1::<u8>()?;
        let mut still = Vec::new();
        for (j, &u) in pending.iter().enumerate() {
            if ok[j] == 1 {
                rows[u] = Some(zp.get(j)?);
            } else {
                still.push(u);
            }
        }
        pending = still;
    }
    let resolved: Vec<usize> = (0..n).filter(|&u| rows[u].is_some()).collect();
    let kept: Vec<Tensor> = rows.into_iter().flatten().collect();
    let z_cf = if kept.is_empty() {
        z.narrow(0, 0, 0)?
    } else {
        Tensor::stack(&kept, 0)?
    };
    Ok((resolved, z_cf, proposals))
}
