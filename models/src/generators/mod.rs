//! Counterfactual image generators (issue 11, parts 1–3) and what they share.
//!
//! A generator here maps a latent code to an image. [`LatentGenerator`] is the common face of
//! the unconditional ones (the VAE's decoder under its prior, the DCGAN's generator under its
//! uniform prior): the latent-space de-biasing of [`fairness`](crate::fairness) and the noise
//! counterfactual samplers work with any of them.

pub mod dcgan;
pub mod intact_vae;
pub mod noise_cf;
pub mod procedural;
pub mod vae;

use candle_core::Tensor;
use ppl_core::rng::Rng;
use ppl_core::Result;

/// A generative model of images driven by a latent code with a known prior.
pub trait LatentGenerator {
    /// The latent code's width.
    fn latent_dim(&self) -> usize;

    /// The side of the square images it makes.
    fn image_size(&self) -> usize;

    /// `n` latent codes drawn from the prior with `rng`, `[n, latent_dim]` f32 on the
    /// generator's device.
    fn sample_latents(&self, n: usize, rng: &mut Rng) -> Result<Tensor>;

    /// The images of latent codes `z` (`[n, latent_dim]`): `[n, 3, s, s]` f32 in `[0, 1]`, in
    /// evaluation mode (no dropout, batch-norm running statistics), detached from the
    /// generator's parameters: no gradient flows back into the generator from them.
    fn generate(&self, z: &Tensor) -> Result<Tensor>;
}
