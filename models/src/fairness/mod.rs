//! Counterfactual fairness tools (issue 11, parts 3–5): metrics, classifiers, de-biasing and
//! counterfactual audits.
//!
//! - [`metrics`]: average precision, DEO, directional bias amplification, the KL divergence
//!   between the groups' score histograms, calibrated and F1-optimal thresholds, demographic
//!   parity of generations and counterfactual flip rates.
//! - [`bootstrap`]: any metric's bootstrap median ± 2σ.
//! - [`cf_fairness`]: a classifier's prediction change between factual and counterfactual images, per engine and true.
//! - [`planted`]: cartoon faces with a planted task–protected attribute tie.
//! - [`classifier`]: a small CNN multi-label attribute classifier (a trainable scorer).
//! - [`svm`]: a linear SVM returning unit-normal [`Hyperplane`](svm::Hyperplane)s.
//! - [`debias`]: Ramaswamy et al.'s (2021) complementary latents.
//! - [`latent_debias`]: their de-biasing pipeline end to end over any latent generator, with before/after metrics.
//! - [`esm`]: Lucas & Kemp's extended structural model counterfactuals over a discrete
//!   [`Scm`](ppl_core::causal::Scm), exact and sampled through the handlers.
//! - [`scorer`]: the [`AttributeScorer`](scorer::AttributeScorer) trait every audit reads
//!   images through, and the cartoon oracle as one.
//! - [`sticky`]: the same keep/redraw kernel on a continuous noise tensor (GAN latents).

pub mod bootstrap;
pub mod cf_fairness;
pub mod classifier;
pub mod debias;
pub mod esm;
pub mod latent_debias;
pub mod metrics;
pub mod planted;
pub mod scorer;
pub mod sticky;
pub mod svm;
