//! 2-d convolution and transposed convolution layers on [`crate::kernels`].

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::error::{Error, Result};
use crate::kernels::{conv2d, conv_transpose2d, Conv2dConfig, ConvTranspose2dConfig};

/// A convolution with a per-channel bias (torch's `Conv2d`): `x` `(..., C_in, H, W)` to
/// `(..., C_out, H_out, W_out)`, any number of leading dims.
///
/// Parameters `weight` `(C_out, C_in / groups, k, k)` and `bias` `(C_out)` are initialised as
/// torch does, uniform on `±1/√(C_in / groups · k²)`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    cfg: Conv2dConfig,
}

impl Conv2d {
    /// A `kernel × kernel` convolution from `in_channels` to `out_channels`.
    pub fn new(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        cfg: Conv2dConfig,
    ) -> Result<Self> {
        let groups = check_channels("Conv2d", in_channels, out_channels, kernel, cfg.groups)?;
        let bound = 1.0 / ((in_channels / groups * kernel * kernel) as f64).sqrt();
        Self::with_init(vb, in_channels, out_channels, kernel, cfg, uniform(bound))
    }

    /// As [`new`](Self::new) with weight and bias starting at zero (Glow's last coupling layer,
    /// so that the flow starts at the identity).
    pub fn zeros(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        cfg: Conv2dConfig,
    ) -> Result<Self> {
        check_channels("Conv2d", in_channels, out_channels, kernel, cfg.groups)?;
        Self::with_init(vb, in_channels, out_channels, kernel, cfg, Init::Const(0.0))
    }

    fn with_init(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        k: usize,
        cfg: Conv2dConfig,
        init: Init,
    ) -> Result<Self> {
        Ok(Conv2d {
            weight: vb.get_with_hints((c_out, c_in / cfg.groups, k, k), "weight", init)?,
            bias: vb.get_with_hints(c_out, "bias", init)?,
            cfg,
        })
    }

    /// The weight `(C_out, C_in / groups, k, k)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `(C_out)`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// Applies the layer.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (flat, lead) = to_nchw(x, "Conv2d")?;
        let y = conv2d(&flat, &self.weight, &self.cfg)?;
        let y = crate::kernels::add_bias(&y, &self.bias, 1)?;
        from_nchw(&y, &lead)
    }
}

/// A transposed convolution with a per-channel bias (torch's `ConvTranspose2d` without groups):
/// `x` `(..., C_in, H, W)` to `(..., C_out, H_out, W_out)`.
///
/// Parameters `weight` `(C_in, C_out, k, k)` and `bias` `(C_out)` are initialised as torch does,
/// uniform on `±1/√(C_out · k²)` (torch reads the fan from the weight's second dim).
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Tensor,
    cfg: ConvTranspose2dConfig,
}

impl ConvTranspose2d {
    /// A `kernel × kernel` transposed convolution from `in_channels` to `out_channels`.
    pub fn new(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        cfg: ConvTranspose2dConfig,
    ) -> Result<Self> {
        check_channels("ConvTranspose2d", in_channels, out_channels, kernel, 1)?;
        let init = uniform(1.0 / ((out_channels * kernel * kernel) as f64).sqrt());
        Ok(ConvTranspose2d {
            weight: vb.get_with_hints(
                (in_channels, out_channels, kernel, kernel),
                "weight",
                init,
            )?,
            bias: vb.get_with_hints(out_channels, "bias", init)?,
            cfg,
        })
    }

    /// The weight `(C_in, C_out, k, k)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `(C_out)`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// Applies the layer.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (flat, lead) = to_nchw(x, "ConvTranspose2d")?;
        let y = conv_transpose2d(&flat, &self.weight, &self.cfg)?;
        let y = crate::kernels::add_bias(&y, &self.bias, 1)?;
        from_nchw(&y, &lead)
    }
}

fn uniform(bound: f64) -> Init {
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn check_channels(
    what: &str,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    groups: usize,
) -> Result<usize> {
    if c_in == 0 || c_out == 0 || kernel == 0 || groups == 0 {
        return Err(Error::usage(format!(
            "{what}: channels, kernel size and groups must be positive, got {c_in} → {c_out}, \
             kernel {kernel}, groups {groups}"
        )));
    }
    if !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
        return Err(Error::usage(format!(
            "{what}: groups ({groups}) must divide both channel counts ({c_in} → {c_out})"
        )));
    }
    Ok(groups)
}

/// `x` `(..., C, H, W)` as a rank-4 `(N, C, H, W)` tensor, with the leading dims it had.
pub(crate) fn to_nchw(x: &Tensor, what: &str) -> Result<(Tensor, Vec<usize>)> {
    let d = x.dims();
    if d.len() < 3 {
        return Err(Error::usage(format!(
            "{what}: the input must have shape (..., C, H, W), got {d:?}"
        )));
    }
    let cut = d.len() - 3;
    let lead = d[..cut].to_vec();
    let n: usize = lead.iter().product();
    Ok((x.reshape((n, d[cut], d[cut + 1], d[cut + 2]))?, lead))
}

/// The inverse of [`to_nchw`]: `(N, C, H, W)` back to `(lead..., C, H, W)`.
pub(crate) fn from_nchw(y: &Tensor, lead: &[usize]) -> Result<Tensor> {
    let mut shape = lead.to_vec();
    shape.extend_from_slice(&y.dims()[1..]);
    Ok(y.reshape(shape)?)
}
