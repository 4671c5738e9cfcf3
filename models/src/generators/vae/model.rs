//! The convolutional (conditional) VAE: networks, the model function and the encoder guide.

use candle_core::{DType, Device, Tensor, D};
use ppl_core::dist::{DistExt, Independent, Normal, TransformedDistribution};
use ppl_core::nn::{
    Activation, ConvDecoder, ConvDecoderConfig, ConvEncoder, ConvEncoderConfig, LocScaleHead, Mlp,
    ScaleLink,
};
use ppl_core::params::ParamStore;
use ppl_core::rng::{self, Rng};
use ppl_core::transforms::{InverseTransform, LogitTransform, Transform, TransformExt};
use ppl_core::{Error, Result};
use ppl_macros::{model, plate, sample};

use super::config::VaeConfig;
use crate::data::cartoon::Attr;
use crate::face_scm::FaceData;
use crate::generators::LatentGenerator;
use crate::training::Progress;

/// Site names of [`vae_model`](fn@vae_model) and [`vae_guide`](fn@vae_guide).
pub mod sites {
    /// The latent code, `[n, latent_dim]`.
    pub const Z: &str = "z";
    /// The image in `[0, 1]`, `[n, 3, s, s]`.
    pub const IMAGE: &str = "image";
    /// The plate over images.
    pub const DATA: &str = "data";
}

/// A convolutional VAE on `[n, 3, s, s]` images, optionally conditioned on a vector
/// `c ∈ R^m` (a conditional VAE, CVAE).
///
/// ```text
/// z ~ N(0, I_d)
/// logit(α + (1 − 2α) x) ~ N(μ(z, c), σ² I)          (σ fixed: VaeConfig::pixel_scale)
/// guide   z ~ N(m(x, c), diag s(x, c)²)
/// ```
///
/// The condition enters both networks: the decoder reads `[z, c]`, the encoder joins `c` to
/// its convolutional features. `m = 0` is the plain VAE (pass `None` as the condition). The
/// likelihood is the face SCM's logit-normal (a proper density on `(0, 1)` pixels, unlike a
/// Bernoulli on grey levels); images made by the model are its noise-free output
/// `logit⁻¹(μ(z, c))`.
///
/// Usage: build with [`ConvVae::new`], fit with [`train`](super::train) on images (and, for a
/// CVAE, conditions from [`condition_tensor`](super::condition_tensor)), then reconstruct with
/// [`reconstruct`](Self::reconstruct), draw with [`LatentGenerator::generate`] (plain VAE, or
/// a CVAE with a [default condition](Self::set_default_condition)) or
/// [`generate_with`](Self::generate_with), and ask counterfactuals with
/// [`CvaeCounterfactual`](super::CvaeCounterfactual).
#[derive(Debug)]
pub struct ConvVae {
    cfg: VaeConfig,
    device: Device,
    store: ParamStore,
    progress: Progress,
    default_condition: Option<Vec<f32>>,
    decoder: ConvDecoder,
    encoder: ConvEncoder,
    enc_mlp: Mlp,
    enc_head: LocScaleHead,
}

impl ConvVae {
    /// A freshly initialised model (f32, on `device`); `seed` fixes the initial weights.
    pub fn new(cfg: VaeConfig, device: &Device, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let store = ParamStore::new();
        let vb = store.var_builder(DType::F32, device);
        let s = cfg.image_size;
        let m = cfg.cond_dim;
        ppl_core::handlers::seed(seed, || {
            let layers = cfg.decoder_channels.len();
            let start = s >> layers;
            let mut dcfg = ConvDecoderConfig::new(
                cfg.latent_dim + m,
                cfg.decoder_channels[0],
                (start, start),
                cfg.decoder_channels[1..].to_vec(),
                3,
            );
            // Batch statistics would make one image's output depend on the rest of its batch
            // (and a counterfactual on which other faces are asked alongside it).
            dcfg.batch_norm = false;
            let decoder = ConvDecoder::new(vb.pp("decoder"), dcfg)?;
            let mut ecfg = ConvEncoderConfig::new(3, (s, s), cfg.encoder_channels.clone());
            ecfg.batch_norm = false;
            let encoder = ConvEncoder::new(vb.pp("encoder").pp("conv"), ecfg)?;
            let enc_mlp = Mlp::new(
                vb.pp("encoder").pp("mlp"),
                &[encoder.feature_dim() + m, cfg.encoder_hidden],
                Activation::Relu,
            )?;
            let enc_head = LocScaleHead::new(
                vb.pp("encoder").pp("head"),
                cfg.encoder_hidden,
                cfg.latent_dim,
                ScaleLink::Softplus,
            )?
            .with_min_scale(1e-3)?;
            Ok(ConvVae {
                cfg: cfg.clone(),
                device: device.clone(),
                store: store.clone(),
                progress: Progress::default(),
                default_condition: None,
                decoder,
                encoder,
                enc_mlp,
                enc_head,
            })
        })
    }

    /// The architecture.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// The condition width `m` (0 for the plain VAE).
    pub fn cond_dim(&self) -> usize {
        self.cfg.cond_dim
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameters.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// Sets the condition [`LatentGenerator::generate`] decodes with (`m` values, e.g. `[1.0]`
    /// for "protected attribute present"); needed before a CVAE can act as a
    /// [`LatentGenerator`]. A plain VAE accepts only the empty condition.
    pub fn set_default_condition(&mut self, c: &[f64]) -> Result<()> {
        if c.len() != self.cfg.cond_dim {
            return Err(Error::shape(
                "ConvVae::set_default_condition: one value per condition column",
                &[self.cfg.cond_dim],
                &[c.len()],
            ));
        }
        if let Some(v) = c.iter().find(|v| !v.is_finite()) {
            return Err(Error::usage(format!(
                "ConvVae::set_default_condition: non-finite value {v}"
            )));
        }
        self.default_condition = Some(c.iter().map(|&v| v as f32).collect());
        Ok(())
    }

    /// The condition [`LatentGenerator::generate`] uses, if one is set (always `Some(&[])`
    /// for the plain VAE).
    pub fn default_condition(&self) -> Option<&[f32]> {
        if self.cfg.cond_dim == 0 {
            return Some(&[]);
        }
        self.default_condition.as_deref()
    }

    /// Checks a condition for `n` rows: `None` (or `[n, 0]`) for the plain VAE, `[n, m]`
    /// otherwise; returns it as f32 on the model's device.
    pub(crate) fn check_condition(
        &self,
        c: Option<&Tensor>,
        n: usize,
        what: &str,
    ) -> Result<Option<Tensor>> {
        let m = self.cfg.cond_dim;
        match c {
            None if m == 0 => Ok(None),
            None => Err(Error::usage(format!(
                "{what}: this conditional VAE needs a condition [n, {m}]"
            ))),
            Some(t) if t.dims() != [n, m] => Err(Error::shape(
                format!("{what}: condition [n, m]"),
                &[n, m],
                t.dims(),
            )),
            Some(_) if m == 0 => Ok(None),
            Some(t) => Ok(Some(t.to_dtype(DType::F32)?.to_device(&self.device)?)),
        }
    }

    pub(crate) fn check_images(&self, images: &Tensor, what: &str) -> Result<usize> {
        let s = self.cfg.image_size;
        let d = images.dims();
        if d.len() != 4 || d[1..] != [3, s, s] {
            return Err(Error::shape(
                format!("{what}: images [n, 3, s, s] at the model's size"),
                &[d.first().copied().unwrap_or(0), 3, s, s],
                d,
            ));
        }
        if d[0] == 0 {
            return Err(Error::usage(format!("{what}: no image given")));
        }
        Ok(d[0])
    }

    fn check_latents(&self, z: &Tensor, what: &str) -> Result<usize> {
        let d = z.dims();
        if d.len() != 2 || d[1] != self.cfg.latent_dim {
            return Err(Error::shape(
                format!("{what}: latent codes [n, latent_dim]"),
                &[d.first().copied().unwrap_or(0), self.cfg.latent_dim],
                d,
            ));
        }
        Ok(d[0])
    }

    /// The prior of the latent code, `N(0, I)` with event shape `[latent_dim]`.
    pub fn latent_prior(&self) -> Result<Independent> {
        Normal::standard(self.cfg.latent_dim, DType::F32, &self.device)?.to_event(1)
    }

    /// The decoder's location on the logit scale, `[n, 3, s, s]`, for codes `z` (`[n, d]`) and
    /// conditions `c` (`[n, m]`, `None` for the plain VAE).
    pub fn decode_logits(&self, z: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
        let n = self.check_latents(z, "ConvVae::decode_logits")?;
        let input = match self.check_condition(c, n, "ConvVae::decode_logits")? {
            None => z.to_dtype(DType::F32)?,
            Some(c) => Tensor::cat(&[&z.to_dtype(DType::F32)?, &c], D::Minus1)?,
        };
        self.decoder.forward_t(&input, true)
    }

    /// The noise-free images `logit⁻¹(μ(z, c))`, `[n, 3, s, s]` in `[0, 1]`.
    pub fn decode(&self, z: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
        self.to_pixels()?.forward(&self.decode_logits(z, c)?)
    }

    /// The CVAE as a generator under an explicit condition: [`decode`](Self::decode), detached.
    pub fn generate_with(&self, z: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.decode(z, c)?.detach())
    }

    /// The pixel transform `x = logit⁻¹_α(y)` from the logit scale to `[0, 1]`.
    pub fn to_pixels(&self) -> Result<InverseTransform> {
        Ok(LogitTransform::new(self.cfg.alpha)?.inv())
    }

    /// The image likelihood given its location on the logit scale (event shape `[3, s, s]`).
    pub fn image_dist(&self, logits: &Tensor) -> Result<TransformedDistribution> {
        TransformedDistribution::new(
            Normal::new(logits, self.cfg.pixel_scale)?.to_event(3)?,
            vec![self.to_pixels()?.shared()],
        )
    }

    /// The guide's `(loc, scale)` of `q(z | x, c)` for images `[n, 3, s, s]` in `[0, 1]` and
    /// conditions `[n, m]` (`None` for the plain VAE).
    pub fn encode(&self, images: &Tensor, c: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let n = self.check_images(images, "ConvVae::encode")?;
        let c = self.check_condition(c, n, "ConvVae::encode")?;
        let h = self
            .encoder
            .forward_t(&images.to_dtype(DType::F32)?, true)?;
        let h = match c {
            None => h,
            Some(c) => Tensor::cat(&[&h, &c], D::Minus1)?,
        };
        let h = Activation::Relu.apply(&self.enc_mlp.forward(&h)?)?;
        self.enc_head.forward(&h)
    }

    /// Reconstructions `[n, 3, s, s]` in `[0, 1]`: decode the posterior mean with the same
    /// condition (detached).
    pub fn reconstruct(&self, images: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
        let (loc, _) = self.encode(images, c)?;
        Ok(self.decode(&loc, c)?.detach())
    }
}

impl LatentGenerator for ConvVae {
    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_size(&self) -> usize {
        self.cfg.image_size
    }

    fn sample_latents(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        rng::standard_normal(rng, (n, self.cfg.latent_dim), DType::F32, &self.device)
    }

    /// Decodes with no condition (plain VAE) or the [default
    /// condition](ConvVae::set_default_condition) for every row; a CVAE without one is an
    /// error.
    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        let n = self.check_latents(z, "ConvVae::generate")?;
        let m = self.cfg.cond_dim;
        if m == 0 {
            return self.generate_with(z, None);
        }
        let c = self.default_condition.as_ref().ok_or_else(|| {
            Error::usage(
                "ConvVae::generate: a conditional VAE needs a default condition \
                 (set_default_condition) or generate_with",
            )
        })?;
        let c = Tensor::from_slice(c, (1, m), &self.device)?
            .broadcast_as((n, m))?
            .contiguous()?;
        self.generate_with(z, Some(&c))
    }
}

/// Protected attributes coded for the condition: `[n, k]` f32 with `2a − 1 ∈ {−1, 1}` for each
/// of `attrs` (columns in that order) of `data`, on the data's device.
pub fn condition_tensor(data: &FaceData, attrs: &[Attr]) -> Result<Tensor> {
    if attrs.is_empty() {
        return Err(Error::usage(
            "condition_tensor: name at least one attribute",
        ));
    }
    let cols = attrs
        .iter()
        .map(|a| data.binary.narrow(1, a.index(), 1))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&cols, 1)?
        .to_dtype(DType::F32)?
        .affine(2.0, -1.0)?)
}

/// The CVAE model over `n` images in the plate `data`: `z ~ N(0, I)`, then the image given
/// `(z, c)`. `condition` is `[n, m]` (`None` for the plain VAE). Returns the image.
#[model(crate = ppl_core)]
pub fn vae_model(vae: &ConvVae, condition: Option<&Tensor>, n: usize) -> Result<Tensor> {
    plate!("data", n, {
        let z = sample!(vae.latent_prior()?);
        let logits = vae.decode_logits(&z, condition)?;
        let image = sample!(vae.image_dist(&logits)?);
        Ok(image)
    })
}

/// The amortised guide `q(z | x, c)` over the same plate as [`vae_model`](fn@vae_model): images
/// `[n, 3, s, s]` in `[0, 1]` and conditions `[n, m]` (`None` for the plain VAE).
#[model(crate = ppl_core)]
pub fn vae_guide(vae: &ConvVae, image: &Tensor, condition: Option<&Tensor>) -> Result<Tensor> {
    let n = image.dim(0)?;
    plate!("data", n, {
        let (loc, scale) = vae.encode(image, condition)?;
        let z = sample!(Normal::new(&loc, &scale)?.to_event(1)?);
        Ok(z)
    })
}

impl crate::training::Trainable for ConvVae {
    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }

    fn progress_mut(&mut self) -> &mut Progress {
        &mut self.progress
    }
}
