//! The β-intact-VAE: learned prior `p(z | x)`, decoder `p(y | z, t)`, encoder
//! `q(z | y, x, t)`, the model function and the guide.

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use ppl_core::dist::{DistExt, Independent, Normal};
use ppl_core::handlers::scale;
use ppl_core::nn::{
    Activation, ConvDecoder, ConvDecoderConfig, ConvEncoder, ConvEncoderConfig, LocScaleHead, Mlp,
    ScaleLink,
};
use ppl_core::params::ParamStore;
use ppl_core::{Error, Result};
use ppl_macros::{model, plate, sample};

use super::config::{IntactConfig, KlTarget, PixelNoise};
use super::laplace::Laplace;

/// Site names of [`intact_model`] and [`intact_guide`].
pub mod sites {
    /// The latent code, `[n, latent_dim]`; its log-density is scaled by β in model and guide.
    pub const Z: &str = "z";
    /// The outcome image in `[0, 1]`, `[n, 3, s, s]`.
    pub const Y: &str = "y";
    /// The plate over units.
    pub const DATA: &str = "data";
}

/// A convolutional β-intact-VAE (Wu & Fukumizu 2021) for image outcomes.
///
/// ```text
/// z ~ p(z | x) = N(μ_p(x), σ_p(x))          (KlTarget::LearnedPrior; N(0, I) for StandardNormal)
/// y ~ Laplace(sigmoid(D(z, t)), pixel_scale)  the decoder sees z and t only, never x (or Normal)
/// guide  z ~ q(z | y, x, t) = N(μ_q, σ_q)    conv features of y joined with x and t
/// loss   −E_q[log p(y | z, t)] + β · KL(q ‖ p)   (β through the `scale` handler on `z`)
/// ```
///
/// Usage: build with [`IntactVae::new`], train on [`IntactData`](super::IntactData) with
/// [`train`](super::train), then ask [`counterfactual`](super::counterfactual) for each unit's
/// image under the other treatment (abduct `z` with the factual `t`, decode with the flipped
/// or extrapolated one) and score it with [`evaluate`](super::evaluate) against the data's
/// true counterfactuals.
#[derive(Debug)]
pub struct IntactVae {
    cfg: IntactConfig,
    device: Device,
    store: ParamStore,
    prior_mlp: Mlp,
    prior_head: LocScaleHead,
    decoder: ConvDecoder,
    encoder: ConvEncoder,
    enc_mlp: Mlp,
    enc_head: LocScaleHead,
}

impl IntactVae {
    /// A freshly initialised model (f32, on `device`); `seed` fixes the initial weights.
    pub fn new(cfg: IntactConfig, device: &Device, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let store = ParamStore::new();
        let vb = store.var_builder(DType::F32, device);
        let s = cfg.image_size;
        let k = cfg.covariates.len();
        ppl_core::handlers::seed(seed, || {
            let prior_mlp = Mlp::new(
                vb.pp("prior").pp("mlp"),
                &[k, cfg.prior_hidden],
                Activation::Relu,
            )?;
            let prior_head = LocScaleHead::new(
                vb.pp("prior").pp("head"),
                cfg.prior_hidden,
                cfg.latent_dim,
                ScaleLink::Softplus,
            )?
            .with_min_scale(1e-3)?;
            let [c0, c1] = cfg.decoder_channels;
            let mut dcfg =
                ConvDecoderConfig::new(cfg.latent_dim + 1, c0, (s / 4, s / 4), vec![c1], 3);
            // Batch statistics would make one unit's image depend on the rest of its batch.
            dcfg.batch_norm = false;
            let decoder = ConvDecoder::new(vb.pp("decoder"), dcfg)?;
            let mut ecfg = ConvEncoderConfig::new(3, (s, s), cfg.encoder_channels.to_vec());
            ecfg.batch_norm = false;
            let encoder = ConvEncoder::new(vb.pp("encoder").pp("conv"), ecfg)?;
            let enc_mlp = Mlp::new(
                vb.pp("encoder").pp("mlp"),
                &[encoder.feature_dim() + k + 1, cfg.encoder_hidden],
                Activation::Relu,
            )?;
            let enc_head = LocScaleHead::new(
                vb.pp("encoder").pp("head"),
                cfg.encoder_hidden,
                cfg.latent_dim,
                ScaleLink::Softplus,
            )?
            .with_min_scale(1e-3)?;
            Ok(IntactVae {
                cfg: cfg.clone(),
                device: device.clone(),
                store: store.clone(),
                prior_mlp,
                prior_head,
                decoder,
                encoder,
                enc_mlp,
                enc_head,
            })
        })
    }

    /// The architecture and objective.
    pub fn config(&self) -> &IntactConfig {
        &self.cfg
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameters.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// Writes the parameters to `path` (safetensors).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.store.save(path)
    }

    /// Reads parameters written by [`save`](Self::save) from a model of the same configuration.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        self.store.load(path)
    }

    /// Checks `x` `[n, k]` and `t` `[n]` against each other and the configuration; returns `n`.
    pub fn check_xt(&self, x: &Tensor, t: &Tensor) -> Result<usize> {
        let k = self.cfg.covariates.len();
        let n = match x.dims() {
            [n, kk] if *kk == k => *n,
            d => {
                let n = d.first().copied().unwrap_or(0);
                return Err(Error::shape("IntactVae: covariates x", &[n, k], d));
            }
        };
        if t.dims() != [n] {
            return Err(Error::shape("IntactVae: treatment t", &[n], t.dims()));
        }
        Ok(n)
    }

    /// Checks images `y` against the configuration and `n` units.
    pub fn check_y(&self, y: &Tensor, n: usize) -> Result<()> {
        let s = self.cfg.image_size;
        if y.dims() != [n, 3, s, s] {
            return Err(Error::shape("IntactVae: images y", &[n, 3, s, s], y.dims()));
        }
        Ok(())
    }

    /// The learned prior's `(loc, scale)` of `p(z | x)` for covariates `[n, k]`, each
    /// `[n, latent_dim]`.
    pub fn prior_params(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = Activation::Relu.apply(&self.prior_mlp.forward(&x.to_dtype(DType::F32)?)?)?;
        self.prior_head.forward(&h)
    }

    /// The prior of `z` that the KL term targets, event shape `[latent_dim]`: `p(z | x)` or
    /// `N(0, I)` by the configuration's [`KlTarget`].
    pub fn prior(&self, x: &Tensor) -> Result<Independent> {
        match self.cfg.kl_target {
            KlTarget::LearnedPrior => {
                let (loc, scale) = self.prior_params(x)?;
                Normal::new(&loc, &scale)?.to_event(1)
            }
            KlTarget::StandardNormal => {
                let n = x.dim(0)?;
                Normal::new(
                    Tensor::zeros((n, self.cfg.latent_dim), DType::F32, &self.device)?,
                    1.0,
                )?
                .to_event(1)
            }
        }
    }

    /// The decoder's mean image `sigmoid(D(z, t))`, `[n, 3, s, s]` in `[0, 1]`, for `z`
    /// `[n, latent_dim]` and treatments `[n]`; `t` may be any real (extrapolated treatments).
    pub fn decode(&self, z: &Tensor, t: &Tensor) -> Result<Tensor> {
        let n = z.dim(0)?;
        if z.dims() != [n, self.cfg.latent_dim] {
            return Err(Error::shape(
                "IntactVae::decode: z",
                &[n, self.cfg.latent_dim],
                z.dims(),
            ));
        }
        if t.dims() != [n] {
            return Err(Error::shape("IntactVae::decode: t", &[n], t.dims()));
        }
        let input = Tensor::cat(&[z, &t.to_dtype(DType::F32)?.unsqueeze(1)?], D::Minus1)?;
        Ok(candle_nn::ops::sigmoid(
            &self.decoder.forward_t(&input, true)?,
        )?)
    }

    /// The outcome's distribution around the decoder's output (event shape `[3, s, s]`).
    pub fn outcome_dist(&self, mean: &Tensor) -> Result<Independent> {
        match self.cfg.pixel_noise {
            PixelNoise::Laplace => Laplace::new(mean, self.cfg.pixel_scale)?.to_event(3),
            PixelNoise::Normal => Normal::new(mean, self.cfg.pixel_scale)?.to_event(3),
        }
    }

    /// The encoder's `(loc, scale)` of `q(z | y, x, t)`, each `[n, latent_dim]`.
    pub fn encode(&self, y: &Tensor, x: &Tensor, t: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = self.check_xt(x, t)?;
        self.check_y(y, n)?;
        let h = self.encoder.forward_t(y, true)?;
        let h = Tensor::cat(
            &[
                &h,
                &x.to_dtype(DType::F32)?,
                &t.to_dtype(DType::F32)?.unsqueeze(1)?,
            ],
            D::Minus1,
        )?;
        let h = Activation::Relu.apply(&self.enc_mlp.forward(&h)?)?;
        self.enc_head.forward(&h)
    }
}

/// The generative model over `n` units in the plate `data`: `z ~ prior(x)` with its
/// log-density scaled by β, then the image `y ~ N(decode(z, t), pixel_scale)`. Returns `y`.
/// Condition the site [`sites::Y`] on observed images to train.
#[model(crate = ppl_core)]
pub fn intact_model(vae: &IntactVae, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    let n = vae.check_xt(x, t)?;
    plate!("data", n, {
        let prior = vae.prior(x)?;
        let z = scale(vae.config().beta, || Ok(sample!("z", prior)))?;
        let mean = vae.decode(&z, t)?;
        let y = sample!(vae.outcome_dist(&mean)?);
        Ok(y)
    })
}

/// The amortised guide `q(z | y, x, t)` over the same plate as [`intact_model`], its `z`
/// log-density scaled by the same β, so that the ELBO's latent terms are
/// `β · (log p(z | x) − log q(z | y, x, t))`, a one-sample estimate of `−β · KL`.
#[model(crate = ppl_core)]
pub fn intact_guide(vae: &IntactVae, y: &Tensor, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    let n = vae.check_xt(x, t)?;
    vae.check_y(y, n)?;
    plate!("data", n, {
        let (loc, scale_) = vae.encode(y, x, t)?;
        let q = Normal::new(&loc, &scale_)?.to_event(1)?;
        let z = scale(vae.config().beta, || Ok(sample!("z", q)))?;
        Ok(z)
    })
}
