//! The generator and discriminator networks.
//!
//! The layers call [`ppl_core::kernels`] directly rather than `ppl_core::nn::{Conv2d,
//! ConvTranspose2d}`: those always carry a bias and start from torch's uniform weights, while
//! the DCGAN's convolutions have no bias and start from N(0, 0.02).

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};
use ppl_core::kernels::{
    conv2d, conv_transpose2d, leaky_relu, relu, Conv2dConfig, ConvTranspose2dConfig,
};
use ppl_core::nn::{BatchNorm, BatchNormConfig};
use ppl_core::Result;

use super::config::DcganConfig;

const INIT: Init = Init::Randn {
    mean: 0.0,
    stdev: 0.02,
};
const LEAK: f64 = 0.2;

/// 4×4 kernels with stride 2 and padding 1 double (transposed) or halve (direct) the side.
const DOWN: Conv2dConfig = Conv2dConfig {
    padding: 1,
    stride: 2,
    dilation: 1,
    groups: 1,
};
const UP: ConvTranspose2dConfig = ConvTranspose2dConfig {
    padding: 1,
    output_padding: 0,
    stride: 2,
    dilation: 1,
};

/// One generator block: transposed convolution, then batch norm and ReLU unless it is the
/// output layer.
#[derive(Debug, Clone)]
struct UpBlock {
    weight: Tensor,
    cfg: ConvTranspose2dConfig,
    bn: Option<BatchNorm>,
}

impl UpBlock {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, cfg: ConvTranspose2dConfig) -> Result<Self> {
        let weight = vb.get_with_hints((c_in, c_out, 4, 4), "weight", INIT)?;
        Ok(UpBlock {
            weight,
            cfg,
            bn: None,
        })
    }

    fn with_bn(mut self, vb: VarBuilder, c_out: usize) -> Result<Self> {
        self.bn = Some(BatchNorm::new(vb, c_out, BatchNormConfig::default())?);
        Ok(self)
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv_transpose2d(x, &self.weight, &self.cfg)?;
        match &self.bn {
            Some(bn) => relu(&bn.forward_t(&y, train)?),
            None => Ok(y),
        }
    }
}

/// `z` `[n, latent_dim]` → images `[n, 3, s, s]` in `[0, 1]`.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    blocks: Vec<UpBlock>,
    latent_dim: usize,
}

impl Generator {
    pub(crate) fn new(vb: VarBuilder, cfg: &DcganConfig) -> Result<Self> {
        let l = cfg.depth();
        let width = |j: usize| cfg.features << j;
        let first = ConvTranspose2dConfig::default();
        let mut blocks = vec![
            UpBlock::new(vb.pp("0"), cfg.latent_dim, width(l - 1), first)?
                .with_bn(vb.pp("0.bn"), width(l - 1))?,
        ];
        for i in 1..l {
            let (c_in, c_out) = (width(l - i), width(l - i - 1));
            let p = format!("{i}");
            blocks.push(
                UpBlock::new(vb.pp(&p), c_in, c_out, UP)?
                    .with_bn(vb.pp(format!("{p}.bn")), c_out)?,
            );
        }
        blocks.push(UpBlock::new(vb.pp(format!("{l}")), width(0), 3, UP)?);
        Ok(Generator {
            blocks,
            latent_dim: cfg.latent_dim,
        })
    }

    pub(crate) fn forward(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let n = z.dim(0)?;
        let mut x = z.reshape((n, self.latent_dim, 1, 1))?;
        for b in &self.blocks {
            x = b.forward(&x, train)?;
        }
        Ok(x.tanh()?.affine(0.5, 0.5)?)
    }
}

/// One discriminator block: convolution, optional batch norm, LeakyReLU(0.2).
#[derive(Debug, Clone)]
struct DownBlock {
    weight: Tensor,
    bn: Option<BatchNorm>,
}

/// Images `[n, 3, s, s]` in `[0, 1]` → logits `[n]` (large = judged real).
#[derive(Debug, Clone)]
pub(crate) struct Discriminator {
    blocks: Vec<DownBlock>,
    head: Tensor,
}

impl Discriminator {
    pub(crate) fn new(vb: VarBuilder, cfg: &DcganConfig) -> Result<Self> {
        let l = cfg.depth();
        let mut blocks = Vec::with_capacity(l);
        let mut c_in = 3;
        for i in 0..l {
            let c_out = cfg.features << i;
            let p = format!("{i}");
            let weight = vb
                .pp(&p)
                .get_with_hints((c_out, c_in, 4, 4), "weight", INIT)?;
            let bn = if i == 0 {
                None
            } else {
                Some(BatchNorm::new(
                    vb.pp(format!("{p}.bn")),
                    c_out,
                    BatchNormConfig::default(),
                )?)
            };
            blocks.push(DownBlock { weight, bn });
            c_in = c_out;
        }
        let head = vb
            .pp(format!("{l}"))
            .get_with_hints((1, c_in, 4, 4), "weight", INIT)?;
        Ok(Discriminator { blocks, head })
    }

    pub(crate) fn forward(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let n = images.dim(0)?;
        // The generator's tanh range.
        let mut x = images.affine(2.0, -1.0)?;
        for b in &self.blocks {
            let y = conv2d(&x, &b.weight, &DOWN)?;
            let y = match &b.bn {
                Some(bn) => bn.forward_t(&y, train)?,
                None => y,
            };
            x = leaky_relu(&y, LEAK)?;
        }
        Ok(conv2d(&x, &self.head, &Conv2dConfig::default())?.reshape(n)?)
    }
}
