//! A convolutional decoder: a linear map to a small image, then transposed convolutions.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::conv::{from_nchw, to_nchw};
use super::{Activation, BatchNorm, BatchNormConfig, ConvTranspose2d, Linear};
use crate::error::{Error, Result};
use crate::kernels::ConvTranspose2dConfig;

/// The shape of a [`ConvDecoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConvDecoderConfig {
    /// Features of the input (latent code and conditioning, concatenated).
    pub in_dim: usize,
    /// Channels of the small image the linear layer produces.
    pub start_channels: usize,
    /// Height and width of that small image.
    pub start: (usize, usize),
    /// Output channels of each hidden transposed convolution (may be empty).
    pub channels: Vec<usize>,
    /// Channels of the output image (the last transposed convolution).
    pub out_channels: usize,
    /// Kernel size of every transposed convolution.
    pub kernel: usize,
    /// Stride of every transposed convolution.
    pub stride: usize,
    /// Padding of every transposed convolution.
    pub padding: usize,
    /// Batch norm after every hidden transposed convolution.
    pub batch_norm: bool,
    /// Slope of the leaky ReLUs.
    pub negative_slope: f64,
}

impl ConvDecoderConfig {
    /// Stride-2, kernel-4, padding-1 transposed convolutions (each doubles the image) with batch
    /// norm and leaky ReLUs of slope 0.2.
    pub fn new(
        in_dim: usize,
        start_channels: usize,
        start: (usize, usize),
        channels: Vec<usize>,
        out_channels: usize,
    ) -> Self {
        ConvDecoderConfig {
            in_dim,
            start_channels,
            start,
            channels,
            out_channels,
            kernel: 4,
            stride: 2,
            padding: 1,
            batch_norm: true,
            negative_slope: 0.2,
        }
    }
}

struct Layer {
    conv: ConvTranspose2d,
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

/// Flat codes `(..., F)` to images `(..., C_out, H, W)`: `fc` (a linear layer and a leaky ReLU),
/// a reshape to `(start_channels, start)`, then `deconv{i}` (with `bn{i}` and a leaky ReLU) for
/// each hidden layer and a last `deconv{n}` with no normalisation or activation, whose output is
/// a location or logits image.
#[derive(Debug)]
pub struct ConvDecoder {
    fc: Linear,
    layers: Vec<Layer>,
    activation: Activation,
    cfg: ConvDecoderConfig,
    out: (usize, usize, usize),
}

impl ConvDecoder {
    /// A decoder of the given shape.
    pub fn new(vb: VarBuilder, cfg: ConvDecoderConfig) -> Result<Self> {
        let (c0, (h0, w0)) = (cfg.start_channels, cfg.start);
        if c0 == 0 || h0 == 0 || w0 == 0 || cfg.stride == 0 {
            return Err(Error::usage(format!(
                "ConvDecoder: the start image and stride must be non-empty, got {cfg:?}"
            )));
        }
        let fc = Linear::new(vb.pp("fc"), cfg.in_dim, c0 * h0 * w0)?;
        let conv_cfg = ConvTranspose2dConfig {
            padding: cfg.padding,
            stride: cfg.stride,
            ..Default::default()
        };
        let mut outs = cfg.channels.clone();
        outs.push(cfg.out_channels);
        let (mut c, mut h, mut w) = (c0, h0, w0);
        let mut layers = Vec::with_capacity(outs.len());
        for (i, &out) in outs.iter().enumerate() {
            let next = |len: usize| {
                ((len - 1) * cfg.stride + cfg.kernel)
                    .checked_sub(2 * cfg.padding)
                    .filter(|&n| n > 0)
            };
            let (Some(nh), Some(nw)) = (next(h), next(w)) else {
                return Err(Error::usage(format!(
                    "ConvDecoder: transposed convolution {i} gives an empty image from {h}×{w}"
                )));
            };
            let conv =
                ConvTranspose2d::new(vb.pp(format!("deconv{i}")), c, out, cfg.kernel, conv_cfg)?;
            let hidden = i + 1 < outs.len();
            let norm = if cfg.batch_norm && hidden {
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
        Ok(ConvDecoder {
            fc,
            layers,
            activation: Activation::LeakyRelu(cfg.negative_slope),
            cfg,
            out: (c, h, w),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConvDecoderConfig {
        &self.cfg
    }

    /// The output image shape `(C, H, W)`.
    pub fn output_shape(&self) -> (usize, usize, usize) {
        self.out
    }

    /// Decodes `z` `(..., F)` into images `(..., C_out, H, W)`; `train` selects the batch-norm
    /// mode.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.activation.apply(&self.fc.forward(z)?)?;
        let d = h.dims();
        let mut shape = d[..d.len() - 1].to_vec();
        let (c0, (h0, w0)) = (self.cfg.start_channels, self.cfg.start);
        shape.extend_from_slice(&[c0, h0, w0]);
        let (mut h, lead) = to_nchw(&h.reshape(shape)?, "ConvDecoder")?;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.conv.forward(&h)?;
            if let Some(bn) = &layer.norm {
                h = bn.forward_t(&h, train)?;
            }
            if i < last {
                h = self.activation.apply(&h)?;
            }
        }
        from_nchw(&h, &lead)
    }
}
