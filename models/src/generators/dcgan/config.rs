//! The DCGAN's architecture and training settings.

use ppl_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The architecture of a [`Dcgan`](super::Dcgan).
///
/// The generator maps `z ∈ [−1, 1]^latent_dim` (uniform prior) through a 4×4 transposed
/// convolution to a `4 × 4` map of `features · 2^(L−1)` channels, then `L − 1` stride-2
/// transposed convolutions (halving the channels, doubling the side) and a last one to 3
/// channels, `L = log2(image_size / 4)`; batch norm and ReLU between layers, tanh at the end
/// mapped to `[0, 1]`. The discriminator mirrors it: `L` stride-2 4×4 convolutions with
/// LeakyReLU(0.2) (batch norm on all but the first) and a 4×4 convolution to one logit.
/// Convolutions carry no bias (each is followed by batch norm, or is the output) and start from
/// N(0, 0.02) weights, as in Radford et al. (2016).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcganConfig {
    /// The side of the generated images: 16, 32 or 64 (the paper: 64).
    pub image_size: usize,
    /// The width of `z` (the paper: 100).
    pub latent_dim: usize,
    /// The channel width of the last generator layer and the first discriminator layer; the
    /// other layers have `features · 2^j` channels (the paper: 64).
    pub features: usize,
}

impl Default for DcganConfig {
    /// The CPU-friendly default: the paper's 64×64 images and `z ∈ [−1, 1]^100`, at a quarter
    /// of its width (`features = 16`, about 16× fewer multiply-adds than `features = 64`;
    /// 0.55 M parameters). Measured on a shared 2-core CPU: about 5 s per step with batches of
    /// 64 at 64×64, 1 s at 32×32 (`image_size: 32`), so long CPU runs are better at 32×32.
    fn default() -> Self {
        DcganConfig {
            image_size: 64,
            latent_dim: 100,
            features: 16,
        }
    }
}

impl DcganConfig {
    /// Radford et al.'s network: 64×64 images, `z ∈ [−1, 1]^100`, `features = 64` (a GPU
    /// configuration).
    pub fn paper() -> Self {
        DcganConfig {
            features: 64,
            ..Self::default()
        }
    }

    /// A small network for tests and quick runs: 16×16 images, `latent_dim = 16`,
    /// `features = 8`.
    pub fn tiny() -> Self {
        DcganConfig {
            image_size: 16,
            latent_dim: 16,
            features: 8,
        }
    }

    /// The number of stride-2 layers, `log2(image_size / 4)`.
    pub fn depth(&self) -> usize {
        (self.image_size / 4).trailing_zeros() as usize
    }

    /// Checks the settings: an error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if ![16, 32, 64].contains(&self.image_size) {
            return Err(Error::param(
                "DcganConfig",
                "image_size",
                format!("must be 16, 32 or 64, got {}", self.image_size),
            ));
        }
        if self.latent_dim == 0 || self.features == 0 {
            return Err(Error::param(
                "DcganConfig",
                "latent_dim",
                format!(
                    "latent_dim and features must be positive, got {} and {}",
                    self.latent_dim, self.features
                ),
            ));
        }
        Ok(())
    }
}

/// How [`Dcgan::train`](super::Dcgan::train) runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DcganTrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Images per minibatch (the paper: 128); the last partial batch of an epoch is dropped.
    pub batch_size: usize,
    /// Adam's learning rate for both networks (the paper: 2e-4).
    pub lr: f64,
    /// Adam's first-moment decay (the paper: 0.5).
    pub beta1: f64,
    /// Adam's second-moment decay (0.999).
    pub beta2: f64,
    /// Seeds the minibatch order and the latent draws.
    pub seed: u64,
}

impl Default for DcganTrainConfig {
    /// The paper's optimiser (Adam, lr 2e-4, β = (0.5, 0.999)), batches of 64, 10 epochs.
    fn default() -> Self {
        DcganTrainConfig {
            epochs: 10,
            batch_size: 64,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            seed: 0,
        }
    }
}

impl DcganTrainConfig {
    /// Checks the settings: an error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 2 {
            return Err(Error::param(
                "DcganTrainConfig",
                "batch_size",
                format!(
                    "batch norm needs at least 2 images per batch, got {}",
                    self.batch_size
                ),
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::param(
                "DcganTrainConfig",
                "lr",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        let beta_ok = |b: f64| (0.0..1.0).contains(&b);
        if !beta_ok(self.beta1) || !beta_ok(self.beta2) {
            return Err(Error::param(
                "DcganTrainConfig",
                "beta1",
                format!(
                    "Adam's betas must lie in [0, 1), got ({}, {})",
                    self.beta1, self.beta2
                ),
            ));
        }
        Ok(())
    }
}
