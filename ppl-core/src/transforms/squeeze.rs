//! Space-to-depth: `(C, H, W)` images to `(4C, H/2, W/2)`.

use candle_core::Tensor;

use super::{check_event_rank, Transform};
use crate::error::{Error, Result};

const NAME: &str = "SqueezeTransform";

/// The squeeze of RealNVP: each `2 × 2` block of pixels becomes four channels, `(..., C, H, W)`
/// to `(..., 4C, H/2, W/2)` (channel `4c + 2i + j` holds pixel `(2h + i, 2w + j)` of channel
/// `c`). A permutation of the values, so its log-det is zero; it acts on the three rightmost
/// dims (event dim 3). Odd heights or widths are an error.
///
/// ```
/// use ppl_core::transforms::{SqueezeTransform, Transform};
/// use ppl_core::candle_core::{Device, Tensor};
///
/// let x = Tensor::arange(0f64, 16.0, &Device::Cpu)?.reshape((1, 4, 4))?;
/// let y = SqueezeTransform.forward(&x)?;
/// assert_eq!(y.dims(), &[4, 2, 2]);
/// assert_eq!(y.get(0)?.flatten_all()?.to_vec1::<f64>()?, vec![0.0, 2.0, 8.0, 10.0]);
/// assert_eq!(SqueezeTransform.inverse(&y)?.flatten_all()?.to_vec1::<f64>()?,
///            x.flatten_all()?.to_vec1::<f64>()?);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SqueezeTransform;

fn split(shape: &[usize], what: &str) -> Result<(Vec<usize>, [usize; 3])> {
    if shape.len() < 3 {
        return Err(Error::ShapeMismatch {
            context: format!("{NAME}::{what}: a value of shape (..., C, H, W)"),
            expected: vec![1; 3],
            got: shape.to_vec(),
        });
    }
    let cut = shape.len() - 3;
    Ok((
        shape[..cut].to_vec(),
        [shape[cut], shape[cut + 1], shape[cut + 2]],
    ))
}

fn squeezed(shape: &[usize]) -> Result<Vec<usize>> {
    let (mut lead, [c, h, w]) = split(shape, "forward")?;
    if h % 2 != 0 || w % 2 != 0 {
        return Err(Error::usage(format!(
            "{NAME}: height and width must be even, got a value of shape {shape:?}"
        )));
    }
    lead.extend_from_slice(&[4 * c, h / 2, w / 2]);
    Ok(lead)
}

fn unsqueezed(shape: &[usize]) -> Result<Vec<usize>> {
    let (mut lead, [c, h, w]) = split(shape, "inverse")?;
    if c % 4 != 0 {
        return Err(Error::usage(format!(
            "{NAME}::inverse: the channels must be a multiple of 4, got a value of shape {shape:?}"
        )));
    }
    lead.extend_from_slice(&[c / 4, 2 * h, 2 * w]);
    Ok(lead)
}

impl Transform for SqueezeTransform {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = squeezed(x.dims())?;
        let (_, [c, h, w]) = split(x.dims(), "forward")?;
        let n: usize = x.dims()[..x.rank() - 3].iter().product();
        let t = x
            .reshape(&[n, c, h / 2, 2, w / 2, 2][..])?
            .permute([0, 1, 3, 5, 2, 4])?;
        Ok(t.contiguous()?.reshape(out)?)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let out = unsqueezed(y.dims())?;
        let (_, [c, h, w]) = split(y.dims(), "inverse")?;
        let n: usize = y.dims()[..y.rank() - 3].iter().product();
        let t = y
            .reshape(&[n, c / 4, 2, 2, h, w][..])?
            .permute([0, 1, 4, 2, 5, 3])?;
        Ok(t.contiguous()?.reshape(out)?)
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

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        squeezed(shape)
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        unsqueezed(shape)
    }
}
