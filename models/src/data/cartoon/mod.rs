//! Cartoon faces: a procedural face data set whose structural causal model is known.
//!
//! Nine binary attributes follow the CausalGAN graph ([`scm`]), three colour attributes
//! ([`palette`]) are independent roots, and per-image style noise ([`noise`]) moves, scales
//! and shades the face. A layered, anti-aliased renderer ([`render()`]) draws 64×64 RGB faces
//! from these. Every exogenous variable is kept with each sample, so
//! [`CartoonFaces::counterfactual`] re-renders the *true* counterfactual image of any
//! intervention, and [`measure`] reads every rendered attribute back from an image.
//!
//! ```
//! use models::data::cartoon::{measure, Attr, CartoonFaces};
//! let faces = CartoonFaces::default().generate(3, 4);
//! let m = measure(&faces[0].image)?;
//! assert_eq!(m.attributes.binary, faces[0].attributes.binary);
//! # Ok::<(), ppl_core::Error>(())
//! ```

mod export;
mod generate;
pub mod layout;
pub mod noise;
mod oracle;
pub mod palette;
mod raster;
mod render;
mod sample;
pub mod scm;

pub use export::{export, export_celeba, read_table, write_contact_sheet, TableRow, TABLE_FILE};
pub use generate::{attributes_tensor, images_tensor, CartoonConfig, CartoonFaces};
pub use layout::{Frame, SIZE};
pub use noise::{Exogenous, Style};
pub use oracle::{measure, Measurement};
pub use palette::{ColourProbs, EyeColour, HairColour, SkinTone};
pub use render::{attribute_regions, render};
pub use sample::{Attributes, CartoonSample};
pub use scm::{Attr, Cpds, NUM_ATTRS};

/// The attribute graph: every binary attribute's CelebA name with its parents' names, in
/// topological order. The colour attributes (`eye_colour`, `skin_tone`, `hair_colour`) are
/// parentless and childless.
pub fn graph() -> Vec<(&'static str, Vec<&'static str>)> {
    Attr::ALL
        .iter()
        .map(|a| (a.name(), a.parents().iter().map(|p| p.name()).collect()))
        .collect()
}
