//! The shape of a β-intact-VAE (covariates, treatment, network sizes, β, KL target) and of its
//! training run.

use ppl_core::{Error, Result};

use crate::data::cartoon::{Attr, SIZE};

/// What the β-weighted KL term of the loss pulls the posterior `q(z | y, x, t)` towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlTarget {
    /// The learned conditional prior `p(z | x)` (the method: the prior carries the covariates'
    /// information, so `z` need not, and the decoder's `t` input stays informative).
    LearnedPrior,
    /// `N(0, I)`: a plain conditional VAE's prior, for comparison (the prior network is then
    /// unused).
    StandardNormal,
}

/// The outcome's pixel noise around the decoder's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelNoise {
    /// `Laplace(ŷ, b)`: the decoder fits the conditional median (sharp edges; what a mean
    /// absolute error rewards). The default.
    Laplace,
    /// `N(ŷ, σ)`: the decoder fits the conditional mean (an uncertain edge is smeared).
    Normal,
}

/// The architecture and objective of an [`IntactVae`](super::IntactVae).
#[derive(Debug, Clone, PartialEq)]
pub struct IntactConfig {
    /// Side of the modelled images: 16, 32 or 64 (the data's 64×64 faces average-pooled).
    pub image_size: usize,
    /// The covariates `x` (binary attributes, fed as 0/1), e.g. Young and Male.
    pub covariates: Vec<Attr>,
    /// The binary treatment `t`; its parents should be among the covariates (no hidden
    /// confounding) and it should have no descendants among the image's other attributes for
    /// the true counterfactual to change only the treatment's pixels.
    pub treatment: Attr,
    /// Dimension of the latent code `z`.
    pub latent_dim: usize,
    /// Channels of the encoder's two stride-2 convolutions.
    pub encoder_channels: [usize; 2],
    /// Width of the encoder's hidden layer (image features joined with `x` and `t`).
    pub encoder_hidden: usize,
    /// Channels of the decoder's first feature map (at side `s/4`) and of its hidden
    /// transposed convolution.
    pub decoder_channels: [usize; 2],
    /// Width of the prior network's hidden layer.
    pub prior_hidden: usize,
    /// The pixel noise's family.
    pub pixel_noise: PixelNoise,
    /// The pixel noise's scale (Laplace `b` or Normal `σ`; pixels in `[0, 1]`; fixed, not
    /// learned). It sets the reconstruction term's weight against β: the loss is
    /// `Σ |y − ŷ| / b + β·KL` (Laplace) or `Σ (y − ŷ)² / (2σ²) + β·KL` (Normal) up to a
    /// constant.
    pub pixel_scale: f64,
    /// The KL term's weight β (> 0), imposed with the `scale` handler on the `z` site of both
    /// model and guide.
    pub beta: f64,
    /// What the KL term pulls the posterior towards.
    pub kl_target: KlTarget,
}

impl Default for IntactConfig {
    fn default() -> Self {
        IntactConfig {
            image_size: 16,
            covariates: vec![Attr::Young, Attr::Male],
            treatment: Attr::Eyeglasses,
            latent_dim: 8,
            encoder_channels: [16, 32],
            encoder_hidden: 64,
            decoder_channels: [32, 16],
            prior_hidden: 32,
            pixel_noise: PixelNoise::Laplace,
            pixel_scale: 0.05,
            beta: 1.0,
            kl_target: KlTarget::LearnedPrior,
        }
    }
}

impl IntactConfig {
    /// How much the data's 64×64 images are average-pooled to reach `image_size`.
    pub fn pool(&self) -> usize {
        SIZE / self.image_size.max(1)
    }

    /// Checks every field; the errors name the field.
    pub fn validate(&self) -> Result<()> {
        if ![16, 32, 64].contains(&self.image_size) {
            return Err(Error::param(
                "IntactConfig",
                "image_size",
                format!("must be 16, 32 or 64, got {}", self.image_size),
            ));
        }
        if self.covariates.is_empty() {
            return Err(Error::param(
                "IntactConfig",
                "covariates",
                "needs at least one covariate",
            ));
        }
        if self.covariates.contains(&self.treatment) {
            return Err(Error::param(
                "IntactConfig",
                "treatment",
                format!("{} is also a covariate", self.treatment.name()),
            ));
        }
        for (i, a) in self.covariates.iter().enumerate() {
            if self.covariates[..i].contains(a) {
                return Err(Error::param(
                    "IntactConfig",
                    "covariates",
                    format!("{} is listed twice", a.name()),
                ));
            }
        }
        let sizes = [
            ("latent_dim", self.latent_dim),
            ("encoder_channels[0]", self.encoder_channels[0]),
            ("encoder_channels[1]", self.encoder_channels[1]),
            ("encoder_hidden", self.encoder_hidden),
            ("decoder_channels[0]", self.decoder_channels[0]),
            ("decoder_channels[1]", self.decoder_channels[1]),
            ("prior_hidden", self.prior_hidden),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::param("IntactConfig", name, "must be positive"));
        }
        for (name, v) in [("pixel_scale", self.pixel_scale), ("beta", self.beta)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::param(
                    "IntactConfig",
                    name,
                    format!("must be positive and finite, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// A training run of [`train`](super::train).
#[derive(Debug, Clone, PartialEq)]
pub struct IntactTrainConfig {
    /// Epochs in all.
    pub epochs: usize,
    /// Faces per minibatch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the minibatch order and the ELBO's draws.
    pub seed: u64,
}

impl Default for IntactTrainConfig {
    fn default() -> Self {
        IntactTrainConfig {
            epochs: 20,
            batch_size: 64,
            lr: 2e-3,
            seed: 0,
        }
    }
}

impl IntactTrainConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::param(
                "IntactTrainConfig",
                "epochs/batch_size",
                "must be at least 1",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::param(
                "IntactTrainConfig",
                "lr",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        Ok(())
    }
}
