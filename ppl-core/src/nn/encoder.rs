//! A convolutional encoder: strided convolutions, batch norm and leaky ReLUs, flattened.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::conv::{from_nchw, to_nchw};
use super::{Activation, BatchNorm, BatchNormConfig, Conv2d};
use crate::error::{Error, Result};
use crate::kernels::Conv2dConfig;

/// The shape of a [`ConvEncoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConvEncoderConfig {
    /// Channels of the input image.
    pub in_channels: usize,
    /// Height and width of the input image.
    pub image: (usize, usize),
    /// Output channels of each convolution, first to last (at least one).
    pub channels: Vec<usize>,
    /// Kernel size of every convolution.
    pub kernel: usize,
    /// Stride of every convolution.
    pub stride: usize,
    /// Padding of every convolution.
    pub padding: usize,
    /// Batch norm after every convolution but the first (as DCGAN's discriminator).
    pub batch_norm: bool,
    /// Slope of the leaky ReLUs.
    pub negative_slope: f64,
}

impl ConvEncoderConfig {
    /// Stride-2, kernel-4, padding-1 convolutions (each halves the image) with batch norm and
    /// leaky ReLUs of slope 0.2: the DCGAN / DeepSCM encoder.
    pub fn new(in_channels: usize, image: (usize, usize), channels: Vec<usize>) -> Self {
        ConvEncoderConfig {
            in_channels,
            image,
            channels,
            kernel: 4,
            stride: 2,
            padding: 1,
            batch_norm: true,
            negative_slope: 0.2,
        }
    }
}

struct Layer {
    conv: Conv2d,
    norm: Option<BatchNorm>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("conv", &self.conv.weight().dims())
            .field("batch_norm", &self.norm.is_some())
            .finish()
    }
}

/// Convolution stacks mapping images `(..., C, H, W)` to flat features `(..., F)`.
///
/// Layer `i` is `conv{i}` (and `bn{i}`) under the builder's prefix.
#[derive(Debug)]
pub struct ConvEncoder {
    layers: Vec<Layer>,
    activation: Activation,
    cfg: ConvEncoderConfig,
    out: (usize, usize, usize),
}

impl ConvEncoder {
    /// An encoder of the given shape. A stack that shrinks the image to nothing is an error.
    pub fn new(vb: VarBuilder, cfg: ConvEncoderConfig) -> Result<Self> {
        if cfg.channels.is_empty() {
            return Err(Error::usage("ConvEncoder: give at least one convolution"));
        }
        let conv_cfg = Conv2dConfig {
            padding: cfg.padding,
            stride: cfg.stride,
            ..Default::default()
        };
        let (mut c, (mut h, mut w)) = (cfg.in_channels, cfg.image);
        let mut layers = Vec::with_capacity(cfg.channels.len());
        for (i, &out) in cfg.channels.iter().enumerate() {
            let next = |len: usize| {
                (len + 2 * cfg.padding)
                    .checked_sub(cfg.kernel)
                    .filter(|_| cfg.stride > 0)
                    .map(|d| d / cfg.stride + 1)
            };
            let (Some(nh), Some(nw)) = (next(h), next(w)) else {
                return Err(Error::usage(format!(
                    "ConvEncoder: convolution {i} (kernel {}, stride {}, padding {}) does not fit \
                     its {h}×{w} input",
                    cfg.kernel, cfg.stride, cfg.padding
                )));
            };
            let conv = Conv2d::new(vb.pp(format!("conv{i}")), c, out, cfg.kernel, conv_cfg)?;
            let norm = if cfg.batch_norm && i > 0 {
                Some(BatchNorm::new(
                    vb.pp(format!("bn{i}")),
                    out,
                    BatchNormConfig::default(),
                )?)
            } else {
                None
            };
            layers.push(Layer { conv, norm });
            (c, h, w) = (out, nh, nw);
        }
        Ok(ConvEncoder {
            layers,
            activation: Activation::LeakyRelu(cfg.negative_slope),
            cfg,
            out: (c, h, w),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConvEncoderConfig {
        &self.cfg
    }

    /// The shape `(C, H, W)` of the last convolution's output.
    pub fn feature_shape(&self) -> (usize, usize, usize) {
        self.out
    }

    /// The number of output features, `C · H · W` of the last convolution's output.
    pub fn feature_dim(&self) -> usize {
        self.out.0 * self.out.1 * self.out.2
    }

    /// Encodes images `(..., C, H, W)` into features `(..., F)`; `train` selects the batch-norm
    /// mode.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (ci, (hi, wi)) = (self.cfg.in_channels, self.cfg.image);
        let d = x.dims();
        if d.len() < 3 || d[d.len() - 3..] != [ci, hi, wi] {
            return Err(Error::shape(
                "ConvEncoder input (..., C, H, W)",
                &[ci, hi, wi],
                d,
            ));
        }
        let (mut h, lead) = to_nchw(x, "ConvEncoder")?;
        for layer in &self.layers {
            h = layer.conv.forward(&h)?;
            if let Some(bn) = &layer.norm {
                h = bn.forward_t(&h, train)?;
            }
            h = self.activation.apply(&h)?;
        }
        let h = from_nchw(&h, &lead)?;
        let mut shape = lead;
        shape.push(self.feature_dim());
        Ok(h.reshape(shape)?)
    }
}
