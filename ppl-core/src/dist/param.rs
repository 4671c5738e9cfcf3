//! Distribution parameters given as tensors or plain numbers.

use candle_core::{DType, Device, Tensor};

use crate::error::Result;

/// A distribution parameter: a tensor, or a number that takes the dtype and device of the
/// distribution's other parameters (f32 on the CPU when none is a tensor).
#[derive(Debug, Clone)]
pub enum Param {
    /// A tensor parameter.
    Tensor(Tensor),
    /// A scalar parameter.
    Scalar(f64),
}

impl From<Tensor> for Param {
    fn from(t: Tensor) -> Self {
        Param::Tensor(t)
    }
}

impl From<&Tensor> for Param {
    fn from(t: &Tensor) -> Self {
        Param::Tensor(t.clone())
    }
}

impl From<f64> for Param {
    fn from(x: f64) -> Self {
        Param::Scalar(x)
    }
}

impl From<f32> for Param {
    fn from(x: f32) -> Self {
        Param::Scalar(x as f64)
    }
}

impl Param {
    /// The dtype and device of the first tensor among `params`, or f32 on the CPU.
    pub fn common_dtype_device(params: &[&Param]) -> (DType, Device) {
        params
            .iter()
            .find_map(|p| match p {
                Param::Tensor(t) => Some((t.dtype(), t.device().clone())),
                Param::Scalar(_) => None,
            })
            .unwrap_or((DType::F32, Device::Cpu))
    }

    /// The parameter as a tensor of `dtype` on `device` (a scalar becomes a 0-dim tensor).
    pub fn to_tensor(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        Ok(match self {
            Param::Tensor(t) => {
                let t = if t.dtype() == dtype {
                    t.clone()
                } else {
                    t.to_dtype(dtype)?
                };
                if t.device().same_device(device) {
                    t
                } else {
                    t.to_device(device)?
                }
            }
            Param::Scalar(x) => match dtype {
                DType::F32 => Tensor::new(*x as f32, device)?,
                DType::F64 => Tensor::new(*x, device)?,
                other => Tensor::new(*x, device)?.to_dtype(other)?,
            },
        })
    }

    /// Resolves a list of parameters to tensors of one dtype and device.
    pub fn resolve<const N: usize>(params: [&Param; N]) -> Result<[Tensor; N]> {
        let (dtype, device) = Self::common_dtype_device(&params);
        let mut out = Vec::with_capacity(N);
        for p in params {
            out.push(p.to_tensor(dtype, &device)?);
        }
        Ok(out.try_into().expect("length N by construction"))
    }
}
