//! The face SCM: learnable attribute mechanisms on the data's DAG, a conditional VAE image
//! mechanism, the model function and the encoder guide.

use candle_core::{DType, Device, Tensor, D};
use ppl_core::dist::{
    Bernoulli, Categorical, DistExt, Independent, Normal, TransformedDistribution,
};
use ppl_core::nn::{
    Activation, ConvDecoder, ConvDecoderConfig, ConvEncoder, ConvEncoderConfig, LocScaleHead, Mlp,
    ScaleLink,
};
use ppl_core::params::{Init, ParamStore};
use ppl_core::transforms::{LogitTransform, Transform, TransformExt};
use ppl_core::{Error, Result};
use ppl_macros::{deterministic, model, plate, sample};

use crate::scm_common::broadcast_cat;
use crate::training::Progress;

use super::config::FaceScmConfig;
use crate::data::cartoon::{Attr, Cpds, EyeColour, HairColour, SkinTone, NUM_ATTRS};

/// Site names of the model (the binary attributes are named by [`Attr::name`]).
pub mod sites {
    /// Iris colour index (see [`EyeColour`](crate::data::cartoon::EyeColour)), `[n]`.
    pub const EYE: &str = "eye_colour";
    /// Skin tone index, `[n]`.
    pub const SKIN: &str = "skin_tone";
    /// Hair colour index, `[n]`.
    pub const HAIR: &str = "hair_colour";
    /// The latent code, `[n, latent_dim]`.
    pub const Z: &str = "z";
    /// The image in `[0, 1]`, `[n, 3, s, s]`.
    pub const IMAGE: &str = "image";
    /// Deterministic: the image mechanism's noise-free output `logit⁻¹(μ(z, attributes))`.
    pub const IMAGE_LOC: &str = "image_loc";
    /// The plate over faces.
    pub const DATA: &str = "data";
    /// The colour sites in the order of [`COLOUR_SIZES`](super::COLOUR_SIZES).
    pub const COLOURS: [&str; 3] = [EYE, SKIN, HAIR];
}

/// Categories of eye colour, skin tone and hair colour.
pub const COLOUR_SIZES: [usize; 3] = [
    EyeColour::ALL.len(),
    SkinTone::ALL.len(),
    HairColour::ALL.len(),
];

/// Width of the decoder's and encoder's attribute input: the nine binary attributes as 0/1 and
/// the three colours one-hot.
pub const COND_DIM: usize =
    NUM_ATTRS + EyeColour::ALL.len() + SkinTone::ALL.len() + HairColour::ALL.len();

/// A deep SCM of the cartoon faces: the attribute mechanisms, the image mechanism, the
/// amortised encoder and the optimiser state of training.
///
/// ```text
/// V ~ Bernoulli(logits = θ_V[parents(V)])   for V in Attr::ALL (topological), parents as in the data
/// C ~ Categorical(logits = φ_C)              for C in eye colour, skin tone, hair colour (roots)
/// z ~ N(0, I)
/// ε ~ N(0, I)    logit(α + (1 − 2α) x) = μ(z, V, onehot(C)) + σ ε       (σ fixed)
/// guide          z ~ N(m(x, V, C), s(x, V, C))
/// ```
///
/// `θ_V` holds one logit per parent configuration (the data's [`Cpds`] layout: first parent
/// most significant); it is evaluated as the multilinear interpolation
/// `Σ_c θ_V[c] Π_i (p_i or 1 − p_i)`, exact on 0/1 parents and differentiable. `μ` is a
/// convolutional decoder (s/4 → s/2 → s), the guide a convolutional encoder whose features are
/// joined with the attributes in an MLP.
#[derive(Debug)]
pub struct FaceScm {
    cfg: FaceScmConfig,
    device: Device,
    store: ParamStore,
    progress: Progress,
    cpd: Vec<Tensor>,
    colour_logits: Vec<Tensor>,
    decoder: ConvDecoder,
    encoder: ConvEncoder,
    enc_mlp: Mlp,
    enc_head: LocScaleHead,
}

/// The parameter name of `attr`'s logit table.
pub fn cpd_param(attr: Attr) -> String {
    format!("cpd.{}", attr.name())
}

fn colour_param(k: usize) -> String {
    format!("colour.{}", sites::COLOURS[k])
}

impl FaceScm {
    /// A freshly initialised model (f32, on `device`); `seed` fixes the initial weights. The
    /// attribute tables start at probability 1/2, the colours uniform.
    pub fn new(cfg: FaceScmConfig, device: &Device, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let store = ParamStore::new();
        let vb = store.var_builder(DType::F32, device);
        let s = cfg.image_size;
        ppl_core::handlers::seed(seed, || {
            let cpd = Attr::ALL
                .iter()
                .map(|a| {
                    store.var(
                        &cpd_param(*a),
                        1usize << a.parents().len(),
                        Init::Const(0.0),
                        DType::F32,
                        device,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let colour_logits = COLOUR_SIZES
                .iter()
                .enumerate()
                .map(|(k, &size)| {
                    store.var(&colour_param(k), size, Init::Const(0.0), DType::F32, device)
                })
                .collect::<Result<Vec<_>>>()?;
            let [c0, c1] = cfg.decoder_channels;
            let mut dcfg =
                ConvDecoderConfig::new(cfg.latent_dim + COND_DIM, c0, (s / 4, s / 4), vec![c1], 3);
            // Batch statistics would couple the faces of a batch (and the worlds of a
            // counterfactual): the mechanism of one image must depend on that image only.
            dcfg.batch_norm = false;
            let decoder = ConvDecoder::new(vb.pp("decoder"), dcfg)?;
            let mut ecfg = ConvEncoderConfig::new(3, (s, s), cfg.encoder_channels.to_vec());
            ecfg.batch_norm = false;
            let encoder = ConvEncoder::new(vb.pp("encoder").pp("conv"), ecfg)?;
            let enc_mlp = Mlp::new(
                vb.pp("encoder").pp("mlp"),
                &[encoder.feature_dim() + COND_DIM, cfg.encoder_hidden],
                Activation::Relu,
            )?;
            let enc_head = LocScaleHead::new(
                vb.pp("encoder").pp("head"),
                cfg.encoder_hidden,
                cfg.latent_dim,
                ScaleLink::Softplus,
            )?
            .with_min_scale(1e-3)?;
            Ok(FaceScm {
                cfg: cfg.clone(),
                device: device.clone(),
                store: store.clone(),
                progress: Progress::default(),
                cpd,
                colour_logits,
                decoder,
                encoder,
                enc_mlp,
                enc_head,
            })
        })
    }

    /// The architecture.
    pub fn config(&self) -> &FaceScmConfig {
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

    /// The learned tables as probabilities, in the data's [`Cpds`] layout.
    pub fn cpds(&self) -> Result<Cpds> {
        let mut out = Cpds::default();
        for a in Attr::ALL {
            let l = self.cpd[a.index()].to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let p: Vec<f64> = l.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
            out.set_table(a, &p)?;
        }
        Ok(out)
    }

    /// Overwrites the attribute tables with `cpds` (probabilities clipped to
    /// `[1e-6, 1 − 1e-6]` so the logits stay finite): the data's true tables, for analyses
    /// that isolate the image mechanism.
    pub fn set_cpds(&self, cpds: &Cpds) -> Result<()> {
        for a in Attr::ALL {
            let l: Vec<f32> = cpds
                .table(a)
                .iter()
                .map(|p| {
                    let p = p.clamp(1e-6, 1.0 - 1e-6);
                    (p / (1.0 - p)).ln() as f32
                })
                .collect();
            let t = Tensor::from_vec(l, self.cpd[a.index()].dims(), &self.device)?;
            let entry = self
                .store
                .entry(&cpd_param(a))
                .ok_or_else(|| Error::usage("FaceScm: a table parameter is missing"))?;
            entry.var.set(&t)?;
        }
        Ok(())
    }

    /// The learned colour probabilities (eye, skin, hair), each over its palette's order.
    pub fn colour_probs(&self) -> Result<[Vec<f64>; 3]> {
        let p = |k: usize| -> Result<Vec<f64>> {
            let l = &self.colour_logits[k];
            Ok(candle_nn::ops::softmax(l, D::Minus1)?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?)
        };
        Ok([p(0)?, p(1)?, p(2)?])
    }

    /// `logit P(attr = 1 | parents)` for parent values (0/1 tensors of broadcastable shapes
    /// `[.., n]`, in [`Attr::parents`] order); `n` sizes a root's logits.
    pub fn attr_logits(&self, attr: Attr, parents: &[Tensor], n: usize) -> Result<Tensor> {
        let table = &self.cpd[attr.index()];
        let k = attr.parents().len();
        if parents.len() != k {
            return Err(Error::usage(format!(
                "attr_logits: {} has {k} parents, got {} values",
                attr.name(),
                parents.len()
            )));
        }
        if k == 0 {
            return Ok(table.broadcast_as(n)?.contiguous()?);
        }
        let mut acc: Option<Tensor> = None;
        for c in 0..1usize << k {
            let mut w: Option<Tensor> = None;
            for (i, p) in parents.iter().enumerate() {
                let bit = (c >> (k - 1 - i)) & 1 == 1;
                let f = if bit { p.clone() } else { p.affine(-1.0, 1.0)? };
                w = Some(match w {
                    None => f,
                    Some(w) => w.broadcast_mul(&f)?,
                });
            }
            let w = w.ok_or_else(|| Error::usage("attr_logits: no parent"))?;
            let term = w.broadcast_mul(&table.narrow(0, c, 1)?)?;
            acc = Some(match acc {
                None => term,
                Some(a) => a.broadcast_add(&term)?,
            });
        }
        acc.ok_or_else(|| Error::usage("attr_logits: empty table"))
    }

    /// The mechanism of a binary attribute given its parents' values (see
    /// [`attr_logits`](Self::attr_logits)).
    pub fn attr_dist(&self, attr: Attr, parents: &[Tensor], n: usize) -> Result<Bernoulli> {
        Bernoulli::from_logits(self.attr_logits(attr, parents, n)?)
    }

    /// The mechanism of colour `k` (0 eye, 1 skin, 2 hair) for `n` faces.
    pub fn colour_dist(&self, k: usize, n: usize) -> Result<Categorical> {
        let l = self
            .colour_logits
            .get(k)
            .ok_or_else(|| Error::usage(format!("colour_dist: no colour {k}")))?;
        Categorical::from_logits(
            l.unsqueeze(0)?
                .broadcast_as((n, COLOUR_SIZES[k]))?
                .contiguous()?,
        )
    }

    /// The prior of the latent code, `N(0, I)` with event shape `[latent_dim]`.
    pub fn latent_prior(&self) -> Result<Independent> {
        Normal::standard(self.cfg.latent_dim, DType::F32, &self.device)?.to_event(1)
    }

    /// The image mechanism's location on the logit scale, `[.., 3, s, s]`, from `z`
    /// (`[.., latent_dim]`) and the attribute features (`[.., COND_DIM]`, see
    /// [`attribute_features`]); leading dims broadcast.
    pub fn image_logits(&self, z: &Tensor, features: &Tensor) -> Result<Tensor> {
        self.decoder
            .forward_t(&broadcast_cat(&[z, features], "FaceScm")?, true)
    }

    /// The pixel transform `x = logit⁻¹_α(y)` from the logit scale to `[0, 1]`.
    pub fn to_pixels(&self) -> Result<ppl_core::transforms::InverseTransform> {
        Ok(LogitTransform::new(self.cfg.alpha)?.inv())
    }

    /// The image mechanism given its location on the logit scale (event shape `[3, s, s]`).
    pub fn image_dist(&self, logits: &Tensor) -> Result<TransformedDistribution> {
        TransformedDistribution::new(
            Normal::new(logits, self.cfg.pixel_scale)?.to_event(3)?,
            vec![self.to_pixels()?.shared()],
        )
    }

    /// The guide's `(loc, scale)` of `q(z | x, attributes)` for images `[n, 3, s, s]` in
    /// `[0, 1]` and attribute features `[n, COND_DIM]`.
    pub fn encode(&self, image: &Tensor, features: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.encoder.forward_t(image, true)?;
        let h = Tensor::cat(&[&h, features], D::Minus1)?;
        let h = Activation::Relu.apply(&self.enc_mlp.forward(&h)?)?;
        self.enc_head.forward(&h)
    }
}

/// The networks' attribute input `[.., n, COND_DIM]`: the nine binary values (0/1, each
/// `[.., n]`, in [`Attr::ALL`] order) and the three colour indices one-hot (each `[.., n]`);
/// leading (world) dims broadcast.
pub fn attribute_features(binary: &[Tensor], colours: &[Tensor]) -> Result<Tensor> {
    if binary.len() != NUM_ATTRS || colours.len() != 3 {
        return Err(Error::usage(format!(
            "attribute_features: needs {NUM_ATTRS} binary and 3 colour values, got {} and {}",
            binary.len(),
            colours.len()
        )));
    }
    let mut parts: Vec<Tensor> = binary
        .iter()
        .map(|b| Ok(b.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?))
        .collect::<Result<_>>()?;
    for (c, &k) in colours.iter().zip(COLOUR_SIZES.iter()) {
        let classes = Tensor::arange(0f32, k as f32, c.device())?;
        let onehot = c
            .to_dtype(DType::F32)?
            .unsqueeze(D::Minus1)?
            .broadcast_eq(&classes)?
            .to_dtype(DType::F32)?;
        parts.push(onehot);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    broadcast_cat(&refs, "FaceScm")
}

/// The face SCM over `n` faces in the plate `data`: the binary attributes in topological
/// order (sites named by [`Attr::name`]), the colours, `z` and the image. Returns the image
/// (`[n, 3, s, s]`, or with world dims under a world handler).
#[model(crate = ppl_core)]
pub fn face_scm(scm: &FaceScm, n: usize) -> Result<Tensor> {
    plate!("data", n, {
        let mut binary: Vec<Tensor> = Vec::with_capacity(NUM_ATTRS);
        for a in Attr::ALL {
            let parents: Vec<Tensor> = a
                .parents()
                .iter()
                .map(|p| binary[p.index()].clone())
                .collect();
            let name = a.name();
            let v = sample!("{name}", scm.attr_dist(a, &parents, n)?);
            binary.push(v);
        }
        let mut colours: Vec<Tensor> = Vec::with_capacity(3);
        for (k, name) in sites::COLOURS.iter().enumerate() {
            colours.push(sample!("{name}", scm.colour_dist(k, n)?));
        }
        let z = sample!(scm.latent_prior()?);
        let logits = scm.image_logits(&z, &attribute_features(&binary, &colours)?)?;
        let image_loc = deterministic!(scm.to_pixels()?.forward(&logits)?);
        let image = sample!(scm.image_dist(&logits)?);
        let _ = image_loc;
        Ok(image)
    })
}

/// The amortised guide `q(z | x, attributes)` over the same plate as [`face_scm`]: images
/// `[n, 3, s, s]` in `[0, 1]` and attribute features `[n, COND_DIM]`.
#[model(crate = ppl_core)]
pub fn face_guide(scm: &FaceScm, image: &Tensor, features: &Tensor) -> Result<Tensor> {
    let n = image.dim(0)?;
    plate!("data", n, {
        let (loc, scale) = scm.encode(image, features)?;
        let z = sample!(Normal::new(&loc, &scale)?.to_event(1)?);
        Ok(z)
    })
}

impl crate::training::Trainable for FaceScm {
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
