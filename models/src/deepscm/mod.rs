//! DeepSCM on Morpho glyphs (Pawlowski, Castro & Glocker 2020): a deep structural causal model
//! `thickness → intensity → image ← z`, trained by SVI, queried for counterfactual images
//! through the world handlers, and scored against the data generator's true counterfactuals.
//!
//! - [`DeepScm`]: the mechanisms (a spline flow for thickness on a log scale, an affine or
//!   spline flow for intensity, a conditional VAE decoder with fixed-variance Normal pixel noise
//!   on logit-transformed intensities) and the amortised encoder `q(z | x, t, i)`, in one of the
//!   three [`Variant`]s; the model is [`morpho_scm`], the guide [`encoder_guide`].
//! - [`train`]: SVI with `TraceElbo` and Adam on seeded minibatches, with a callback per step
//!   and per epoch.
//! - [`counterfactual`]: `twin_world(do_(.., condition(.., morpho_scm)))` with `z` abducted by
//!   the encoder (its mean, or averaged over particles) and the pixel noise abducted exactly.
//! - [`eval`]: held-out log-likelihoods, effectiveness, composition,
//!   reversibility and the error against the true counterfactual.
//!
//! Normalisations of thickness and intensity are fixed properties of the data's law
//! ([`scale`]).

mod config;
mod counterfactual;
pub mod eval;
mod model;
pub mod scale;
mod train;

pub use config::{
    default_data_size, quick_data_size, tutorial_data_config, ScmConfig, TrainConfig, Variant,
    TUTORIAL_CLASS,
};
pub use counterfactual::{
    counterfactual, CfIntervention, CfOptions, Counterfactual, LatentAbduction, Observed, Target,
};
pub use model::{encoder_guide, morpho_scm, sites, DeepScm};
pub use train::{train, Checkpointing, TrainEvent, TrainSummary};
