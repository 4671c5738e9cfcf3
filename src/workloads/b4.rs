//! B4 `deepscm_morpho_step`: a DeepSCM-style Morpho model (thickness → intensity → image, with a
//! latent code) trained by SVI with an amortised conv encoder, and counterfactual images under
//! `do(t := t + 1)`, as `shared/peers/README.md` defines them.
//!
//! The model and guide are ordinary functions of the networks ([`model()`], [`guide()`]); the
//! networks' parameters live in a [`ParamStore`] ([`Morpho::new`]), so [`Svi`] with
//! [`TraceElbo`] and `Adam` trains them in place.

use crate::causal::{active_frames, gather_event, world_in, COUNTERFACTUAL, FACTUAL, TWIN};
use crate::kernels::{Conv2dConfig, ConvTranspose2dConfig};
use crate::models::data::portable::{std_normal, uniform01};
use crate::nn::{Activation, Conv2d, ConvTranspose2d, Linear};
use crate::prelude::*;
use crate::transforms::{IntoTransform, LearnableAffine, MlpConditionalAffine, SoftplusTransform};

/// Images per batch (the plate `data`).
pub const B: usize = 64;
/// The latent code's size.
pub const ZDIM: usize = 16;
/// Pixels per image side.
pub const SIDE: usize = 28;
/// The networks' parameter count (the peers' `n_params`).
pub const N_PARAMS: usize = 226_789;
/// The peers' `data_checksum`: `(pixels_on, sum_t, sum_i)`.
pub const CHECKSUM: (usize, f64, f64) = (10_013, 88.30283105373383, 63.857029765844345);

const PIX_SEED: u64 = 4004;
const TI_SEED: u64 = 4005;
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The data set: binary images `x` `(B, 1, 28, 28)`, thickness `t` and intensity `i` `(B, 1)`.
#[derive(Debug, Clone)]
pub struct Data {
    /// Pixels in `{0, 1}`.
    pub x: Tensor,
    /// Thickness.
    pub t: Tensor,
    /// Intensity.
    pub i: Tensor,
}

/// The data in host form, bit-identical to the peers': pixels (row-major `(b, 1, h, w)`), and
/// `t`, `i` computed in f64 then cast to f32.
pub fn data_host() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = uniform01(PIX_SEED, B * SIDE * SIDE)
        .into_iter()
        .map(|u| if u < 0.2 { 1.0f32 } else { 0.0 })
        .collect();
    let e = std_normal(TI_SEED, 2 * B);
    let t: Vec<f64> = e[..B]
        .iter()
        .map(|v| (1.0 + 0.5 * v).exp().ln_1p())
        .collect();
    let i = (0..B).map(|b| (0.5 + 0.4 * t[b] + 0.2 * e[B + b]) as f32);
    (x, t.iter().map(|&v| v as f32).collect(), i.collect())
}

/// `(pixels_on, sum_t, sum_i)`: the pixel count and the f64 sums of the f32 `t` and `i`.
pub fn checksum(x: &[f32], t: &[f32], i: &[f32]) -> (usize, f64, f64) {
    let sum = |v: &[f32]| v.iter().map(|&a| a as f64).sum::<f64>();
    (x.iter().filter(|&&p| p == 1.0).count(), sum(t), sum(i))
}

/// Whether a checksum matches the peers' (pixel count exactly, sums to 1e-9: numpy sums
/// pairwise, and `exp`/`log1p` may differ in the last ulp before the f32 cast).
pub fn checksum_matches(c: (usize, f64, f64)) -> bool {
    c.0 == CHECKSUM.0 && (c.1 - CHECKSUM.1).abs() < 1e-9 && (c.2 - CHECKSUM.2).abs() < 1e-9
}

/// The data as f32 tensors on `device`.
pub fn data(device: &Device) -> Result<Data> {
    let (x, t, i) = data_host();
    Ok(Data {
        x: Tensor::from_vec(x, (B, 1, SIDE, SIDE), device)?,
        t: Tensor::from_vec(t, (B, 1), device)?,
        i: Tensor::from_vec(i, (B, 1), device)?,
    })
}

fn down() -> Conv2dConfig {
    Conv2dConfig {
        padding: 1,
        stride: 2,
        ..Default::default()
    }
}

fn up() -> ConvTranspose2dConfig {
    ConvTranspose2dConfig {
        padding: 1,
        stride: 2,
        ..Default::default()
    }
}

/// `[a, b, c]` concatenated along the last dim after broadcasting their leading dims together
/// (values from the counterfactual worlds carry world dims that the latent code lacks).
fn cat_last(parts: &[&Tensor]) -> Result<Tensor> {
    let mut lead: Vec<usize> = Vec::new();
    for p in parts {
        let Some((_, l)) = p.dims().split_last() else {
            return Err(Error::usage(
                "the decoder's inputs (z, t, i) must have a feature dim, got a 0-dim tensor",
            ));
        };
        lead = crate::dist::broadcast_shapes(&lead, l)
            .ok_or_else(|| Error::shape("concatenating the decoder's inputs", &lead, l))?;
    }
    let full = parts
        .iter()
        .map(|p| {
            let mut s = lead.clone();
            s.push(p.dims()[p.rank() - 1]);
            p.broadcast_as(s)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(&full, lead.len())?)
}

/// The decoder: `concat(z, t, i)` → Linear(18, 3136) → ReLU → `(64, 7, 7)` →
/// ConvTranspose2d(64, 32) → ReLU → ConvTranspose2d(32, 1) = logits `(..., 1, 28, 28)`.
#[derive(Debug, Clone)]
pub struct Decoder {
    fc: Linear,
    deconv1: ConvTranspose2d,
    deconv2: ConvTranspose2d,
}

impl Decoder {
    /// Logits of shape `batch + (1, 28, 28)`, `batch` the broadcast of the inputs' leading dims.
    pub fn forward(&self, z: &Tensor, t: &Tensor, i: &Tensor) -> Result<Tensor> {
        let h = cat_last(&[z, t, i])?;
        let d = h.dims();
        let mut out_shape = d[..d.len() - 1].to_vec();
        let n: usize = out_shape.iter().product();
        let h = self.fc.forward(&h.reshape((n, ZDIM + 2))?)?;
        let h = crate::kernels::relu(&h)?.reshape((n, 64, 7, 7))?;
        let h = crate::kernels::relu(&self.deconv1.forward(&h)?)?;
        let logits = self.deconv2.forward(&h)?;
        out_shape.extend_from_slice(&[1, SIDE, SIDE]);
        Ok(logits.reshape(out_shape)?)
    }
}

/// The amortised encoder: x → Conv2d(1, 32) → ReLU → Conv2d(32, 64) → ReLU → flatten →
/// `concat(·, t, i)` → Linear(3138, 32) → `(loc, log_scale)` of `z`.
#[derive(Debug, Clone)]
pub struct Encoder {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl Encoder {
    /// `(loc, log_scale)` of `z`, each `(n, 16)`, for images `(n, 1, 28, 28)` and `t`, `i` `(n, 1)`.
    pub fn forward(&self, x: &Tensor, t: &Tensor, i: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = x.dim(0)?;
        let h = crate::kernels::relu(&self.conv1.forward(x)?)?;
        let h = crate::kernels::relu(&self.conv2.forward(&h)?)?.reshape((n, 64 * 7 * 7))?;
        let out = self.fc.forward(&Tensor::cat(&[&h, t, i], 1)?)?;
        Ok((out.narrow(1, 0, ZDIM)?, out.narrow(1, ZDIM, ZDIM)?))
    }
}

/// The networks of the Morpho SCM and its guide.
#[derive(Debug, Clone)]
pub struct Morpho {
    /// `t = softplus(loc_t + exp(log_scale_t) u_t)`: the affine part.
    pub t_flow: LearnableAffine,
    /// `i = m(t) + exp(s(t)) u_i`, `(m, s) = MLP(t)` with one hidden layer of 16.
    pub i_flow: MlpConditionalAffine,
    /// `p(x | z, t, i)`.
    pub decoder: Decoder,
    /// `q(z | x, t, i)`.
    pub encoder: Encoder,
}

impl Morpho {
    /// The networks, f32, their parameters registered in `store` under `morpho.` and
    /// initialised from the runtime's generator (torch's default initialisation bounds).
    pub fn new(store: &ParamStore, device: &Device) -> Result<Self> {
        let vb = store.var_builder(DType::F32, device).pp("morpho");
        let (dec, enc) = (vb.pp("decoder"), vb.pp("encoder"));
        Ok(Morpho {
            t_flow: LearnableAffine::new(vb.pp("t_flow"), 1)?.with_event_dim(1),
            i_flow: MlpConditionalAffine::new(vb.pp("i_flow"), 1, 1, &[16])?.with_event_dim(1),
            decoder: Decoder {
                fc: Linear::new(dec.pp("fc"), ZDIM + 2, 64 * 7 * 7)?,
                deconv1: ConvTranspose2d::new(dec.pp("deconv1"), 64, 32, 4, up())?,
                deconv2: ConvTranspose2d::new(dec.pp("deconv2"), 32, 1, 4, up())?,
            },
            encoder: Encoder {
                conv1: Conv2d::new(enc.pp("conv1"), 1, 32, 4, down())?,
                conv2: Conv2d::new(enc.pp("conv2"), 32, 64, 4, down())?,
                fc: Linear::new(enc.pp("fc"), 64 * 7 * 7 + 2, 2 * ZDIM)?,
            },
        })
    }

    /// `p(t)`: a standard normal on event `(1,)` through the learnable affine map and softplus.
    pub fn t_dist(&self) -> Result<TransformedDistribution> {
        let base = Normal::standard(1, DType::F32, self.t_flow.loc().device())?.to_event(1)?;
        TransformedDistribution::new(
            base,
            vec![
                self.t_flow.clone().into_transform(),
                SoftplusTransform.into_transform(),
            ],
        )
    }

    /// `p(i | t)`: a standard normal on event `(1,)` through the affine map conditioned on `t`.
    pub fn i_dist(&self, t: &Tensor) -> Result<TransformedDistribution> {
        let base = Normal::standard(1, DType::F32, t.device())?.to_event(1)?;
        TransformedDistribution::new(base, vec![self.i_flow.affine(t)?.into_transform()])
    }
}

/// The number of scalar parameters in `store`.
pub fn n_params(store: &ParamStore) -> usize {
    store
        .entries()
        .iter()
        .map(|(_, e)| e.var.as_tensor().elem_count())
        .sum()
}

/// A site observed at `obs` when given, drawn otherwise.
fn site(name: &str, d: impl crate::dist::SiteDist, obs: Option<&Tensor>) -> Result<Tensor> {
    match obs {
        Some(v) => observe(name, d, v),
        None => sample(name, d),
    }
}

/// The model for `n` images; each of `x`, `t`, `i` is observed when given. Returns `(t, i,
/// logits)`: under a world handler they carry world dims.
pub fn model(
    m: &Morpho,
    x: Option<&Tensor>,
    t: Option<&Tensor>,
    i: Option<&Tensor>,
    n: usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    let device = m.t_flow.loc().device();
    plate("data", n, |_| {
        let t = site("t", m.t_dist(), t)?;
        let i = site("i", m.i_dist(&t), i)?;
        let z = sample("z", Normal::standard(ZDIM, DType::F32, device)?.to_event(1))?;
        let logits = m.decoder.forward(&z, &t, &i)?;
        site("x", Bernoulli::from_logits(&logits)?.to_event(3), x)?;
        Ok((t, i, logits))
    })
}

/// The guide: `z ~ Normal(loc, exp(log_scale))` from the encoder, for every image.
pub fn guide(m: &Morpho, x: &Tensor, t: &Tensor, i: &Tensor) -> Result<Tensor> {
    plate("data", x.dim(0)?, |_| {
        let (loc, log_scale) = m.encoder.forward(x, t, i)?;
        sample("z", Normal::new(&loc, &log_scale.exp()?)?.to_event(1))
    })
}

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Activation::Sigmoid.apply(x)
}

fn host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn softplus64(a: f64) -> f64 {
    a.max(0.0) + (-a.abs()).exp().ln_1p()
}

/// `−ELBO` at the latent draw `z` `(n, 16)`, from closed-form densities evaluated in f64 on the
/// networks' f32 outputs: standard normals, the softplus change of variables
/// (`log |d softplus(a)/da| = log σ(a)`, `a = t + log(−expm1(−t))`), the affine log-dets, and
/// Bernoulli-with-logits `x·l − softplus(l)`; summed over the batch.
pub fn neg_elbo_by_hand(m: &Morpho, d: &Data, z: &Tensor) -> Result<f64> {
    let (t, i, x, zv) = (host(&d.t)?, host(&d.i)?, host(&d.x)?, host(z)?);
    let loc_t = host(m.t_flow.loc())?[0];
    let ls_t = host(m.t_flow.log_scale())?[0];
    let out = host(&m.i_flow.net().forward(&d.t)?)?;
    let logits = host(&m.decoder.forward(z, &d.t, &d.i)?)?;
    let (loc, log_scale) = m.encoder.forward(&d.x, &d.t, &d.i)?;
    let (loc, log_scale) = (host(&loc)?, host(&log_scale)?);
    let n = t.len();
    let mut elbo = 0.0;
    for b in 0..n {
        let a = t[b] + (-(-t[b]).exp_m1()).ln();
        let u_t = (a - loc_t) * (-ls_t).exp();
        // log σ(a) = −softplus(−a)
        elbo += -0.5 * u_t * u_t - HALF_LN_2PI - ls_t + softplus64(-a);
        let (mu, s) = (out[2 * b], out[2 * b + 1]);
        let u_i = (i[b] - mu) * (-s).exp();
        elbo += -0.5 * u_i * u_i - HALF_LN_2PI - s;
        for k in b * ZDIM..(b + 1) * ZDIM {
            let w = (zv[k] - loc[k]) * (-log_scale[k]).exp();
            elbo += -0.5 * zv[k] * zv[k] - HALF_LN_2PI;
            elbo -= -0.5 * w * w - log_scale[k] - HALF_LN_2PI;
        }
        let px = SIDE * SIDE;
        for p in b * px..(b + 1) * px {
            elbo += x[p] * logits[p] - softplus64(logits[p]);
        }
    }
    Ok(-elbo)
}

/// One counterfactual query's results: images and the intervened and abducted values.
#[derive(Debug, Clone)]
pub struct Counterfactual {
    /// Counterfactual images `(B, 1, 28, 28)` (probabilities).
    pub images: Tensor,
    /// Counterfactual thickness `(B, 1)`.
    pub t: Tensor,
    /// Counterfactual intensity `(B, 1)`.
    pub i: Tensor,
    /// Factual-world images `(B, 1, 28, 28)`, when the query computes them.
    pub factual: Option<Tensor>,
}

/// The idiomatic query: `z_hat` = the encoder's location; then in the twin world of
/// `do(t := t + 1)` given `t`, `i` and `z = z_hat`, the model's images (the worlds abduct `u_i`
/// from the observed intensity), both worlds decoded and their `x` drawn.
pub fn cf_twin_world(m: &Morpho, d: &Data) -> Result<Counterfactual> {
    let (z_hat, _) = m.encoder.forward(&d.x, &d.t, &d.i)?;
    let n = d.x.dim(0)?;
    let shift = Intervention::func(|t| Ok((t + 1.0)?));
    twin_world(|| {
        do_([("t", shift)], || {
            condition([("t", &d.t), ("i", &d.i), ("z", &z_hat)], || {
                let (t_w, i_w, logits_w) = model(m, None, None, None, n)?;
                let frames = active_frames();
                let one = |v: &Tensor, w: usize, ev: usize, shape: &[usize]| -> Result<Tensor> {
                    Ok(world_in(&frames, v, &[(TWIN, w)], ev)?.reshape(shape)?)
                };
                let img = (n, 1, SIDE, SIDE);
                let cf = gather_event(&logits_w, &[(TWIN, COUNTERFACTUAL)], 3)?;
                let f = gather_event(&logits_w, &[(TWIN, FACTUAL)], 3)?;
                Ok(Counterfactual {
                    images: sigmoid(&cf.reshape(img)?)?,
                    t: one(&t_w, COUNTERFACTUAL, 1, &[n, 1])?,
                    i: one(&i_w, COUNTERFACTUAL, 1, &[n, 1])?,
                    factual: Some(sigmoid(&f.reshape(img)?)?),
                })
            })
        })
    })
}

/// The same counterfactual written by hand with the networks, one world: `u_i = (i − m(t))
/// exp(−s(t))`, `t' = t + 1`, `i' = m(t') + exp(s(t')) u_i`, images `σ(decoder(z_hat, t', i'))`.
pub fn cf_by_hand(m: &Morpho, d: &Data) -> Result<Counterfactual> {
    let (z_hat, _) = m.encoder.forward(&d.x, &d.t, &d.i)?;
    let ms = |t: &Tensor| -> Result<(Tensor, Tensor)> {
        let out = m.i_flow.net().forward(t)?;
        Ok((out.narrow(1, 0, 1)?, out.narrow(1, 1, 1)?))
    };
    let (mu, s) = ms(&d.t)?;
    let u_i = ((&d.i - mu)? * s.neg()?.exp()?)?;
    let t_cf = (&d.t + 1.0)?;
    let (mu_cf, s_cf) = ms(&t_cf)?;
    let i_cf = (mu_cf + (s_cf.exp()? * u_i)?)?;
    let images = sigmoid(&m.decoder.forward(&z_hat, &t_cf, &i_cf)?)?;
    Ok(Counterfactual {
        images,
        t: t_cf,
        i: i_cf,
        factual: None,
    })
}

/// The factual images `σ(decoder(z_hat, t, i))`.
pub fn factual_decode(m: &Morpho, d: &Data) -> Result<Tensor> {
    let (z_hat, _) = m.encoder.forward(&d.x, &d.t, &d.i)?;
    sigmoid(&m.decoder.forward(&z_hat, &d.t, &d.i)?)
}

/// How far the twin-world query is from the by-hand abduction: `(max |images − by hand|,
/// max |i' − by hand|, max |factual images − factual decode|, t' == t + 1 exactly)`.
pub fn cf_errors(
    m: &Morpho,
    d: &Data,
    tw: &Counterfactual,
    hand: &Counterfactual,
) -> Result<(f64, f64, f64, bool)> {
    let max = |a: &Tensor, b: &Tensor| -> Result<f64> {
        Ok((a - b)?
            .abs()?
            .max_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?)
    };
    let factual = tw
        .factual
        .as_ref()
        .ok_or_else(|| Error::usage("the twin-world result has no factual images"))?;
    let t_exact = host(&tw.t)? == host(&(&d.t + 1.0)?)?;
    Ok((
        max(&tw.images, &hand.images)?,
        max(&tw.i, &hand.i)?,
        max(factual, &factual_decode(m, d)?)?,
        t_exact,
    ))
}
