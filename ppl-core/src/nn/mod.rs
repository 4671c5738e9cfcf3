//! Neural building blocks for deep structural causal models: multi-layer perceptrons,
//! convolutional encoders and decoders, batch normalisation and output heads.
//!
//! Every block is built from a candle-nn [`VarBuilder`](candle_nn::VarBuilder), normally one from
//! [`ParamStore::var_builder`](crate::params::ParamStore::var_builder), so its parameters live in
//! the store under the builder's dotted prefix, are initialised from the runtime's seeded
//! generator and are updated in place by the optimisers. Blocks run on any device, in f32 or f64
//! (the builder's dtype). Convolutions go through [`crate::kernels`].
//!
//! Non-trainable state (batch-norm running statistics) is kept in the store too, as entries
//! that never enter a differentiated computation, so optimisers never see a gradient for them and
//! checkpoints save them with the weights.
//!
//! ```
//! use ppl_core::nn::{Activation, Mlp};
//! use ppl_core::params::ParamStore;
//! use ppl_core::candle_core::{DType, Device, Tensor};
//!
//! ppl_core::rng::set_seed(0);
//! let store = ParamStore::new();
//! let vb = store.var_builder(DType::F64, &Device::Cpu);
//! let mlp = Mlp::new(vb.pp("net"), &[3, 16, 2], Activation::Relu)?;
//! let y = mlp.forward(&Tensor::zeros((5, 3), DType::F64, &Device::Cpu)?)?;
//! assert_eq!(y.dims(), &[5, 2]);
//! assert_eq!(store.len(), 4); // two weights, two biases
//! # Ok::<(), ppl_core::Error>(())
//! ```

mod activation;
mod batch_norm;
mod conv;
mod decoder;
mod encoder;
mod heads;
mod linear;
mod mlp;
mod state;

pub use activation::Activation;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub(crate) use conv::{from_nchw, to_nchw};
pub use conv::{Conv2d, ConvTranspose2d};
pub use decoder::{ConvDecoder, ConvDecoderConfig};
pub use encoder::{ConvEncoder, ConvEncoderConfig};
pub use heads::{LocScaleHead, LogitsHead, ScaleLink};
pub use linear::Linear;
pub use mlp::Mlp;
pub(crate) use state::{assign, param_from};
