//! Counterfactual fairness of a classifier (Kusner et al. 2017, measured as in the
//! counterfactual-image audits of Denton et al. 2019 and Dash et al. 2022): how often, and by
//! how much, its prediction of a target attribute changes between a unit's factual image and
//! the image of the same unit had its protected attribute been different.
//!
//! The counterfactual images may come from any engine (a conditional VAE, the β-intact-VAE, a
//! GAN noise sampler, a deep SCM); the cartoon data generator gives the *true* ones. Everything
//! here takes tensors or probabilities, so it is engine-agnostic: [`EngineCfFairness`] puts an
//! engine's figures next to the true ones and their differences.
//!
//! ```
//! use models::fairness::cf_fairness::cf_fairness_from_probs;
//!
//! let factual = [0.9, 0.2, 0.6, 0.4];
//! let counterfactual = [0.3, 0.1, 0.7, 0.5];
//! let f = cf_fairness_from_probs(&factual, &counterfactual, 0.5)?;
//! // Units 0 (0.9 → 0.3) and 3 (0.4 → 0.5) cross the threshold.
//! assert_eq!(f.flip_rate, 0.5);
//! assert!((f.mean_abs_change - (0.6 + 0.1 + 0.1 + 0.1) / 4.0).abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::{DType, Tensor};
use ppl_core::{Error, Result};
use serde::Serialize;

use super::scorer::AttributeScorer;

/// A classifier's counterfactual (in)stability on a set of units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CfFairness {
    /// The number of units.
    pub n: usize,
    /// The fraction of units whose thresholded prediction changes.
    pub flip_rate: f64,
    /// The mean `|p(counterfactual) − p(factual)|`.
    pub mean_abs_change: f64,
    /// The mean `p(counterfactual) − p(factual)` (its direction).
    pub mean_change: f64,
}

fn check_probs(what: &'static str, p: &[f64]) -> Result<()> {
    if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::param(
            "cf_fairness",
            what,
            format!("probability {i} is {}, outside [0, 1]", p[i]),
        ));
    }
    Ok(())
}

/// [`CfFairness`] from the target probabilities of the factual and counterfactual images of the
/// same units (in the same order); a prediction is positive when `p ≥ threshold`. Errors on
/// different lengths, no units or values outside `[0, 1]`.
pub fn cf_fairness_from_probs(
    factual: &[f64],
    counterfactual: &[f64],
    threshold: f64,
) -> Result<CfFairness> {
    if factual.len() != counterfactual.len() {
        return Err(Error::shape(
            "cf_fairness: factual vs counterfactual units",
            &[factual.len()],
            &[counterfactual.len()],
        ));
    }
    if factual.is_empty() {
        return Err(Error::usage("cf_fairness: no units"));
    }
    check_probs("factual", factual)?;
    check_probs("counterfactual", counterfactual)?;
    let n = factual.len() as f64;
    let flips = factual
        .iter()
        .zip(counterfactual)
        .filter(|(f, c)| (**f >= threshold) != (**c >= threshold))
        .count();
    let diffs = factual.iter().zip(counterfactual).map(|(f, c)| c - f);
    Ok(CfFairness {
        n: factual.len(),
        flip_rate: flips as f64 / n,
        mean_abs_change: diffs.clone().map(f64::abs).sum::<f64>() / n,
        mean_change: diffs.sum::<f64>() / n,
    })
}

/// The column `attr` of `scorer`'s probabilities for `images`, on the host.
pub fn scorer_column(
    scorer: &dyn AttributeScorer,
    attr: &str,
    images: &Tensor,
) -> Result<Vec<f64>> {
    let col = scorer.column(attr)?;
    Ok(scorer
        .attribute_probs(images)?
        .narrow(1, col, 1)?
        .squeeze(1)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?)
}

fn check_units(what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dims() != b.dims() {
        return Err(Error::shape(
            format!("cf_fairness: {what}"),
            a.dims(),
            b.dims(),
        ));
    }
    Ok(())
}

/// [`CfFairness`] of `scorer`'s attribute `attr` on factual images and the counterfactual
/// images of the same units (`[n, 3, s, s]` each, row `i` the same unit).
pub fn cf_fairness(
    scorer: &dyn AttributeScorer,
    attr: &str,
    factual: &Tensor,
    counterfactual: &Tensor,
    threshold: f64,
) -> Result<CfFairness> {
    check_units("factual vs counterfactual images", factual, counterfactual)?;
    cf_fairness_from_probs(
        &scorer_column(scorer, attr, factual)?,
        &scorer_column(scorer, attr, counterfactual)?,
        threshold,
    )
}

/// One engine's counterfactual-fairness estimate next to the truth from the data generator's
/// true counterfactuals of the same units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineCfFairness {
    /// The engine's name.
    pub engine: String,
    /// The figures with the engine's counterfactual images.
    pub estimated: CfFairness,
    /// The figures with the true counterfactual images.
    pub truth: CfFairness,
    /// `estimated.flip_rate − truth.flip_rate`.
    pub flip_rate_error: f64,
    /// `estimated.mean_abs_change − truth.mean_abs_change`.
    pub mean_abs_change_error: f64,
    /// The mean over units of `|p(engine's counterfactual) − p(true counterfactual)|`.
    pub unit_prob_error: f64,
    /// The fraction of units whose thresholded prediction on the engine's counterfactual equals
    /// that on the true counterfactual.
    pub unit_agreement: f64,
}

/// [`EngineCfFairness`] from probabilities: the classifier's target probability on the factual
/// images, the engine's counterfactuals and the true counterfactuals of the same units.
pub fn compare_engine_probs(
    engine: &str,
    factual: &[f64],
    engine_cf: &[f64],
    true_cf: &[f64],
    threshold: f64,
) -> Result<EngineCfFairness> {
    let estimated = cf_fairness_from_probs(factual, engine_cf, threshold)?;
    let truth = cf_fairness_from_probs(factual, true_cf, threshold)?;
    let n = factual.len() as f64;
    let unit_prob_error = engine_cf
        .iter()
        .zip(true_cf)
        .map(|(e, t)| (e - t).abs())
        .sum::<f64>()
        / n;
    let agree = engine_cf
        .iter()
        .zip(true_cf)
        .filter(|(e, t)| (**e >= threshold) == (**t >= threshold))
        .count();
    Ok(EngineCfFairness {
        engine: engine.to_string(),
        flip_rate_error: estimated.flip_rate - truth.flip_rate,
        mean_abs_change_error: estimated.mean_abs_change - truth.mean_abs_change,
        estimated,
        truth,
        unit_prob_error,
        unit_agreement: agree as f64 / n,
    })
}

/// [`EngineCfFairness`] of `scorer`'s attribute `attr`: factual images, the engine's
/// counterfactual images and the true counterfactual images of the same units (all
/// `[n, 3, s, s]`), e.g. from
/// [`ProceduralFaces::true_counterfactual`](crate::generators::procedural::ProceduralFaces::true_counterfactual)
/// or [`CartoonFaces::counterfactual`](crate::data::cartoon::CartoonFaces::counterfactual).
pub fn compare_engine(
    engine: &str,
    scorer: &dyn AttributeScorer,
    attr: &str,
    factual: &Tensor,
    engine_cf: &Tensor,
    true_cf: &Tensor,
    threshold: f64,
) -> Result<EngineCfFairness> {
    check_units(
        "factual vs engine counterfactual images",
        factual,
        engine_cf,
    )?;
    check_units("factual vs true counterfactual images", factual, true_cf)?;
    compare_engine_probs(
        engine,
        &scorer_column(scorer, attr, factual)?,
        &scorer_column(scorer, attr, engine_cf)?,
        &scorer_column(scorer, attr, true_cf)?,
        threshold,
    )
}

/// Which engine's counterfactual flip rate came closest to the truth, and whether the engine
/// the audit expects to win (the deep SCM, whose mechanisms mirror the data's) did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineRanking {
    /// The engine with the smallest `|flip_rate_error|` (the first of equals).
    pub best: String,
    /// Its `|flip_rate_error|`.
    pub best_error: f64,
    /// The expected winner's name.
    pub expected: String,
    /// The expected winner's `|flip_rate_error|`.
    pub expected_error: f64,
    /// Whether the expected winner's error is the smallest (ties count as smallest).
    pub expected_is_best: bool,
}

impl EngineRanking {
    /// One sentence for a report: that the expected engine's error is the smallest, or which
    /// engine came closer and by how much.
    pub fn verdict(&self) -> String {
        if self.expected_is_best {
            format!(
                "The {} engine's flip-rate error ({:.3}) is the smallest.",
                self.expected, self.expected_error
            )
        } else {
            format!(
                "The {} engine's flip-rate error ({:.3}) is NOT the smallest: {} comes closer to \
                 the truth ({:.3}).",
                self.expected, self.expected_error, self.best, self.best_error
            )
        }
    }
}

/// Ranks `results` by `|flip_rate_error|` and reports whether `expected` is the best. Errors
/// when `results` is empty or holds no engine named `expected`.
///
/// ```
/// use models::fairness::cf_fairness::{compare_engine_probs, rank_engines};
///
/// let factual = [0.9, 0.9, 0.1, 0.1];
/// let truth = [0.1, 0.9, 0.9, 0.1]; // flip rate 0.5
/// let scm = compare_engine_probs("DeepSCM", &factual, &[0.1, 0.9, 0.9, 0.2], &truth, 0.5)?;
/// let vae = compare_engine_probs("CVAE", &factual, &[0.9, 0.9, 0.1, 0.1], &truth, 0.5)?;
/// let r = rank_engines(&[vae, scm], "DeepSCM")?;
/// assert!(r.expected_is_best && r.best == "DeepSCM");
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn rank_engines(results: &[EngineCfFairness], expected: &str) -> Result<EngineRanking> {
    let best = results
        .iter()
        .min_by(|a, b| a.flip_rate_error.abs().total_cmp(&b.flip_rate_error.abs()))
        .ok_or_else(|| Error::usage("rank_engines: no engine results"))?;
    let exp = results
        .iter()
        .find(|r| r.engine == expected)
        .ok_or_else(|| {
            Error::usage(format!(
                "rank_engines: no engine named {expected:?} among {:?}",
                results
                    .iter()
                    .map(|r| r.engine.as_str())
                    .collect::<Vec<_>>()
            ))
        })?;
    let (best_error, expected_error) = (best.flip_rate_error.abs(), exp.flip_rate_error.abs());
    Ok(EngineRanking {
        best: best.engine.clone(),
        best_error,
        expected: expected.to_string(),
        expected_error,
        expected_is_best: expected_error <= best_error,
    })
}
