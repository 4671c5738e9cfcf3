//! `y = loc + scale · x`.

use candle_core::Tensor;

use super::{check_event_rank, sum_rightmost, Transform};
use crate::dist::{broadcast_shapes, validation_enabled, violation, Param};
use crate::error::{Error, Result};

/// The affine map `y = loc + scale · x`, elementwise with broadcasting (Pyro's
/// `AffineTransform`).
///
/// `loc` and `scale` are tensors or numbers; a tensor is cast to the dtype and device of the value
/// it meets. With [`with_event_dim(n)`](Self::with_event_dim) the map is read as acting jointly on
/// the rightmost `n` dims, so that its log-det sums `log |scale|` over them.
///
/// ```
/// use ppl_core::transforms::{AffineTransform, Transform};
/// use candle_core::{Device, Tensor};
///
/// let scale = Tensor::new(&[2.0f64, -0.5], &Device::Cpu)?;
/// let t = AffineTransform::new(1.0, scale)?.with_event_dim(1);
/// let x = Tensor::new(&[[1.0f64, 2.0]], &Device::Cpu)?;
/// let y = t.forward(&x)?;
/// assert_eq!(y.to_vec2::<f64>()?, vec![vec![3.0, 0.0]]);
/// // log 2 + log 0.5, one value per event
/// let ladj = t.log_abs_det_jacobian(&x, &y)?;
/// assert!(ladj.to_vec1::<f64>()?[0].abs() < 1e-15);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AffineTransform {
    loc: Param,
    scale: Param,
    /// `log |scale|` when known without a `log` (built from a log-scale).
    log_abs_scale: Option<Param>,
    /// The broadcast shape of `loc` and `scale`.
    param_shape: Vec<usize>,
    event_dim: usize,
}

const NAME: &str = "AffineTransform";

fn param_dims(p: &Param) -> &[usize] {
    match p {
        Param::Tensor(t) => t.dims(),
        Param::Scalar(_) => &[],
    }
}

fn broadcast_params(loc: &Param, scale: &Param) -> Result<Vec<usize>> {
    let (l, s) = (param_dims(loc), param_dims(scale));
    broadcast_shapes(l, s).ok_or_else(|| {
        Error::shape(
            format!("{NAME}: `loc` of shape {l:?} does not broadcast with `scale`"),
            s,
            l,
        )
    })
}

/// Checks a parameter elementwise: a number always, a tensor while validation is on.
fn check_param(
    param: &'static str,
    p: &Param,
    ok: impl Fn(f64) -> bool + Sync,
    rule: &str,
) -> Result<()> {
    match p {
        Param::Scalar(x) => violation(NAME, param, (!ok(*x)).then_some((0, *x)), &[], rule),
        Param::Tensor(t) if validation_enabled() => {
            let found = crate::kernels::elementwise::first_where(t, |x| !ok(x))?;
            violation(NAME, param, found, t.dims(), rule)
        }
        Param::Tensor(_) => Ok(()),
    }
}

fn check_loc(loc: &Param) -> Result<()> {
    check_param("loc", loc, f64::is_finite, "must be finite")
}

impl AffineTransform {
    /// `y = loc + scale · x`. `scale` must be non-zero and finite everywhere: an
    /// [`Error::InvalidParameter`] otherwise (for a tensor, checked while
    /// [validation](crate::dist::set_validation) is on, with one host read per tensor
    /// parameter); `loc` must be finite.
    pub fn new(loc: impl Into<Param>, scale: impl Into<Param>) -> Result<Self> {
        let (loc, scale) = (loc.into(), scale.into());
        let param_shape = broadcast_params(&loc, &scale)?;
        check_loc(&loc)?;
        check_param(
            "scale",
            &scale,
            |s| s != 0.0 && s.is_finite(),
            "must be non-zero and finite",
        )?;
        Ok(AffineTransform {
            loc,
            scale,
            log_abs_scale: None,
            param_shape,
            event_dim: 0,
        })
    }

    /// `y = loc + exp(log_scale) · x`: the parameterisation of flows and conditional
    /// mechanisms, whose log-det is `log_scale` itself. `log_scale` must be finite and not so
    /// small that `exp` underflows to zero.
    pub fn from_log_scale(loc: impl Into<Param>, log_scale: impl Into<Param>) -> Result<Self> {
        let (loc, log_scale) = (loc.into(), log_scale.into());
        let param_shape = broadcast_params(&loc, &log_scale)?;
        check_loc(&loc)?;
        let scale = match &log_scale {
            Param::Scalar(ls) => Param::Scalar(ls.exp()),
            Param::Tensor(t) => Param::Tensor(t.exp()?),
        };
        // Checked after `exp`, in the parameter's own dtype: that is where it under- or
        // overflows.
        check_param(
            "log_scale",
            &scale,
            |s| s != 0.0 && s.is_finite(),
            "exp(log_scale) must be non-zero and finite",
        )?;
        Ok(AffineTransform {
            loc,
            scale,
            log_abs_scale: Some(log_scale),
            param_shape,
            event_dim: 0,
        })
    }

    /// The same map read as acting jointly on the rightmost `event_dim` dims.
    pub fn with_event_dim(mut self, event_dim: usize) -> Self {
        self.event_dim = event_dim;
        self
    }

    /// The location.
    pub fn loc(&self) -> &Param {
        &self.loc
    }

    /// The scale.
    pub fn scale(&self) -> &Param {
        &self.scale
    }

    /// The shape of `loc` and `scale` broadcast together.
    pub fn param_shape(&self) -> &[usize] {
        &self.param_shape
    }

    fn out_shape(&self, dims: &[usize], what: &str) -> Result<Vec<usize>> {
        broadcast_shapes(dims, &self.param_shape).ok_or_else(|| {
            Error::shape(
                format!("{NAME}::{what}: the value does not broadcast with loc/scale"),
                &self.param_shape,
                dims,
            )
        })
    }

    fn check(&self, v: &Tensor, what: &str) -> Result<Vec<usize>> {
        check_event_rank(v, self.event_dim, &format!("{NAME}::{what}"))?;
        self.out_shape(v.dims(), what)
    }
}

/// `t ∘ p` for a parameter that is a number or a tensor (cast to `t`'s dtype and device).
fn combine(
    t: &Tensor,
    p: &Param,
    scalar: impl Fn(&Tensor, f64) -> candle_core::Result<Tensor>,
    tensor: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> Result<Tensor> {
    Ok(match p {
        Param::Scalar(s) => scalar(t, *s)?,
        Param::Tensor(_) => tensor(t, &p.to_tensor(t.dtype(), t.device())?)?,
    })
}

impl Transform for AffineTransform {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x, "forward")?;
        let sx = combine(
            x,
            &self.scale,
            |t, s| t.affine(s, 0.0),
            |t, s| t.broadcast_mul(s),
        )?;
        combine(
            &sx,
            &self.loc,
            |t, l| t.affine(1.0, l),
            |t, l| t.broadcast_add(l),
        )
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.check(y, "inverse")?;
        let d = combine(
            y,
            &self.loc,
            |t, l| t.affine(1.0, -l),
            |t, l| t.broadcast_sub(l),
        )?;
        combine(
            &d,
            &self.scale,
            |t, s| t.affine(1.0 / s, 0.0),
            |t, s| t.broadcast_div(s),
        )
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        let shape = self.check(x, "log_abs_det_jacobian")?;
        let batch = &shape[..shape.len() - self.event_dim];
        let las = match &self.log_abs_scale {
            Some(Param::Scalar(ls)) => Param::Scalar(*ls),
            Some(p) => Param::Tensor(p.to_tensor(x.dtype(), x.device())?),
            None => match &self.scale {
                Param::Scalar(s) => Param::Scalar(s.abs().ln()),
                p => Param::Tensor(p.to_tensor(x.dtype(), x.device())?.abs()?.log()?),
            },
        };
        match las {
            // A constant log-det: `event size · log|scale|` without materialising the events.
            Param::Scalar(c) => {
                let n: usize = shape[shape.len() - self.event_dim..].iter().product();
                let v = Tensor::new(c * n as f64, x.device())?.to_dtype(x.dtype())?;
                Ok(v.broadcast_as(batch)?.contiguous()?)
            }
            Param::Tensor(t) => {
                let full = t.broadcast_as(shape.as_slice())?;
                let summed = sum_rightmost(&full, self.event_dim, NAME)?;
                Ok(summed.contiguous()?)
            }
        }
    }

    fn event_dim(&self) -> usize {
        self.event_dim
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.out_shape(shape, "forward_shape")
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.out_shape(shape, "inverse_shape")
    }
}
