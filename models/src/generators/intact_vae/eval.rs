//! Scoring counterfactual images against the data generator's true counterfactuals, split by
//! whether each unit's treatment was the rare or the common one for its covariates.

use candle_core::{DType, Tensor};
use ppl_core::{Error, Result};

use super::counterfactual::{abduct, extrapolate_treatment};
use super::data::IntactData;
use super::model::IntactVae;
use crate::data::cartoon::{attribute_regions, images_tensor, CartoonFaces, SIZE};
use crate::data::image::PixelScale;
use crate::face_scm::downsample;

/// Mean absolute pixel error (pixels in `[0, 1]`) over units, overall and by group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaeSplit {
    /// Over every unit.
    pub all: f64,
    /// Over the units whose observed treatment was the rare one for their covariates
    /// (NaN if there is none).
    pub rare: f64,
    /// Over the others (NaN if there is none).
    pub common: f64,
}

/// How the β-intact-VAE's counterfactual images score against the true ones
/// (`CartoonFaces::counterfactual` with the treatment flipped, pooled to the model's size).
///
/// Compare `decoded` (the method's answer) and `residual` with `factual`, the trivial baseline
/// that answers every counterfactual query with the factual image: it is exact outside the
/// treatment's pixels, so an answer beats it only if it draws the treatment's change without
/// blurring the rest of the face more than the change is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct IntactEvaluation {
    /// Units scored.
    pub n: usize,
    /// Units whose observed treatment was the rare one for their covariates.
    pub n_rare: usize,
    /// The decoded counterfactual `decode(z, 1 − t)` against the truth.
    pub decoded: MaeSplit,
    /// The factual image plus the decoder's change, `y + decode(z, 1 − t) − decode(z, t)`
    /// (clamped to `[0, 1]`), against the truth: the model's treatment effect without its
    /// reconstruction error.
    pub residual: MaeSplit,
    /// The factual image against the truth (the baseline).
    pub factual: MaeSplit,
    /// The reconstruction `decode(z, t)` against the factual image.
    pub reconstruction: MaeSplit,
    /// `decoded`, over the treatment's pixels only ([`treatment_masks`]).
    pub decoded_region: MaeSplit,
    /// `residual`, over the treatment's pixels only.
    pub residual_region: MaeSplit,
    /// `factual`, over the treatment's pixels only: the mean size of the true change there.
    pub factual_region: MaeSplit,
}

/// Masks `[n, 1, s, s]` (f32 0/1) of the pixels that the treatment can change in each unit's
/// face (the generator's [`attribute_regions`] for the face's style, a model-size pixel
/// counting if its 64×64 block touches a region).
pub fn treatment_masks(data: &IntactData) -> Result<Tensor> {
    let s = data.images().dim(2)?;
    let k = SIZE / s;
    let mut m = vec![0f32; data.len() * s * s];
    for (i, sample) in data.faces.samples.iter().enumerate() {
        for [x0, y0, x1, y1] in attribute_regions(data.treatment(), &sample.noise.style) {
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            for y in y0 / k..(y1 - 1) / k + 1 {
                for x in x0 / k..(x1 - 1) / k + 1 {
                    m[i * s * s + y.min(s - 1) * s + x.min(s - 1)] = 1.0;
                }
            }
        }
    }
    Ok(Tensor::from_vec(
        m,
        (data.len(), 1, s, s),
        data.images().device(),
    )?)
}

/// The true counterfactual images of `data`'s units with the treatment flipped, `[n, 3, s, s]`
/// in `[0, 1]` at the data's image size, from `generator` (the faces' own noise re-rendered).
pub fn true_counterfactuals(data: &IntactData, generator: &CartoonFaces) -> Result<Tensor> {
    let name = data.treatment().name();
    let cf = data
        .faces
        .samples
        .iter()
        .map(|s| {
            let v = if s.attributes.get(data.treatment()) {
                0.0
            } else {
                1.0
            };
            generator.counterfactual(s, &[(name, v)])
        })
        .collect::<Result<Vec<_>>>()?;
    let s = data.images().dim(2)?;
    let full = images_tensor(&cf, PixelScale::Unit, data.images().device())?;
    downsample(&full, SIZE / s)
}

/// Per-unit mean absolute difference of two `[n, ..]` image batches, on the host.
fn per_unit_mae(a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    Ok((a - b)?
        .abs()?
        .flatten_from(1)?
        .mean(1)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?)
}

/// Per-unit mean absolute difference over the pixels of `mask` (`[n, 1, s, s]`).
fn per_unit_masked_mae(a: &Tensor, b: &Tensor, mask: &Tensor) -> Result<Vec<f64>> {
    let num = (a - b)?
        .abs()?
        .broadcast_mul(mask)?
        .flatten_from(1)?
        .sum(1)?;
    let den = (mask.flatten_from(1)?.sum(1)? * 3.0)?.clamp(1f32, f32::MAX)?;
    Ok((num / den)?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn split(errs: &[f64], rare: &[bool]) -> MaeSplit {
    let mean = |keep: &dyn Fn(bool) -> bool| {
        let v: Vec<f64> = errs
            .iter()
            .zip(rare)
            .filter(|(_, r)| keep(**r))
            .map(|(e, _)| *e)
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    MaeSplit {
        all: mean(&|_| true),
        rare: mean(&|r| r),
        common: mean(&|r| !r),
    }
}

/// Scores `vae`'s flip counterfactuals (`s = 1`) of every unit of `data` against the truth from
/// `generator` (the generator `data` was drawn from), split by rare/common treatment
/// ([`IntactData::rare_treatment`]).
pub fn evaluate(
    vae: &IntactVae,
    data: &IntactData,
    generator: &CartoonFaces,
) -> Result<IntactEvaluation> {
    if data.is_empty() {
        return Err(Error::usage("intact_vae::evaluate: the data set is empty"));
    }
    if data.covariates() != vae.config().covariates.as_slice()
        || data.treatment() != vae.config().treatment
    {
        return Err(Error::usage(
            "intact_vae::evaluate: the data's covariates/treatment differ from the model's",
        ));
    }
    let y = data.images();
    let truth = true_counterfactuals(data, generator)?;
    let rare = data.rare_treatment(generator);
    let masks = treatment_masks(data)?;
    let (mut decoded_r, mut residual_r, mut factual_r) = (Vec::new(), Vec::new(), Vec::new());
    let mut decoded = Vec::with_capacity(data.len());
    let mut residual = Vec::with_capacity(data.len());
    let mut factual = Vec::with_capacity(data.len());
    let mut recon = Vec::with_capacity(data.len());
    // Chunks bound the activations' memory on large test sets.
    const CHUNK: usize = 256;
    for start in (0..data.len()).step_by(CHUNK) {
        let m = CHUNK.min(data.len() - start);
        let (yb, xb, tb) = (
            y.narrow(0, start, m)?,
            data.x.narrow(0, start, m)?,
            data.t.narrow(0, start, m)?,
        );
        let truth_b = truth.narrow(0, start, m)?;
        let z = abduct(vae, &yb, &xb, &tb)?;
        let rec = vae.decode(&z, &tb)?;
        let cf = vae.decode(&z, &extrapolate_treatment(&tb, 1.0)?)?;
        let res = ((&yb + &cf)? - &rec)?.clamp(0f32, 1f32)?;
        decoded.extend(per_unit_mae(&cf, &truth_b)?);
        residual.extend(per_unit_mae(&res, &truth_b)?);
        factual.extend(per_unit_mae(&yb, &truth_b)?);
        recon.extend(per_unit_mae(&rec, &yb)?);
        let mb = masks.narrow(0, start, m)?;
        decoded_r.extend(per_unit_masked_mae(&cf, &truth_b, &mb)?);
        residual_r.extend(per_unit_masked_mae(&res, &truth_b, &mb)?);
        factual_r.extend(per_unit_masked_mae(&yb, &truth_b, &mb)?);
    }
    Ok(IntactEvaluation {
        n: data.len(),
        n_rare: rare.iter().filter(|r| **r).count(),
        decoded: split(&decoded, &rare),
        residual: split(&residual, &rare),
        factual: split(&factual, &rare),
        reconstruction: split(&recon, &rare),
        decoded_region: split(&decoded_r, &rare),
        residual_region: split(&residual_r, &rare),
        factual_region: split(&factual_r, &rare),
    })
}
