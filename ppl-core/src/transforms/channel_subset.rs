//! A transform applied to a contiguous range of image channels, the rest passing through.

use candle_core::Tensor;

use super::cache::LogDetCache;
use super::{check_event_rank, sum_rightmost, IntoTransform, Transform, TransformRef};
use crate::error::{Error, Result};

const NAME: &str = "ChannelSubset";

/// `inner` applied to channels `start..start + len` of images `(..., C, H, W)`, the other
/// channels unchanged: the factoring-out of a multi-scale flow (RealNVP), where half of the
/// channels leave the flow at each scale and the rest go on. Event dim 3; `inner` must keep the
/// shape of the slice.
#[derive(Debug, Clone)]
pub struct ChannelSubset {
    start: usize,
    len: usize,
    inner: TransformRef,
    cache: LogDetCache,
}

impl ChannelSubset {
    /// `inner` on channels `start..start + len`.
    pub fn new(start: usize, len: usize, inner: impl IntoTransform) -> Result<Self> {
        let inner = inner.into_transform();
        if len == 0 || inner.event_dim() > 3 {
            return Err(Error::usage(format!(
                "{NAME}: the slice must be non-empty and the inner transform act on at most 3 \
                 dims, got {len} channels and event dim {}",
                inner.event_dim()
            )));
        }
        Ok(ChannelSubset {
            start,
            len,
            inner,
            cache: LogDetCache::default(),
        })
    }

    /// The transform on the slice.
    pub fn inner(&self) -> &TransformRef {
        &self.inner
    }

    /// `(before, slice, after)` of `v` along the channel dim.
    fn split(&self, v: &Tensor, what: &str) -> Result<[Tensor; 3]> {
        check_event_rank(v, 3, &format!("{NAME}::{what}"))?;
        let dim = v.rank() - 3;
        let c = v.dims()[dim];
        let end = self.start + self.len;
        if end > c {
            return Err(Error::usage(format!(
                "{NAME}::{what}: channels {}..{end} of a value of shape {:?}",
                self.start,
                v.dims()
            )));
        }
        Ok([
            v.narrow(dim, 0, self.start)?,
            v.narrow(dim, self.start, self.len)?,
            v.narrow(dim, end, c - end)?,
        ])
    }

    fn join(parts: [&Tensor; 3], dim: usize) -> Result<Tensor> {
        let kept: Vec<&Tensor> = parts.into_iter().filter(|t| t.dims()[dim] > 0).collect();
        Ok(Tensor::cat(&kept, dim)?)
    }

    fn log_det_of(&self, xs: &Tensor, ys: &Tensor) -> Result<Tensor> {
        let l = self.inner.log_abs_det_jacobian(xs, ys)?;
        sum_rightmost(&l, 3 - self.inner.event_dim(), NAME)
    }
}

impl Transform for ChannelSubset {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [a, xs, b] = self.split(x, "forward")?;
        let ys = self.inner.forward(&xs)?;
        let y = Self::join([&a, &ys, &b], x.rank() - 3)?;
        self.cache.put(x, &y, &self.log_det_of(&xs, &ys)?);
        Ok(y)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let [a, ys, b] = self.split(y, "inverse")?;
        let xs = self.inner.inverse(&ys)?;
        let x = Self::join([&a, &xs, &b], y.rank() - 3)?;
        self.cache.put(&x, y, &self.log_det_of(&xs, &ys)?);
        Ok(x)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if let Some(l) = self.cache.get(x, y) {
            return Ok(l);
        }
        let [_, xs, _] = self.split(x, "log_abs_det_jacobian")?;
        let [_, ys, _] = self.split(y, "log_abs_det_jacobian")?;
        self.log_det_of(&xs, &ys)
    }

    fn event_dim(&self) -> usize {
        3
    }
}
