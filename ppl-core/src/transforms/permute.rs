//! A fixed permutation of image channels.

use candle_core::Tensor;

use super::{check_event_rank, Transform};
use crate::error::{Error, Result};

const NAME: &str = "ChannelPermutation";

/// A fixed permutation of the channels of images `(..., C, H, W)`: output channel `i` is input
/// channel `perm[i]` (RealNVP's alternation between coupling layers, and the non-learnable
/// alternative to [`InvertibleConv1x1`](super::InvertibleConv1x1)). Log-det zero, event dim 3.
///
/// ```
/// use ppl_core::transforms::{ChannelPermutation, Transform};
/// use ppl_core::candle_core::{Device, Tensor};
///
/// let p = ChannelPermutation::reverse(3);
/// let x = Tensor::new(&[1.0f64, 2.0, 3.0], &Device::Cpu)?.reshape((3, 1, 1))?;
/// assert_eq!(p.forward(&x)?.flatten_all()?.to_vec1::<f64>()?, vec![3.0, 2.0, 1.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChannelPermutation {
    perm: Vec<u32>,
    inverse: Vec<u32>,
}

impl ChannelPermutation {
    /// The permutation `perm` of `0..C`; anything else is an error.
    pub fn new(perm: &[usize]) -> Result<Self> {
        let n = perm.len();
        let mut inverse = vec![u32::MAX; n];
        for (i, &p) in perm.iter().enumerate() {
            if p >= n || inverse[p] != u32::MAX {
                return Err(Error::usage(format!(
                    "{NAME}: {perm:?} is not a permutation of 0..{n}"
                )));
            }
            inverse[p] = i as u32;
        }
        if n == 0 {
            return Err(Error::usage(format!("{NAME}: the permutation is empty")));
        }
        Ok(ChannelPermutation {
            perm: perm.iter().map(|&p| p as u32).collect(),
            inverse,
        })
    }

    /// The reversal of `channels` channels.
    pub fn reverse(channels: usize) -> Self {
        let perm: Vec<u32> = (0..channels as u32).rev().collect();
        ChannelPermutation {
            inverse: perm.clone(),
            perm,
        }
    }

    fn apply(&self, v: &Tensor, idx: &[u32], what: &str) -> Result<Tensor> {
        check_event_rank(v, 3, &format!("{NAME}::{what}"))?;
        let dim = v.rank() - 3;
        if v.dims()[dim] != idx.len() {
            return Err(Error::shape(
                format!("{NAME}::{what}: a value of shape (..., C, H, W)"),
                &[idx.len()],
                &[v.dims()[dim]],
            ));
        }
        let ids = Tensor::new(idx, v.device())?;
        Ok(v.index_select(&ids, dim)?)
    }
}

impl Transform for ChannelPermutation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, &self.perm, "forward")
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.apply(y, &self.inverse, "inverse")
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        check_event_rank(x, 3, NAME)?;
        Ok(Tensor::zeros(
            &x.dims()[..x.rank() - 3],
            x.dtype(),
            x.device(),
        )?)
    }

    fn event_dim(&self) -> usize {
        3
    }
}
