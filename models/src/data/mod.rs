//! Data sets: procedural data with known structural causal models, loaders for the real files
//! users download, and the image and minibatch utilities they share.

pub mod batches;
pub mod cartoon;
pub mod cartoonset;
pub mod celeba;
pub mod image;
pub mod mnist;
pub mod morpho;
pub mod portable;
