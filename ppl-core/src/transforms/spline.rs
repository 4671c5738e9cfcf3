//! Monotone rational splines: a spline with given parameters, and a learnable one.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::cache::LogDetCache;
use super::spline_knots::Knots;
use super::Transform;
use crate::dist::broadcast_shapes;
use crate::error::{Error, Result};

/// The family of rational spline (Pyro's `order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplineOrder {
    /// Monotone rational-quadratic splines (Durkan et al. 2019), Pyro's `order="quadratic"`.
    #[default]
    Quadratic,
    /// Monotone linear-rational splines (Dolatabadi et al. 2020), Pyro's `order="linear"`: one
    /// more parameter per bin, the split point of the bin's two linear-rational pieces.
    Linear,
}

/// The shape of a spline (Pyro's defaults: 8 bins on `[-3, 3]`, quadratic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplineConfig {
    /// Bins (at least 2).
    pub count_bins: usize,
    /// The spline acts on `[-bound, bound]` and is the identity, with unit slope, outside.
    pub bound: f64,
    /// Rational-quadratic or linear-rational.
    pub order: SplineOrder,
}

impl Default for SplineConfig {
    fn default() -> Self {
        SplineConfig {
            count_bins: 8,
            bound: 3.0,
            order: SplineOrder::Quadratic,
        }
    }
}

impl SplineConfig {
    /// The linear-rational spline with Pyro's other defaults.
    pub fn linear() -> Self {
        SplineConfig {
            order: SplineOrder::Linear,
            ..Default::default()
        }
    }

    /// Unnormalised parameters per dimension: `3K − 1` (widths, heights, inner derivatives),
    /// plus `K` lambdas for the linear-rational spline.
    pub fn params_per_dim(&self) -> usize {
        let k = self.count_bins;
        match self.order {
            SplineOrder::Quadratic => 3 * k - 1,
            SplineOrder::Linear => 4 * k - 1,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.count_bins < 2 {
            return Err(Error::param(
                "Spline",
                "count_bins",
                format!("must be at least 2, got {}", self.count_bins),
            ));
        }
        if !(self.bound > 0.0 && self.bound.is_finite()) {
            return Err(Error::param(
                "Spline",
                "bound",
                format!("must be positive and finite, got {}", self.bound),
            ));
        }
        Ok(())
    }
}

/// Elementwise map of values through knots, broadcasting values against the knots' batch shape.
fn map(
    knots: &Knots,
    v: &Tensor,
    inverse: bool,
    cache: &LogDetCache,
    name: &str,
) -> Result<Tensor> {
    let shape = broadcast_shapes(v.dims(), knots.batch_shape()).ok_or_else(|| {
        Error::shape(
            format!("{name}: the value does not broadcast with the spline's parameters"),
            knots.batch_shape(),
            v.dims(),
        )
    })?;
    let full = v.broadcast_as(shape.as_slice())?;
    let (out, ladj) = if inverse {
        knots.inverse(&full)?
    } else {
        knots.forward(&full)?
    };
    // Keyed by the caller's tensor, not the broadcast view, which has an id of its own.
    if inverse {
        cache.put(&out, v, &ladj);
    } else {
        cache.put(v, &out, &ladj);
    }
    Ok(out)
}

fn log_det(
    knots: &Knots,
    x: &Tensor,
    y: &Tensor,
    cache: &LogDetCache,
    name: &str,
) -> Result<Tensor> {
    if let Some(l) = cache.get(x, y) {
        return Ok(l);
    }
    let shape = broadcast_shapes(x.dims(), knots.batch_shape()).ok_or_else(|| {
        Error::shape(
            format!(
                "{name}::log_abs_det_jacobian: the value does not broadcast with the parameters"
            ),
            knots.batch_shape(),
            x.dims(),
        )
    })?;
    Ok(knots.forward(&x.broadcast_as(shape.as_slice())?)?.1)
}

fn out_shape(knots: &Knots, shape: &[usize], name: &str) -> Result<Vec<usize>> {
    broadcast_shapes(shape, knots.batch_shape()).ok_or_else(|| {
        Error::shape(
            format!("{name}: the value does not broadcast with the spline's parameters"),
            knots.batch_shape(),
            shape,
        )
    })
}

/// An elementwise monotone spline with given parameters: what
/// [`ConditionalSpline`](super::ConditionalSpline) returns for a context, and what
/// [`Spline`] evaluates with its current parameters.
///
/// Parameters are unnormalised as in Pyro's `Spline`: widths and heights `(..., K)` (softmax),
/// inner derivatives `(..., K − 1)` (softplus; the end derivatives are 1) and, for the
/// linear-rational spline, lambdas `(..., K)` (sigmoid). Their leading shape `(...)` broadcasts
/// against values elementwise. Inside `[-bound, bound]` the map is strictly increasing and maps
/// the interval onto itself; outside it is the identity.
///
/// ```
/// use ppl_core::transforms::{SplineTransform, Transform};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// // Uniform bins, derivatives softplus(0.5413) + 0.001 ≈ 1: close to the identity.
/// let w = Tensor::zeros((1, 4), DType::F64, &Device::Cpu)?;
/// let d = Tensor::full(0.5413f64, (1, 3), &Device::Cpu)?;
/// let t = SplineTransform::new(&w, &w, &d, None, 3.0)?;
/// let x = Tensor::new(&[-4.0f64, 0.3, 5.0], &Device::Cpu)?.reshape((3, 1))?;
/// let y = t.forward(&x)?.flatten_all()?.to_vec1::<f64>()?;
/// assert_eq!((y[0], y[2]), (-4.0, 5.0)); // the identity outside [-3, 3]
/// assert!((y[1] - 0.3).abs() < 1e-3);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SplineTransform {
    knots: Knots,
    cache: LogDetCache,
}

const NAME: &str = "SplineTransform";

impl SplineTransform {
    /// The spline on `[-bound, bound]` with the given unnormalised parameters (`lambdas` only for
    /// the linear-rational spline). Shapes and dtypes that do not fit are errors.
    pub fn new(
        widths: &Tensor,
        heights: &Tensor,
        derivatives: &Tensor,
        lambdas: Option<&Tensor>,
        bound: f64,
    ) -> Result<Self> {
        Ok(SplineTransform {
            knots: Knots::new(widths, heights, derivatives, lambdas, bound)?,
            cache: LogDetCache::default(),
        })
    }

    /// The shape the parameters broadcast values against.
    pub fn param_shape(&self) -> &[usize] {
        self.knots.batch_shape()
    }
}

impl Transform for SplineTransform {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        map(&self.knots, x, false, &self.cache, NAME)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        map(&self.knots, y, true, &self.cache, NAME)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        log_det(&self.knots, x, y, &self.cache, NAME)
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        out_shape(&self.knots, shape, NAME)
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        out_shape(&self.knots, shape, NAME)
    }
}

/// A learnable elementwise spline over `dim` values (Pyro's `Spline`): its unnormalised
/// parameters `unnormalized_widths`, `unnormalized_heights`, `unnormalized_derivatives` (and
/// `unnormalized_lambdas`) live in the parameter store, initialised standard normal as in Pyro.
/// Values `(..., dim)` are mapped elementwise, each dimension by its own spline.
///
/// ```
/// use ppl_core::dist::{Distribution, Normal, TransformedDistribution};
/// use ppl_core::params::ParamStore;
/// use ppl_core::transforms::{Spline, SplineConfig, TransformExt};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// ppl_core::rng::set_seed(0);
/// let store = ParamStore::new();
/// let vb = store.var_builder(DType::F64, &Device::Cpu);
/// let spline = Spline::new(vb.pp("thickness"), 1, SplineConfig::default())?;
/// let base = Normal::standard(1, DType::F64, &Device::Cpu)?;
/// let flow = TransformedDistribution::new(base, vec![spline.shared()])?;
/// let lp = flow.log_prob(&Tensor::new(&[[0.5f64], [2.0]], &Device::Cpu)?)?;
/// assert_eq!(lp.dims(), &[2, 1]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spline {
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    lambdas: Option<Tensor>,
    bound: f64,
    cache: LogDetCache,
}

impl Spline {
    /// A learnable spline for `dim` values.
    pub fn new(vb: VarBuilder, dim: usize, cfg: SplineConfig) -> Result<Self> {
        cfg.check()?;
        if dim == 0 {
            return Err(Error::usage("Spline: dim must be positive"));
        }
        let k = cfg.count_bins;
        let init = Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        let widths = vb.get_with_hints((dim, k), "unnormalized_widths", init)?;
        let heights = vb.get_with_hints((dim, k), "unnormalized_heights", init)?;
        let derivatives = vb.get_with_hints((dim, k - 1), "unnormalized_derivatives", init)?;
        let lambdas = match cfg.order {
            SplineOrder::Quadratic => None,
            SplineOrder::Linear => {
                Some(vb.get_with_hints((dim, k), "unnormalized_lambdas", init)?)
            }
        };
        Ok(Spline {
            widths,
            heights,
            derivatives,
            lambdas,
            bound: cfg.bound,
            cache: LogDetCache::default(),
        })
    }

    /// The spline with the parameters' current values.
    pub fn spline(&self) -> Result<SplineTransform> {
        SplineTransform::new(
            &self.widths,
            &self.heights,
            &self.derivatives,
            self.lambdas.as_ref(),
            self.bound,
        )
    }

    fn knots(&self) -> Result<Knots> {
        Knots::new(
            &self.widths,
            &self.heights,
            &self.derivatives,
            self.lambdas.as_ref(),
            self.bound,
        )
    }
}

const LEARNABLE: &str = "Spline";

impl Transform for Spline {
    fn name(&self) -> &'static str {
        LEARNABLE
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        map(&self.knots()?, x, false, &self.cache, LEARNABLE)
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        map(&self.knots()?, y, true, &self.cache, LEARNABLE)
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if let Some(l) = self.cache.get(x, y) {
            return Ok(l);
        }
        log_det(&self.knots()?, x, y, &self.cache, LEARNABLE)
    }

    fn forward_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let d = self.widths.dims();
        broadcast_shapes(shape, &d[..d.len() - 1]).ok_or_else(|| {
            Error::shape(
                format!("{LEARNABLE}: the value does not broadcast with the spline's dims"),
                &d[..d.len() - 1],
                shape,
            )
        })
    }

    fn inverse_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.forward_shape(shape)
    }
}
