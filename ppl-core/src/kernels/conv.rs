//! `conv2d` and `conv_transpose2d`: shape checks, then our kernels on the CPU or candle's ops
//! elsewhere.
//!
//! Both functions check their arguments the same way on every device, so a model that runs on
//! the CPU fails the same way on a GPU. On the CPU with f32 or f64 they run the im2col + GEMM
//! kernels of this module (forward and backward); on CUDA or Metal, or for other dtypes, they
//! call candle's `Tensor::conv2d` / `Tensor::conv_transpose2d`.

use candle_core::Tensor;

use super::conv_op::{apply, Kind};
use super::geometry::{conv_out_len, conv_transpose_out_len, Geometry};
use crate::error::{Error, Result};

/// Hyper-parameters of [`conv2d`] (torch's `Conv2d` without bias; square padding, stride and
/// dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Zeros added on every side of the input.
    pub padding: usize,
    /// Step between output positions, in input positions.
    pub stride: usize,
    /// Step between kernel taps, in input positions.
    pub dilation: usize,
    /// Channel groups: input and output channels split into this many independent convolutions.
    pub groups: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            padding: 0,
            stride: 1,
            dilation: 1,
            groups: 1,
        }
    }
}

/// Hyper-parameters of [`conv_transpose2d`] (torch's `ConvTranspose2d` without bias or groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// Rows and columns removed from every side of the full output.
    pub padding: usize,
    /// Rows and columns added at the bottom and right of the output; below `max(stride,
    /// dilation)`, as in torch.
    pub output_padding: usize,
    /// Step between the output positions of neighbouring input positions.
    pub stride: usize,
    /// Step between kernel taps, in output positions.
    pub dilation: usize,
}

impl Default for ConvTranspose2dConfig {
    fn default() -> Self {
        ConvTranspose2dConfig {
            padding: 0,
            output_padding: 0,
            stride: 1,
            dilation: 1,
        }
    }
}

/// The four dims of a rank-4 tensor, or a usage error naming `what` and its shape.
fn dims4(t: &Tensor, op: &str, what: &str) -> Result<[usize; 4]> {
    match *t.dims() {
        [a, b, c, d] => Ok([a, b, c, d]),
        ref dims => Err(Error::usage(format!(
            "{op}: {what} must have rank 4, got shape {dims:?}"
        ))),
    }
}

/// Checks that shared by both ops: matching dtype and device, positive stride, dilation and
/// kernel size.
fn check_common(
    op: &str,
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    dilation: usize,
    kernel: (usize, usize),
) -> Result<()> {
    if x.dtype() != w.dtype() {
        return Err(Error::usage(format!(
            "{op}: input is {:?} but weight is {:?}",
            x.dtype(),
            w.dtype()
        )));
    }
    if !x.device().same_device(w.device()) {
        return Err(Error::usage(format!(
            "{op}: input is on {:?} but weight is on {:?}",
            x.device().location(),
            w.device().location()
        )));
    }
    if stride == 0 || dilation == 0 {
        return Err(Error::usage(format!(
            "{op}: stride ({stride}) and dilation ({dilation}) must be positive"
        )));
    }
    if kernel.0 == 0 || kernel.1 == 0 {
        return Err(Error::usage(format!(
            "{op}: kernel must be at least 1×1, got weight shape {:?}",
            w.dims()
        )));
    }
    Ok(())
}

/// 2-d convolution (cross-correlation, like torch's `conv2d`) of `x` `(B, C_in, H, W)` with
/// weight `w` `(C_out, C_in / groups, kH, kW)`, giving `(B, C_out, H_out, W_out)` with
/// `H_out = (H + 2·padding − dilation·(kH − 1) − 1) / stride + 1`.
///
/// Differentiable in both arguments. Wrong ranks, channel counts, groups or a kernel larger
/// than the padded input are typed errors.
///
/// ```
/// use ppl_core::candle_core::{Device, Tensor};
/// use ppl_core::kernels::{conv2d, Conv2dConfig};
/// let x = Tensor::ones((1, 1, 3, 3), ppl_core::candle_core::DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((2, 1, 2, 2), ppl_core::candle_core::DType::F32, &Device::Cpu)?;
/// let y = conv2d(&x, &w, &Conv2dConfig::default())?;
/// assert_eq!(y.dims(), &[1, 2, 2, 2]);
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![4.0; 8]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn conv2d(x: &Tensor, w: &Tensor, cfg: &Conv2dConfig) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let [b, c_in, h, wd] = dims4(x, OP, "input (B, C_in, H, W)")?;
    let [c_out, c_in_g, kh, kw] = dims4(w, OP, "weight (C_out, C_in / groups, kH, kW)")?;
    check_common(OP, x, w, cfg.stride, cfg.dilation, (kh, kw))?;
    let groups = cfg.groups;
    if groups == 0 || c_in % groups != 0 || c_out % groups != 0 {
        return Err(Error::usage(format!(
            "conv2d: groups ({groups}) must divide both the input's {c_in} channels (input \
             shape {:?}) and the weight's {c_out} output channels (weight shape {:?})",
            x.dims(),
            w.dims()
        )));
    }
    if c_in_g != c_in / groups {
        return Err(Error::shape(
            format!(
                "conv2d weight (C_out, C_in / groups, kH, kW) for input {:?} with {groups} group(s)",
                x.dims()
            ),
            &[c_out, c_in / groups, kh, kw],
            w.dims(),
        ));
    }
    if h == 0 || wd == 0 {
        return Err(Error::usage(format!(
            "conv2d: input {:?} has no pixels",
            x.dims()
        )));
    }
    let out = |len, k| conv_out_len(len, k, cfg.stride, cfg.padding, cfg.dilation);
    let (Some(ho), Some(wo)) = (out(h, kh), out(wd, kw)) else {
        return Err(Error::usage(format!(
            "conv2d: the {kh}×{kw} kernel with dilation {} does not fit in the input {:?} \
             padded by {}",
            cfg.dilation,
            x.dims(),
            cfg.padding
        )));
    };
    if !super::ours(x) {
        return Ok(x.conv2d(w, cfg.padding, cfg.stride, cfg.dilation, groups)?);
    }
    let geom = Geometry {
        batch: b,
        c_large: c_in,
        c_small: c_out,
        large: (h, wd),
        small: (ho, wo),
        kernel: (kh, kw),
        stride: cfg.stride,
        padding: cfg.padding,
        dilation: cfg.dilation,
        groups,
    };
    Ok(apply(Kind::Gather, geom, x, w)?)
}

/// 2-d transposed convolution (the gradient of [`conv2d`] with respect to its input, like
/// torch's `conv_transpose2d`) of `x` `(B, C_in, H, W)` with weight `w` `(C_in, C_out, kH, kW)`,
/// giving `(B, C_out, H_out, W_out)` with
/// `H_out = (H − 1)·stride − 2·padding + dilation·(kH − 1) + output_padding + 1`.
///
/// Differentiable in both arguments. Wrong ranks, channel counts, an `output_padding` not below
/// `max(stride, dilation)` or an empty output are typed errors.
///
/// ```
/// use ppl_core::candle_core::{DType, Device, Tensor};
/// use ppl_core::kernels::{conv_transpose2d, ConvTranspose2dConfig};
/// let x = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu)?;
/// let cfg = ConvTranspose2dConfig { stride: 2, ..Default::default() };
/// let y = conv_transpose2d(&x, &w, &cfg)?;
/// assert_eq!(y.dims(), &[1, 1, 4, 4]);
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![1.0; 16]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, cfg: &ConvTranspose2dConfig) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    let [b, c_in, h, wd] = dims4(x, OP, "input (B, C_in, H, W)")?;
    let [c_in_w, c_out, kh, kw] = dims4(w, OP, "weight (C_in, C_out, kH, kW)")?;
    check_common(OP, x, w, cfg.stride, cfg.dilation, (kh, kw))?;
    if c_in_w != c_in {
        return Err(Error::shape(
            format!(
                "conv_transpose2d weight (C_in, C_out, kH, kW) for input {:?}",
                x.dims()
            ),
            &[c_in, c_out, kh, kw],
            w.dims(),
        ));
    }
    if cfg.output_padding >= cfg.stride.max(cfg.dilation) {
        return Err(Error::usage(format!(
            "conv_transpose2d: output_padding ({}) must be smaller than stride ({}) or \
             dilation ({})",
            cfg.output_padding, cfg.stride, cfg.dilation
        )));
    }
    if h == 0 || wd == 0 {
        return Err(Error::usage(format!(
            "conv_transpose2d: input {:?} has no pixels",
            x.dims()
        )));
    }
    let out = |len, k| {
        conv_transpose_out_len(
            len,
            k,
            cfg.stride,
            cfg.padding,
            cfg.output_padding,
            cfg.dilation,
        )
    };
    let (Some(ho), Some(wo)) = (out(h, kh), out(wd, kw)) else {
        return Err(Error::usage(format!(
            "conv_transpose2d: padding {} removes the whole output of input {:?} with weight {:?}",
            cfg.padding,
            x.dims(),
            w.dims()
        )));
    };
    if !super::ours(x) {
        return Ok(x.conv_transpose2d(
            w,
            cfg.padding,
            cfg.output_padding,
            cfg.stride,
            cfg.dilation,
        )?);
    }
    let geom = Geometry {
        batch: b,
        c_large: c_out,
        c_small: c_in,
        large: (ho, wo),
        small: (h, wd),
        kernel: (kh, kw),
        stride: cfg.stride,
        padding: cfg.padding,
        dilation: cfg.dilation,
        groups: 1,
    };
    Ok(apply(Kind::Scatter, geom, x, w)?)
}
