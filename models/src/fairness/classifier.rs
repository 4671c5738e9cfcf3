//! A small convolutional multi-label attribute classifier: the labelling and target classifiers
//! of the fairness audits (Ramaswamy et al. 2021 use ResNet-50s on CelebA; stride-2 convolution
//! blocks suffice for the cartoon faces at 16–64 pixels).
//!
//! Images `[n, 3, s, s]` in `[0, 1]` pass through [`ConvEncoder`] blocks (kernel 4, stride 2,
//! padding 1, leaky ReLU 0.2, batch norm after every block but the first if asked) and one
//! linear layer to `k` logits, one per attribute. Training minimises the binary cross-entropy
//! of every attribute against labels that may be soft (in `[0, 1]`), each example optionally
//! weighted, by Adam on seeded minibatches; a callback sees every step and epoch.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use models::fairness::classifier::{AttributeClassifier, ClassifierConfig};
//! use models::fairness::scorer::AttributeScorer;
//!
//! let mut cfg = ClassifierConfig::new(16, &["Bright"]);
//! cfg.epochs = 30;
//! cfg.batch_size = 8;
//! let dev = Device::Cpu;
//! // Eight dark and eight bright images; the attribute is "bright".
//! let dark = Tensor::full(0.1f32, (8, 3, 16, 16), &dev)?;
//! let bright = Tensor::full(0.9f32, (8, 3, 16, 16), &dev)?;
//! let images = Tensor::cat(&[&dark, &bright], 0)?;
//! let labels = Tensor::cat(&[&Tensor::zeros((8, 1), candle_core::DType::F32, &dev)?,
//!                            &Tensor::ones((8, 1), candle_core::DType::F32, &dev)?], 0)?;
//! let mut clf = AttributeClassifier::new(cfg, &dev)?;
//! clf.train(&images, &labels, None, |_| {})?;
//! let p = clf.attribute_probs(&images)?.to_vec2::<f32>()?;
//! assert!(p[0][0] < 0.5 && p[15][0] > 0.5);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use ppl_core::handlers::seed;
use ppl_core::nn::{ConvEncoder, ConvEncoderConfig, Linear};
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::params::ParamStore;
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::scorer::AttributeScorer;
use crate::data::image::write_atomic;

/// The configuration file a saved classifier's folder holds.
pub const CONFIG_FILE: &str = "classifier.json";
/// The parameter file a saved classifier's folder holds.
pub const PARAMS_FILE: &str = "params.safetensors";
/// Images per forward pass in [`AttributeClassifier::predict_probs`].
const PREDICT_CHUNK: usize = 512;

/// The shape and training settings of an [`AttributeClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Side of the square input images: 16, 32 or 64.
    pub image_size: usize,
    /// The attributes scored, one logit each, in column order.
    pub attributes: Vec<String>,
    /// Output channels of each stride-2 convolution block (at most `log2(image_size)` blocks).
    pub channels: Vec<usize>,
    /// Batch norm after every block but the first.
    pub batch_norm: bool,
    /// Passes over the training set per call of [`AttributeClassifier::train`].
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Examples per minibatch (the last partial batch is dropped when there are several).
    pub batch_size: usize,
    /// Seeds the initial weights and the minibatch order.
    pub seed: u64,
}

impl ClassifierConfig {
    /// Two blocks of 16 and 32 channels with batch norm, 10 epochs, learning rate 2e-3, batches
    /// of 64, seed 0.
    pub fn new(image_size: usize, attributes: &[&str]) -> Self {
        ClassifierConfig {
            image_size,
            attributes: attributes.iter().map(|s| s.to_string()).collect(),
            channels: vec![16, 32],
            batch_norm: true,
            epochs: 10,
            lr: 2e-3,
            batch_size: 64,
            seed: 0,
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &'static str, why: String| Err(Error::param("ClassifierConfig", field, why));
        if ![16, 32, 64].contains(&self.image_size) {
            return bad(
                "image_size",
                format!("must be 16, 32 or 64, got {}", self.image_size),
            );
        }
        if self.attributes.is_empty() {
            return bad("attributes", "name at least one attribute".into());
        }
        if let Some(i) =
            (1..self.attributes.len()).find(|&i| self.attributes[..i].contains(&self.attributes[i]))
        {
            return bad(
                "attributes",
                format!("{:?} appears twice", self.attributes[i]),
            );
        }
        let max_blocks = self.image_size.trailing_zeros() as usize;
        if self.channels.is_empty()
            || self.channels.len() > max_blocks
            || self.channels.contains(&0)
        {
            return bad(
                "channels",
                format!(
                    "give 1 to {max_blocks} positive widths for {0}×{0} images, got {1:?}",
                    self.image_size, self.channels
                ),
            );
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return bad(
                "epochs",
                format!(
                    "epochs and batch_size must be positive, got {} and {}",
                    self.epochs, self.batch_size
                ),
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("must be finite and > 0, got {}", self.lr));
        }
        Ok(())
    }
}

/// What [`AttributeClassifier::train`] reports to its callback (the loss is the batch's
/// weighted mean cross-entropy per attribute).
pub use crate::training::TrainEvent as ClassifierEvent;
/// What a call of [`AttributeClassifier::train`] did.
pub use crate::training::TrainSummary as ClassifierSummary;

/// A convolutional multi-label attribute classifier (see the module documentation), usable
/// wherever an [`AttributeScorer`] is read.
///
/// Typical use: build it with a [`ClassifierConfig`], [`train`](Self::train) it on images and
/// `[n, k]` labels (the attribute columns in the config's order), then read
/// [`predict_probs`](Self::predict_probs) or pass it to an audit as a scorer;
/// [`save`](Self::save) and [`load`](Self::load) keep it between runs.
#[derive(Debug)]
pub struct AttributeClassifier {
    cfg: ClassifierConfig,
    store: ParamStore,
    encoder: ConvEncoder,
    head: Linear,
    device: Device,
}

impl AttributeClassifier {
    /// A fresh classifier on `device`, its weights drawn from `cfg.seed`.
    pub fn new(cfg: ClassifierConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let store = ParamStore::new();
        let (encoder, head) = seed(cfg.seed, || {
            let vb = store.var_builder(DType::F32, device);
            let mut enc_cfg =
                ConvEncoderConfig::new(3, (cfg.image_size, cfg.image_size), cfg.channels.clone());
            enc_cfg.batch_norm = cfg.batch_norm;
            let encoder = ConvEncoder::new(vb.pp("encoder"), enc_cfg)?;
            let head = Linear::new(vb.pp("head"), encoder.feature_dim(), cfg.attributes.len())?;
            Ok((encoder, head))
        })?;
        Ok(AttributeClassifier {
            cfg,
            store,
            encoder,
            head,
            device: device.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClassifierConfig {
        &self.cfg
    }

    /// The parameter store holding the weights (and batch-norm statistics).
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn check_images(&self, what: &str, images: &Tensor) -> Result<usize> {
        let s = self.cfg.image_size;
        match images.dims() {
            &[n, 3, h, w] if h == s && w == s => Ok(n),
            dims => Err(Error::shape(
                format!("{what}: images [n, 3, {s}, {s}]"),
                &[dims.first().copied().unwrap_or(0), 3, s, s],
                dims,
            )),
        }
    }

    /// The `[n, k]` logits of `images`; `train` selects the batch-norm mode.
    pub fn logits_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        self.check_images("AttributeClassifier", images)?;
        let x = images.to_dtype(DType::F32)?.to_device(&self.device)?;
        self.head.forward(&self.encoder.forward_t(&x, train)?)
    }

    /// The `[n, k]` probabilities of `images` in evaluation mode (running batch-norm
    /// statistics), computed in chunks, on the classifier's device.
    pub fn predict_probs(&self, images: &Tensor) -> Result<Tensor> {
        let n = self.check_images("AttributeClassifier::predict_probs", images)?;
        let k = self.cfg.attributes.len();
        if n == 0 {
            return Ok(Tensor::zeros((0, k), DType::F32, &self.device)?);
        }
        let mut parts = Vec::with_capacity(n.div_ceil(PREDICT_CHUNK));
        for start in (0..n).step_by(PREDICT_CHUNK) {
            let m = PREDICT_CHUNK.min(n - start);
            let logits = self.logits_t(&images.narrow(0, start, m)?, false)?;
            parts.push(candle_nn::ops::sigmoid(&logits)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Trains for `cfg.epochs` epochs on `images` `[n, 3, s, s]` and `labels` `[n, k]` (values
    /// in `[0, 1]`; soft labels allowed), each example weighted by `weights` `[n]` (≥ 0, not
    /// all 0) if given. The loss of a batch `B` is `Σ_{i∈B} w_i ℓ_i / (|B| w̄)`, `ℓ_i` the mean
    /// binary cross-entropy over the attributes and `w̄` the mean weight of the whole set, so
    /// that its expectation is the weighted risk. Epoch `e` visits the examples in a permutation
    /// drawn from `cfg.seed` and `e`. A fresh Adam runs each call.
    pub fn train(
        &mut self,
        images: &Tensor,
        labels: &Tensor,
        weights: Option<&Tensor>,
        mut on_event: impl FnMut(&ClassifierEvent),
    ) -> Result<ClassifierSummary> {
        let n = self.check_images("AttributeClassifier::train", images)?;
        let k = self.cfg.attributes.len();
        if n == 0 {
            return Err(Error::usage("AttributeClassifier::train: no examples"));
        }
        if labels.dims() != [n, k] {
            return Err(Error::shape(
                "AttributeClassifier::train: labels [n, k]",
                &[n, k],
                labels.dims(),
            ));
        }
        let labels = labels.to_dtype(DType::F32)?.to_device(&self.device)?;
        let (lo, hi) = (
            labels.min_all()?.to_scalar::<f32>()?,
            labels.max_all()?.to_scalar::<f32>()?,
        );
        if !(lo >= 0.0 && hi <= 1.0) {
            return Err(Error::param(
                "AttributeClassifier::train",
                "labels",
                format!("must lie in [0, 1], found values in [{lo}, {hi}]"),
            ));
        }
        let weights = match weights {
            Some(w) => {
                if w.dims() != [n] {
                    return Err(Error::shape(
                        "AttributeClassifier::train: weights [n]",
                        &[n],
                        w.dims(),
                    ));
                }
                let w = w.to_dtype(DType::F32)?.to_device(&self.device)?;
                let (lo, mean) = (
                    w.min_all()?.to_scalar::<f32>()?,
                    w.mean_all()?.to_scalar::<f32>()?,
                );
                if !(lo >= 0.0 && mean > 0.0 && mean.is_finite()) {
                    return Err(Error::param(
                        "AttributeClassifier::train",
                        "weights",
                        format!("must be finite, ≥ 0 and not all 0 (min {lo}, mean {mean})"),
                    ));
                }
                Some((w / f64::from(mean))?)
            }
            None => None,
        };
        let images = images.to_dtype(DType::F32)?.to_device(&self.device)?;
        let start = Instant::now();
        let bs = self.cfg.batch_size.min(n);
        let per_epoch = n / bs;
        let total_steps = per_epoch * self.cfg.epochs;
        let mut optim = Adam::new(self.cfg.lr);
        let mut summary = ClassifierSummary {
            step_losses: Vec::with_capacity(total_steps),
            epoch_losses: Vec::with_capacity(self.cfg.epochs),
            seconds: 0.0,
        };
        let mut step = 0;
        let mut perm: Vec<usize> = (0..n).collect();
        for epoch in 0..self.cfg.epochs {
            let mut r = rng::from_seed(self.cfg.seed);
            r.set_stream(epoch as u64 + 1);
            perm.shuffle(&mut r);
            let mut epoch_sum = 0.0;
            for chunk in perm.chunks_exact(bs) {
                let ids = Tensor::from_vec(
                    chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    chunk.len(),
                    &self.device,
                )?;
                let x = images.index_select(&ids, 0)?;
                let y = labels.index_select(&ids, 0)?;
                let logits = self.logits_t(&x, true)?;
                let per_example = bce_with_logits(&logits, &y)?.mean(D::Minus1)?;
                let loss = match &weights {
                    Some(w) => (per_example * w.index_select(&ids, 0)?)?.mean_all()?,
                    None => per_example.mean_all()?,
                };
                let value = f64::from(loss.to_scalar::<f32>()?);
                if !value.is_finite() {
                    return Err(Error::usage(format!(
                        "AttributeClassifier::train: the loss became {value} at step {step} \
                         (try a smaller learning rate)"
                    )));
                }
                optim.step(&self.store, &loss.backward()?)?;
                summary.step_losses.push(value);
                epoch_sum += value;
                on_event(&ClassifierEvent::Step {
                    epoch,
                    step,
                    total_steps,
                    loss: value,
                });
                step += 1;
            }
            let mean_loss = epoch_sum / per_epoch as f64;
            summary.epoch_losses.push(mean_loss);
            on_event(&ClassifierEvent::Epoch {
                epoch,
                mean_loss,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        summary.seconds = start.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// Writes [`CONFIG_FILE`] and [`PARAMS_FILE`] to `dir` (created if needed), each
    /// atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_vec_pretty(&self.cfg)
            .map_err(|e| Error::usage(format!("AttributeClassifier::save: {e}")))?;
        self.store.save(dir.join(PARAMS_FILE))?;
        write_atomic(dir.join(CONFIG_FILE), &json)
    }

    /// Reads a classifier written by [`save`](Self::save) onto `device`; a malformed config or
    /// a parameter file that does not fit it is an error naming the file.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let cfg: ClassifierConfig = serde_json::from_str(&text)
            .map_err(|e| Error::parse(&path, e.line(), format!("not a classifier config: {e}")))?;
        let clf = AttributeClassifier::new(cfg, device)?;
        clf.store.load_on(dir.join(PARAMS_FILE), device)?;
        Ok(clf)
    }
}

/// Element-wise `BCE(σ(l), y) = max(l, 0) − l·y + log(1 + e^{−|l|})`, stable for any logit.
fn bce_with_logits(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    let softplus_neg_abs = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    Ok(((logits.relu()? - (logits * y)?)? + softplus_neg_abs)?)
}

impl AttributeScorer for AttributeClassifier {
    fn attribute_names(&self) -> &[String] {
        &self.cfg.attributes
    }

    fn attribute_probs(&self, images: &Tensor) -> Result<Tensor> {
        self.predict_probs(images)
    }
}
