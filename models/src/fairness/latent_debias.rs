//! Latent-space de-biasing of a target classifier (Ramaswamy, Kim & Russakovsky 2021), end to
//! end over any [`LatentGenerator`] and a labelling [`AttributeScorer`].
//!
//! 1. Sample `N` latents `z` from the generator's prior and generate their images.
//! 2. Label the target and protected attributes of every image with the scorer (a classifier
//!    trained on real data), at 0.5 or at the threshold calibrated on the real training set.
//! 3. Fit a linear SVM hyperplane for each attribute in the latent space.
//! 4. Compute the complementary latents `z'` ([`complementary_latents`]): target score kept,
//!    protected score negated; generate their images.
//! 5. Train the target classifier on real images + `G(z)` + `G(z')`, both images of a pair
//!    labelled with the target label of `z` (the scorer's, or the hyperplane's side).
//! 6. Evaluate the baseline (trained on the real images only, same configuration) and the
//!    de-biased classifier on held-out real data: AP, DEO, bias amplification (attribute →
//!    task) and the histogram KL between the groups' scores, each with its bootstrap median
//!    ± 2σ.
//!
//! The [`DebiasReport`] also says how well the complementary images did their job, as the
//! scorer sees them: the rate at which the target label is kept and the protected one flipped.
//!
//! Typical use (see `tests/debias.rs` for a run with the oracle generator
//! [`ProceduralFaces`](crate::generators::procedural::ProceduralFaces)):
//!
//! ```no_run
//! # use candle_core::{Device, Tensor};
//! # use models::data::cartoon::Attr;
//! # use models::face_scm::FaceData;
//! # use models::fairness::classifier::{AttributeClassifier, ClassifierConfig};
//! # use models::fairness::latent_debias::{debias, DebiasConfig, LabelledImages};
//! # use models::fairness::planted::planted_bias_faces;
//! # use models::generators::procedural::ProceduralFaces;
//! # fn main() -> ppl_core::Result<()> {
//! let dev = Device::Cpu;
//! let faces = planted_bias_faces(0.9)?;
//! let train = FaceData::generate(&faces, 1, 0, 2000, 16, &dev)?;
//! let test = FaceData::generate(&planted_bias_faces(0.0)?, 2, 0, 1000, 16, &dev)?;
//! // The labeller: a classifier of both attributes trained on a larger, balanced real set.
//! let real = FaceData::generate(&planted_bias_faces(0.0)?, 3, 0, 4000, 16, &dev)?;
//! let cols = Tensor::new(&[Attr::Mustache.index() as u32, Attr::Male.index() as u32], &dev)?;
//! let mut labeller =
//!     AttributeClassifier::new(ClassifierConfig::new(16, &["Mustache", "Male"]), &dev)?;
//! labeller.train(&real.images, &real.binary.index_select(&cols, 1)?, None, |_| {})?;
//! let (train, test) = (
//!     LabelledImages::from_face_data(&train, Attr::Mustache, Attr::Male)?,
//!     LabelledImages::from_face_data(&test, Attr::Mustache, Attr::Male)?,
//! );
//! let gen = ProceduralFaces::new(faces, 16, &dev)?;
//! let cfg = DebiasConfig::new("Mustache", "Male", ClassifierConfig::new(16, &["Mustache"]));
//! let out = debias(&gen, &labeller, &train, &test, &cfg, |_| {})?;
//! println!("DEO {:.3} -> {:.3}", out.report.baseline.deo.value, out.report.debiased.deo.value);
//! # Ok(()) }
//! ```

use candle_core::{DType, Tensor};
use ppl_core::rng::from_seed;
use ppl_core::{Error, Result};
use serde::Serialize;

use super::bootstrap::{bootstrap, Bootstrap};
use super::classifier::{
    AttributeClassifier, ClassifierConfig, ClassifierEvent, ClassifierSummary,
};
use super::debias::complementary_latents;
use super::metrics::{
    average_precision, bias_amplification, calibrated_threshold, deo, histogram_kl,
};
use super::scorer::AttributeScorer;
use super::svm::{accuracy, Hyperplane, LinearSvm};
use crate::data::cartoon::Attr;
use crate::face_scm::FaceData;
use crate::generators::LatentGenerator;

/// Real images with their target and protected labels.
#[derive(Debug, Clone)]
pub struct LabelledImages {
    /// `[n, 3, s, s]` in `[0, 1]`.
    pub images: Tensor,
    /// The target attribute of each image.
    pub target: Vec<bool>,
    /// The protected attribute of each image (`true` = group a).
    pub protected: Vec<bool>,
}

impl LabelledImages {
    /// Checks that the labels match the images' count.
    pub fn new(images: Tensor, target: Vec<bool>, protected: Vec<bool>) -> Result<Self> {
        let n = images.dims().first().copied().unwrap_or(0);
        if images.rank() != 4 || target.len() != n || protected.len() != n {
            return Err(Error::shape(
                "LabelledImages: images [n, 3, s, s] with n target and n protected labels",
                &[n, target.len(), protected.len()],
                &[
                    images.dims().first().copied().unwrap_or(0),
                    target.len(),
                    protected.len(),
                ],
            ));
        }
        Ok(LabelledImages {
            images,
            target,
            protected,
        })
    }

    /// The images of `data` with its true `target` and `protected` attributes.
    pub fn from_face_data(data: &FaceData, target: Attr, protected: Attr) -> Result<Self> {
        let cols = data.binary_columns()?;
        let col = |a: Attr| -> Result<Vec<bool>> {
            Ok(cols[a.index()]
                .to_vec1::<f32>()?
                .into_iter()
                .map(|v| v > 0.5)
                .collect())
        };
        Self::new(data.images.clone(), col(target)?, col(protected)?)
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.target.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
    }
}

/// Where a score turns into a positive label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Threshold {
    /// A fixed threshold (0.5 for a calibrated probability).
    Fixed(f64),
    /// [`calibrated_threshold`] on a labelled reference set (the real training set for
    /// labelling generations, the evaluation set for evaluation): the predicted positive rate
    /// equals the base rate.
    Calibrated,
}

/// Which label both images of a generated pair get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PairLabels {
    /// The scorer's thresholded target label of `G(z)`.
    Scorer,
    /// The side of the target hyperplane `z` lies on (the same for `z'` by construction).
    Hyperplane,
}

/// Settings of [`debias`].
#[derive(Debug, Clone, PartialEq)]
pub struct DebiasConfig {
    /// The scorer's column of the target attribute.
    pub target: String,
    /// The scorer's column of the protected attribute.
    pub protected: String,
    /// Latents sampled (each gives two generated images).
    pub n_latents: usize,
    /// Seeds the latents.
    pub seed: u64,
    /// How the scorer's probabilities of generated images become labels.
    pub label_threshold: Threshold,
    /// How pairs are labelled.
    pub pair_labels: PairLabels,
    /// The hyperplanes' SVM.
    pub svm: LinearSvm,
    /// The target classifiers (baseline and de-biased); its attribute list is replaced by
    /// `[target]`.
    pub classifier: ClassifierConfig,
    /// The evaluation threshold of DEO and BA.
    pub eval_threshold: Threshold,
    /// Bootstrap resamples of every metric.
    pub resamples: usize,
    /// Seeds the bootstrap.
    pub bootstrap_seed: u64,
    /// Bins of the score histograms.
    pub kl_bins: usize,
    /// Pseudo-count added to every histogram bin.
    pub kl_smoothing: f64,
}

impl DebiasConfig {
    /// 1000 latents (seed 0), labels at 0.5 from the scorer, the default SVM, evaluation at
    /// 0.5, 200 bootstrap resamples (seed 0), 10 histogram bins with pseudo-count 1.
    pub fn new(target: &str, protected: &str, classifier: ClassifierConfig) -> Self {
        DebiasConfig {
            target: target.to_string(),
            protected: protected.to_string(),
            n_latents: 1000,
            seed: 0,
            label_threshold: Threshold::Fixed(0.5),
            pair_labels: PairLabels::Scorer,
            svm: LinearSvm::default(),
            classifier,
            eval_threshold: Threshold::Fixed(0.5),
            resamples: 200,
            bootstrap_seed: 0,
            kl_bins: 10,
            kl_smoothing: 1.0,
        }
    }

    fn target_classifier(&self) -> ClassifierConfig {
        let mut c = self.classifier.clone();
        c.attributes = vec![self.target.clone()];
        c
    }
}

/// A metric on the full evaluation set with its bootstrap summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricInterval {
    /// The metric on the whole set.
    pub value: f64,
    /// The bootstrap median.
    pub median: f64,
    /// The bootstrap standard deviation.
    pub sd: f64,
}

impl MetricInterval {
    fn from_bootstrap(value: f64, b: &Bootstrap) -> Self {
        MetricInterval {
            value,
            median: b.median,
            sd: b.sd,
        }
    }

    /// `median − 2·sd`.
    pub fn low(&self) -> f64 {
        self.median - 2.0 * self.sd
    }

    /// `median + 2·sd`.
    pub fn high(&self) -> f64 {
        self.median + 2.0 * self.sd
    }
}

/// A target classifier's figures on an evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FairnessMetrics {
    /// The threshold of DEO and BA.
    pub threshold: f64,
    /// Average precision of the target.
    pub ap: MetricInterval,
    /// `|FNR(protected) − FNR(not protected)|`.
    pub deo: MetricInterval,
    /// Directional bias amplification, protected attribute → target.
    pub ba: MetricInterval,
    /// `KL(scores | protected ‖ scores | not protected)` between smoothed histograms.
    pub kl: MetricInterval,
}

/// The [`FairnessMetrics`] of target `scores` on an evaluation set with true labels `target`
/// and groups `protected`: at `threshold` (fixed or calibrated on this set), with `resamples`
/// bootstrap resamples from `seed`, histograms of `bins` bins with pseudo-count `smoothing`.
#[allow(clippy::too_many_arguments)]
pub fn fairness_metrics(
    target: &[bool],
    protected: &[bool],
    scores: &[f64],
    threshold: Threshold,
    resamples: usize,
    seed: u64,
    bins: usize,
    smoothing: f64,
) -> Result<FairnessMetrics> {
    let n = scores.len();
    if target.len() != n || protected.len() != n {
        return Err(Error::shape(
            "fairness_metrics: target, protected and scores per example",
            &[n, n, n],
            &[target.len(), protected.len(), n],
        ));
    }
    let t = match threshold {
        Threshold::Fixed(t) => t,
        Threshold::Calibrated => calibrated_threshold(target, scores)?,
    };
    let pick = |ix: &[usize], v: &[bool]| ix.iter().map(|&i| v[i]).collect::<Vec<bool>>();
    let pick_f = |ix: &[usize]| ix.iter().map(|&i| scores[i]).collect::<Vec<f64>>();
    let ap = |ix: &[usize]| average_precision(&pick(ix, target), &pick_f(ix));
    let de = |ix: &[usize]| deo(&pick(ix, target), &pick_f(ix), &pick(ix, protected), t);
    let ba = |ix: &[usize]| {
        let attr: Vec<usize> = ix.iter().map(|&i| usize::from(protected[i])).collect();
        let pred: Vec<bool> = ix.iter().map(|&i| scores[i] >= t).collect();
        bias_amplification(&attr, &pick(ix, target), &pred)
    };
    let kl = |ix: &[usize]| {
        let (a, b): (Vec<usize>, Vec<usize>) = ix.iter().partition(|&&i| protected[i]);
        histogram_kl(&pick_f(&a), &pick_f(&b), bins, smoothing)
    };
    let all: Vec<usize> = (0..n).collect();
    let interval = |f: &dyn Fn(&[usize]) -> Result<f64>, salt: u64| -> Result<MetricInterval> {
        let b = bootstrap(n, resamples, seed.wrapping_add(salt), f)?;
        Ok(MetricInterval::from_bootstrap(f(&all)?, &b))
    };
    Ok(FairnessMetrics {
        threshold: t,
        ap: interval(&ap, 0)?,
        deo: interval(&de, 1)?,
        ba: interval(&ba, 2)?,
        kl: interval(&kl, 3)?,
    })
}

/// The latent hyperplanes, the generated pairs and how they look to the scorer.
#[derive(Debug, Clone)]
pub struct Augmentation {
    /// The sampled latents `[N, d]`.
    pub z: Tensor,
    /// Their complementary latents `[N, d]`.
    pub z_complementary: Tensor,
    /// `G(z)`, `[N, 3, s, s]`.
    pub images: Tensor,
    /// `G(z')`, `[N, 3, s, s]`.
    pub complementary_images: Tensor,
    /// The target label of each pair.
    pub pair_target: Vec<bool>,
    /// The target attribute's latent hyperplane.
    pub target_plane: Hyperplane,
    /// The protected attribute's latent hyperplane.
    pub protected_plane: Hyperplane,
    /// What the augmentation looks like, in figures.
    pub stats: AugmentationStats,
}

/// Figures of an [`Augmentation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AugmentationStats {
    /// Latents sampled.
    pub n_latents: usize,
    /// The thresholds that turned the scorer's target and protected probabilities into labels.
    pub label_thresholds: (f64, f64),
    /// The share of `G(z)` labelled target-positive by the scorer.
    pub target_rate: f64,
    /// The share of `G(z)` labelled protected-positive by the scorer.
    pub protected_rate: f64,
    /// The target SVM's training accuracy on the scorer's labels.
    pub target_svm_accuracy: f64,
    /// The protected SVM's training accuracy on the scorer's labels.
    pub protected_svm_accuracy: f64,
    /// `w_targetᵀ w_protected`.
    pub hyperplane_cos: f64,
    /// The share of pairs whose scorer target label of `G(z')` equals that of `G(z)`.
    pub target_kept_rate: f64,
    /// The share of pairs whose scorer protected label of `G(z')` differs from that of `G(z)`.
    pub protected_flipped_rate: f64,
}

fn column(scorer: &dyn AttributeScorer, probs: &Tensor, name: &str) -> Result<Vec<f64>> {
    Ok(probs
        .narrow(1, scorer.column(name)?, 1)?
        .squeeze(1)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?)
}

fn fraction(v: impl Iterator<Item = bool>, n: usize) -> f64 {
    v.filter(|&b| b).count() as f64 / n as f64
}

/// Steps 1–4 of [`debias`]: the generated pairs and their labels. `calibration` (real images
/// with true labels) sets the labelling thresholds when they are [`Threshold::Calibrated`].
pub fn latent_augmentation(
    generator: &dyn LatentGenerator,
    scorer: &dyn AttributeScorer,
    calibration: &LabelledImages,
    cfg: &DebiasConfig,
) -> Result<Augmentation> {
    if cfg.n_latents < 2 {
        return Err(Error::param(
            "DebiasConfig",
            "n_latents",
            format!("needs at least 2 latents, got {}", cfg.n_latents),
        ));
    }
    let (tc, pc) = (scorer.column(&cfg.target)?, scorer.column(&cfg.protected)?);
    if tc == pc {
        return Err(Error::usage(
            "latent_augmentation: the target and protected attributes are the same column",
        ));
    }
    let (t_target, t_protected) = match cfg.label_threshold {
        Threshold::Fixed(t) => (t, t),
        Threshold::Calibrated => {
            if calibration.is_empty() {
                return Err(Error::usage(
                    "latent_augmentation: a calibrated threshold needs calibration images",
                ));
            }
            let p = scorer.attribute_probs(&calibration.images)?;
            (
                calibrated_threshold(&calibration.target, &column(scorer, &p, &cfg.target)?)?,
                calibrated_threshold(&calibration.protected, &column(scorer, &p, &cfg.protected)?)?,
            )
        }
    };

    let n = cfg.n_latents;
    let z = generator.sample_latents(n, &mut from_seed(cfg.seed))?;
    let images = generator.generate(&z)?.detach();
    let probs = scorer.attribute_probs(&images)?;
    let target: Vec<bool> = column(scorer, &probs, &cfg.target)?
        .iter()
        .map(|&p| p >= t_target)
        .collect();
    let protected: Vec<bool> = column(scorer, &probs, &cfg.protected)?
        .iter()
        .map(|&p| p >= t_protected)
        .collect();
    let single = |what: &str, v: &[bool]| {
        if v.iter().all(|&b| b) || !v.iter().any(|&b| b) {
            Err(Error::usage(format!(
                "latent_augmentation: the scorer labels every generated image the same for \
                 {what}, so no hyperplane separates it"
            )))
        } else {
            Ok(())
        }
    };
    single(&cfg.target, &target)?;
    single(&cfg.protected, &protected)?;
    let target_plane = cfg.svm.fit(&z, &target)?;
    let protected_plane = cfg.svm.fit(&z, &protected)?;
    let z_complementary = complementary_latents(&z, &protected_plane, &target_plane)?;
    let complementary_images = generator.generate(&z_complementary)?.detach();
    let cprobs = scorer.attribute_probs(&complementary_images)?;
    let c_target: Vec<bool> = column(scorer, &cprobs, &cfg.target)?
        .iter()
        .map(|&p| p >= t_target)
        .collect();
    let c_protected: Vec<bool> = column(scorer, &cprobs, &cfg.protected)?
        .iter()
        .map(|&p| p >= t_protected)
        .collect();
    let pair_target = match cfg.pair_labels {
        PairLabels::Scorer => target.clone(),
        PairLabels::Hyperplane => target_plane
            .scores(&z)?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?
            .into_iter()
            .map(|s| s > 0.0)
            .collect(),
    };
    let stats = AugmentationStats {
        n_latents: n,
        label_thresholds: (t_target, t_protected),
        target_rate: fraction(target.iter().copied(), n),
        protected_rate: fraction(protected.iter().copied(), n),
        target_svm_accuracy: accuracy(&target_plane, &z, &target)?,
        protected_svm_accuracy: accuracy(&protected_plane, &z, &protected)?,
        hyperplane_cos: target_plane.cos(&protected_plane)?,
        target_kept_rate: fraction(target.iter().zip(&c_target).map(|(a, b)| a == b), n),
        protected_flipped_rate: fraction(
            protected.iter().zip(&c_protected).map(|(a, b)| a != b),
            n,
        ),
    };
    Ok(Augmentation {
        z,
        z_complementary,
        images,
        complementary_images,
        pair_target,
        target_plane,
        protected_plane,
        stats,
    })
}

/// Trains a target classifier (`cfg.classifier` with `[target]` as its attribute list) on
/// `images` and 0/1 `labels`, reporting its events to `on_event`.
pub fn train_target(
    images: &Tensor,
    labels: &[bool],
    cfg: &DebiasConfig,
    on_event: impl FnMut(&ClassifierEvent),
) -> Result<(AttributeClassifier, ClassifierSummary)> {
    let n = labels.len();
    let y: Vec<f32> = labels.iter().map(|&b| f32::from(u8::from(b))).collect();
    let y = Tensor::from_vec(y, (n, 1), images.device())?;
    let mut clf = AttributeClassifier::new(cfg.target_classifier(), images.device())?;
    let summary = clf.train(images, &y, None, on_event)?;
    Ok((clf, summary))
}

/// The [`FairnessMetrics`] of `scorer`'s target column on `eval`, with `cfg`'s evaluation
/// threshold, bootstrap and histogram settings.
pub fn evaluate(
    scorer: &dyn AttributeScorer,
    eval: &LabelledImages,
    cfg: &DebiasConfig,
) -> Result<FairnessMetrics> {
    let probs = scorer.attribute_probs(&eval.images)?;
    let scores = column(scorer, &probs, &cfg.target)?;
    fairness_metrics(
        &eval.target,
        &eval.protected,
        &scores,
        cfg.eval_threshold,
        cfg.resamples,
        cfg.bootstrap_seed,
        cfg.kl_bins,
        cfg.kl_smoothing,
    )
}

/// What [`debias`] reports to its callback.
#[derive(Debug, Clone, PartialEq)]
pub enum DebiasEvent {
    /// A stage began: `"augment"`, `"baseline"`, `"debiased"` or `"evaluate"`.
    Stage(&'static str),
    /// A training event of the baseline (`"baseline"`) or de-biased (`"debiased"`) classifier.
    Train(&'static str, ClassifierEvent),
}

/// Everything [`debias`] found, in figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DebiasReport {
    /// The target attribute.
    pub target: String,
    /// The protected attribute.
    pub protected: String,
    /// Real training images.
    pub n_real: usize,
    /// Generated training images (two per latent).
    pub n_generated: usize,
    /// Held-out evaluation images.
    pub n_eval: usize,
    /// The augmentation's figures.
    pub augmentation: AugmentationStats,
    /// The classifier trained on the real images only.
    pub baseline: FairnessMetrics,
    /// The classifier trained on real + generated + complementary images.
    pub debiased: FairnessMetrics,
    /// The baseline's training time in seconds.
    pub baseline_seconds: f64,
    /// The de-biased classifier's training time in seconds.
    pub debiased_seconds: f64,
}

/// The outcome of [`debias`]: the report and both trained classifiers.
#[derive(Debug)]
pub struct DebiasOutcome {
    /// The figures.
    pub report: DebiasReport,
    /// The classifier trained on the real images only.
    pub baseline: AttributeClassifier,
    /// The classifier trained on the augmented set.
    pub debiased: AttributeClassifier,
    /// The generated pairs.
    pub augmentation: Augmentation,
}

/// Ramaswamy et al.'s de-biasing end to end (see the module documentation): `generator` and
/// `scorer` make and label the pairs, `train` holds the real training images with their true
/// labels, `eval` the held-out ones.
pub fn debias(
    generator: &dyn LatentGenerator,
    scorer: &dyn AttributeScorer,
    train: &LabelledImages,
    eval: &LabelledImages,
    cfg: &DebiasConfig,
    mut on_event: impl FnMut(&DebiasEvent),
) -> Result<DebiasOutcome> {
    if train.is_empty() || eval.is_empty() {
        return Err(Error::usage(
            "debias: the training and evaluation sets must not be empty",
        ));
    }
    let (gs, ts) = (generator.image_size(), train.images.dims()[2]);
    if gs != ts || eval.images.dims()[2] != ts {
        return Err(Error::shape(
            "debias: generator, training and evaluation image sizes",
            &[gs, gs, gs],
            &[gs, ts, eval.images.dims()[2]],
        ));
    }
    on_event(&DebiasEvent::Stage("augment"));
    let aug = latent_augmentation(generator, scorer, train, cfg)?;
    on_event(&DebiasEvent::Stage("baseline"));
    let (baseline, base_summary) = train_target(&train.images, &train.target, cfg, |e| {
        on_event(&DebiasEvent::Train("baseline", e.clone()))
    })?;
    on_event(&DebiasEvent::Stage("debiased"));
    let images = Tensor::cat(
        &[
            &train.images.to_device(aug.images.device())?,
            &aug.images,
            &aug.complementary_images,
        ],
        0,
    )?;
    let mut labels = train.target.clone();
    labels.extend(&aug.pair_target);
    labels.extend(&aug.pair_target);
    let (debiased, deb_summary) = train_target(&images, &labels, cfg, |e| {
        on_event(&DebiasEvent::Train("debiased", e.clone()))
    })?;
    on_event(&DebiasEvent::Stage("evaluate"));
    let report = DebiasReport {
        target: cfg.target.clone(),
        protected: cfg.protected.clone(),
        n_real: train.len(),
        n_generated: 2 * cfg.n_latents,
        n_eval: eval.len(),
        augmentation: aug.stats,
        baseline: evaluate(&baseline, eval, cfg)?,
        debiased: evaluate(&debiased, eval, cfg)?,
        baseline_seconds: base_summary.seconds,
        debiased_seconds: deb_summary.seconds,
    };
    Ok(DebiasOutcome {
        report,
        baseline,
        debiased,
        augmentation: aug,
    })
}
