//! Counterfactual images of a conditional VAE: abduct `z` with the encoder, change the
//! condition, decode.

use candle_core::{DType, Tensor};
use ppl_core::transforms::{LogitTransform, Transform};
use ppl_core::{Error, Result};

use super::model::ConvVae;

/// Where the counterfactual condition enters a [`CvaeCounterfactual`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfMode {
    /// The standard CVAE counterfactual: abduct `z = m(x, c)` (the encoder's posterior mean
    /// under the factual condition), then decode `μ(z, c')` with the counterfactual condition.
    Decoder,
    /// The flip enters only through the encoder: `z' = m(x, c')` (the posterior mean the
    /// encoder gives when told the face has the counterfactual condition), decoded with the
    /// factual condition, `μ(z', c)`. This isolates how much of the attribute the encoder
    /// writes into `z`; for a decoder that reads the attribute from `c` alone it changes little.
    EncoderOnly,
}

impl CfMode {
    /// `decoder` or `encoder-only`.
    pub fn name(self) -> &'static str {
        match self {
            CfMode::Decoder => "decoder",
            CfMode::EncoderOnly => "encoder-only",
        }
    }
}

/// A counterfactual query on a trained conditional [`ConvVae`]: which condition columns flip,
/// where the flip enters ([`CfMode`]) and how far it is pushed.
///
/// With factual condition `c` (coded `±1`), the counterfactual condition `c'` has every flipped
/// column `j` set to `−scale · c_j` and every other column kept; `scale = 1` is the plain flip,
/// `scale = 2` the "scaled condition ×2" that extrapolates beyond the training codes.
///
/// Usage: `CvaeCounterfactual::new(CfMode::Decoder).with_scale(2.0)?.apply(&vae, &images, &c)?`
/// gives, per face, the counterfactual image with the factual pixel noise (`image`), the
/// noise-free counterfactual (`image_loc`) and the factual reconstruction; the audit
/// [`counterfactual_audit`](super::counterfactual_audit) scores them against the data's true
/// counterfactuals.
#[derive(Debug, Clone, PartialEq)]
pub struct CvaeCounterfactual {
    /// Where the flip enters.
    pub mode: CfMode,
    /// The condition columns flipped (empty: all of them).
    pub flip: Vec<usize>,
    /// The flipped columns' magnitude (`c'_j = −scale · c_j`).
    pub scale: f64,
}

/// The images of a [`CvaeCounterfactual`], each `[n, 3, s, s]` in `[0, 1]`.
#[derive(Debug, Clone)]
pub struct CfImages {
    /// The counterfactual with the pixel noise abducted exactly: on the logit scale,
    /// `logit(x) + (μ_cf − μ_factual)`, so detail the decoder cannot represent carries over.
    pub image: Tensor,
    /// The noise-free counterfactual `logit⁻¹(μ_cf)`.
    pub image_loc: Tensor,
    /// The factual reconstruction `logit⁻¹(μ(m(x, c), c))`.
    pub reconstruction: Tensor,
    /// The counterfactual condition `c'`, `[n, m]`.
    pub condition: Tensor,
}

impl CvaeCounterfactual {
    /// Every condition column flipped, scale 1, entering at `mode`.
    pub fn new(mode: CfMode) -> Self {
        CvaeCounterfactual {
            mode,
            flip: Vec::new(),
            scale: 1.0,
        }
    }

    /// The same query with the flipped columns scaled by `scale` (finite, > 0).
    pub fn with_scale(mut self, scale: f64) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::usage(format!(
                "CvaeCounterfactual: scale must be finite and positive, got {scale}"
            )));
        }
        self.scale = scale;
        Ok(self)
    }

    /// The same query flipping only the condition columns `cols`.
    pub fn flipping(mut self, cols: &[usize]) -> Self {
        self.flip = cols.to_vec();
        self
    }

    /// A short label, e.g. `decoder ×2`.
    pub fn label(&self) -> String {
        if self.scale == 1.0 {
            self.mode.name().to_string()
        } else {
            format!("{} ×{}", self.mode.name(), self.scale)
        }
    }

    /// The counterfactual condition `c'` of a factual `c` (`[n, m]`).
    pub fn counterfactual_condition(&self, c: &Tensor) -> Result<Tensor> {
        let (_, m) = c.dims2()?;
        if let Some(&bad) = self.flip.iter().find(|&&j| j >= m) {
            return Err(Error::usage(format!(
                "CvaeCounterfactual: flip column {bad} of a {m}-column condition"
            )));
        }
        let factors: Vec<f32> = (0..m)
            .map(|j| {
                if self.flip.is_empty() || self.flip.contains(&j) {
                    -self.scale as f32
                } else {
                    1.0
                }
            })
            .collect();
        let f = Tensor::from_vec(factors, (1, m), c.device())?;
        Ok(c.to_dtype(DType::F32)?.broadcast_mul(&f)?)
    }

    /// The counterfactual images of `images` (`[n, 3, s, s]` in `[0, 1]`) with factual
    /// conditions `c` (`[n, m]`, `m ≥ 1`), detached.
    pub fn apply(&self, vae: &ConvVae, images: &Tensor, c: &Tensor) -> Result<CfImages> {
        if vae.cond_dim() == 0 {
            return Err(Error::usage(
                "CvaeCounterfactual: the plain VAE has no condition to change",
            ));
        }
        let n = images.dims().first().copied().unwrap_or(0);
        let c = vae
            .check_condition(Some(c), n, "CvaeCounterfactual::apply")?
            .ok_or_else(|| Error::usage("CvaeCounterfactual: empty condition"))?;
        let c_cf = self.counterfactual_condition(&c)?;
        let (z, _) = vae.encode(images, Some(&c))?;
        let factual = vae.decode_logits(&z, Some(&c))?.detach();
        let cf = match self.mode {
            CfMode::Decoder => vae.decode_logits(&z, Some(&c_cf))?,
            CfMode::EncoderOnly => {
                let (z_cf, _) = vae.encode(images, Some(&c_cf))?;
                vae.decode_logits(&z_cf, Some(&c))?
            }
        }
        .detach();
        let logit = LogitTransform::new(vae.config().alpha)?;
        let x = images.to_dtype(DType::F32)?.to_device(vae.device())?;
        // The pixel noise of the factual world, σε = logit(x) − μ_factual, is the same in the
        // counterfactual one.
        let noise = (logit.forward(&x)? - &factual)?;
        let pixels = vae.to_pixels()?;
        Ok(CfImages {
            image: pixels.forward(&(&cf + noise)?)?,
            image_loc: pixels.forward(&cf)?,
            reconstruction: pixels.forward(&factual)?,
            condition: c_cf,
        })
    }
}
