//! Fast CPU kernels behind candle ops.
//!
//! candle's CPU convolutions are slow (its `conv_transpose2d` is a plain nested loop), so the
//! convolutions here run im2col / col2im with the `gemm` crate's blocked matrix product,
//! multi-threaded over the batch, as candle custom ops whose backward passes use the same
//! kernels. Models call [`conv2d`] and [`conv_transpose2d`] on any device: on CUDA and Metal,
//! and for dtypes other than f32 and f64, they fall through to candle's own ops.
//!
//! Inside the crate, the distributions, world handlers and estimators use one-pass elementwise
//! kernels (`elementwise`, `bernoulli`, `fused`) where candle would spend many ops, each a pass
//! and an allocation, on one formula: draws, log-densities with their backward passes, selects,
//! validation scans. They too run on the CPU for f32 and f64 and fall back to candle's ops
//! elsewhere.

pub(crate) mod adam;
pub(crate) mod bernoulli;
mod bias;
mod conv;
mod conv_op;
mod cpu_conv;
pub(crate) mod elementwise;
pub(crate) mod fused;
mod gemm;
mod geometry;
mod im2col;
mod relu;
mod scratch;

pub use bias::add_bias;
pub use conv::{conv2d, conv_transpose2d, Conv2dConfig, ConvTranspose2dConfig};
pub use relu::{leaky_relu, relu};

/// Whether our kernels handle this tensor (CPU, f32 or f64); other devices and dtypes fall
/// through to candle's ops.
fn ours(x: &candle_core::Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
}

/// A contiguous operand's data as one slice (candle's strided iterator is private, and the
/// kernels make their operands contiguous first).
fn slice<'a, T>(
    data: &'a [T],
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: operand is not contiguous ({:?})", layout.stride()),
    }
}

/// An elementwise op's operands must have one shape (the callers broadcast them first); the
/// error names the op and every operand's shape.
fn same_dims(op: &str, layouts: &[&candle_core::Layout]) -> candle_core::Result<()> {
    match layouts.split_first() {
        Some((first, rest)) if rest.iter().any(|l| l.dims() != first.dims()) => {
            let dims: Vec<_> = layouts.iter().map(|l| l.dims()).collect();
            candle_core::bail!("{op}: operand shapes {dims:?} differ")
        }
        _ => Ok(()),
    }
}
