//! A convolutional VAE and conditional VAE (CVAE) on face images, their counterfactuals and
//! the generation audits of issue 11, part 1.
//!
//! - [`ConvVae`]: conv encoder/decoder on `[n, 3, s, s]` images (s = 16, 32 or 64), latent
//!   `z ~ N(0, I)`, an optional condition `c ∈ R^m` (protected attributes coded `±1`, see
//!   [`condition_tensor`]) read by both networks, logit-normal pixels as the face SCM; the
//!   model is [`vae_model`](fn@vae_model), the guide [`vae_guide`](fn@vae_guide). The plain VAE (`m = 0`) is a
//!   [`LatentGenerator`](crate::generators::LatentGenerator); a CVAE is one once given a
//!   [default condition](ConvVae::set_default_condition), and decodes any condition with
//!   [`generate_with`](ConvVae::generate_with).
//! - [`train`]: SVI with `TraceElbo` and Adam on seeded minibatches, a callback per step,
//!   optional checkpoints; [`held_out_elbo`] scores the fit.
//! - [`CvaeCounterfactual`]: decoder flip, encoder-only flip, scaled conditions.
//! - [`audit`](mod@audit): [`rebalance`]d training sets, [`generation_audit`] (the protected
//!   share among generations vs the training share), [`reconstruction_accuracy`] per group,
//!   [`counterfactual_audit`] against the data's true counterfactuals.
//! - [`LinearProbe`]: a logistic-regression attribute scorer for 16×16 / 32×32 images, where
//!   the cartoon oracle cannot read them.

pub mod audit;
mod config;
mod counterfactual;
mod model;
mod probe;
mod train;

pub use audit::{
    attribute_share, counterfactual_audit, generation_audit, mae255, rebalance,
    reconstruction_accuracy, CfAudit, GroupAccuracy,
};
pub use config::{VaeConfig, VaeTrainConfig};
pub use counterfactual::{CfImages, CfMode, CvaeCounterfactual};
pub use model::{condition_tensor, sites, vae_guide, vae_model, ConvVae};
pub use probe::{LinearProbe, ProbeConfig};
pub use train::{held_out_elbo, train, VaeElbo, VaeTrainEvent, VaeTrainSummary};
