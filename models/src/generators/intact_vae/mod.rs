//! A convolutional β-intact-VAE (Wu & Fukumizu 2021) for image outcomes under limited overlap
//! (issue 11, part 2).
//!
//! Covariates `x` (binary attributes, e.g. Young and Male), a binary treatment `t` whose parents
//! are among them (Eyeglasses ← Young), and the face image `y` as outcome. The model has a
//! learned prior `p(z | x)`, a decoder `p(y | z, t)` that sees `z` and `t` only, and an encoder
//! `q(z | y, x, t)`; training maximises `E_q[log p(y | z, t)] − β·KL(q ‖ p(z | x))` (or the KL
//! to `N(0, I)`, [`KlTarget`]), with β imposed by the library's `scale` handler on the `z` site.
//! A counterfactual abducts `z` with the factual treatment and decodes with the flipped (or
//! extrapolated, `t + s·(1 − 2t)`) one.
//!
//! - [`limited_overlap_faces`]: the cartoon faces with `P(glasses | young) = overlap`,
//!   `P(glasses | old) = 1 − overlap`; [`IntactData`]: `(y, x, t)` with the generator's samples.
//! - [`IntactVae`], [`intact_model`], [`intact_guide`]: the networks and the model/guide pair.
//! - [`train`]: SVI with `TraceElbo` and Adam on seeded minibatches, a callback per step.
//! - [`counterfactual`], [`extrapolate_treatment`], [`treatment_effect`]: the answers.
//! - [`evaluate`]: MAE against the true counterfactuals, split by rare/common treatment, next to
//!   the factual-image baseline.
//!
//! Usage:
//!
//! ```no_run
//! use candle_core::Device;
//! use models::generators::intact_vae::*;
//! let dev = Device::Cpu;
//! let faces = limited_overlap_faces(0.1)?;
//! let cfg = IntactConfig { beta: 0.5, ..IntactConfig::default() };
//! let train_set = IntactData::generate(&faces, 0, 0, 2048, &cfg, &dev)?;
//! let test_set = IntactData::generate(&faces, 0, 100_000, 512, &cfg, &dev)?;
//! let vae = IntactVae::new(cfg, &dev, 0)?;
//! train(&vae, &train_set, &IntactTrainConfig::default(), |_event| {})?;
//! let scores = evaluate(&vae, &test_set, &faces)?;
//! println!("rare units: MAE {:.4} vs factual {:.4}", scores.decoded.rare, scores.factual.rare);
//! # Ok::<(), ppl_core::Error>(())
//! ```

mod config;
mod counterfactual;
mod data;
mod eval;
mod laplace;
mod model;
mod train;

pub use config::{IntactConfig, IntactTrainConfig, KlTarget, PixelNoise};
pub use counterfactual::{abduct, counterfactual, extrapolate_treatment, treatment_effect};
pub use data::{limited_overlap_faces, IntactData};
pub use eval::{evaluate, treatment_masks, true_counterfactuals, IntactEvaluation, MaeSplit};
pub use laplace::Laplace;
pub use model::{intact_guide, intact_model, sites, IntactVae};
pub use train::{train, IntactTrainEvent, IntactTrainSummary};
