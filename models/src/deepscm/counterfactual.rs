//! Counterfactual images of a trained [`DeepScm`], asked through the world handlers:
//! `twin_world(do_(intervention, condition(observed, morpho_scm)))`.

use candle_core::{DType, Tensor};
use ppl_core::causal::{cf_value, twin_world, world_in, COUNTERFACTUAL, FACTUAL, TWIN};
use ppl_core::handlers::{condition, do_, seed, trace};
use ppl_core::runtime::Intervention;
use ppl_core::{rng, Error, Result};

use super::model::{morpho_scm, sites, DeepScm};
use crate::data::morpho::{Intervention as MorphoIntervention, SIZE};

/// The factual units a query starts from, on the data's scales.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `[n, 1, 28, 28]` grey levels 0–255.
    pub image: Tensor,
    /// `[n]` thickness in pixels.
    pub thickness: Tensor,
    /// `[n]` intensity in grey levels, inside `(64, 255)`.
    pub intensity: Tensor,
}

impl Observed {
    /// The units of `glyphs` (tensors moved to `device`).
    pub fn from_glyphs(
        glyphs: &crate::data::morpho::MorphoGlyphs,
        device: &candle_core::Device,
    ) -> Result<Self> {
        Ok(Observed {
            image: glyphs.images().to_device(device)?,
            thickness: glyphs.thickness().to_device(device)?,
            intensity: glyphs.intensity().to_device(device)?,
        })
    }

    /// The number of units.
    pub fn len(&self) -> usize {
        self.thickness.dims().first().copied().unwrap_or(0)
    }

    /// Whether there is no unit.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self) -> Result<usize> {
        let n = self.len();
        if n == 0 || self.thickness.dims() != [n] || self.intensity.dims() != [n] {
            return Err(Error::shape(
                "Observed thickness and intensity",
                &[n.max(1)],
                self.intensity.dims(),
            ));
        }
        if self.image.dims() != [n, 1, SIZE, SIZE] {
            return Err(Error::shape(
                "Observed image",
                &[n, 1, SIZE, SIZE],
                self.image.dims(),
            ));
        }
        let t = host(&self.thickness)?;
        if let Some(k) = t.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::value(
                "thickness",
                format!("unit {k}: must be positive, got {}", t[k]),
            ));
        }
        let i = host(&self.intensity)?;
        if let Some(k) = i.iter().position(|v| !(*v > 64.0 && *v < 255.0)) {
            return Err(Error::value(
                "intensity",
                format!("unit {k}: must lie in (64, 255), got {}", i[k]),
            ));
        }
        Ok(n)
    }
}

/// An intervention on thickness, intensity, both, or neither (the null intervention, which
/// sets thickness to its own factual value). Targets are one value for every unit or `[n]`
/// per-unit values.
#[derive(Debug, Clone, Default)]
pub struct CfIntervention {
    /// `do(t = ..)`: thickness in pixels.
    pub thickness: Option<Target>,
    /// `do(i = ..)`: intensity in grey levels.
    pub intensity: Option<Target>,
}

/// The value an intervened attribute takes.
#[derive(Debug, Clone)]
pub enum Target {
    /// The same value for every unit.
    Value(f64),
    /// One value per unit, `[n]`.
    PerUnit(Tensor),
}

impl CfIntervention {
    /// The null intervention.
    pub fn null() -> Self {
        Self::default()
    }

    /// `do(t = v)` for every unit.
    pub fn thickness(v: f64) -> Self {
        CfIntervention {
            thickness: Some(Target::Value(v)),
            intensity: None,
        }
    }

    /// `do(i = v)` for every unit.
    pub fn intensity(v: f64) -> Self {
        CfIntervention {
            thickness: None,
            intensity: Some(Target::Value(v)),
        }
    }

    /// `do(t = t_v, i = i_v)` for every unit.
    pub fn both(t: f64, i: f64) -> Self {
        CfIntervention {
            thickness: Some(Target::Value(t)),
            intensity: Some(Target::Value(i)),
        }
    }

    /// `do(t = t_k)` with one target per unit (`[n]`).
    pub fn thickness_per_unit(t: &Tensor) -> Self {
        CfIntervention {
            thickness: Some(Target::PerUnit(t.clone())),
            intensity: None,
        }
    }

    /// `do(i = i_k)` with one target per unit (`[n]`).
    pub fn intensity_per_unit(i: &Tensor) -> Self {
        CfIntervention {
            thickness: None,
            intensity: Some(Target::PerUnit(i.clone())),
        }
    }

    /// The same intervention as the data generator's [`MorphoIntervention`].
    pub fn from_morpho(i: &MorphoIntervention) -> Self {
        CfIntervention {
            thickness: i.thickness.map(Target::Value),
            intensity: i.intensity.map(Target::Value),
        }
    }

    /// Whether this is the null intervention.
    pub fn is_null(&self) -> bool {
        self.thickness.is_none() && self.intensity.is_none()
    }

    /// The `do_` actions for `n` units repeated `k` times (`[k·n, 1]` per-unit values).
    fn actions(&self, n: usize, k: usize) -> Result<Vec<(&'static str, Intervention)>> {
        if self.is_null() {
            return Ok(vec![(
                sites::THICKNESS,
                Intervention::func(|t| Ok(t.clone())),
            )]);
        }
        let mut out = Vec::new();
        for (name, target) in [
            (sites::THICKNESS, &self.thickness),
            (sites::INTENSITY, &self.intensity),
        ] {
            let Some(target) = target else { continue };
            let check = |v: f64| -> Result<()> {
                let ok = match name {
                    sites::THICKNESS => v.is_finite() && v > 0.0,
                    _ => v.is_finite(),
                };
                if ok {
                    Ok(())
                } else {
                    Err(Error::value(
                        name,
                        format!("intervention target {v} is not a valid {name}"),
                    ))
                }
            };
            let action = match target {
                Target::Value(v) => {
                    check(*v)?;
                    Intervention::Scalar(*v)
                }
                Target::PerUnit(t) => {
                    if t.dims() != [n] {
                        return Err(Error::shape(
                            format!("per-unit {name} targets"),
                            &[n],
                            t.dims(),
                        ));
                    }
                    for v in host(t)? {
                        check(v)?;
                    }
                    let t = t.to_dtype(DType::F32)?.unsqueeze(1)?;
                    Intervention::Value(repeat(&t, k)?)
                }
            };
            out.push((name, action));
        }
        Ok(out)
    }
}

/// How the latent code `z` of each unit is abducted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatentAbduction {
    /// The encoder's mean `m(x, t, i)`: deterministic.
    Mean,
    /// `k` draws from `q(z | x, t, i)`; the counterfactual images are averaged over them.
    Particles(usize),
}

/// How [`counterfactual`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfOptions {
    /// How `z` is abducted.
    pub latent: LatentAbduction,
    /// The seed of the particle draws.
    pub seed: u64,
}

impl Default for CfOptions {
    fn default() -> Self {
        CfOptions {
            latent: LatentAbduction::Mean,
            seed: 0,
        }
    }
}

/// The answer of a counterfactual query, per unit (images on the 0–255 scale, clamped).
#[derive(Debug, Clone)]
pub struct Counterfactual {
    /// `[n, 1, 28, 28]`: the counterfactual image, with the pixel noise abducted exactly from the
    /// factual image (DeepSCM's counterfactual).
    pub image: Tensor,
    /// `[n, 1, 28, 28]`: the image mechanism's noise-free output in the counterfactual world,
    /// `logit⁻¹(μ(z, t', i'))` (the pixel noise not abducted).
    pub image_loc: Tensor,
    /// `[n, 1, 28, 28]`: the noise-free output in the factual world, `logit⁻¹(μ(z, t, i))`
    /// (the reconstruction).
    pub factual_loc: Tensor,
    /// `[n]`: counterfactual thickness.
    pub thickness: Tensor,
    /// `[n]`: counterfactual intensity.
    pub intensity: Tensor,
}

/// Answers `intervention` for every unit of `observed`:
/// `trace(twin_world(do_(intervention, condition({image, thickness, intensity, z}, morpho_scm))))`
/// with `z` abducted by the encoder (the guide's mean, or [`LatentAbduction::Particles`] draws,
/// the answers averaged). Thickness and intensity are abducted exactly through the inverses of
/// their flows, the pixel noise exactly through the image mechanism's Normal structural form;
/// a `do(t)` moves intensity through its mechanism in the Full variant.
pub fn counterfactual(
    scm: &DeepScm,
    observed: &Observed,
    intervention: &CfIntervention,
    opts: &CfOptions,
) -> Result<Counterfactual> {
    let n = observed.check()?;
    let k = match opts.latent {
        LatentAbduction::Mean => 1,
        LatentAbduction::Particles(0) => {
            return Err(Error::usage(
                "LatentAbduction::Particles needs at least 1 particle",
            ))
        }
        LatentAbduction::Particles(k) => k,
    };
    let dev = scm.device();
    let x = (observed.image.to_device(dev)?.to_dtype(DType::F32)? / 255.0)?.clamp(0f32, 1f32)?;
    let t = observed
        .thickness
        .to_device(dev)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let i = observed
        .intensity
        .to_device(dev)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let (x, t, i) = (repeat(&x, k)?, repeat(&t, k)?, repeat(&i, k)?);
    let (loc, scale) = scm.encode(&x, &t, &i)?;
    let z = match opts.latent {
        LatentAbduction::Mean => loc.detach(),
        LatentAbduction::Particles(_) => {
            let mut r = rng::from_seed(opts.seed);
            let eps = rng::standard_normal(&mut r, loc.dims(), DType::F32, dev)?;
            (loc + (scale * eps)?)?.detach()
        }
    };
    let actions = intervention.actions(n, k)?;
    let m = n * k;
    let (_, tr) = seed(opts.seed, || {
        trace(|| {
            twin_world(|| {
                do_(actions, || {
                    condition(
                        [
                            (sites::IMAGE, &x),
                            (sites::THICKNESS, &t),
                            (sites::INTENSITY, &i),
                            (sites::Z, &z),
                        ],
                        || morpho_scm(scm, m),
                    )
                })
            })
        })
    })?;
    let image_shape = (k, n, 1, SIZE, SIZE);
    let to_levels = |v: Tensor| -> Result<Tensor> {
        let v = v.detach().reshape(image_shape)?.mean(0)?;
        Ok((v * 255.0)?.clamp(0f32, 255f32)?)
    };
    let attr = |v: Tensor| -> Result<Tensor> { Ok(v.detach().reshape((k, n))?.get(0)?) };
    Ok(Counterfactual {
        image: to_levels(cf_value(&tr, sites::IMAGE)?)?,
        image_loc: to_levels(loc_world(&tr, COUNTERFACTUAL)?)?,
        factual_loc: to_levels(loc_world(&tr, FACTUAL)?)?,
        thickness: attr(cf_value(&tr, sites::THICKNESS)?)?,
        intensity: attr(cf_value(&tr, sites::INTENSITY)?)?,
    })
}

/// One world of the deterministic `image_loc`. Deterministic sites record no world frames, so
/// the frames are read off the image site, whose batch shape `image_loc` shares.
fn loc_world(tr: &ppl_core::handlers::Trace, index: usize) -> Result<Tensor> {
    let frames = &tr.site(sites::IMAGE)?.worlds.frames;
    if frames.is_empty() {
        // No intervention upstream of the image (the Independent variant): one shared world.
        return Ok(tr.value(sites::IMAGE_LOC)?.clone());
    }
    world_in(frames, tr.value(sites::IMAGE_LOC)?, &[(TWIN, index)], 3)
}

/// `t` repeated `k` times along dim 0.
fn repeat(t: &Tensor, k: usize) -> Result<Tensor> {
    if k == 1 {
        return Ok(t.clone());
    }
    let parts = vec![t.clone(); k];
    Ok(Tensor::cat(&parts, 0)?)
}

/// The values of a small tensor on the host, as f64.
pub(crate) fn host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}
