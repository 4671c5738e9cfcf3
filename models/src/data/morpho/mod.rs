//! Morpho glyphs: a procedural, Morpho-MNIST-like data set whose structural causal model is known.
//!
//! Ten classes of digit-like stroke skeletons are deformed per image (jitter, slant) and rendered
//! anti-aliased at 28×28 with a stroke thickness `t` and intensity `i` drawn from the DeepSCM
//! Morpho-MNIST equations (see [`scm`]). Because every exogenous variable is kept, the true
//! counterfactual image of any `do(t)`/`do(i)` query is a re-render with the same noise, so a
//! counterfactual model can be scored against ground truth. The [`measure`] functions read `t`
//! and `i` back from an image as Morpho-MNIST does.
//!
//! ```
//! use models::data::morpho::{Intervention, MorphoGlyphs};
//! let glyphs = MorphoGlyphs::generate(8, 1)?;
//! let thick = glyphs.counterfactual(&Intervention::thickness(4.0))?;
//! assert_eq!(thick.samples()[0].noise, glyphs.samples()[0].noise);
//! # Ok::<(), ppl_core::Error>(())
//! ```

mod export;
mod generate;
pub mod measure;
pub mod morphology;
mod render;
pub mod scm;
pub mod skeleton;

pub use export::ATTRIBUTE_COLUMNS;
pub use generate::{MorphoConfig, MorphoGlyphs};
pub use measure::{measure, measure_batch, MeasureOptions, Measurement};
pub use scm::{
    counterfactual, intensity_mechanism, render, thickness_mechanism, Intervention, MorphoNoise,
    MorphoSample,
};
pub use skeleton::{Jitter, NUM_CLASSES, SIZE};
