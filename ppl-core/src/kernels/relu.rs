//! Fused (leaky) ReLU on the CPU.
//!
//! candle's `relu` backward builds its mask from four separate ops (`zeros_like`, `ge`,
//! `to_dtype`, `mul`), each a full single-threaded pass with a fresh allocation; between the
//! convolutions of a small conv VAE that costs more than the convolutions' own gradients. Here
//! the forward is one pass and the backward one pass over `(output, grad)`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::{same_dims, slice};
use crate::error::{Error, Result};

/// `max(x, 0) + slope · min(x, 0)`, the forward op.
#[derive(Clone, Copy, Debug)]
struct LeakyRelu {
    slope: f64,
}

/// `grad · (y > 0 ? 1 : slope)`, the backward op over `(y, grad)`.
///
/// The mask reads the forward's output: for a slope in `[0, 1]`, `y > 0` exactly when `x > 0`,
/// so the input need not be kept.
#[derive(Clone, Copy, Debug)]
struct LeakyReluGrad {
    slope: f64,
}

/// Maps `f` over `x` into a new vector.
///
/// One thread on purpose: the pass is bound by memory bandwidth, and handing it to candle's
/// worker pool measured twice as slow (the pool's spin barrier costs more than the pass).
fn map1<T: Copy>(x: &[T], f: impl Fn(T) -> T) -> Vec<T> {
    x.iter().map(|&v| f(v)).collect()
}

/// Maps `f` over `(a, b)` pairs into a new vector.
fn map2<T: Copy>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> Vec<T> {
    a.iter().zip(b).map(|(&u, &v)| f(u, v)).collect()
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "ppl-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        let storage = match s {
            CpuStorage::F32(x) => {
                let k = self.slope as f32;
                CpuStorage::F32(map1(
                    slice(x, l, name)?,
                    |v| if v > 0.0 { v } else { k * v },
                ))
            }
            CpuStorage::F64(x) => {
                let k = self.slope;
                CpuStorage::F64(map1(
                    slice(x, l, name)?,
                    |v| if v > 0.0 { v } else { k * v },
                ))
            }
            other => candle_core::bail!("{name}: no CPU kernel for {:?}", other.dtype()),
        };
        Ok((storage, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = LeakyReluGrad { slope: self.slope };
        Ok(Some(y.contiguous()?.apply_op2(&grad.contiguous()?, op)?))
    }
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "ppl-leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        same_dims(name, &[l1, l2])?;
        let storage = match (s1, s2) {
            (CpuStorage::F32(y), CpuStorage::F32(g)) => {
                let k = self.slope as f32;
                let (y, g) = (slice(y, l1, name)?, slice(g, l2, name)?);
                CpuStorage::F32(map2(y, g, |y, g| if y > 0.0 { g } else { k * g }))
            }
            (CpuStorage::F64(y), CpuStorage::F64(g)) => {
                let k = self.slope;
                let (y, g) = (slice(y, l1, name)?, slice(g, l2, name)?);
                CpuStorage::F64(map2(y, g, |y, g| if y > 0.0 { g } else { k * g }))
            }
            (a, b) => candle_core::bail!(
                "{name}: no CPU kernel for dtypes {:?} and {:?}",
                a.dtype(),
                b.dtype()
            ),
        };
        Ok((storage, l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        _grad: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // Second derivatives: the mask is piecewise constant in y, and linear in grad.
        let op = LeakyReluGrad { slope: self.slope };
        Ok((
            None,
            Some(y.contiguous()?.apply_op2(&grad_res.contiguous()?, op)?),
        ))
    }
}

/// `max(x, 0)`, differentiable; one fused pass forward and backward on the CPU, candle's
/// `relu` on other devices and dtypes.
///
/// ```
/// use ppl_core::candle_core::{Device, Tensor};
/// let x = Tensor::new(&[-1.0f32, 0.0, 2.0], &Device::Cpu)?;
/// assert_eq!(ppl_core::kernels::relu(&x)?.to_vec1::<f32>()?, vec![0.0, 0.0, 2.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if super::ours(x) {
        Ok(x.contiguous()?.apply_op1(LeakyRelu { slope: 0.0 })?)
    } else {
        Ok(x.relu()?)
    }
}

/// `x` for `x > 0`, `slope · x` otherwise, for a slope in `[0, 1]` (outside it the backward's
/// output-sign mask would be wrong, so it is an [`Error::InvalidParameter`]).
///
/// ```
/// use ppl_core::candle_core::{Device, Tensor};
/// let x = Tensor::new(&[-2.0f32, 3.0], &Device::Cpu)?;
/// assert_eq!(ppl_core::kernels::leaky_relu(&x, 0.5)?.to_vec1::<f32>()?, vec![-1.0, 3.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&slope) {
        return Err(Error::param(
            "LeakyRelu",
            "slope",
            format!("must lie in [0, 1], got {slope}"),
        ));
    }
    if super::ours(x) {
        Ok(x.contiguous()?.apply_op1(LeakyRelu { slope })?)
    } else {
        // For a slope in [0, 1], max(x, slope · x) is the leaky ReLU in two ops.
        Ok(x.maximum(&x.affine(slope, 0.0)?)?)
    }
}
