//! A linear attribute probe on small images: the scorer the VAE audits use where the cartoon
//! oracle cannot read the images (it is exact on 64×64 renders but fails on 16×16 pooled
//! faces and on blurry generator output).

use candle_core::{DType, Tensor, D};
use ppl_core::{Error, Result};

use crate::data::cartoon::Attr;
use crate::face_scm::FaceData;
use crate::fairness::scorer::AttributeScorer;

/// How a [`LinearProbe`] is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeConfig {
    /// Full-batch gradient steps.
    pub steps: usize,
    /// The step size (on standardised pixels).
    pub lr: f64,
    /// The L2 penalty on the weights (keeps the fit stable on few images).
    pub l2: f64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            steps: 300,
            lr: 0.5,
            l2: 1e-2,
        }
    }
}

/// Logistic regression of binary attributes on the standardised pixels of `[n, 3, s, s]`
/// images, one independent column per attribute, fitted by full-batch gradient descent (no
/// randomness: the fit is a function of the data).
///
/// Usage: `LinearProbe::fit_attrs(&train, &[Attr::Male], &ProbeConfig::default())?` on real
/// faces at the model's size gives an [`AttributeScorer`] for the audits; check it with
/// [`accuracy`](Self::accuracy) on held-out faces (and on reconstructions, through
/// [`reconstruction_accuracy`](super::reconstruction_accuracy)) before trusting its reading of
/// generated images.
#[derive(Debug, Clone)]
pub struct LinearProbe {
    names: Vec<String>,
    dims: [usize; 3],
    mean: Tensor,
    std: Tensor,
    w: Tensor,
    b: Tensor,
}

impl LinearProbe {
    /// Fits the probe to `images` (`[n, 3, s, s]` in `[0, 1]`) and 0/1 `labels` (`[n, k]`, one
    /// column per entry of `names`).
    pub fn fit(
        images: &Tensor,
        labels: &Tensor,
        names: &[&str],
        cfg: &ProbeConfig,
    ) -> Result<Self> {
        let (n, c, h, w) = images.dims4()?;
        if n == 0 || names.is_empty() {
            return Err(Error::usage(
                "LinearProbe::fit: needs images and attribute names",
            ));
        }
        if labels.dims() != [n, names.len()] {
            return Err(Error::shape(
                "LinearProbe::fit: labels [n, k]",
                &[n, names.len()],
                labels.dims(),
            ));
        }
        if cfg.steps == 0
            || !(cfg.lr > 0.0 && cfg.lr.is_finite())
            || cfg.l2.is_nan()
            || cfg.l2 < 0.0
        {
            return Err(Error::usage(format!(
                "LinearProbe::fit: needs steps ≥ 1, lr > 0 and l2 ≥ 0, got {cfg:?}"
            )));
        }
        let x = images.to_dtype(DType::F32)?.reshape((n, c * h * w))?;
        let mean = x.mean_keepdim(0)?;
        let centred = x.broadcast_sub(&mean)?;
        // Constant pixels (the background margin) get unit scale instead of a division by 0.
        let std = (centred.sqr()?.mean_keepdim(0)? + 1e-4)?.sqrt()?;
        let x = centred.broadcast_div(&std)?;
        let y = labels.to_dtype(DType::F32)?;
        let k = names.len();
        let dev = images.device();
        let mut wt = Tensor::zeros((c * h * w, k), DType::F32, dev)?;
        let mut bt = Tensor::zeros((1, k), DType::F32, dev)?;
        let xt = x.t()?;
        for _ in 0..cfg.steps {
            let p = candle_nn::ops::sigmoid(&x.matmul(&wt)?.broadcast_add(&bt)?)?;
            let r = (p - &y)?;
            let gw = ((xt.matmul(&r)? / n as f64)? + (&wt * cfg.l2)?)?;
            let gb = r.mean_keepdim(0)?;
            wt = (wt - (gw * cfg.lr)?)?;
            bt = (bt - (gb * cfg.lr)?)?;
        }
        Ok(LinearProbe {
            names: names.iter().map(|s| s.to_string()).collect(),
            dims: [c, h, w],
            mean,
            std,
            w: wt,
            b: bt,
        })
    }

    /// Fits the probe to `attrs` of the faces in `data` (at `data`'s image size).
    pub fn fit_attrs(data: &FaceData, attrs: &[Attr], cfg: &ProbeConfig) -> Result<Self> {
        if attrs.is_empty() {
            return Err(Error::usage(
                "LinearProbe::fit_attrs: name at least one attribute",
            ));
        }
        let cols = attrs
            .iter()
            .map(|a| data.binary.narrow(1, a.index(), 1))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let names: Vec<&str> = attrs.iter().map(|a| a.name()).collect();
        Self::fit(&data.images, &Tensor::cat(&cols, 1)?, &names, cfg)
    }

    /// The share of `data`'s faces on which the probe (probability > 1/2) agrees with the true
    /// label, per attribute in column order.
    pub fn accuracy(&self, data: &FaceData) -> Result<Vec<f64>> {
        let p = self.attribute_probs(&data.images)?.to_vec2::<f32>()?;
        self.names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let a = Attr::from_name(name).ok_or_else(|| {
                    Error::usage(format!(
                        "LinearProbe::accuracy: {name} is no cartoon attribute"
                    ))
                })?;
                let hits = data
                    .samples
                    .iter()
                    .zip(&p)
                    .filter(|(s, row)| (row[j] > 0.5) == s.attributes.get(a))
                    .count();
                Ok(hits as f64 / data.len().max(1) as f64)
            })
            .collect()
    }
}

impl AttributeScorer for LinearProbe {
    fn attribute_names(&self) -> &[String] {
        &self.names
    }

    fn attribute_probs(&self, images: &Tensor) -> Result<Tensor> {
        let d = images.dims();
        if d.len() != 4 || d[1..] != self.dims {
            let [c, h, w] = self.dims;
            return Err(Error::shape(
                "LinearProbe: images [n, c, h, w] of the fitted size",
                &[d.first().copied().unwrap_or(0), c, h, w],
                d,
            ));
        }
        let x = images
            .to_dtype(DType::F32)?
            .flatten_from(1)?
            .broadcast_sub(&self.mean)?
            .broadcast_div(&self.std)?;
        let logits = x.matmul(&self.w)?.broadcast_add(&self.b)?;
        debug_assert_eq!(logits.dim(D::Minus1)?, self.names.len());
        Ok(candle_nn::ops::sigmoid(&logits)?)
    }
}
