//! # models
//!
//! Deep structural causal models, counterfactual image generators, fairness audits and data
//! sets for ppl.
//!
//! - [`generators`]: counterfactual image generators (VAE and conditional VAE, β-intact-VAE,
//!   DCGAN with noise-space counterfactual samplers) behind one [`LatentGenerator`](generators::LatentGenerator) trait.
//! - [`data`]: procedural image data sets whose true SCM is known — Morpho glyphs
//!   (thickness → intensity → image) and cartoon faces (an attribute DAG → rendered faces) — so
//!   every counterfactual has an exact reference image; measurement oracles that read attributes
//!   back from images; loaders for the real MNIST/Morpho-MNIST, CelebA and Google Cartoon Set
//!   files; PNG/CSV export, contact sheets and seeded minibatches.

#![warn(missing_docs)]

pub mod data;
pub mod deepscm;
pub mod face_scm;
pub mod fairness;
pub mod generators;
pub mod report;
mod scm_common;
pub mod training;
