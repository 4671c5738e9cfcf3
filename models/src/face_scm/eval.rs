//! Evaluating a [`FaceScm`]: the held-out ELBO, and counterfactual effectiveness,
//! preservation and agreement with the generator's true counterfactuals (the oracle reads the
//! images).

use std::time::Instant;

use candle_core::{DType, Tensor};
use ppl_core::handlers::{condition, seed, trace, Trace};
use ppl_core::{Error, Result};

use super::counterfactual::{counterfactual, FaceCfOptions, FaceIntervention};
use super::data::{downsample, to_oracle_image, FaceData};
use super::model::{attribute_features, face_guide, face_scm, sites, FaceScm};
use super::train::observations;
use crate::data::cartoon::{
    images_tensor, measure, Attr, Attributes, CartoonFaces, EyeColour, SkinTone, SIZE,
};
use crate::data::image::PixelScale;

/// How [`evaluate`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceEvalConfig {
    /// The interventions scored (default: blue eyes, glasses, young, male).
    pub interventions: Vec<FaceIntervention>,
    /// Test faces used for counterfactuals (the first ones).
    pub cf_units: usize,
    /// Particles of each counterfactual.
    pub particles: usize,
    /// Faces per batch of the ELBO.
    pub batch_size: usize,
    /// Seeds the ELBO's and the counterfactuals' draws.
    pub seed: u64,
}

impl Default for FaceEvalConfig {
    fn default() -> Self {
        FaceEvalConfig {
            interventions: default_interventions(),
            cf_units: 64,
            particles: 8,
            batch_size: 128,
            seed: 0,
        }
    }
}

/// `do(eye colour = blue)`, `do(Eyeglasses = 1)`, `do(Young = 1)`, `do(Male = 1)`.
pub fn default_interventions() -> Vec<FaceIntervention> {
    [
        (EyeColour::ATTRIBUTE, EyeColour::Blue.index() as f64),
        (Attr::Eyeglasses.name(), 1.0),
        (Attr::Young.name(), 1.0),
        (Attr::Male.name(), 1.0),
    ]
    .iter()
    .map(|&(n, v)| FaceIntervention::new(&[(n, v)]))
    .collect::<Result<Vec<_>>>()
    .unwrap_or_default()
}

/// The scores of one intervention over the counterfactual units.
#[derive(Debug, Clone, PartialEq)]
pub struct InterventionScores {
    /// The intervention's label (`do(Young=1)`).
    pub label: String,
    /// Oracle accuracy of the intervened attribute(s) on our counterfactual images (upsampled
    /// to 64×64 for the oracle).
    pub effectiveness: f64,
    /// The same oracle accuracy on the true counterfactual images pooled to the model's size
    /// and upsampled back: the ceiling that the resolution leaves.
    pub effectiveness_ceiling: f64,
    /// Oracle accuracy on the attributes that the intervention cannot change (binary
    /// non-descendants and colours not intervened on): read value = factual value.
    pub preservation: f64,
    /// The same on the pooled true counterfactual images (the ceiling).
    pub preservation_ceiling: f64,
    /// Mean absolute error (0–255) between our counterfactual image and the true one at the
    /// model's size.
    pub ground_truth_mae: f64,
    /// Agreement of our counterfactual descendant attributes (probability ≥ 1/2 over particles)
    /// with the true counterfactual's; `None` when the intervention has no descendant.
    pub descendant_agreement: Option<f64>,
    /// Images whose oracle reading failed (counted as wrong).
    pub oracle_failures: usize,
}

/// Everything [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceEvaluation {
    /// Held-out ELBO per face (nats).
    pub elbo: f64,
    /// Held-out `log p(attributes)` per face.
    pub attribute_log_lik: f64,
    /// Held-out `E_q log p(x | z, attributes)` per face (one draw).
    pub image_log_lik: f64,
    /// Held-out `KL(q(z | x, a) ‖ p(z))` per face (one-draw estimate).
    pub kl: f64,
    /// Reconstruction MAE (0–255) of the counterfactual units at the model's size.
    pub reconstruction_mae: f64,
    /// One entry per intervention.
    pub interventions: Vec<InterventionScores>,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

fn total(tr: &Trace, name: &str) -> Result<f64> {
    let lp = tr.site(name)?.log_prob()?;
    Ok(lp.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
}

/// Held-out `(elbo, attribute log-lik, image log-lik, kl)` per face of `data` (one draw of `z`
/// per face).
pub fn held_out_elbo(
    scm: &FaceScm,
    data: &FaceData,
    batch_size: usize,
    seed_value: u64,
) -> Result<(f64, f64, f64, f64)> {
    if data.is_empty() || batch_size == 0 {
        return Err(Error::usage(
            "held_out_elbo needs faces and a positive batch size",
        ));
    }
    let n = data.len();
    let mut sums = [0.0f64; 3];
    seed(seed_value, || {
        let mut start = 0;
        while start < n {
            let b = batch_size.min(n - start);
            let idx: Vec<usize> = (start..start + b).collect();
            let d = data.select(&idx)?;
            let feats = attribute_features(&d.binary_columns()?, &d.colour_columns()?)?;
            let (z, gtr) = trace(|| face_guide(scm, &d.images, &feats))?;
            let mut obs = observations(&d)?;
            obs.push((sites::Z, z.detach()));
            let (_, mtr) =
                trace(|| condition(obs.iter().map(|(k, v)| (*k, v)), || face_scm(scm, b)))?;
            for a in Attr::ALL {
                sums[0] += total(&mtr, a.name())?;
            }
            for c in sites::COLOURS {
                sums[0] += total(&mtr, c)?;
            }
            sums[1] += total(&mtr, sites::IMAGE)?;
            sums[2] += total(&gtr, sites::Z)? - total(&mtr, sites::Z)?;
            start += b;
        }
        Ok(())
    })?;
    let [a, x, kl] = sums.map(|s| s / n as f64);
    Ok((a + x - kl, a, x, kl))
}

fn mae(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok((a - b)?
        .abs()?
        .to_dtype(DType::F64)?
        .mean_all()?
        .to_scalar::<f64>()?)
}

/// Oracle readings of `[n, 3, s, s]` images (0–255), `None` where the oracle failed.
fn read(images: &Tensor, pool: usize) -> Result<Vec<Option<Attributes>>> {
    (0..images.dim(0)?)
        .map(|i| {
            let img = to_oracle_image(&images.get(i)?, pool)?;
            Ok(measure(&img).ok().map(|m| m.attributes))
        })
        .collect()
}

fn colour_of(a: &Attributes, name: &str) -> Option<usize> {
    match name {
        n if n == EyeColour::ATTRIBUTE => Some(a.eye.index()),
        n if n == SkinTone::ATTRIBUTE => Some(a.skin.index()),
        n if n == sites::HAIR => Some(a.hair.index()),
        _ => None,
    }
}

/// Whether the reading `m` shows `name = value`.
fn shows(m: &Attributes, name: &str, value: f64) -> bool {
    match Attr::from_name(name) {
        Some(a) => m.get(a) == (value == 1.0),
        None => colour_of(m, name) == Some(value as usize),
    }
}

/// (intervened correct, intervened total, preserved correct, preserved total).
fn oracle_scores(
    readings: &[Option<Attributes>],
    factual: &[Attributes],
    iv: &FaceIntervention,
) -> (usize, usize, usize, usize, usize) {
    let affected = iv.affected();
    let actions = iv.actions();
    let kept_binary: Vec<Attr> = Attr::ALL
        .into_iter()
        .filter(|a| !affected.contains(a))
        .collect();
    let kept_colours: Vec<&str> = sites::COLOURS
        .into_iter()
        .filter(|c| !actions.iter().any(|(n, _)| n == c))
        .collect();
    let (mut ec, mut et, mut pc, mut pt, mut fail) = (0, 0, 0, 0, 0);
    for (r, f) in readings.iter().zip(factual) {
        et += actions.len();
        pt += kept_binary.len() + kept_colours.len();
        let Some(m) = r else {
            fail += 1;
            continue;
        };
        ec += actions.iter().filter(|(n, v)| shows(m, n, *v)).count();
        pc += kept_binary
            .iter()
            .filter(|a| m.get(**a) == f.get(**a))
            .count();
        pc += kept_colours
            .iter()
            .filter(|c| colour_of(m, c) == colour_of(f, c))
            .count();
    }
    (ec, et, pc, pt, fail)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Scores `scm` on the held-out faces `test` of the generator `faces`: the ELBO over all of
/// them, and every intervention of `cfg` on the first `cfg.cf_units` (see
/// [`InterventionScores`]).
pub fn evaluate(
    scm: &FaceScm,
    test: &FaceData,
    faces: &CartoonFaces,
    cfg: &FaceEvalConfig,
) -> Result<FaceEvaluation> {
    let start = Instant::now();
    let (elbo, attribute_log_lik, image_log_lik, kl) =
        held_out_elbo(scm, test, cfg.batch_size, cfg.seed)?;
    let units = test.head(cfg.cf_units.max(1))?;
    let pool = scm.config().pool();
    let dev = scm.device().clone();
    let opts = FaceCfOptions {
        particles: cfg.particles,
        seed: cfg.seed,
    };
    let observed = (units.images.to_device(&dev)? * 255.0)?;
    let factual: Vec<Attributes> = units.samples.iter().map(|s| s.attributes).collect();
    let mut reconstruction_mae = f64::NAN;
    let mut scores = Vec::new();
    for iv in &cfg.interventions {
        let cf = counterfactual(scm, &units, iv, &opts)?;
        if reconstruction_mae.is_nan() {
            reconstruction_mae = mae(&cf.factual_loc, &observed)?;
        }
        let truth = units
            .samples
            .iter()
            .map(|s| faces.counterfactual(s, &iv.actions()))
            .collect::<Result<Vec<_>>>()?;
        let true_imgs = downsample(
            &images_tensor(&truth, PixelScale::Byte, &dev)?,
            SIZE / scm.config().image_size,
        )?;
        let ground_truth_mae = mae(&cf.image, &true_imgs)?;
        let ours = read(&cf.image, pool)?;
        let ceiling = read(&true_imgs, pool)?;
        let (ec, et, pc, pt, fail) = oracle_scores(&ours, &factual, iv);
        let (cc, ct, qc, qt, _) = oracle_scores(&ceiling, &factual, iv);
        let descendants: Vec<Attr> = iv
            .affected()
            .into_iter()
            .filter(|a| !iv.actions().iter().any(|(n, _)| *n == a.name()))
            .collect();
        let descendant_agreement = if descendants.is_empty() {
            None
        } else {
            let probs = cf.binary.to_dtype(DType::F64)?.to_vec2::<f64>()?;
            let mut agree = 0usize;
            for (p, t) in probs.iter().zip(&truth) {
                agree += descendants
                    .iter()
                    .filter(|a| (p[a.index()] >= 0.5) == t.attributes.get(**a))
                    .count();
            }
            Some(ratio(agree, descendants.len() * truth.len()))
        };
        scores.push(InterventionScores {
            label: iv.label(),
            effectiveness: ratio(ec, et),
            effectiveness_ceiling: ratio(cc, ct),
            preservation: ratio(pc, pt),
            preservation_ceiling: ratio(qc, qt),
            ground_truth_mae,
            descendant_agreement,
            oracle_failures: fail,
        });
    }
    Ok(FaceEvaluation {
        elbo,
        attribute_log_lik,
        image_log_lik,
        kl,
        reconstruction_mae,
        interventions: scores,
        seconds: start.elapsed().as_secs_f64(),
    })
}
