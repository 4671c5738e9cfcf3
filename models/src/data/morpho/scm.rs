//! The structural causal model of the glyphs: exogenous noise, the mechanisms, interventions and
//! true counterfactuals.
//!
//! ```text
//! ε_t ~ Gamma(10, rate 5)          t = 0.5 + ε_t
//! ε_i ~ N(0, 1)                    i = 64 + 191 · sigmoid(2t − 5 + 0.5 ε_i)
//! class, jitter, slant, pixel noise    image = render(class, jitter, slant; t, i) + pixel noise
//! ```
//!
//! These are the DeepSCM Morpho-MNIST equations (Pawlowski, Castro & Glocker, NeurIPS 2020).
//! Every sample keeps all of its exogenous variables in a [`MorphoNoise`], so a counterfactual is
//! computed exactly: hold the noise, replace the intervened variables, recompute their
//! descendants through the same mechanisms, and re-render.

use ppl_core::{Error, Result};

use super::render as raster;
use super::skeleton::{self, Jitter, NUM_CLASSES, SIZE};

/// Shift of the thickness mechanism `t = 0.5 + ε_t`.
pub const THICKNESS_SHIFT: f64 = 0.5;
/// Shape of the Gamma law of `ε_t`.
pub const THICKNESS_SHAPE: f64 = 10.0;
/// Rate of the Gamma law of `ε_t`.
pub const THICKNESS_RATE: f64 = 5.0;
/// The largest thickness a rendered glyph may have (pixels); thicker strokes fill the image.
pub const MAX_THICKNESS: f64 = 12.0;

/// The thickness mechanism `t = 0.5 + ε_t`.
pub fn thickness_mechanism(eps_t: f64) -> f64 {
    THICKNESS_SHIFT + eps_t
}

/// The intensity mechanism `i = 64 + 191 · sigmoid(2t − 5 + 0.5 ε_i)`.
pub fn intensity_mechanism(thickness: f64, eps_i: f64) -> f64 {
    let z = 2.0 * thickness - 5.0 + 0.5 * eps_i;
    64.0 + 191.0 / (1.0 + (-z).exp())
}

/// Every exogenous variable of one glyph.
#[derive(Debug, Clone, PartialEq)]
pub struct MorphoNoise {
    /// The glyph class, 0–9.
    pub class: u8,
    /// The shape deformation.
    pub jitter: Jitter,
    /// The shear of the glyph (see [`skeleton::skeleton`]).
    pub slant: f64,
    /// The thickness noise, `Gamma(10, rate 5)`.
    pub eps_t: f64,
    /// The intensity noise, `N(0, 1)`.
    pub eps_i: f64,
    /// Additive pixel noise in grey levels (`SIZE × SIZE`, rows top to bottom), if enabled.
    pub pixel_noise: Option<Vec<f32>>,
}

/// One glyph: its noise, its endogenous attributes and its image.
#[derive(Debug, Clone, PartialEq)]
pub struct MorphoSample {
    /// The exogenous variables.
    pub noise: MorphoNoise,
    /// Stroke thickness in pixels.
    pub thickness: f64,
    /// Stroke intensity: the median grey level of the bright pixels.
    pub intensity: f64,
    /// The `SIZE × SIZE` image, whole grey levels 0–255, rows top to bottom.
    pub image: Vec<f32>,
}

/// An intervention on thickness, intensity or both (`do(t = v)`, `do(i = v)`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Intervention {
    /// The value thickness is set to, if intervened.
    pub thickness: Option<f64>,
    /// The value intensity is set to, if intervened.
    pub intensity: Option<f64>,
}

impl Intervention {
    /// `do(t = v)`: intensity follows through its mechanism with the same `ε_i`.
    pub fn thickness(v: f64) -> Self {
        Intervention {
            thickness: Some(v),
            intensity: None,
        }
    }

    /// `do(i = v)`: thickness, a parent of intensity, is left as it is.
    pub fn intensity(v: f64) -> Self {
        Intervention {
            thickness: None,
            intensity: Some(v),
        }
    }

    /// `do(t = t_v, i = i_v)`.
    pub fn both(thickness: f64, intensity: f64) -> Self {
        Intervention {
            thickness: Some(thickness),
            intensity: Some(intensity),
        }
    }
}

fn check_thickness(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 && t <= MAX_THICKNESS {
        Ok(())
    } else {
        Err(Error::value(
            "thickness",
            format!("must lie in (0, {MAX_THICKNESS}] pixels, got {t}"),
        ))
    }
}

fn check_intensity(i: f64) -> Result<()> {
    if i.is_finite() && i > 0.0 && i <= 255.0 {
        Ok(())
    } else {
        Err(Error::value(
            "intensity",
            format!("must lie in (0, 255], got {i}"),
        ))
    }
}

/// Renders the glyph of `noise` at thickness `t` and intensity `i`: whole grey levels 0–255,
/// `SIZE × SIZE`, rows top to bottom.
pub fn render(noise: &MorphoNoise, t: f64, i: f64) -> Result<Vec<f32>> {
    check_thickness(t)?;
    check_intensity(i)?;
    if usize::from(noise.class) >= NUM_CLASSES {
        return Err(Error::value(
            "class",
            format!("must lie in 0..{NUM_CLASSES}, got {}", noise.class),
        ));
    }
    if let Some(p) = &noise.pixel_noise {
        if p.len() != SIZE * SIZE {
            return Err(Error::shape("pixel_noise", &[SIZE * SIZE], &[p.len()]));
        }
    }
    let strokes = skeleton::skeleton(noise.class, &noise.jitter, noise.slant);
    let cov = raster::coverage(&strokes, t);
    raster::shade(&cov, i, noise.pixel_noise.as_deref()).ok_or_else(|| {
        Error::value(
            "image",
            "the jitter moved the glyph out of the image: nothing was drawn",
        )
    })
}

impl MorphoSample {
    /// The factual sample of `noise`: every variable computed through its mechanism.
    pub fn from_noise(noise: MorphoNoise) -> Result<Self> {
        if !(noise.eps_t.is_finite() && noise.eps_t >= 0.0 && noise.eps_i.is_finite()) {
            return Err(Error::value(
                "noise",
                format!(
                    "eps_t must be finite and non-negative and eps_i finite, got {} and {}",
                    noise.eps_t, noise.eps_i
                ),
            ));
        }
        let t = thickness_mechanism(noise.eps_t);
        let i = intensity_mechanism(t, noise.eps_i);
        let image = render(&noise, t, i)?;
        Ok(MorphoSample {
            noise,
            thickness: t,
            intensity: i,
            image,
        })
    }

    /// The true counterfactual of this sample under `intervention`: the same noise, intervened
    /// variables replaced, their descendants recomputed (`do(t)` moves `i` through its mechanism
    /// with the same `ε_i`; `do(i)` leaves `t`), and the image re-rendered.
    pub fn counterfactual(&self, intervention: &Intervention) -> Result<MorphoSample> {
        counterfactual(self, intervention)
    }
}

/// The true counterfactual of `sample` under `intervention` (see [`MorphoSample::counterfactual`]).
pub fn counterfactual(sample: &MorphoSample, intervention: &Intervention) -> Result<MorphoSample> {
    let t = match intervention.thickness {
        Some(v) => {
            check_thickness(v)?;
            v
        }
        None => sample.thickness,
    };
    let i = match intervention.intensity {
        Some(v) => {
            check_intensity(v)?;
            v
        }
        // Recomputed rather than copied: with t untouched this is the factual value bit for bit.
        None => intensity_mechanism(t, sample.noise.eps_i),
    };
    let image = render(&sample.noise, t, i)?;
    Ok(MorphoSample {
        noise: sample.noise.clone(),
        thickness: t,
        intensity: i,
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_match_the_equations() {
        assert_eq!(thickness_mechanism(2.0), 2.5);
        // 2t − 5 = 0 at t = 2.5 with ε_i = 0: i = 64 + 191 / 2.
        assert_eq!(intensity_mechanism(2.5, 0.0), 64.0 + 95.5);
        assert!((intensity_mechanism(100.0, 0.0) - 255.0).abs() < 1e-9);
        assert!((intensity_mechanism(-100.0, 0.0) - 64.0).abs() < 1e-9);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let n = MorphoNoise {
            class: 3,
            jitter: Jitter::NONE,
            slant: 0.0,
            eps_t: 1.5,
            eps_i: 0.0,
            pixel_noise: None,
        };
        let s = MorphoSample::from_noise(n.clone()).unwrap();
        let e = s
            .counterfactual(&Intervention::thickness(-1.0))
            .unwrap_err();
        assert!(e.to_string().contains("thickness"), "{e}");
        let e = s
            .counterfactual(&Intervention::intensity(300.0))
            .unwrap_err();
        assert!(e.to_string().contains("intensity"), "{e}");
        let bad = MorphoNoise { class: 12, ..n };
        assert!(MorphoSample::from_noise(bad).is_err());
    }
}
