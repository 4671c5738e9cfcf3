//! A chain of transforms.

use candle_core::Tensor;

use super::cache::LogDetCache;
use super::{check_event_rank, sum_rightmost, Transform, TransformRef};
use crate::dist::Support;
use crate::error::Result;

/// The chain `x ↦ t_n(… t_2(t_1(x)))` (Pyro's `ComposeTransform`). Its event dim is the largest
/// of its parts'; the log-det of a part acting on fewer dims is summed over the rest, so that
/// every term has the chain's shape. The empty chain is the identity.
///
/// `inverse` collects the parts' log-dets on its way back and keeps their sum for the
/// `log_abs_det_jacobian` call that follows it in `log_prob`, so that a chain of flow layers is
/// not run forward again.
///
/// ```
/// use ppl_core::transforms::{AffineTransform, ComposeTransform, ExpTransform, Transform, TransformExt};
/// use candle_core::{Device, Tensor};
///
/// let chain = ComposeTransform::new(vec![
///     ExpTransform.shared(),
///     AffineTransform::new(0.0, 3.0)?.with_event_dim(1).shared(),
/// ]);
/// assert_eq!(chain.event_dim(), 1);
/// let x = Tensor::new(&[[0.0f64, 1.0]], &Device::Cpu)?;
/// let ladj = chain.log_abs_det_jacobian(&x, &chain.forward(&x)?)?.to_vec1::<f64>()?;
/// // (0 + 1) from exp, summed over the event, plus 2 log 3 from the affine map
/// assert!((ladj[0] - (1.0 + 2.0 * 3f64.ln())).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ComposeTransform {
    parts: Vec<TransformRef>,
    event_dim: usize,
    cache: LogDetCache,
}

impl ComposeTransform {
    /// The chain applying `parts` first to last.
    pub fn new(parts: Vec<TransformRef>) -> Self {
        let event_dim = parts.iter().map(|p| p.event_dim()).max().unwrap_or(0);
        ComposeTransform {
            parts,
            event_dim,
            cache: LogDetCache::default(),
        }
    }

    /// The parts, in the order they are applied.
    pub fn parts(&self) -> &[TransformRef] {
        &self.parts
    }

    fn term(&self, part: &TransformRef, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let l = part.log_abs_det_jacobian(x, y)?;
        sum_rightmost(&l, self.event_dim - part.event_dim(), "ComposeTransform")
    }

    fn zero_log_det(&self, x: &Tensor) -> Result<Tensor> {
        check_event_rank(x, self.event_dim, "ComposeTransform")?;
        let d = x.dims();
        Ok(Tensor::zeros(
            &d[..d.len() - self.event_dim],
            x.dtype(),
            x.device(),
        )?)
    }
}

impl Transform for ComposeTransform {
    fn name(&self) -> &'static str {
        "ComposeTransform"
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut v = x.clone();
        for p in &self.parts {
            v = p.forward(&v)?;
        }
        Ok(v)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let mut v = y.clone();
        let mut total: Option<Tensor> = None;
        for p in self.parts.iter().rev() {
            let x = p.inverse(&v)?;
            // Parts that compute their log-det on the way (flow layers) answer from their cache.
            let t = self.term(p, &x, &v)?;
            total = Some(match total {
                None => t,
                Some(acc) => acc.broadcast_add(&t)?,
            });
            v = x;
        }
        if let Some(t) = total {
            self.cache.put(&v, y, &t);
        }
        Ok(v)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if let Some(l) = self.cache.get(x, y) {
            return Ok(l);
        }
        let Some((last, init)) = self.parts.split_last() else {
            return self.zero_log_det(x);
        };
        let mut total: Option<Tensor> = None;
        let mut cur = x.clone();
        for p in init {
            let next = p.forward(&cur)?;
            let t = self.term(p, &cur, &next)?;
            total = Some(match total {
                None => t,
                Some(acc) => acc.broadcast_add(&t)?,
            });
            cur = next;
        }
        // The last part ends at the given `y`, so that it is not recomputed.
        let t = self.term(last, &cur, y)?;
        Ok(match total {
            None => t,
            Some(acc) => acc.broadcast_add(&t)?,
        })
    }

    fn event_dim(&self) -> usize {
        self.event_dim
    }

    fn domain(&self) -> Support {
        self.parts.first().map_or(Support::Real, |p| p.domain())
    }

    fn codomain(&self) -> Support {
        self.parts.last().map_or(Support::Real, |p| p.codomain())
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let mut s = shape.to_vec();
        for p in &self.parts {
            s = p.forward_shape(&s)?;
        }
        Ok(s)
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let mut s = shape.to_vec();
        for p in self.parts.iter().rev() {
            s = p.inverse_shape(&s)?;
        }
        Ok(s)
    }

    fn forward_and_log_det(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        if self.parts.is_empty() {
            return Ok((x.clone(), self.zero_log_det(x)?));
        }
        let mut total: Option<Tensor> = None;
        let mut cur = x.clone();
        for p in &self.parts {
            let (next, l) = p.forward_and_log_det(&cur)?;
            let t = sum_rightmost(&l, self.event_dim - p.event_dim(), "ComposeTransform")?;
            total = Some(match total {
                None => t,
                Some(acc) => acc.broadcast_add(&t)?,
            });
            cur = next;
        }
        let total = match total {
            Some(t) => t,
            None => self.zero_log_det(x)?,
        };
        Ok((cur, total))
    }
}
