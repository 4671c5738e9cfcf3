//! One face: its exogenous noise, its attributes and its image; and the parsing of
//! interventions given by attribute name.

use ppl_core::{Error, Result};

use super::noise::Exogenous;
use super::palette::{EyeColour, HairColour, SkinTone};
use super::scm::{Attr, NUM_ATTRS};
use crate::data::image::Image;

/// The attributes of one face: the nine binary attributes of the graph and three colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// Binary attributes, indexed by [`Attr::index`].
    pub binary: [bool; NUM_ATTRS],
    /// Iris colour.
    pub eye: EyeColour,
    /// Skin tone.
    pub skin: SkinTone,
    /// Hair colour (of the hair, the brows and the moustache).
    pub hair: HairColour,
}

impl Attributes {
    /// The value of a binary attribute.
    pub fn get(&self, attr: Attr) -> bool {
        self.binary[attr.index()]
    }

    /// Sets a binary attribute.
    pub fn set(&mut self, attr: Attr, value: bool) {
        self.binary[attr.index()] = value;
    }
}

/// A generated face with everything needed to re-render it under any intervention.
#[derive(Debug, Clone, PartialEq)]
pub struct CartoonSample {
    /// Every exogenous variable.
    pub noise: Exogenous,
    /// The attributes that the noise and the graph determine.
    pub attributes: Attributes,
    /// The rendered 64×64 RGB image.
    pub image: Image,
}

/// Interventions sorted by kind, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Interventions {
    pub(crate) binary: Vec<(Attr, bool)>,
    pub(crate) eye: Option<EyeColour>,
    pub(crate) skin: Option<SkinTone>,
    pub(crate) hair: Option<HairColour>,
}

fn index_value(name: &str, value: f64, n: usize) -> Result<usize> {
    if value.fract() != 0.0 || value < 0.0 || value >= n as f64 {
        return Err(Error::usage(format!(
            "intervention on `{name}`: the value must be a colour index 0..{}, got {value}",
            n - 1
        )));
    }
    Ok(value as usize)
}

/// Parses `(name, value)` pairs: a binary attribute's CelebA name with 0 or 1, or
/// `eye_colour`, `skin_tone`, `hair_colour` with the index of a colour.
pub(crate) fn parse_interventions(list: &[(&str, f64)]) -> Result<Interventions> {
    let mut out = Interventions::default();
    for (k, &(name, value)) in list.iter().enumerate() {
        if list[..k].iter().any(|(n, _)| *n == name) {
            return Err(Error::usage(format!(
                "attribute `{name}` is intervened on twice"
            )));
        }
        if let Some(attr) = Attr::from_name(name) {
            let v = if value == 0.0 {
                false
            } else if value == 1.0 {
                true
            } else {
                return Err(Error::usage(format!(
                    "intervention on `{name}`: a binary attribute takes 0 or 1, got {value}"
                )));
            };
            out.binary.push((attr, v));
        } else if name == EyeColour::ATTRIBUTE {
            out.eye = Some(EyeColour::ALL[index_value(name, value, EyeColour::ALL.len())?]);
        } else if name == SkinTone::ATTRIBUTE {
            out.skin = Some(SkinTone::ALL[index_value(name, value, SkinTone::ALL.len())?]);
        } else if name == HairColour::ATTRIBUTE {
            out.hair = Some(HairColour::ALL[index_value(name, value, HairColour::ALL.len())?]);
        } else {
            let known: Vec<&str> = Attr::ALL
                .iter()
                .map(|a| a.name())
                .chain([
                    EyeColour::ATTRIBUTE,
                    SkinTone::ATTRIBUTE,
                    HairColour::ATTRIBUTE,
                ])
                .collect();
            return Err(Error::usage(format!(
                "unknown attribute `{name}` in an intervention; known: {known:?}"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interventions_are_checked() {
        let i = parse_interventions(&[("Young", 0.0), ("hair_colour", 2.0)]).unwrap();
        assert_eq!(i.binary, vec![(Attr::Young, false)]);
        assert_eq!(i.hair, Some(HairColour::Blonde));
        for bad in [
            vec![("Old", 1.0)],
            vec![("Young", 0.5)],
            vec![("eye_colour", 4.0)],
            vec![("Male", 1.0), ("Male", 0.0)],
        ] {
            assert!(matches!(parse_interventions(&bad), Err(Error::Usage(_))));
        }
    }
}
