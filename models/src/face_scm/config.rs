//! The shape of a face SCM (network sizes, pixel noise, image size) and of its training run.

use ppl_core::{Error, Result};

/// The architecture of a [`FaceScm`](super::FaceScm).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceScmConfig {
    /// Side of the modelled images: 32 (the data's 64×64 faces average-pooled by 2, the
    /// default: four times fewer pixels, fast enough for CPU tutorials) or 64.
    pub image_size: usize,
    /// Dimension of the latent code `z`.
    pub latent_dim: usize,
    /// Channels of the encoder's two stride-2 convolutions.
    pub encoder_channels: [usize; 2],
    /// Width of the encoder's hidden layer (image features joined with the attributes).
    pub encoder_hidden: usize,
    /// Channels of the decoder's first feature map and of its hidden transposed convolution.
    pub decoder_channels: [usize; 2],
    /// Standard deviation of the pixel noise on the logit scale (fixed, not learned). The default
    /// 0.3 leaves the KL term enough weight that attributes are read from the decoder's condition
    /// rather than copied into `z` (measured at 30 epochs: reconstruction MAE 6.9 of 255).
    pub pixel_scale: f64,
    /// The logit transform's margin: pixels `x ∈ [0, 1]` are modelled as
    /// `logit(α + (1 − 2α) x)`.
    pub alpha: f64,
}

impl Default for FaceScmConfig {
    fn default() -> Self {
        FaceScmConfig {
            image_size: 32,
            latent_dim: 16,
            encoder_channels: [16, 32],
            encoder_hidden: 128,
            decoder_channels: [32, 16],
            pixel_scale: 0.3,
            alpha: 0.05,
        }
    }
}

impl FaceScmConfig {
    /// A small network for tests and smoke runs (same structure, fewer channels).
    pub fn tiny() -> Self {
        FaceScmConfig {
            latent_dim: 4,
            encoder_channels: [4, 8],
            encoder_hidden: 16,
            decoder_channels: [8, 4],
            ..Self::default()
        }
    }

    /// How much the data's 64×64 images are average-pooled (2 for 32×32, 1 for 64×64).
    pub fn pool(&self) -> usize {
        crate::data::cartoon::SIZE / self.image_size.max(1)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.image_size != 32 && self.image_size != 64 {
            return Err(Error::usage(format!(
                "FaceScmConfig.image_size must be 32 or 64, got {}",
                self.image_size
            )));
        }
        let sizes = [
            ("latent_dim", self.latent_dim),
            ("encoder_channels[0]", self.encoder_channels[0]),
            ("encoder_channels[1]", self.encoder_channels[1]),
            ("encoder_hidden", self.encoder_hidden),
            ("decoder_channels[0]", self.decoder_channels[0]),
            ("decoder_channels[1]", self.decoder_channels[1]),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::usage(format!(
                "FaceScmConfig.{name} must be positive"
            )));
        }
        if !(self.pixel_scale.is_finite() && self.pixel_scale > 0.0) {
            return Err(Error::usage(format!(
                "FaceScmConfig.pixel_scale must be positive, got {}",
                self.pixel_scale
            )));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(Error::usage(format!(
                "FaceScmConfig.alpha must lie in (0, 0.5), got {}",
                self.alpha
            )));
        }
        Ok(())
    }
}

/// A training run of [`train`](super::train).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceTrainConfig {
    /// Epochs in all (a resumed model continues up to this many).
    pub epochs: usize,
    /// Faces per minibatch.
    pub batch_size: usize,
    /// Adam's learning rate for the networks.
    pub lr: f64,
    /// Adam's learning rate for the attribute mechanisms' logit tables.
    pub cpd_lr: f64,
    /// Seeds the minibatch order and the ELBO's draws.
    pub seed: u64,
}

impl Default for FaceTrainConfig {
    fn default() -> Self {
        FaceTrainConfig {
            epochs: 30,
            batch_size: 64,
            lr: 2e-3,
            cpd_lr: 5e-2,
            seed: 0,
        }
    }
}

impl FaceTrainConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::usage(
                "FaceTrainConfig.epochs and batch_size must be at least 1",
            ));
        }
        for (name, v) in [("lr", self.lr), ("cpd_lr", self.cpd_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::usage(format!(
                    "FaceTrainConfig.{name} must be positive, got {v}"
                )));
            }
        }
        Ok(())
    }
}
