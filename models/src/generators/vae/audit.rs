//! Fairness audits of (conditional) VAEs on the cartoon faces: re-balanced training sets, the
//! protected attribute's share among generations, per-group reconstruction accuracy, and
//! counterfactuals scored against the data's true ones.

use candle_core::{DType, Tensor};
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;

use super::counterfactual::CvaeCounterfactual;
use super::model::{condition_tensor, ConvVae};
use crate::data::cartoon::{Attr, CartoonFaces};
use crate::face_scm::FaceData;
use crate::fairness::metrics::{flip_rate, generation_parity, GenerationParity};
use crate::fairness::scorer::AttributeScorer;
use crate::generators::LatentGenerator;

/// Images per forward pass in the audits (bounds memory on large sets).
const CHUNK: usize = 256;

/// Standard errors of the Wilson interval of [`generation_audit`] (95%).
pub const PARITY_Z: f64 = 1.96;

/// A subset of `n` faces of `data` of which exactly `round(share · n)` have `attr = 1`, drawn
/// without replacement (seeded by `seed`) and shuffled. Fails when `share` is outside
/// `[0, 1]`, `n` is 0, or `data` has too few faces of either kind.
///
/// Usage: `rebalance(&pool, Attr::Male, 0.8, 1000, 0)?` is a training set with 80% men, for
/// auditing how a generator trained on it reproduces the imbalance.
pub fn rebalance(data: &FaceData, attr: Attr, share: f64, n: usize, seed: u64) -> Result<FaceData> {
    if !(0.0..=1.0).contains(&share) {
        return Err(Error::usage(format!(
            "rebalance: share must lie in [0, 1], got {share}"
        )));
    }
    if n == 0 {
        return Err(Error::usage("rebalance: ask for at least one face"));
    }
    let k = (share * n as f64).round() as usize;
    let (mut pos, mut neg): (Vec<usize>, Vec<usize>) =
        (0..data.len()).partition(|&i| data.samples[i].attributes.get(attr));
    if pos.len() < k || neg.len() < n - k {
        return Err(Error::usage(format!(
            "rebalance: {n} faces with {k} of {} = 1 need {k} and {} faces, the data has {} \
             and {}",
            attr.name(),
            n - k,
            pos.len(),
            neg.len()
        )));
    }
    let mut r = rng::from_seed(seed);
    pos.shuffle(&mut r);
    neg.shuffle(&mut r);
    let mut idx: Vec<usize> = pos[..k].iter().chain(&neg[..n - k]).copied().collect();
    idx.shuffle(&mut r);
    data.select(&idx)
}

/// The share of `data`'s faces with `attr = 1` (the target of a generation audit).
pub fn attribute_share(data: &FaceData, attr: Attr) -> Result<f64> {
    if data.is_empty() {
        return Err(Error::usage("attribute_share: no face given"));
    }
    let k = data
        .samples
        .iter()
        .filter(|s| s.attributes.get(attr))
        .count();
    Ok(k as f64 / data.len() as f64)
}

/// Column `col` of a scorer's probabilities on `images`, thresholded at 1/2.
fn predictions(scorer: &dyn AttributeScorer, images: &Tensor, col: usize) -> Result<Vec<bool>> {
    let p = scorer.attribute_probs(images)?;
    let p = p.narrow(1, col, 1)?.squeeze(1)?.to_dtype(DType::F32)?;
    Ok(p.to_vec1::<f32>()?.into_iter().map(|v| v > 0.5).collect())
}

/// Demographic parity of a generator: draws `n` images from `generator`'s prior (seeded by
/// `seed`), reads `attribute` with `scorer` (probability > 1/2) and compares the share with
/// `training_share` through [`generation_parity`] (Wilson interval at [`PARITY_Z`]).
///
/// Usage: train a plain [`ConvVae`] on [`rebalance`]d sets with shares 0.5, 0.8, .. and
/// compare each `parity.share` with its `training_share`: a faithful generator tracks the
/// training share, one that collapses modes drifts towards the majority.
pub fn generation_audit<G: LatentGenerator + ?Sized>(
    generator: &G,
    scorer: &dyn AttributeScorer,
    attribute: &str,
    training_share: f64,
    n: usize,
    seed: u64,
) -> Result<GenerationParity> {
    if n == 0 {
        return Err(Error::usage("generation_audit: ask for at least one image"));
    }
    let col = scorer.column(attribute)?;
    let mut r = rng::from_seed(seed);
    let mut protected = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let b = CHUNK.min(n - done);
        let z = generator.sample_latents(b, &mut r)?;
        let images = generator.generate(&z)?;
        protected.extend(predictions(scorer, &images, col)?);
        done += b;
    }
    generation_parity(&protected, training_share, PARITY_Z)
}

/// The conditions of `data` for a VAE conditioned on `attrs` (`None` for the plain VAE, whose
/// `attrs` must be empty).
fn conditions_for(vae: &ConvVae, data: &FaceData, attrs: &[Attr]) -> Result<Option<Tensor>> {
    if attrs.len() != vae.cond_dim() {
        return Err(Error::usage(format!(
            "the VAE is conditioned on {} values, {} condition attributes were named",
            vae.cond_dim(),
            attrs.len()
        )));
    }
    if attrs.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        condition_tensor(data, attrs)?.to_device(vae.device())?,
    ))
}

/// Runs `f` on consecutive chunks of `data` (faces and their conditions) and concatenates the
/// tensors it returns along dim 0.
fn chunked(
    data: &FaceData,
    c: Option<&Tensor>,
    mut f: impl FnMut(&Tensor, Option<&Tensor>, usize) -> Result<Vec<Tensor>>,
) -> Result<Vec<Tensor>> {
    let n = data.len();
    let mut parts: Vec<Vec<Tensor>> = Vec::new();
    let mut start = 0;
    while start < n {
        let b = CHUNK.min(n - start);
        let x = data.images.narrow(0, start, b)?;
        let cb = c.map(|c| c.narrow(0, start, b)).transpose()?;
        parts.push(f(&x, cb.as_ref(), start)?);
        start += b;
    }
    let k = parts.first().map_or(0, Vec::len);
    (0..k)
        .map(|j| {
            let col: Vec<&Tensor> = parts.iter().map(|p| &p[j]).collect();
            Ok(Tensor::cat(&col, 0)?)
        })
        .collect()
}

/// How well a scorer reads one target attribute from real faces and from their VAE
/// reconstructions, separately for the two values of the protected attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAccuracy {
    /// The target attribute.
    pub attribute: String,
    /// Faces with protected = 0 and = 1.
    pub counts: [usize; 2],
    /// The scorer's accuracy against the true labels on the real images, per group.
    pub original: [f64; 2],
    /// The same on the reconstructions, per group.
    pub reconstructed: [f64; 2],
}

impl GroupAccuracy {
    /// `reconstructed[1] − reconstructed[0]`: the accuracy gap the reconstructions show
    /// between the groups.
    pub fn reconstructed_gap(&self) -> f64 {
        self.reconstructed[1] - self.reconstructed[0]
    }
}

/// Per-group reconstruction accuracy: reconstructs `data`'s images with `vae` (posterior mean
/// under the faces' own conditions on `condition_attrs`, empty for the plain VAE), scores each
/// of `targets` with `scorer` (probability > 1/2) and compares with the true labels, separately
/// for faces with `protected` = 0 and = 1. Both groups must be present.
///
/// Usage: `reconstruction_accuracy(&vae, &test, &[], &scorer, &[Attr::Smiling], Attr::Male)?`
/// tells whether a VAE trained on mostly-male faces reconstructs smiles of women worse.
pub fn reconstruction_accuracy(
    vae: &ConvVae,
    data: &FaceData,
    condition_attrs: &[Attr],
    scorer: &dyn AttributeScorer,
    targets: &[Attr],
    protected: Attr,
) -> Result<Vec<GroupAccuracy>> {
    if data.is_empty() || targets.is_empty() {
        return Err(Error::usage(
            "reconstruction_accuracy: needs faces and at least one target attribute",
        ));
    }
    let cols = targets
        .iter()
        .map(|a| scorer.column(a.name()))
        .collect::<Result<Vec<_>>>()?;
    let groups: Vec<usize> = data
        .samples
        .iter()
        .map(|s| usize::from(s.attributes.get(protected)))
        .collect();
    let mut counts = [0usize; 2];
    for &g in &groups {
        counts[g] += 1;
    }
    if counts.contains(&0) {
        return Err(Error::usage(format!(
            "reconstruction_accuracy: needs faces with {} = 0 and = 1, got {counts:?}",
            protected.name()
        )));
    }
    let c = conditions_for(vae, data, condition_attrs)?;
    let dev = vae.device().clone();
    let outs = chunked(data, c.as_ref(), |x, cb, _| {
        let x = x.to_device(&dev)?;
        let recon = vae.reconstruct(&x, cb)?;
        Ok(vec![
            scorer.attribute_probs(&x)?,
            scorer.attribute_probs(&recon)?,
        ])
    })?;
    let to_rows = |t: &Tensor| -> Result<Vec<Vec<f32>>> { Ok(t.to_dtype(DType::F32)?.to_vec2()?) };
    let (orig, rec) = (to_rows(&outs[0])?, to_rows(&outs[1])?);
    let accuracy = |probs: &[Vec<f32>], a: Attr, col: usize| -> [f64; 2] {
        let mut hits = [0usize; 2];
        for (i, s) in data.samples.iter().enumerate() {
            if (probs[i][col] > 0.5) == s.attributes.get(a) {
                hits[groups[i]] += 1;
            }
        }
        [0, 1].map(|g| hits[g] as f64 / counts[g] as f64)
    };
    Ok(targets
        .iter()
        .zip(&cols)
        .map(|(&a, &col)| GroupAccuracy {
            attribute: a.name().to_string(),
            counts,
            original: accuracy(&orig, a, col),
            reconstructed: accuracy(&rec, a, col),
        })
        .collect())
}

/// A counterfactual query of a CVAE scored against the data generator's true counterfactuals.
#[derive(Debug, Clone, PartialEq)]
pub struct CfAudit {
    /// The query's label (mode and scale).
    pub label: String,
    /// The faces asked.
    pub n: usize,
    /// The attributes flipped (the query's columns of the condition).
    pub flipped: Vec<Attr>,
    /// Per flipped attribute: the share of faces whose scorer reading (probability > 1/2)
    /// differs between the reconstruction and the noise-free counterfactual (both model
    /// outputs, so reconstruction blur cancels).
    pub flip_rates: Vec<f64>,
    /// Per flipped attribute: the share of noise-free counterfactuals the scorer reads with the
    /// intended value `1 − a`.
    pub effectiveness: Vec<f64>,
    /// Per flipped attribute: the scorer's flip rate between the real factual faces and their
    /// true counterfactuals (1 for a perfect scorer: the truth always flips).
    pub true_flip_rates: Vec<f64>,
    /// Mean absolute error (0–255 levels) of the counterfactual with abducted pixel noise
    /// against the true counterfactual image (pooled to the model's size).
    pub mae_image: f64,
    /// The same for the noise-free counterfactual.
    pub mae_image_loc: f64,
    /// The same for the factual image itself: the error of answering "nothing changes".
    pub mae_factual: f64,
    /// The same for the factual reconstruction: the model's own "nothing changes" answer, at
    /// the same blur as `image_loc` (the fair baseline for the noise-free counterfactual).
    pub mae_reconstruction_to_truth: f64,
    /// The factual reconstruction's error against the factual image (the model's floor).
    pub mae_reconstruction: f64,
}

/// The mean absolute difference of two image batches in `[0, 1]`, on the 0–255 scale.
pub fn mae255(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok((a - b)?
        .abs()?
        .to_dtype(DType::F64)?
        .mean_all()?
        .to_scalar::<f64>()?
        * 255.0)
}

/// Scores `query` on the faces of `data` for a CVAE conditioned on `condition_attrs`: the
/// true counterfactual of each face is
/// [`CartoonFaces::counterfactual`](crate::data::cartoon::CartoonFaces::counterfactual) with
/// every flipped attribute set to the opposite of its factual value (the same whatever the
/// query's scale: a ×2 condition is an extrapolation of the same intervention), re-rendered
/// and pooled to the model's size. `scorer` must score the flipped attributes.
///
/// Usage: for each mode and scale,
/// `counterfactual_audit(&cvae, &faces, &test, &[Attr::Male], &query, &scorer)?` gives the flip
/// rate next to the truth's and the error against the true counterfactual images next to the
/// error of the factual image.
pub fn counterfactual_audit(
    vae: &ConvVae,
    faces: &CartoonFaces,
    data: &FaceData,
    condition_attrs: &[Attr],
    query: &CvaeCounterfactual,
    scorer: &dyn AttributeScorer,
) -> Result<CfAudit> {
    if data.is_empty() {
        return Err(Error::usage("counterfactual_audit: no face given"));
    }
    if condition_attrs.is_empty() {
        return Err(Error::usage(
            "counterfactual_audit: the plain VAE has no condition to change",
        ));
    }
    let c = conditions_for(vae, data, condition_attrs)?
        .ok_or_else(|| Error::usage("counterfactual_audit: no condition"))?;
    let flipped: Vec<Attr> = if query.flip.is_empty() {
        condition_attrs.to_vec()
    } else {
        query
            .flip
            .iter()
            .map(|&j| {
                condition_attrs.get(j).copied().ok_or_else(|| {
                    Error::usage(format!(
                        "counterfactual_audit: flip column {j} of {} condition attributes",
                        condition_attrs.len()
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    let cols = flipped
        .iter()
        .map(|a| scorer.column(a.name()))
        .collect::<Result<Vec<_>>>()?;
    let truth = data
        .samples
        .iter()
        .map(|s| {
            let iv: Vec<(&str, f64)> = flipped
                .iter()
                .map(|a| (a.name(), if s.attributes.get(*a) { 0.0 } else { 1.0 }))
                .collect();
            faces.counterfactual(s, &iv)
        })
        .collect::<Result<Vec<_>>>()?;
    let dev = vae.device().clone();
    let truth = FaceData::from_samples(truth, vae.config().image_size, &dev)?;
    let outs = chunked(data, Some(&c), |x, cb, _| {
        let cb = cb.ok_or_else(|| Error::usage("counterfactual_audit: no condition"))?;
        let x = x.to_device(&dev)?;
        let cf = query.apply(vae, &x, cb)?;
        Ok(vec![cf.image, cf.image_loc, cf.reconstruction])
    })?;
    let (image, image_loc, recon) = (&outs[0], &outs[1], &outs[2]);
    let x = data.images.to_device(&dev)?;
    let mut flip_rates = Vec::new();
    let mut effectiveness = Vec::new();
    let mut true_flip_rates = Vec::new();
    for (&a, &col) in flipped.iter().zip(&cols) {
        let read_rec = predictions(scorer, recon, col)?;
        let read_cf = predictions(scorer, image_loc, col)?;
        flip_rates.push(flip_rate(&read_rec, &read_cf)?);
        let hits = data
            .samples
            .iter()
            .zip(&read_cf)
            .filter(|(s, &p)| p != s.attributes.get(a))
            .count();
        effectiveness.push(hits as f64 / data.len() as f64);
        true_flip_rates.push(flip_rate(
            &predictions(scorer, &x, col)?,
            &predictions(scorer, &truth.images, col)?,
        )?);
    }
    Ok(CfAudit {
        label: query.label(),
        n: data.len(),
        flipped,
        flip_rates,
        effectiveness,
        true_flip_rates,
        mae_image: mae255(image, &truth.images)?,
        mae_image_loc: mae255(image_loc, &truth.images)?,
        mae_factual: mae255(&x, &truth.images)?,
        mae_reconstruction_to_truth: mae255(recon, &truth.images)?,
        mae_reconstruction: mae255(recon, &x)?,
    })
}
