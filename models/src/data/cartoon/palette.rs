//! The categorical colour attributes: eye colour, skin tone and hair colour.
//!
//! They are roots of the attribute graph with no children, each drawn by inverse CDF from its
//! own uniform noise. The palettes are spread out in log-RGB space so that the attribute oracle
//! can tell them apart under the renderer's shade noise.

use ppl_core::{Error, Result};

/// An RGB colour with channels on the 0–255 scale.
pub type Rgb = [f64; 3];

macro_rules! colour_enum {
    ($(#[$doc:meta])* $name:ident, $csv:literal, [$($(#[$vdoc:meta])* $v:ident = $s:literal : $rgb:expr),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $v),+
        }

        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The attribute's name (used for interventions and CSV columns).
            pub const ATTRIBUTE: &'static str = $csv;

            /// The value's position in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }

            /// The value at `index`, if any.
            pub fn from_index(index: usize) -> Option<$name> {
                Self::ALL.get(index).copied()
            }

            /// The value's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }

            /// The value named `name`.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|c| c.name() == name)
            }

            /// The base colour the renderer uses (before shade noise).
            pub fn rgb(self) -> Rgb {
                match self {
                    $($name::$v => $rgb),+
                }
            }
        }
    };
}

colour_enum!(
    /// Iris colour.
    EyeColour, "eye_colour", [
        /// Brown iris.
        Brown = "brown": [110.0, 60.0, 25.0],
        /// Blue iris.
        Blue = "blue": [55.0, 115.0, 215.0],
        /// Green iris.
        Green = "green": [50.0, 150.0, 70.0],
        /// Grey iris.
        Grey = "grey": [125.0, 140.0, 155.0],
    ]
);

colour_enum!(
    /// Skin tone.
    SkinTone, "skin_tone", [
        /// Pale skin.
        Pale = "pale": [255.0, 224.0, 200.0],
        /// Light skin.
        Light = "light": [235.0, 190.0, 150.0],
        /// Tan skin.
        Tan = "tan": [200.0, 145.0, 100.0],
        /// Brown skin.
        Brown = "brown": [150.0, 95.0, 60.0],
        /// Dark skin.
        Dark = "dark": [95.0, 60.0, 40.0],
    ]
);

colour_enum!(
    /// Hair colour (also of the brows and the moustache).
    HairColour, "hair_colour", [
        /// Black hair.
        Black = "black": [35.0, 30.0, 30.0],
        /// Chestnut-brown hair.
        Brown = "brown": [100.0, 50.0, 15.0],
        /// Blond hair.
        Blonde = "blonde": [235.0, 200.0, 80.0],
        /// Red hair.
        Red = "red": [180.0, 60.0, 25.0],
        /// Grey hair.
        Grey = "grey": [160.0, 170.0, 195.0],
    ]
);

/// The probabilities of the colour attributes' values, in index order.
#[derive(Debug, Clone, PartialEq)]
pub struct ColourProbs {
    /// Over [`EyeColour::ALL`].
    pub eye: Vec<f64>,
    /// Over [`SkinTone::ALL`].
    pub skin: Vec<f64>,
    /// Over [`HairColour::ALL`].
    pub hair: Vec<f64>,
}

impl Default for ColourProbs {
    /// Uniform over every palette.
    fn default() -> Self {
        let uniform = |n: usize| vec![1.0 / n as f64; n];
        ColourProbs {
            eye: uniform(EyeColour::ALL.len()),
            skin: uniform(SkinTone::ALL.len()),
            hair: uniform(HairColour::ALL.len()),
        }
    }
}

fn check_probs(param: &'static str, p: &[f64], n: usize) -> Result<()> {
    if p.len() != n {
        return Err(Error::param(
            "ColourProbs",
            param,
            format!("needs {n} probabilities, got {}", p.len()),
        ));
    }
    if p.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(Error::param(
            "ColourProbs",
            param,
            format!("probabilities must be finite and non-negative, got {p:?}"),
        ));
    }
    let s: f64 = p.iter().sum();
    if (s - 1.0).abs() > 1e-9 {
        return Err(Error::param(
            "ColourProbs",
            param,
            format!("probabilities must sum to 1, got {s}"),
        ));
    }
    Ok(())
}

/// The index that uniform noise `u` selects by inverse CDF over `probs`.
pub(crate) fn inverse_cdf(probs: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    // Rounding can leave the cumulative sum a hair below 1: the last value with mass takes it.
    probs.iter().rposition(|p| *p > 0.0).unwrap_or(0)
}

impl ColourProbs {
    /// Checks lengths, signs and sums.
    pub fn validate(&self) -> Result<()> {
        check_probs("eye", &self.eye, EyeColour::ALL.len())?;
        check_probs("skin", &self.skin, SkinTone::ALL.len())?;
        check_probs("hair", &self.hair, HairColour::ALL.len())
    }

    /// The eye colour that noise `u` selects.
    pub fn eye_colour(&self, u: f64) -> EyeColour {
        EyeColour::ALL[inverse_cdf(&self.eye, u)]
    }

    /// The skin tone that noise `u` selects.
    pub fn skin_tone(&self, u: f64) -> SkinTone {
        SkinTone::ALL[inverse_cdf(&self.skin, u)]
    }

    /// The hair colour that noise `u` selects.
    pub fn hair_colour(&self, u: f64) -> HairColour {
        HairColour::ALL[inverse_cdf(&self.hair, u)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_cdf_partitions_the_unit_interval() {
        let p = [0.2, 0.0, 0.5, 0.3];
        assert_eq!(inverse_cdf(&p, 0.1), 0);
        assert_eq!(inverse_cdf(&p, 0.2), 2);
        assert_eq!(inverse_cdf(&p, 0.69), 2);
        assert_eq!(inverse_cdf(&p, 0.71), 3);
        assert_eq!(inverse_cdf(&p, 1.0), 3);
        assert!(ColourProbs::default().validate().is_ok());
        let bad = ColourProbs {
            eye: vec![0.5, 0.5],
            ..ColourProbs::default()
        };
        assert!(bad.validate().is_err());
    }
}
