//! Fairness and classification metrics on plain score and label vectors (f64 on the host): the
//! figures of Wang & Russakovsky (2021) and Ramaswamy, Kim & Russakovsky (2021) — average
//! precision, DEO, directional bias amplification, the KL divergence between the groups' score
//! histograms, calibrated and F1-optimal thresholds — and the audits of generators: demographic
//! parity of generations and counterfactual flip rates.
//!
//! Conventions: a score `s` predicts positive when `s ≥ threshold`; `labels[i]` is the true
//! class; `groups[i]` is the protected attribute (`true` = group a).
//!
//! ```
//! use models::fairness::metrics::{average_precision, deo};
//!
//! let labels = [true, false, true, true, false];
//! let scores = [0.9, 0.8, 0.7, 0.4, 0.3];
//! assert!((average_precision(&labels, &scores)? - 29.0 / 36.0).abs() < 1e-12);
//! let groups = [true, true, false, false, false];
//! // Group a's positive (0.9) passes 0.5; group b loses one of its two positives (0.4).
//! assert!((deo(&labels, &scores, &groups, 0.5)? - 0.5).abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use ppl_core::{Error, Result};

/// Errors when `what` is empty.
fn non_empty(what: &'static str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::usage(format!("{what}: no samples")));
    }
    Ok(())
}

/// Errors when two per-sample vectors differ in length.
fn same_len(what: &str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::shape(what, &[a], &[b]));
    }
    Ok(())
}

/// Errors on NaN or infinite scores, naming the first.
fn finite(metric: &'static str, scores: &[f64]) -> Result<()> {
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::param(
            metric,
            "scores",
            format!("score {i} is {}", scores[i]),
        ));
    }
    Ok(())
}

fn check_scored(metric: &'static str, labels: &[bool], scores: &[f64]) -> Result<()> {
    non_empty(metric, scores.len())?;
    same_len(
        &format!("{metric}: labels vs scores"),
        labels.len(),
        scores.len(),
    )?;
    finite(metric, scores)
}

/// Sample indices sorted by decreasing score (stable, so ties keep their order).
fn by_score_desc(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
    order
}

/// `(threshold, true positives, false positives)` at each distinct score, from the highest: the
/// counts of samples with `score ≥ threshold`.
fn operating_points(labels: &[bool], scores: &[f64]) -> Vec<(f64, usize, usize)> {
    let order = by_score_desc(scores);
    let mut out: Vec<(f64, usize, usize)> = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            out.push((scores[i], tp, fp));
        }
    }
    out
}

fn positives(metric: &'static str, labels: &[bool]) -> Result<usize> {
    let p = labels.iter().filter(|&&l| l).count();
    if p == 0 {
        return Err(Error::usage(format!(
            "{metric}: no positive labels, so recall is undefined"
        )));
    }
    Ok(p)
}

/// Average precision as scikit-learn's `average_precision_score`: `Σ_k (R_k − R_{k−1}) P_k`
/// over the distinct scores taken as thresholds from the highest, with `R_0 = 0` — the
/// step-wise area under the precision-recall curve, without interpolation. Tied scores enter
/// together. Errors when there is no positive label.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64> {
    check_scored("average_precision", labels, scores)?;
    let pos = positives("average_precision", labels)? as f64;
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (_, tp, fp) in operating_points(labels, scores) {
        let recall = tp as f64 / pos;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Ok(ap)
}

/// The false negative rate `P(score < threshold | label = 1)` of the samples with `mask[i]`.
fn fnr_where(labels: &[bool], scores: &[f64], mask: impl Fn(usize) -> bool, t: f64) -> Option<f64> {
    let (mut pos, mut missed) = (0usize, 0usize);
    for i in (0..labels.len()).filter(|&i| labels[i] && mask(i)) {
        pos += 1;
        if scores[i] < t {
            missed += 1;
        }
    }
    (pos > 0).then(|| missed as f64 / pos as f64)
}

/// The false negative rate `P(score < threshold | label = 1)`. Errors without positives.
pub fn false_negative_rate(labels: &[bool], scores: &[f64], threshold: f64) -> Result<f64> {
    check_scored("false_negative_rate", labels, scores)?;
    fnr_where(labels, scores, |_| true, threshold)
        .ok_or_else(|| Error::usage("false_negative_rate: no positive labels"))
}

/// The difference in equality of opportunity, `|FNR(group a) − FNR(group b)|` at `threshold`
/// (Ramaswamy et al. 2021). Errors when either group has no positive label.
pub fn deo(labels: &[bool], scores: &[f64], groups: &[bool], threshold: f64) -> Result<f64> {
    check_scored("deo", labels, scores)?;
    same_len("deo: labels vs groups", labels.len(), groups.len())?;
    let fnr = |g: bool| {
        fnr_where(labels, scores, |i| groups[i] == g, threshold).ok_or_else(|| {
            Error::usage(format!(
                "deo: group {} has no positive labels",
                if g { "a (true)" } else { "b (false)" }
            ))
        })
    };
    Ok((fnr(true)? - fnr(false)?).abs())
}

/// Directional bias amplification from attribute to task, `BA_{A→T}` (Wang & Russakovsky 2021),
/// for one binary task and an attribute with values `0..k` (each value is one attribute `a`):
///
/// `BA = 1/|A| Σ_a [ y_a Δ_a + (1 − y_a)(−Δ_a) ]`, with
/// `y_a = 1[P(A = a, T = 1) > P(A = a) P(T = 1)]` and
/// `Δ_a = P(T̂ = 1 | A = a) − P(T = 1 | A = a)`,
///
/// all probabilities empirical on the given samples (`y_a` from the true labels of the same
/// set). Positive: predictions amplify the attribute–task correlation; a perfect predictor has
/// `BA = 0`. Errors when an attribute value in `0..=max` has no samples.
pub fn bias_amplification(attribute: &[usize], task: &[bool], predicted: &[bool]) -> Result<f64> {
    non_empty("bias_amplification", attribute.len())?;
    same_len(
        "bias_amplification: attribute vs task",
        attribute.len(),
        task.len(),
    )?;
    same_len(
        "bias_amplification: attribute vs predicted",
        attribute.len(),
        predicted.len(),
    )?;
    let k = attribute.iter().max().map_or(0, |m| m + 1);
    let n = attribute.len() as f64;
    let p_t = task.iter().filter(|&&t| t).count() as f64 / n;
    let mut total = 0.0;
    for a in 0..k {
        let idx: Vec<usize> = (0..attribute.len())
            .filter(|&i| attribute[i] == a)
            .collect();
        if idx.is_empty() {
            return Err(Error::usage(format!(
                "bias_amplification: attribute value {a} (of 0..{k}) has no samples"
            )));
        }
        let n_a = idx.len() as f64;
        let t_a = idx.iter().filter(|&&i| task[i]).count() as f64;
        let pred_a = idx.iter().filter(|&&i| predicted[i]).count() as f64;
        let y = t_a / n > (n_a / n) * p_t;
        let delta = pred_a / n_a - t_a / n_a;
        total += if y { delta } else { -delta };
    }
    Ok(total / k as f64)
}

/// `KL(P_a ‖ P_b)` between the histograms of two groups' scores: `bins` equal-width bins on
/// `[0, 1]` (the last one closed), each count increased by the pseudo-count `smoothing` before
/// normalising (`p_i = (c_i + smoothing) / (n + bins · smoothing)`), so the divergence is
/// finite whenever `smoothing > 0`. Errors on scores outside `[0, 1]`, an empty group, `bins =
/// 0` or a negative smoothing; an empty bin in `P_b` with zero smoothing gives `+∞`.
pub fn histogram_kl(
    scores_a: &[f64],
    scores_b: &[f64],
    bins: usize,
    smoothing: f64,
) -> Result<f64> {
    non_empty("histogram_kl (group a)", scores_a.len())?;
    non_empty("histogram_kl (group b)", scores_b.len())?;
    if bins == 0 {
        return Err(Error::param("histogram_kl", "bins", "must be at least 1"));
    }
    if !(smoothing >= 0.0 && smoothing.is_finite()) {
        return Err(Error::param(
            "histogram_kl",
            "smoothing",
            format!("must be finite and ≥ 0, got {smoothing}"),
        ));
    }
    let hist = |scores: &[f64]| -> Result<Vec<f64>> {
        let mut c = vec![smoothing; bins];
        for (i, &s) in scores.iter().enumerate() {
            if !(0.0..=1.0).contains(&s) {
                return Err(Error::param(
                    "histogram_kl",
                    "scores",
                    format!("score {i} is {s}, outside [0, 1]"),
                ));
            }
            c[((s * bins as f64) as usize).min(bins - 1)] += 1.0;
        }
        let total: f64 = c.iter().sum();
        Ok(c.into_iter().map(|x| x / total).collect())
    };
    let (p, q) = (hist(scores_a)?, hist(scores_b)?);
    Ok(p.iter()
        .zip(&q)
        .filter(|(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| pi * (pi / qi).ln())
        .sum())
}

/// The threshold at which the predicted positive rate on a calibration set equals its base
/// rate (Ramaswamy et al. 2021): with `k` positive labels among the scores, the midpoint
/// between the `k`-th and `(k+1)`-th highest scores, so exactly `k` samples score above it
/// unless those two scores tie. `+∞` when `k = 0`; the lowest score when every label is
/// positive.
pub fn calibrated_threshold(labels: &[bool], scores: &[f64]) -> Result<f64> {
    check_scored("calibrated_threshold", labels, scores)?;
    let k = labels.iter().filter(|&&l| l).count();
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    Ok(match k {
        0 => f64::INFINITY,
        k if k == sorted.len() => sorted[k - 1],
        k => 0.5 * (sorted[k - 1] + sorted[k]),
    })
}

/// The threshold maximising F1 `= 2TP / (2TP + FP + FN)` among the distinct scores, with its
/// F1: `(threshold, f1)`. Ties in F1 go to the highest threshold. Errors without positives.
pub fn f1_threshold(labels: &[bool], scores: &[f64]) -> Result<(f64, f64)> {
    check_scored("f1_threshold", labels, scores)?;
    let pos = positives("f1_threshold", labels)?;
    let mut best = (f64::INFINITY, -1.0);
    for (t, tp, fp) in operating_points(labels, scores) {
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + (pos - tp)) as f64;
        if f1 > best.1 {
            best = (t, f1);
        }
    }
    Ok(best)
}

/// Demographic parity of a generator: the share of generations showing the protected attribute
/// against a target share, with a Wilson score interval at `z` standard errors (1.96 for 95%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationParity {
    /// The number of generations.
    pub n: usize,
    /// The observed share with the attribute.
    pub share: f64,
    /// The target share.
    pub target: f64,
    /// `share − target`.
    pub gap: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
}

impl GenerationParity {
    /// Whether the interval covers the target share (no detected departure from parity).
    pub fn covers_target(&self) -> bool {
        self.low <= self.target && self.target <= self.high
    }
}

/// The share of `protected` among generated samples against `target` (in `[0, 1]`), with a
/// Wilson binomial interval at `z` (> 0) standard errors.
pub fn generation_parity(protected: &[bool], target: f64, z: f64) -> Result<GenerationParity> {
    non_empty("generation_parity", protected.len())?;
    if !(0.0..=1.0).contains(&target) {
        return Err(Error::param(
            "generation_parity",
            "target",
            format!("must lie in [0, 1], got {target}"),
        ));
    }
    if !(z > 0.0 && z.is_finite()) {
        return Err(Error::param(
            "generation_parity",
            "z",
            format!("must be finite and > 0, got {z}"),
        ));
    }
    let n = protected.len() as f64;
    let p = protected.iter().filter(|&&g| g).count() as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Ok(GenerationParity {
        n: protected.len(),
        share: p,
        target,
        gap: p - target,
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    })
}

/// The counterfactual flip rate of a classifier: the fraction of samples whose prediction on
/// the counterfactual input differs from that on the factual one.
pub fn flip_rate<T: PartialEq>(factual: &[T], counterfactual: &[T]) -> Result<f64> {
    non_empty("flip_rate", factual.len())?;
    same_len(
        "flip_rate: factual vs counterfactual predictions",
        factual.len(),
        counterfactual.len(),
    )?;
    let flips = factual
        .iter()
        .zip(counterfactual)
        .filter(|(a, b)| a != b)
        .count();
    Ok(flips as f64 / factual.len() as f64)
}
