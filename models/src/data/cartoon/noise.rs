//! The exogenous variables of one face: the attribute noise `U`, the colour noise and the
//! per-image style noise.

use ppl_core::rng::{open01, Rng};
use ppl_core::{Error, Result};

use super::scm::NUM_ATTRS;

/// The largest shift of the face centre from the canvas centre, in pixels, along each axis.
pub const MAX_SHIFT: f64 = 1.2;
/// The largest relative change of the face size.
pub const MAX_SCALE_DEV: f64 = 0.05;
/// The largest relative change of the skin's brightness.
pub const MAX_SKIN_SHADE_DEV: f64 = 0.05;
/// The largest relative change of the hair's brightness.
pub const MAX_HAIR_SHADE_DEV: f64 = 0.06;
/// The largest relative change of the background's brightness.
pub const MAX_BACKGROUND_SHADE_DEV: f64 = 0.08;

/// Per-image style noise: where the face sits, its size, and the shades of its colours.
///
/// Style is independent of every attribute, so counterfactual images keep it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Horizontal shift of the face centre in pixels, in `[-MAX_SHIFT, MAX_SHIFT]`.
    pub dx: f64,
    /// Vertical shift of the face centre in pixels, in `[-MAX_SHIFT, MAX_SHIFT]`.
    pub dy: f64,
    /// Face size factor, in `[1 - MAX_SCALE_DEV, 1 + MAX_SCALE_DEV]`.
    pub scale: f64,
    /// Skin brightness factor, in `[1 - MAX_SKIN_SHADE_DEV, 1 + MAX_SKIN_SHADE_DEV]`.
    pub skin_shade: f64,
    /// Hair brightness factor, in `[1 - MAX_HAIR_SHADE_DEV, 1 + MAX_HAIR_SHADE_DEV]`.
    pub hair_shade: f64,
    /// Background brightness factor, in `[1 - MAX_BACKGROUND_SHADE_DEV, 1 + ..]`.
    pub background_shade: f64,
    /// Background hue, from pale blue (0) to pale green (1).
    pub background_mix: f64,
}

impl Default for Style {
    /// The face centred at nominal size and shades.
    fn default() -> Self {
        Style {
            dx: 0.0,
            dy: 0.0,
            scale: 1.0,
            skin_shade: 1.0,
            hair_shade: 1.0,
            background_shade: 1.0,
            background_mix: 0.5,
        }
    }
}

fn spread(rng: &mut Rng, centre: f64, dev: f64) -> f64 {
    centre + dev * (2.0 * open01(rng) - 1.0)
}

impl Style {
    /// Draws a style from `rng`.
    pub fn draw(rng: &mut Rng) -> Style {
        Style {
            dx: spread(rng, 0.0, MAX_SHIFT),
            dy: spread(rng, 0.0, MAX_SHIFT),
            scale: spread(rng, 1.0, MAX_SCALE_DEV),
            skin_shade: spread(rng, 1.0, MAX_SKIN_SHADE_DEV),
            hair_shade: spread(rng, 1.0, MAX_HAIR_SHADE_DEV),
            background_shade: spread(rng, 1.0, MAX_BACKGROUND_SHADE_DEV),
            background_mix: open01(rng),
        }
    }

    /// The fields with their names, in CSV column order.
    pub fn fields(&self) -> [(&'static str, f64); 7] {
        [
            ("dx", self.dx),
            ("dy", self.dy),
            ("scale", self.scale),
            ("skin_shade", self.skin_shade),
            ("hair_shade", self.hair_shade),
            ("background_shade", self.background_shade),
            ("background_mix", self.background_mix),
        ]
    }

    /// The style from values in [`Style::fields`] order; fails naming the field that lies
    /// outside its range.
    pub fn from_fields(v: [f64; 7]) -> Result<Style> {
        let s = Style {
            dx: v[0],
            dy: v[1],
            scale: v[2],
            skin_shade: v[3],
            hair_shade: v[4],
            background_shade: v[5],
            background_mix: v[6],
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks every field against its range (the oracle relies on the bounds).
    pub fn validate(&self) -> Result<()> {
        let eps = 1e-9;
        let checks = [
            ("dx", self.dx, -MAX_SHIFT, MAX_SHIFT),
            ("dy", self.dy, -MAX_SHIFT, MAX_SHIFT),
            (
                "scale",
                self.scale,
                1.0 - MAX_SCALE_DEV,
                1.0 + MAX_SCALE_DEV,
            ),
            (
                "skin_shade",
                self.skin_shade,
                1.0 - MAX_SKIN_SHADE_DEV,
                1.0 + MAX_SKIN_SHADE_DEV,
            ),
            (
                "hair_shade",
                self.hair_shade,
                1.0 - MAX_HAIR_SHADE_DEV,
                1.0 + MAX_HAIR_SHADE_DEV,
            ),
            (
                "background_shade",
                self.background_shade,
                1.0 - MAX_BACKGROUND_SHADE_DEV,
                1.0 + MAX_BACKGROUND_SHADE_DEV,
            ),
            ("background_mix", self.background_mix, 0.0, 1.0),
        ];
        for (name, v, lo, hi) in checks {
            if !(v >= lo - eps && v <= hi + eps) {
                return Err(Error::param(
                    "Style",
                    name,
                    format!("{v} lies outside [{lo}, {hi}]"),
                ));
            }
        }
        Ok(())
    }
}

/// Every exogenous variable of one face. The face (attributes and image) is a deterministic
/// function of these and the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exogenous {
    /// `U_V ~ U(0, 1)` of every binary attribute, indexed by
    /// [`Attr::index`](super::Attr::index).
    pub u: [f64; NUM_ATTRS],
    /// Noise of the eye colour (inverse CDF).
    pub u_eye: f64,
    /// Noise of the skin tone (inverse CDF).
    pub u_skin: f64,
    /// Noise of the hair colour (inverse CDF).
    pub u_hair: f64,
    /// Style noise.
    pub style: Style,
}

impl Exogenous {
    /// Draws every exogenous variable from `rng`, in a fixed order (attribute noise in
    /// [`Attr::ALL`](super::Attr::ALL) order, then eye, skin, hair, then style).
    pub fn draw(rng: &mut Rng) -> Exogenous {
        let mut u = [0.0; NUM_ATTRS];
        for x in u.iter_mut() {
            *x = open01(rng);
        }
        let u_eye = open01(rng);
        let u_skin = open01(rng);
        let u_hair = open01(rng);
        Exogenous {
            u,
            u_eye,
            u_skin,
            u_hair,
            style: Style::draw(rng),
        }
    }

    /// Checks that every uniform lies in [0, 1] and the style in its ranges.
    pub fn validate(&self) -> Result<()> {
        let named = self.u.iter().map(|&u| ("u", u)).chain([
            ("u_eye", self.u_eye),
            ("u_skin", self.u_skin),
            ("u_hair", self.u_hair),
        ]);
        for (name, u) in named {
            if !(0.0..=1.0).contains(&u) {
                return Err(Error::param(
                    "Exogenous",
                    name,
                    format!("{u} is not in [0, 1]"),
                ));
            }
        }
        self.style.validate()
    }
}
