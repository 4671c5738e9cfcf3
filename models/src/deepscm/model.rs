//! The Morpho DeepSCM: its mechanisms, the model `t → i → x ← z` and the encoder guide.

use candle_core::{DType, Device, Tensor, D};
use ppl_core::dist::{
    ConditionalTransformedDistribution, DistExt, Independent, Normal, TransformedDistribution,
};
use ppl_core::nn::{
    Activation, ConvDecoder, ConvDecoderConfig, ConvEncoder, ConvEncoderConfig, LocScaleHead, Mlp,
    ScaleLink,
};
use ppl_core::params::ParamStore;
use ppl_core::transforms::{
    AffineTransform, ExpTransform, LearnableAffine, LogitTransform, MlpConditionalAffine,
    SigmoidTransform, Spline, SplineConfig, Transform, TransformExt, TransformStep,
};
use ppl_core::{Error, Result};
use ppl_macros::{deterministic, model, plate, sample};

use crate::scm_common::broadcast_cat;
use crate::training::Progress;

use super::config::{ScmConfig, Variant};
use super::scale::{
    intensity_input, thickness_input, INTENSITY_LOW, INTENSITY_SPAN, LOG_THICKNESS_LOC,
    LOG_THICKNESS_SCALE,
};
use crate::data::morpho::SIZE;

/// Site names of the model (and of the guide's `z`).
pub mod sites {
    /// Stroke thickness in pixels, `[n, 1]`.
    pub const THICKNESS: &str = "thickness";
    /// Stroke intensity in grey levels, `[n, 1]`.
    pub const INTENSITY: &str = "intensity";
    /// The latent code, `[n, latent_dim]`.
    pub const Z: &str = "z";
    /// The image in `[0, 1]` (grey level / 255), `[n, 1, 28, 28]`.
    pub const IMAGE: &str = "image";
    /// Deterministic: the image mechanism's noise-free output `logit⁻¹(μ(z, t, i))`, `[n, 1, 28, 28]`.
    pub const IMAGE_LOC: &str = "image_loc";
    /// The plate over images.
    pub const DATA: &str = "data";
}

/// A Morpho DeepSCM: the mechanisms of thickness, intensity and image, the amortised encoder,
/// their parameters (in [`store`](Self::store)) and the optimiser state of training.
///
/// Mechanisms (see [`scale`](super::scale) for the fixed normalisations `t̃`, `ĩ`):
///
/// ```text
/// u_t ~ N(0,1)   t = exp(0.88 + 0.25 · spline_t(u_t))
/// u_i ~ N(0,1)   i = 64 + 191 · sigmoid(a(t̃) + exp(b(t̃)) · u_i)        Full (MLP a, b)
///                i = 64 + 191 · sigmoid(affine(spline_i(u_i)))        Independent, Conditional
/// z ~ N(0, I)
/// ε ~ N(0, I)    logit(α + (1 − 2α) x) = μ(z, t̃, ĩ) + σ ε                 Conditional, Full
///                logit(α + (1 − 2α) x) = μ(z) + σ ε                      Independent
/// guide          z ~ N(m(x, t̃, ĩ), s(x, t̃, ĩ))                            all variants
/// ```
///
/// `μ` is a convolutional decoder (7×7 → 14×14 → 28×28), the guide a convolutional encoder
/// (28 → 14 → 7) whose features are joined with `(t̃, ĩ)` in an MLP.
#[derive(Debug)]
pub struct DeepScm {
    cfg: ScmConfig,
    device: Device,
    store: ParamStore,
    progress: Progress,
    t_spline: Spline,
    i_spline: Option<Spline>,
    i_affine: Option<LearnableAffine>,
    i_cond: Option<MlpConditionalAffine>,
    decoder: ConvDecoder,
    encoder: ConvEncoder,
    enc_mlp: Mlp,
    enc_head: LocScaleHead,
}

impl DeepScm {
    /// A freshly initialised model (f32, on `device`); `seed` fixes the initial weights.
    pub fn new(cfg: ScmConfig, device: &Device, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let store = ParamStore::new();
        let vb = store.var_builder(DType::F32, device);
        let spline_cfg = SplineConfig {
            count_bins: cfg.spline_bins,
            ..SplineConfig::default()
        };
        let c_in = if cfg.variant.image_has_parents() {
            2
        } else {
            0
        };
        ppl_core::handlers::seed(seed, || {
            let t_spline = Spline::new(vb.pp("thickness").pp("spline"), 1, spline_cfg)?;
            let (i_spline, i_affine, i_cond) = if cfg.variant.intensity_has_parent() {
                let mech = MlpConditionalAffine::new(
                    vb.pp("intensity").pp("affine"),
                    1,
                    1,
                    &cfg.flow_hidden,
                )?;
                (None, None, Some(mech))
            } else {
                let s = Spline::new(vb.pp("intensity").pp("spline"), 1, spline_cfg)?;
                let a = LearnableAffine::new(vb.pp("intensity").pp("affine"), 1)?;
                (Some(s), Some(a), None)
            };
            let [c0, c1] = cfg.decoder_channels;
            let mut dcfg = ConvDecoderConfig::new(
                cfg.latent_dim + c_in,
                c0,
                (SIZE / 4, SIZE / 4),
                vec![c1],
                1,
            );
            // Batch statistics would couple the units of a batch (and the worlds of a
            // counterfactual): the mechanism of one image must depend on that image only.
            dcfg.batch_norm = false;
            let decoder = ConvDecoder::new(vb.pp("decoder"), dcfg)?;
            // Start the output at the background level logit(α) (most pixels are empty), so the
            // first steps fit strokes instead of the blank page.
            let bias = store
                .entry("decoder.deconv1.bias")
                .ok_or_else(|| Error::usage("DeepScm: the decoder's output bias is missing"))?;
            let background = if cfg.shading && cfg.variant.image_has_parents() {
                // A coverage logit of −4 (2% ink): the shaded image starts near α too.
                -4.0
            } else {
                (cfg.alpha / (1.0 - cfg.alpha)).ln()
            };
            let b = bias.var.as_tensor().ones_like()?.affine(background, 0.0)?;
            bias.var.set(&b)?;
            let mut ecfg = ConvEncoderConfig::new(1, (SIZE, SIZE), cfg.encoder_channels.to_vec());
            ecfg.batch_norm = false;
            let encoder = ConvEncoder::new(vb.pp("encoder").pp("conv"), ecfg)?;
            let enc_mlp = Mlp::new(
                vb.pp("encoder").pp("mlp"),
                &[encoder.feature_dim() + 2, cfg.encoder_hidden],
                Activation::Relu,
            )?;
            let enc_head = LocScaleHead::new(
                vb.pp("encoder").pp("head"),
                cfg.encoder_hidden,
                cfg.latent_dim,
                ScaleLink::Softplus,
            )?
            .with_min_scale(1e-3)?;
            Ok(DeepScm {
                progress: Progress::default(),
                t_spline,
                i_spline,
                i_affine,
                i_cond,
                decoder,
                encoder,
                enc_mlp,
                enc_head,
                cfg: cfg.clone(),
                device: device.clone(),
                store: store.clone(),
            })
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ScmConfig {
        &self.cfg
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.cfg.variant
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameters (save and load checkpoints with [`ParamStore::save`] / [`ParamStore::load`]).
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    fn scalar_base(&self) -> Result<Normal> {
        Normal::standard(1, DType::F32, &self.device)
    }

    /// The thickness mechanism `p(t)` (event shape `[1]`, pixels).
    pub fn thickness_dist(&self) -> Result<Independent> {
        TransformedDistribution::new(
            self.scalar_base()?,
            vec![
                self.t_spline.clone().shared(),
                AffineTransform::new(LOG_THICKNESS_LOC, LOG_THICKNESS_SCALE)?.shared(),
                ExpTransform.shared(),
            ],
        )?
        .to_event(1)
    }

    /// The intensity mechanism `p(i | t)` (Full) or `p(i)` (event shape `[1]`, grey levels);
    /// `thickness` is `[.., 1]` in pixels.
    pub fn intensity_dist(&self, thickness: &Tensor) -> Result<Independent> {
        let dist = match (&self.i_cond, &self.i_spline, &self.i_affine) {
            (Some(cond), _, _) => ConditionalTransformedDistribution::new(
                self.scalar_base()?,
                vec![
                    TransformStep::conditional(cond.clone()),
                    TransformStep::plain(SigmoidTransform),
                    TransformStep::plain(AffineTransform::new(INTENSITY_LOW, INTENSITY_SPAN)?),
                ],
            )
            .condition(&thickness_input(thickness)?)?,
            (None, Some(spline), Some(affine)) => TransformedDistribution::new(
                self.scalar_base()?,
                vec![
                    spline.clone().shared(),
                    affine.clone().shared(),
                    SigmoidTransform.shared(),
                    AffineTransform::new(INTENSITY_LOW, INTENSITY_SPAN)?.shared(),
                ],
            )?,
            _ => return Err(Error::usage("DeepScm: intensity mechanism missing")),
        };
        dist.to_event(1)
    }

    /// The prior of the latent code, `N(0, I)` with event shape `[latent_dim]`.
    pub fn latent_prior(&self) -> Result<Independent> {
        Normal::standard(self.cfg.latent_dim, DType::F32, &self.device)?.to_event(1)
    }

    fn parents(&self, thickness: &Tensor, intensity: &Tensor) -> Result<[Tensor; 2]> {
        Ok([thickness_input(thickness)?, intensity_input(intensity)?])
    }

    /// The image mechanism's location `μ(z, t̃, ĩ)` on the logit scale, `(.., 1, 28, 28)`;
    /// the leading dims of `z` (`[.., latent_dim]`), `thickness` and `intensity` (`[.., 1]`)
    /// broadcast (counterfactual worlds).
    pub fn image_logits(
        &self,
        z: &Tensor,
        thickness: &Tensor,
        intensity: &Tensor,
    ) -> Result<Tensor> {
        let input = if self.cfg.variant.image_has_parents() {
            let [t, i] = self.parents(thickness, intensity)?;
            broadcast_cat(&[z, &t, &i], "DeepScm")?
        } else {
            z.clone()
        };
        let out = self.decoder.forward_t(&input, true)?;
        if !(self.cfg.shading && self.cfg.variant.image_has_parents()) {
            return Ok(out);
        }
        // x̄ = coverage · i / 255 on [0, 1], then y = logit(α + (1 − 2α) x̄).
        let alpha = self.cfg.alpha;
        let level = (intensity / 255.0)?
            .unsqueeze(D::Minus1)?
            .unsqueeze(D::Minus1)?;
        let mean = candle_nn::ops::sigmoid(&out)?.broadcast_mul(&level)?;
        let p = mean.affine(1.0 - 2.0 * alpha, alpha)?;
        Ok((p.log()? - p.affine(-1.0, 1.0)?.log()?)?)
    }

    /// The pixel transform `x = logit⁻¹_α(y)` from the logit scale to `[0, 1]`.
    pub fn to_pixels(&self) -> Result<ppl_core::transforms::InverseTransform> {
        Ok(LogitTransform::new(self.cfg.alpha)?.inv())
    }

    /// The image mechanism `p(x | z, t, i)` given its location on the logit scale (event shape
    /// `[1, 28, 28]`, values in `[0, 1]`).
    pub fn image_dist(&self, logits: &Tensor) -> Result<TransformedDistribution> {
        TransformedDistribution::new(
            Normal::new(logits, self.cfg.pixel_scale)?.to_event(3)?,
            vec![self.to_pixels()?.shared()],
        )
    }

    /// The guide's `(loc, scale)` of `q(z | x, t, i)` for images `[n, 1, 28, 28]` in `[0, 1]`
    /// and attributes `[n, 1]`.
    pub fn encode(
        &self,
        image: &Tensor,
        thickness: &Tensor,
        intensity: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let h = self.encoder.forward_t(image, true)?;
        let [t, i] = self.parents(thickness, intensity)?;
        let h = Tensor::cat(&[&h, &t, &i], D::Minus1)?;
        let h = Activation::Relu.apply(&self.enc_mlp.forward(&h)?)?;
        self.enc_head.forward(&h)
    }
}

/// The Morpho SCM over `n` images: `thickness → intensity → image ← z` in the plate `data`.
/// Returns the image (`[n, 1, 28, 28]`, or with world dims under a world handler). Observe it
/// with `condition` on the sites of [`sites`].
#[model(crate = ppl_core)]
pub fn morpho_scm(scm: &DeepScm, n: usize) -> Result<Tensor> {
    plate!("data", n, {
        let thickness = sample!(scm.thickness_dist()?);
        let intensity = sample!(scm.intensity_dist(&thickness)?);
        let z = sample!(scm.latent_prior()?);
        let logits = scm.image_logits(&z, &thickness, &intensity)?;
        let image_loc = deterministic!(scm.to_pixels()?.forward(&logits)?);
        let image = sample!(scm.image_dist(&logits)?);
        let _ = image_loc;
        Ok(image)
    })
}

/// The amortised guide `q(z | x, t, i)` over the same plate as [`morpho_scm`]: images
/// `[n, 1, 28, 28]` in `[0, 1]`, thickness and intensity `[n, 1]`.
#[model(crate = ppl_core)]
pub fn encoder_guide(
    scm: &DeepScm,
    image: &Tensor,
    thickness: &Tensor,
    intensity: &Tensor,
) -> Result<Tensor> {
    let n = image.dim(0)?;
    plate!("data", n, {
        let (loc, scale) = scm.encode(image, thickness, intensity)?;
        let z = sample!(Normal::new(&loc, &scale)?.to_event(1)?);
        Ok(z)
    })
}

impl crate::training::Trainable for DeepScm {
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
