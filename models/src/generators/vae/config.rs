//! The shape of a [`ConvVae`](super::ConvVae) and of its training run.

use ppl_core::{Error, Result};

/// The architecture of a [`ConvVae`](super::ConvVae).
///
/// The encoder is a stack of stride-2 convolutions (one per entry of `encoder_channels`, each
/// halving the image) whose flattened features are joined with the condition in an MLP layer of
/// width `encoder_hidden`; the decoder maps `[z, c]` linearly to a
/// `decoder_channels[0] × s/2^L × s/2^L` feature map (`L = decoder_channels.len()`) and doubles it
/// back to `s × s` with `L` transposed convolutions (the hidden ones with
/// `decoder_channels[1..]` channels, the last one with 3).
#[derive(Debug, Clone, PartialEq)]
pub struct VaeConfig {
    /// Side of the square images: 16, 32 or 64 (the cartoon faces average-pooled by 4, 2 or 1).
    pub image_size: usize,
    /// Dimension of the latent code `z` (prior `N(0, I)`).
    pub latent_dim: usize,
    /// Width `m` of the condition vector fed to both the encoder and the decoder; 0 is the plain
    /// VAE. Conditions are protected attributes coded `±1` (`2a − 1`, see
    /// [`condition_tensor`](super::condition_tensor)).
    pub cond_dim: usize,
    /// Output channels of the encoder's stride-2 convolutions (at least one).
    pub encoder_channels: Vec<usize>,
    /// Width of the encoder's hidden layer (image features joined with the condition).
    pub encoder_hidden: usize,
    /// Channels of the decoder's first feature map, then of its hidden transposed convolutions
    /// (at least one entry; the length is the number of doublings).
    pub decoder_channels: Vec<usize>,
    /// Standard deviation of the pixel noise on the logit scale (fixed, not learned), as in the
    /// face SCM: pixels `x ∈ [0, 1]` are modelled as `logit(α + (1 − 2α) x) ~ N(μ(z, c), σ²)`.
    pub pixel_scale: f64,
    /// The logit transform's margin `α`.
    pub alpha: f64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            image_size: 32,
            latent_dim: 16,
            cond_dim: 0,
            encoder_channels: vec![16, 32],
            encoder_hidden: 128,
            decoder_channels: vec![32, 16],
            pixel_scale: 0.3,
            alpha: 0.05,
        }
    }
}

impl VaeConfig {
    /// A small network on 16×16 images for tests and smoke runs. Its pixel scale is 0.5: with
    /// few steps the wider noise gets the decoder's mean image right sooner (measured on 512
    /// faces, 192 steps: held-out ELBO and counterfactual error both better than at 0.3).
    pub fn tiny() -> Self {
        VaeConfig {
            image_size: 16,
            latent_dim: 8,
            encoder_channels: vec![8, 16],
            encoder_hidden: 32,
            decoder_channels: vec![16, 8],
            pixel_scale: 0.5,
            ..Self::default()
        }
    }

    /// The same network conditioned on `m` values (`m = 0`: the plain VAE).
    pub fn with_cond_dim(mut self, m: usize) -> Self {
        self.cond_dim = m;
        self
    }

    /// How much the cartoon data's 64×64 images are average-pooled (4, 2 or 1).
    pub fn pool(&self) -> usize {
        crate::data::cartoon::SIZE / self.image_size.max(1)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if ![16, 32, 64].contains(&self.image_size) {
            return Err(Error::usage(format!(
                "VaeConfig.image_size must be 16, 32 or 64, got {}",
                self.image_size
            )));
        }
        if self.encoder_channels.is_empty() || self.decoder_channels.is_empty() {
            return Err(Error::usage(
                "VaeConfig: encoder_channels and decoder_channels need at least one entry",
            ));
        }
        for (what, layers) in [
            ("encoder_channels", self.encoder_channels.len()),
            ("decoder_channels", self.decoder_channels.len()),
        ] {
            // Each layer halves (or doubles) the side; 16×16 allows four of them.
            if layers > 4 {
                return Err(Error::usage(format!(
                    "VaeConfig.{what}: at most 4 layers fit a {}×{} image, got {layers}",
                    self.image_size, self.image_size
                )));
            }
        }
        let zero = self.latent_dim == 0
            || self.encoder_hidden == 0
            || self.encoder_channels.contains(&0)
            || self.decoder_channels.contains(&0);
        if zero {
            return Err(Error::usage(
                "VaeConfig: latent_dim, encoder_hidden and every channel count must be positive",
            ));
        }
        if !(self.pixel_scale.is_finite() && self.pixel_scale > 0.0) {
            return Err(Error::usage(format!(
                "VaeConfig.pixel_scale must be positive, got {}",
                self.pixel_scale
            )));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(Error::usage(format!(
                "VaeConfig.alpha must lie in (0, 0.5), got {}",
                self.alpha
            )));
        }
        Ok(())
    }
}

/// A training run of [`train`](super::train).
#[derive(Debug, Clone, PartialEq)]
pub struct VaeTrainConfig {
    /// Epochs in all (a model restored from a checkpoint continues up to this many).
    pub epochs: usize,
    /// Images per minibatch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the minibatch order and the ELBO's draws.
    pub seed: u64,
}

impl Default for VaeTrainConfig {
    fn default() -> Self {
        VaeTrainConfig {
            epochs: 20,
            batch_size: 64,
            lr: 2e-3,
            seed: 0,
        }
    }
}

impl VaeTrainConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::usage(
                "VaeTrainConfig.epochs and batch_size must be at least 1",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::usage(format!(
                "VaeTrainConfig.lr must be positive, got {}",
                self.lr
            )));
        }
        Ok(())
    }
}
