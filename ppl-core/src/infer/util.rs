//! Small numeric helpers shared by the inference algorithms.

use candle_core::{DType, Tensor};

use crate::error::Result;

/// `log Σ exp(x)`, stable; `-inf` for an empty slice or all `-inf`.
pub(crate) fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    if m == f64::INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A tensor's elements as f64s, flattened.
pub(crate) fn to_f64s(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// A 0-dim (or one-element) tensor as an f64.
pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?
        .flatten_all()?
        .sum_all()?
        .to_scalar::<f64>()?)
}
