//! Counterfactual faces of a trained [`FaceScm`], asked through the world handlers:
//! `twin_world(do_(intervention, condition(observed, face_scm)))`.

use candle_core::{DType, Tensor};
use ppl_core::causal::{cf_value, twin_world, world_in, COUNTERFACTUAL, FACTUAL, TWIN};
use ppl_core::handlers::{condition, do_, seed, trace, Trace};
use ppl_core::runtime::Intervention;
use ppl_core::{rng, Error, Result};

use super::data::FaceData;
use super::model::{attribute_features, face_scm, sites, FaceScm, COLOUR_SIZES};
use super::train::observations;
use crate::data::cartoon::{Attr, NUM_ATTRS};

/// An intervention on attributes, named as for
/// [`CartoonFaces::counterfactual`](crate::data::cartoon::CartoonFaces::counterfactual): a
/// binary attribute's CelebA name with 0 or 1, or `eye_colour`, `skin_tone`, `hair_colour` with
/// a colour index. The empty list is the null intervention (every attribute set to its own
/// factual value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaceIntervention {
    actions: Vec<(String, f64)>,
}

impl FaceIntervention {
    /// The null intervention.
    pub fn null() -> Self {
        Self::default()
    }

    /// `do(name_1 = v_1, ..)`; fails on an unknown name, a repeated name or a value the
    /// attribute cannot take.
    pub fn new(actions: &[(&str, f64)]) -> Result<Self> {
        for (k, &(name, v)) in actions.iter().enumerate() {
            if actions[..k].iter().any(|(m, _)| *m == name) {
                return Err(Error::usage(format!(
                    "attribute `{name}` is intervened on twice"
                )));
            }
            if Attr::from_name(name).is_some() {
                if v != 0.0 && v != 1.0 {
                    return Err(Error::usage(format!(
                        "intervention on `{name}`: a binary attribute takes 0 or 1, got {v}"
                    )));
                }
            } else if let Some(c) = sites::COLOURS.iter().position(|c| *c == name) {
                if v.fract() != 0.0 || v < 0.0 || v >= COLOUR_SIZES[c] as f64 {
                    return Err(Error::usage(format!(
                        "intervention on `{name}`: the value must be a colour index 0..{}, got {v}",
                        COLOUR_SIZES[c] - 1
                    )));
                }
            } else {
                return Err(Error::usage(format!(
                    "unknown attribute `{name}` in an intervention"
                )));
            }
        }
        Ok(FaceIntervention {
            actions: actions.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        })
    }

    /// The `(name, value)` pairs (empty for the null intervention).
    pub fn actions(&self) -> Vec<(&str, f64)> {
        self.actions.iter().map(|(n, v)| (n.as_str(), *v)).collect()
    }

    /// Whether this is the null intervention.
    pub fn is_null(&self) -> bool {
        self.actions.is_empty()
    }

    /// A short label (`do(Young=1)`, `null`).
    pub fn label(&self) -> String {
        if self.is_null() {
            return "null".into();
        }
        let parts: Vec<String> = self
            .actions
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        format!("do({})", parts.join(","))
    }

    /// The binary attributes whose values may change: the intervened ones and their
    /// descendants.
    pub fn affected(&self) -> Vec<Attr> {
        let mut out: Vec<Attr> = Vec::new();
        for (n, _) in &self.actions {
            if let Some(a) = Attr::from_name(n) {
                for b in std::iter::once(a).chain(a.descendants()) {
                    if !out.contains(&b) {
                        out.push(b);
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn handler_actions(&self) -> Vec<(String, Intervention)> {
        if self.is_null() {
            return vec![(
                Attr::Young.name().to_string(),
                Intervention::func(|t| Ok(t.clone())),
            )];
        }
        self.actions
            .iter()
            .map(|(n, v)| (n.clone(), Intervention::Scalar(*v)))
            .collect()
    }
}

/// How [`counterfactual`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceCfOptions {
    /// Draws of the abducted noise per face (`z` from the encoder, the attribute mechanisms'
    /// truncated uniforms); the answers are averaged over them. With 1 particle `z` is the
    /// encoder's mean.
    pub particles: usize,
    /// Seeds the particle draws.
    pub seed: u64,
}

impl Default for FaceCfOptions {
    fn default() -> Self {
        FaceCfOptions {
            particles: 1,
            seed: 0,
        }
    }
}

/// The answer of a counterfactual query per face (images on the 0–255 scale, clamped).
#[derive(Debug, Clone)]
pub struct FaceCounterfactual {
    /// `[n, 3, s, s]`: the counterfactual image, pixel noise abducted exactly.
    pub image: Tensor,
    /// `[n, 3, s, s]`: the counterfactual world's noise-free output `logit⁻¹(μ(z, a'))`.
    pub image_loc: Tensor,
    /// `[n, 3, s, s]`: the factual world's noise-free output (the reconstruction).
    pub factual_loc: Tensor,
    /// `[n, 9]`: the probability (over particles) that each binary attribute is 1 in the
    /// counterfactual world, columns in [`Attr::ALL`] order.
    pub binary: Tensor,
    /// `[n, 3]`: the counterfactual colour indices (eye, skin, hair).
    pub colours: Tensor,
}

/// Answers `intervention` for every face of `observed`:
/// `trace(twin_world(do_(intervention, condition({attributes, image, z}, face_scm))))`. The
/// attribute mechanisms' noise is abducted by their structural forms (Bernoulli: a uniform
/// truncated to the observed side of the threshold, drawn once per particle), `z` by the
/// encoder (its mean with one particle, draws otherwise), the pixel noise exactly; images and
/// attribute values are averaged over particles.
pub fn counterfactual(
    scm: &FaceScm,
    observed: &FaceData,
    intervention: &FaceIntervention,
    opts: &FaceCfOptions,
) -> Result<FaceCounterfactual> {
    let n = observed.len();
    let s = scm.config().image_size;
    if n == 0 {
        return Err(Error::usage("counterfactual: no face given"));
    }
    if observed.images.dims() != [n, 3, s, s] {
        return Err(Error::shape(
            "counterfactual: images at the model's size",
            &[n, 3, s, s],
            observed.images.dims(),
        ));
    }
    let k = opts.particles;
    if k == 0 {
        return Err(Error::usage("FaceCfOptions.particles must be at least 1"));
    }
    let dev = scm.device().clone();
    let idx: Vec<usize> = (0..k).flat_map(|_| 0..n).collect();
    let units = observed.select(&idx)?;
    let feats = attribute_features(&units.binary_columns()?, &units.colour_columns()?)?;
    let x = units.images.to_device(&dev)?;
    let (loc, scale) = scm.encode(&x, &feats.to_device(&dev)?)?;
    let z = if k == 1 {
        loc.detach()
    } else {
        let mut r = rng::from_seed(opts.seed);
        let eps = rng::standard_normal(&mut r, loc.dims(), DType::F32, &dev)?;
        (loc + (scale * eps)?)?.detach()
    };
    let mut obs = observations(&units)?;
    obs.push((sites::Z, z));
    let m = n * k;
    let (_, tr) = seed(opts.seed, || {
        trace(|| {
            twin_world(|| {
                do_(intervention.handler_actions(), || {
                    condition(obs.iter().map(|(a, v)| (*a, v)), || face_scm(scm, m))
                })
            })
        })
    })?;
    let to_levels = |v: Tensor| -> Result<Tensor> {
        let v = v.detach().reshape((k, n, 3, s, s))?.mean(0)?;
        Ok((v * 255.0)?.clamp(0f32, 255f32)?)
    };
    let column = |name: &str| -> Result<Tensor> {
        Ok(cf_value(&tr, name)?
            .detach()
            .to_dtype(DType::F32)?
            .broadcast_as(m)?
            .reshape((k, n))?)
    };
    let binary = Attr::ALL
        .iter()
        .map(|a| column(a.name())?.mean(0)?.unsqueeze(1).map_err(Error::from))
        .collect::<Result<Vec<_>>>()?;
    let colours = sites::COLOURS
        .iter()
        .map(|c| Ok(column(c)?.get(0)?.unsqueeze(1)?))
        .collect::<Result<Vec<_>>>()?;
    let out = FaceCounterfactual {
        image: to_levels(cf_value(&tr, sites::IMAGE)?)?,
        image_loc: to_levels(loc_world(&tr, COUNTERFACTUAL)?)?,
        factual_loc: to_levels(loc_world(&tr, FACTUAL)?)?,
        binary: Tensor::cat(&binary, 1)?,
        colours: Tensor::cat(&colours, 1)?,
    };
    debug_assert_eq!(out.binary.dims(), [n, NUM_ATTRS]);
    Ok(out)
}

/// One world of the deterministic `image_loc`, whose world frames are the image site's.
fn loc_world(tr: &Trace, index: usize) -> Result<Tensor> {
    let frames = &tr.site(sites::IMAGE)?.worlds.frames;
    if frames.is_empty() {
        return Ok(tr.value(sites::IMAGE_LOC)?.clone());
    }
    world_in(frames, tr.value(sites::IMAGE_LOC)?, &[(TWIN, index)], 3)
}
