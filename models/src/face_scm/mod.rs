//! A deep SCM of the cartoon faces: the data set's attribute DAG → image, trained by SVI and
//! asked "what would this face look like with blue eyes / glasses / had this person been
//! young / male?" through the world handlers, then scored against the generator's true
//! counterfactuals.
//!
//! - [`FaceScm`]: learnable Bernoulli mechanisms for the nine binary attributes on the data's
//!   graph ([`Attr::parents`](crate::data::cartoon::Attr::parents)), Categorical roots for the
//!   three colours, and a conditional VAE image mechanism (Normal pixel noise of fixed scale on
//!   logit-transformed RGB); the model is [`face_scm`], the guide [`face_guide`].
//! - [`FaceData`]: faces as tensors, images average-pooled to 32×32 by default.
//! - [`train`]: SVI with `TraceElbo` and Adam on seeded minibatches, a callback per step.
//! - [`counterfactual`]: `twin_world(do_(.., condition(.., face_scm)))`: attribute noise
//!   abducted by the Bernoulli/Categorical structural forms (sampled, averaged over particles),
//!   `z` by the encoder, the pixel noise exactly.
//! - [`evaluate`]: held-out ELBO, oracle effectiveness and preservation, and the error against
//!   the true counterfactual; [`write_counterfactual_grid`] draws the answers.

mod attributes;
mod config;
mod counterfactual;
mod data;
mod eval;
mod grid;
mod model;
mod train;

pub use attributes::{attribute_log_prob, fit_attributes};
pub use config::{FaceScmConfig, FaceTrainConfig};
pub use counterfactual::{counterfactual, FaceCfOptions, FaceCounterfactual, FaceIntervention};
pub use data::{downsample, to_oracle_image, upsample, FaceData};
pub use eval::{
    default_interventions, evaluate, held_out_elbo, FaceEvalConfig, FaceEvaluation,
    InterventionScores,
};
pub use grid::write_counterfactual_grid;
pub use model::{
    attribute_features, cpd_param, face_guide, face_scm, sites, FaceScm, COLOUR_SIZES, COND_DIM,
};
pub use train::{train, FaceTrainEvent, FaceTrainSummary};
