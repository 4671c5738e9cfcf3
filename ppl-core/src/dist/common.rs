//! What the concrete distributions share: validating and broadcasting parameters, checking the
//! shape of values, and masking log-densities outside the support without NaN gradients.

use candle_core::{DType, Device, Tensor};

use super::{broadcast_shapes, validation_enabled, Param};
use crate::error::{Error, Result};

/// A domain a parameter must lie in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Domain {
    /// Finite (not NaN, not infinite).
    Finite,
    /// Finite and `> 0`.
    Positive,
    /// In `[0, 1]`.
    Probability,
    /// Not NaN and not `+inf` (`-inf` allowed: a masked-out logit).
    BelowInfinity,
}

impl Domain {
    fn holds(self, x: f64) -> bool {
        match self {
            Domain::Finite => x.is_finite(),
            Domain::Positive => x.is_finite() && x > 0.0,
            Domain::Probability => (0.0..=1.0).contains(&x),
            Domain::BelowInfinity => x < f64::INFINITY,
        }
    }

    /// The first element of `t` outside the domain. One closure per domain, so that each
    /// scan is a loop the compiler can vectorise.
    fn first_violation_in(self, t: &Tensor) -> Result<Option<(usize, f64)>> {
        use crate::kernels::elementwise::first_where;
        match self {
            Domain::Finite => first_where(t, |x| !x.is_finite()),
            Domain::Positive => first_where(t, |x| !(x.is_finite() && x > 0.0)),
            Domain::Probability => first_where(t, |x| !(0.0..=1.0).contains(&x)),
            Domain::BelowInfinity => first_where(t, |x| x.is_nan() || x == f64::INFINITY),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Domain::Finite => "must be finite",
            Domain::Positive => "must be finite and > 0",
            Domain::Probability => "must lie in [0, 1]",
            Domain::BelowInfinity => "must not be NaN or +inf",
        }
    }
}

/// The elements of `t`, read to the host in f64.
pub(crate) fn host_values(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// The element `found` breaking `rule` (flat index and value) of a parameter of shape `dims`,
/// as an error naming `dist` and `param`; `Ok` when none was found.
pub(crate) fn violation(
    dist: &'static str,
    param: &'static str,
    found: Option<(usize, f64)>,
    dims: &[usize],
    rule: &str,
) -> Result<()> {
    match found {
        None => Ok(()),
        Some((_, x)) if dims.is_empty() => {
            Err(Error::param(dist, param, format!("{rule}, got {x}")))
        }
        Some((i, x)) => Err(Error::param(
            dist,
            param,
            format!("{rule}, got {x} at flat index {i} of shape {dims:?}"),
        )),
    }
}

/// Checks that every element of `p` lies in `domain`, while validation is on. A scalar is
/// checked without touching a device; a CPU tensor is scanned in place.
pub(crate) fn validate(
    dist: &'static str,
    param: &'static str,
    p: &Param,
    domain: Domain,
) -> Result<()> {
    if !validation_enabled() {
        return Ok(());
    }
    match p {
        Param::Scalar(x) => {
            let found = (!domain.holds(*x)).then_some((0, *x));
            violation(dist, param, found, &[], domain.describe())
        }
        Param::Tensor(t) => {
            let found = domain.first_violation_in(t)?;
            violation(dist, param, found, t.dims(), domain.describe())
        }
    }
}

/// Refuses non-float parameters: every distribution here computes in floating point.
pub(crate) fn check_float(dist: &'static str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::Unsupported {
            what: format!("{dist} with {dtype:?} parameters"),
            why: "distribution parameters must be floating point".into(),
        })
    }
}

/// Resolves `params` to one dtype and device and broadcasts them to their common shape (views,
/// no copies). Returns the tensors and that shape.
pub(crate) fn broadcast_params<const N: usize>(
    dist: &'static str,
    names: [&'static str; N],
    params: [&Param; N],
) -> Result<([Tensor; N], Vec<usize>)> {
    let (dtype, device) = Param::common_dtype_device(&params);
    let mut ts = Vec::with_capacity(N);
    for p in params {
        ts.push(match p {
            Param::Scalar(x) => scalar_tensor(*x, dtype, &device)?,
            Param::Tensor(_) => p.to_tensor(dtype, &device)?,
        });
    }
    check_float(dist, ts[0].dtype())?;
    let mut shape: Vec<usize> = Vec::new();
    for (i, t) in ts.iter().enumerate() {
        shape = broadcast_shapes(&shape, t.dims()).ok_or_else(|| {
            Error::shape(
                format!(
                    "{dist}: parameter `{}` does not broadcast with {}",
                    names[i],
                    names[..i].join(", ")
                ),
                &shape,
                t.dims(),
            )
        })?;
    }
    let mut out = Vec::with_capacity(N);
    for t in ts {
        out.push(if t.dims() == shape.as_slice() {
            t
        } else {
            t.broadcast_as(shape.as_slice())?
        });
    }
    let out: [Tensor; N] = out.try_into().expect("length N by construction");
    Ok((out, shape))
}

/// `sample_shape + batch + event`.
pub(crate) fn draw_shape(sample_shape: &[usize], batch: &[usize], event: &[usize]) -> Vec<usize> {
    let mut s = Vec::with_capacity(sample_shape.len() + batch.len() + event.len());
    s.extend_from_slice(sample_shape);
    s.extend_from_slice(batch);
    s.extend_from_slice(event);
    s
}

/// Broadcasts a parameter of shape `old + tail` to `new + tail`, for `expand`.
pub(crate) fn expand_param(
    dist: &'static str,
    t: &Tensor,
    old: &[usize],
    new: &[usize],
) -> Result<Tensor> {
    if broadcast_shapes(old, new).as_deref() != Some(new) {
        return Err(Error::shape(
            format!("{dist}::expand: batch shape {old:?} cannot be expanded"),
            new,
            old,
        ));
    }
    let mut target = new.to_vec();
    target.extend_from_slice(&t.dims()[old.len()..]);
    Ok(t.broadcast_as(target)?)
}

/// The shape of `log_prob(value)`: the value's dims left of `event`, broadcast with `batch`.
/// Refuses values of another dtype or whose rightmost dims are not `event`.
pub(crate) fn log_prob_shape(
    dist: &'static str,
    value: &Tensor,
    dtype: DType,
    batch: &[usize],
    event: &[usize],
) -> Result<Vec<usize>> {
    if value.dtype() != dtype {
        return Err(Error::usage(format!(
            "{dist}::log_prob: the value has dtype {:?} but the distribution {dtype:?}; \
             convert it with to_dtype",
            value.dtype()
        )));
    }
    let dims = value.dims();
    let split = dims.len().checked_sub(event.len());
    let lead = match split {
        Some(s) if &dims[s..] == event => &dims[..s],
        _ => {
            return Err(Error::shape(
                format!("{dist}::log_prob: the value's rightmost dims must be the event shape"),
                event,
                dims,
            ))
        }
    };
    broadcast_shapes(lead, batch).ok_or_else(|| {
        Error::shape(
            format!("{dist}::log_prob: the value does not broadcast with the batch shape"),
            batch,
            dims,
        )
    })
}

/// Integer-valued tensors (class indices, booleans) in the distribution's float dtype.
pub(crate) fn as_float_value(value: &Tensor, dtype: DType) -> Result<Tensor> {
    if value.dtype().is_float() || value.dtype() == dtype {
        Ok(value.clone())
    } else {
        Ok(value.to_dtype(dtype)?)
    }
}

/// A 0-dim tensor holding `x` in `dtype`, made directly in the common float dtypes (a
/// conversion op costs as much as the creation on the per-site hot path).
pub(crate) fn scalar_tensor(x: f64, dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(match dtype {
        DType::F32 => Tensor::new(x as f32, device)?,
        DType::F64 => Tensor::new(x, device)?,
        other => Tensor::new(x, device)?.to_dtype(other)?,
    })
}

/// A tensor of `shape` filled with `x`, as a broadcast view of one element.
pub(crate) fn filled(x: f64, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(scalar_tensor(x, dtype, device)?.broadcast_as(shape)?)
}

/// The largest value below 1 in `dtype`: host draws from (0, 1) are clamped to it so that
/// rounding to the dtype cannot produce 1 (a Bernoulli(1) must always give 1).
pub(crate) fn below_one(dtype: DType) -> f64 {
    let eps = match dtype {
        DType::F64 => f64::EPSILON,
        DType::F16 => 2f64.powi(-10),
        DType::BF16 => 2f64.powi(-7),
        _ => f64::from(f32::EPSILON),
    };
    1.0 - eps / 2.0
}

/// `t` broadcast to `shape` (no-op when it already has it).
pub(crate) fn to_shape(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if t.dims() == shape {
        Ok(t.clone())
    } else {
        Ok(t.broadcast_as(shape)?)
    }
}

/// `x` where `inside`, `fallback` elsewhere. Used on both sides of a bounded log-density: on the
/// input, so that the branch not taken sees a harmless value and its gradient stays finite
/// (candle's `where_cond` passes zero gradient to it, but `0 · inf` is still NaN), and on the
/// output, to put `-inf` outside the support.
pub(crate) fn select(inside: &Tensor, x: &Tensor, fallback: f64) -> Result<Tensor> {
    let shape = inside.dims();
    let x = to_shape(x, shape)?;
    let other = filled(fallback, shape, x.dtype(), x.device())?;
    Ok(inside.where_cond(&x, &other)?)
}

/// `a · ln(y)`, taken as 0 where `a == 0` (also at `y == 0`), with finite gradients there.
/// Both arguments must already have the same shape.
pub(crate) fn xlogy(a: &Tensor, y: &Tensor) -> Result<Tensor> {
    let y_safe = select(&a.ne(0.0)?, y, 1.0)?;
    Ok(a.mul(&y_safe.log()?)?)
}
