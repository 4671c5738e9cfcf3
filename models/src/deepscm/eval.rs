//! Evaluation of a trained [`DeepScm`] on held-out glyphs: per-site log-likelihoods and the
//! ELBO, and the counterfactual soundness measures of Monteiro et al. (ICLR 2023) —
//! effectiveness, composition, reversibility — plus the error against the data generator's
//! true counterfactual, which only a known SCM allows. Image errors are mean absolute errors
//! per pixel on the 0–255 scale.

use candle_core::{DType, Tensor};
use ppl_core::handlers::{condition, seed, trace};
use ppl_core::rng;
use ppl_core::{Error, Result};
use rand::Rng as _;

use super::counterfactual::{
    counterfactual, host, CfIntervention, CfOptions, Counterfactual, Observed,
};
use super::model::{encoder_guide, morpho_scm, sites, DeepScm};
use crate::data::morpho::{measure_batch, Intervention, MorphoGlyphs, MorphoSample};

/// How [`evaluate`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalConfig {
    /// Images per batch of the log-likelihood pass.
    pub batch_size: usize,
    /// How many held-out glyphs the counterfactual measures use (the first ones).
    pub cf_units: usize,
    /// Null interventions applied in a row for the composition measure (reported after 1, 2
    /// and this many).
    pub composition_steps: usize,
    /// Intervene-and-back cycles of the reversibility measure.
    pub reversibility_cycles: usize,
    /// Options of every counterfactual query.
    pub cf: CfOptions,
    /// Seed of the ELBO's draws and of the intervention targets.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            batch_size: 256,
            cf_units: 500,
            composition_steps: 10,
            reversibility_cycles: 5,
            cf: CfOptions::default(),
            seed: 17,
        }
    }
}

/// Held-out log-densities per image (nats; the image's on its `[0, 1]` scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogLikelihoods {
    /// `log p(t)`.
    pub thickness: f64,
    /// `log p(i | t)` (Full) or `log p(i)`.
    pub intensity: f64,
    /// `E_q[log p(x | z, t, i)]`, one draw of `z`.
    pub image: f64,
    /// `E_q[log q(z | x, t, i) − log p(z)]`, one draw (the KL term).
    pub kl: f64,
    /// The ELBO of `log p(x, t, i)`: `thickness + intensity + image − kl`.
    pub elbo: f64,
    /// Images evaluated.
    pub n: usize,
}

/// Measured attributes of counterfactual images against their targets (MAE; thickness in
/// pixels, intensity in grey levels 0–255).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effectiveness {
    /// Measured thickness vs the model's counterfactual thickness (the target under `do(t)`).
    pub thickness_mae: f64,
    /// Measured intensity vs the model's counterfactual intensity (the target under `do(i)`).
    pub intensity_mae: f64,
    /// Measured thickness vs the true counterfactual thickness.
    pub thickness_mae_true: f64,
    /// Measured intensity vs the true counterfactual intensity (under `do(t)` this scores
    /// whether intensity followed thickness as the data's mechanism says).
    pub intensity_mae_true: f64,
    /// The measurement's own error: measured attributes of the true counterfactual images vs
    /// the true attributes (thickness, intensity) — the floor of the two MAEs above.
    pub oracle_mae: (f64, f64),
}

/// Every measure of one intervention kind (`do(t)` or `do(i)` with targets drawn from the
/// held-out attributes of other units, so across the data range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterventionReport {
    /// Effectiveness of the counterfactual images (pixel noise abducted).
    pub effectiveness: Effectiveness,
    /// MAE (0–255) of the counterfactual image vs the true counterfactual image.
    pub ground_truth_mae: f64,
    /// The same for the noise-free counterfactual (`image_loc`).
    pub ground_truth_mae_loc: f64,
    /// MAE (0–255) to the original after intervening and intervening back once, and after
    /// `reversibility_cycles` cycles (pixel noise abducted each time).
    pub reversibility_mae: (f64, f64),
    /// The same with noise-free images fed back (`image_loc`).
    pub reversibility_mae_loc: (f64, f64),
}

/// Composition: the null intervention applied repeatedly, MAE (0–255) to the original.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    /// `(k, MAE)` with the noise-free image `image_loc` fed back each time, for k = 1, 2 and
    /// `composition_steps` (k = 1 is the reconstruction error).
    pub loc: Vec<(usize, f64)>,
    /// The same with the pixel noise abducted each time (DeepSCM's counterfactual, exact up to
    /// rounding).
    pub abducted: Vec<(usize, f64)>,
}

/// Everything [`evaluate`] measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Held-out log-likelihoods and ELBO.
    pub log_likelihoods: LogLikelihoods,
    /// `do(t)` with per-unit targets.
    pub do_thickness: InterventionReport,
    /// `do(i)` with per-unit targets.
    pub do_intensity: InterventionReport,
    /// The null intervention repeated.
    pub composition: Composition,
    /// Units the counterfactual measures used.
    pub cf_units: usize,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// Held-out per-site log-densities and the ELBO of `scm` on `data` (one draw of `z` per image
/// from the encoder).
pub fn log_likelihoods(
    scm: &DeepScm,
    data: &MorphoGlyphs,
    cfg: &EvalConfig,
) -> Result<LogLikelihoods> {
    if data.is_empty() || cfg.batch_size == 0 {
        return Err(Error::usage(
            "log_likelihoods needs glyphs and a positive batch size",
        ));
    }
    let dev = scm.device();
    let n = data.len();
    let mut sums = [0.0f64; 4];
    seed(cfg.seed, || {
        let mut start = 0;
        while start < n {
            let b = cfg.batch_size.min(n - start);
            let x =
                (data.images().narrow(0, start, b)?.to_device(dev)? / 255.0)?.clamp(0f32, 1f32)?;
            let t = data
                .thickness()
                .narrow(0, start, b)?
                .to_device(dev)?
                .unsqueeze(1)?;
            let i = data
                .intensity()
                .narrow(0, start, b)?
                .to_device(dev)?
                .unsqueeze(1)?;
            let (z, gtr) = trace(|| encoder_guide(scm, &x, &t, &i))?;
            let z = z.detach();
            let (_, mtr) = trace(|| {
                condition(
                    [
                        (sites::IMAGE, &x),
                        (sites::THICKNESS, &t),
                        (sites::INTENSITY, &i),
                        (sites::Z, &z),
                    ],
                    || morpho_scm(scm, b),
                )
            })?;
            let total = |tr: &ppl_core::handlers::Trace, name: &str| -> Result<f64> {
                let lp = tr.site(name)?.log_prob()?;
                Ok(lp.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
            };
            sums[0] += total(&mtr, sites::THICKNESS)?;
            sums[1] += total(&mtr, sites::INTENSITY)?;
            sums[2] += total(&mtr, sites::IMAGE)?;
            sums[3] += total(&gtr, sites::Z)? - total(&mtr, sites::Z)?;
            start += b;
        }
        Ok(())
    })?;
    let m = |s: f64| s / n as f64;
    let (t, i, x, kl) = (m(sums[0]), m(sums[1]), m(sums[2]), m(sums[3]));
    Ok(LogLikelihoods {
        thickness: t,
        intensity: i,
        image: x,
        kl,
        elbo: t + i + x - kl,
        n,
    })
}

/// Mean absolute difference of two tensors of the same shape.
pub fn mae(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        return Err(Error::shape("mae operands", a.dims(), b.dims()));
    }
    Ok((a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?
        .abs()?
        .mean_all()?
        .to_scalar::<f64>()?)
}

fn mean_abs(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}

/// The first `n` glyphs.
fn head(data: &MorphoGlyphs, n: usize) -> Result<MorphoGlyphs> {
    let samples = data.samples()[..n.min(data.len())].to_vec();
    MorphoGlyphs::from_samples(samples, data.images().device())
}

/// The true counterfactual glyphs, one intervention per unit.
fn truth(data: &MorphoGlyphs, per_unit: &[Intervention]) -> Result<MorphoGlyphs> {
    let cf = data
        .samples()
        .iter()
        .zip(per_unit)
        .map(|(s, iv)| s.counterfactual(iv))
        .collect::<Result<Vec<MorphoSample>>>()?;
    MorphoGlyphs::from_samples(cf, data.images().device())
}

/// Measured (thickness, intensity) of every image.
fn measured(images: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let m = measure_batch(images)?;
    Ok((
        m.iter().map(|m| m.thickness).collect(),
        m.iter().map(|m| m.intensity).collect(),
    ))
}

fn report(
    scm: &DeepScm,
    units: &MorphoGlyphs,
    obs: &Observed,
    thickness: bool,
    targets: &[f64],
    cfg: &EvalConfig,
) -> Result<InterventionReport> {
    let dev = scm.device();
    let n = units.len();
    let target_t = Tensor::from_vec(targets.iter().map(|&v| v as f32).collect(), n, dev)?;
    let (iv, per_unit): (CfIntervention, Vec<Intervention>) = if thickness {
        (
            CfIntervention::thickness_per_unit(&target_t),
            targets
                .iter()
                .map(|&v| Intervention::thickness(v))
                .collect(),
        )
    } else {
        (
            CfIntervention::intensity_per_unit(&target_t),
            targets
                .iter()
                .map(|&v| Intervention::intensity(v))
                .collect(),
        )
    };
    let cf = counterfactual(scm, obs, &iv, &cfg.cf)?;
    let truth = truth(units, &per_unit)?;
    let (mt, mi) = measured(&cf.image)?;
    let (ot, oi) = measured(truth.images())?;
    let true_t = host(truth.thickness())?;
    let true_i = host(truth.intensity())?;
    let effectiveness = Effectiveness {
        thickness_mae: mean_abs(&mt, &host(&cf.thickness)?),
        intensity_mae: mean_abs(&mi, &host(&cf.intensity)?),
        thickness_mae_true: mean_abs(&mt, &true_t),
        intensity_mae_true: mean_abs(&mi, &true_i),
        oracle_mae: (mean_abs(&ot, &true_t), mean_abs(&oi, &true_i)),
    };
    let truth_images = truth.images().to_device(dev)?;
    let ground_truth_mae = mae(&cf.image, &truth_images)?;
    let ground_truth_mae_loc = mae(&cf.image_loc, &truth_images)?;
    let back = |use_loc: bool| -> Result<(f64, f64)> {
        let mut first = f64::NAN;
        let mut current = obs.clone();
        let mut last = 0.0;
        for cycle in 0..cfg.reversibility_cycles.max(1) {
            let there = counterfactual(scm, &current, &iv, &cfg.cf)?;
            // A counterfactual intensity may round onto the ends of (64, 255) in f32, where
            // its flow has no inverse; nudge it inside before abducting from it.
            let there_obs = Observed {
                image: pick(&there, use_loc),
                thickness: there.thickness.clone(),
                intensity: there.intensity.clamp(64.01f32, 254.99f32)?,
            };
            let undo = if thickness {
                CfIntervention::thickness_per_unit(&obs.thickness)
            } else {
                CfIntervention::intensity_per_unit(&obs.intensity)
            };
            let home = counterfactual(scm, &there_obs, &undo, &cfg.cf)?;
            current = Observed {
                image: pick(&home, use_loc),
                thickness: home.thickness.clone(),
                intensity: home.intensity.clamp(64.01f32, 254.99f32)?,
            };
            last = mae(&current.image, &obs.image)?;
            if cycle == 0 {
                first = last;
            }
        }
        Ok((first, last))
    };
    Ok(InterventionReport {
        effectiveness,
        ground_truth_mae,
        ground_truth_mae_loc,
        reversibility_mae: back(false)?,
        reversibility_mae_loc: back(true)?,
    })
}

fn pick(cf: &Counterfactual, use_loc: bool) -> Tensor {
    if use_loc {
        cf.image_loc.clone()
    } else {
        cf.image.clone()
    }
}

/// The null intervention applied `steps` times in a row, MAE to the original after 1, 2 and
/// `steps` applications (`image_loc` or the abducted image fed back).
pub fn composition(
    scm: &DeepScm,
    obs: &Observed,
    steps: usize,
    opts: &CfOptions,
) -> Result<Composition> {
    let steps = steps.max(1);
    let mut keep: Vec<usize> = vec![1, 2, steps];
    keep.sort_unstable();
    keep.dedup();
    keep.retain(|&k| k <= steps);
    let run = |use_loc: bool| -> Result<Vec<(usize, f64)>> {
        let mut current = obs.clone();
        let mut out = Vec::new();
        for k in 1..=steps {
            let cf = counterfactual(scm, &current, &CfIntervention::null(), opts)?;
            current.image = pick(&cf, use_loc);
            if keep.contains(&k) {
                out.push((k, mae(&current.image, &obs.image)?));
            }
        }
        Ok(out)
    };
    Ok(Composition {
        loc: run(true)?,
        abducted: run(false)?,
    })
}

/// Every measure on the held-out glyphs `test`: log-likelihoods on all of them, the
/// counterfactual measures on the first `cfg.cf_units`. Intervention targets are the
/// attributes of the same units in a seeded random order, so they span the data's range.
pub fn evaluate(scm: &DeepScm, test: &MorphoGlyphs, cfg: &EvalConfig) -> Result<Evaluation> {
    let start = std::time::Instant::now();
    let log_likelihoods = log_likelihoods(scm, test, cfg)?;
    let units = head(test, cfg.cf_units)?;
    let n = units.len();
    let obs = Observed::from_glyphs(&units, scm.device())?;
    let mut r = rng::from_seed(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    for k in (1..n).rev() {
        let j = r.random_range(0..=k);
        order.swap(k, j);
    }
    let t = host(units.thickness())?;
    let i = host(units.intensity())?;
    let t_targets: Vec<f64> = order.iter().map(|&k| t[k]).collect();
    let i_targets: Vec<f64> = order.iter().map(|&k| i[k]).collect();
    let do_thickness = report(scm, &units, &obs, true, &t_targets, cfg)?;
    let do_intensity = report(scm, &units, &obs, false, &i_targets, cfg)?;
    let composition = composition(scm, &obs, cfg.composition_steps, &cfg.cf)?;
    Ok(Evaluation {
        log_likelihoods,
        do_thickness,
        do_intensity,
        composition,
        cf_units: n,
        seconds: start.elapsed().as_secs_f64(),
    })
}
