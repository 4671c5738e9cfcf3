//! Distributions pushed through invertible transforms: normalizing flows and structural
//! mechanisms `x = f(u)` with exogenous noise `u`.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::{broadcast_shapes, DistRef, Distribution, Independent, IntoDist, Support};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::transforms::{sum_rightmost, TransformRef, TransformStep};

/// The distribution of `y = t_n(… t_1(u))` for `u` drawn from a base distribution (Pyro's
/// `TransformedDistribution`).
///
/// Shapes follow Pyro: the base is broadcast against the transforms' parameters (an affine map
/// with a `loc` of shape `[n]` turns a scalar base into a batch of `n`), and when the transforms
/// act jointly on more dims than the base's event has, the base's rightmost batch dims are
/// reinterpreted as event dims. `log_prob(y) = base.log_prob(u) − Σ log |det ∂t_i|`, each
/// log-det summed over the event dims it does not already cover.
///
/// [`to_base`](Self::to_base) recovers the noise `u` of a value exactly: this is abduction for
/// counterfactuals.
///
/// ```
/// use ppl_core::dist::{Distribution, Normal, TransformedDistribution};
/// use ppl_core::transforms::{ExpTransform, TransformExt};
/// use candle_core::{Device, Tensor};
///
/// let zero = Tensor::new(0.0f64, &Device::Cpu)?;
/// let standard = Normal::new(&zero, 1.0)?;
/// let log_normal = TransformedDistribution::new(standard, vec![ExpTransform.shared()])?;
/// let y = Tensor::new(&[1.0f64], &Device::Cpu)?;
/// let lp = log_normal.log_prob(&y)?.to_vec1::<f64>()?;
/// assert!((lp[0] + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-6);
/// assert_eq!(log_normal.to_base(&y)?.to_vec1::<f64>()?, vec![0.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TransformedDistribution {
    base: DistRef,
    transforms: Vec<TransformRef>,
    batch: Vec<usize>,
    event: Vec<usize>,
}

const NAME: &str = "TransformedDistribution";

impl TransformedDistribution {
    /// `base` pushed through `transforms`, first to last. An error when the transforms'
    /// parameters do not broadcast with the base's shape, or act on more dims than it has.
    pub fn new(base: impl IntoDist, transforms: Vec<TransformRef>) -> Result<Self> {
        let mut base = base.into_dist();
        let base_event = base.event_shape().len();
        let mut base_shape = base.batch_shape().to_vec();
        base_shape.extend_from_slice(base.event_shape());

        let mut shape = base_shape.clone();
        for t in &transforms {
            shape = t.forward_shape(&shape)?;
        }
        let mut expanded = shape.clone();
        for t in transforms.iter().rev() {
            expanded = t.inverse_shape(&expanded)?;
        }
        if expanded != base_shape {
            // The transforms broadcast the base up: expand its batch to match.
            let n = expanded.len();
            if n < base_event
                || expanded[n - base_event..] != base_shape[base_shape.len() - base_event..]
            {
                return Err(Error::shape(
                    format!(
                        "{NAME}: the transforms change the event shape of the base {}",
                        base.name()
                    ),
                    &base_shape,
                    &expanded,
                ));
            }
            base = base.expand(&expanded[..n - base_event])?;
        }

        let transform_event = transforms.iter().map(|t| t.event_dim()).max().unwrap_or(0);
        if expanded.len() < transform_event {
            return Err(Error::ShapeMismatch {
                context: format!(
                    "{NAME}: the transforms act jointly on {transform_event} rightmost dim(s) but the base {} has shape {expanded:?}",
                    base.name()
                ),
                expected: vec![1; transform_event],
                got: expanded,
            });
        }
        if transform_event > base_event {
            base = Arc::new(Independent::new(base, transform_event - base_event)?);
        }
        let event_dim = transform_event.max(base_event);
        let cut = shape.len() - event_dim;
        Ok(TransformedDistribution {
            base,
            transforms,
            batch: shape[..cut].to_vec(),
            event: shape[cut..].to_vec(),
        })
    }

    /// The base distribution, as broadcast and reinterpreted to match the transforms.
    pub fn base(&self) -> &DistRef {
        &self.base
    }

    /// The transforms, in the order they are applied.
    pub fn transforms(&self) -> &[TransformRef] {
        &self.transforms
    }

    /// The base value (exogenous noise) `u = t_1⁻¹(… t_n⁻¹(y))` of a value `y`.
    pub fn to_base(&self, y: &Tensor) -> Result<Tensor> {
        self.check_value(y, "to_base")?;
        let mut v = y.clone();
        for t in self.transforms.iter().rev() {
            v = t.inverse(&v)?;
        }
        Ok(v)
    }

    /// The value `y = t_n(… t_1(u))` of a base value `u`.
    pub fn from_base(&self, u: &Tensor) -> Result<Tensor> {
        self.check_value(u, "from_base")?;
        self.push_forward(u)
    }

    fn push_forward(&self, u: &Tensor) -> Result<Tensor> {
        let mut v = u.clone();
        for t in &self.transforms {
            v = t.forward(&v)?;
        }
        Ok(v)
    }

    /// Checks that `v` has shape `sample_shape + batch_shape + event_shape`, the batch part
    /// broadcasting with the batch shape.
    fn check_value(&self, v: &Tensor, what: &str) -> Result<()> {
        let d = v.dims();
        let ev = self.event.len();
        let fits = d.len() >= ev
            && d[d.len() - ev..] == self.event[..]
            && broadcast_shapes(&d[..d.len() - ev], &self.batch).is_some();
        if !fits {
            let mut expected = self.batch.clone();
            expected.extend_from_slice(&self.event);
            return Err(Error::shape(
                format!(
                    "{NAME}::{what}: a value of shape sample_shape + batch_shape + event_shape"
                ),
                &expected,
                d,
            ));
        }
        Ok(())
    }

    /// `log_prob` of a value known to lie in the support.
    fn log_prob_inside(&self, value: &Tensor) -> Result<Tensor> {
        let ev = self.event.len();
        let mut y = value.clone();
        let mut ladj: Option<Tensor> = None;
        for t in self.transforms.iter().rev() {
            let x = t.inverse(&y)?;
            let l = t.log_abs_det_jacobian(&x, &y)?;
            let l = sum_rightmost(&l, ev - t.event_dim(), NAME)?;
            ladj = Some(match ladj {
                None => l,
                Some(acc) => acc.broadcast_add(&l)?,
            });
            y = x;
        }
        let base_lp = self.base.log_prob(&y)?;
        let base_lp = sum_rightmost(&base_lp, ev - self.base.event_shape().len(), NAME)?;
        Ok(match ladj {
            None => base_lp,
            Some(l) => base_lp.broadcast_sub(&l)?,
        })
    }
}

/// A point inside `support`, substituted for values outside it so that their (masked)
/// log-density has finite gradients; `None` where no masking is needed or possible.
fn interior_point(support: Support) -> Option<f64> {
    match support {
        Support::Positive => Some(1.0),
        Support::GreaterThan(lo) => Some(lo + 1.0),
        Support::UnitInterval => Some(0.5),
        Support::Interval(lo, hi) => Some(0.5 * (lo + hi)),
        _ => None,
    }
}

fn filled(value: f64, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::new(value, device)?
        .to_dtype(dtype)?
        .broadcast_as(shape)?
        .contiguous()?)
}

impl Distribution for TransformedDistribution {
    fn name(&self) -> &'static str {
        NAME
    }

    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }

    fn event_shape(&self) -> &[usize] {
        &self.event
    }

    fn dtype(&self) -> DType {
        self.base.dtype()
    }

    fn device(&self) -> &Device {
        self.base.device()
    }

    fn support(&self) -> Support {
        self.transforms
            .last()
            .map_or_else(|| self.base.support(), |t| t.codomain())
    }

    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let u = self.base.sample(rng, sample_shape)?;
        Ok(self.push_forward(&u)?.detach())
    }

    fn has_rsample(&self) -> bool {
        self.base.has_rsample()
    }
    fn structural(&self) -> Option<&dyn super::Mechanism> {
        self.base
            .structural()
            .map(|_| self as &dyn super::Mechanism)
    }

    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let u = self.base.rsample(rng, sample_shape)?;
        self.push_forward(&u)
    }

    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        self.check_value(value, "log_prob")?;
        let Some(safe) = interior_point(self.support()) else {
            return self.log_prob_inside(value);
        };
        // Values outside the support get -inf; they are swapped for an interior point first so
        // that the inverse chain sees no NaN (which where_cond would leak into gradients).
        let (dtype, device) = (value.dtype(), value.device());
        let inside = self.support().contains(value)?;
        let safe = filled(safe, value.dims(), dtype, device)?;
        let lp = self.log_prob_inside(&inside.where_cond(value, &safe)?)?;
        let outside = inside.to_dtype(dtype)?.affine(-1.0, 1.0)?;
        let ok = sum_rightmost(&outside, self.event.len(), NAME)?.eq(0.0)?;
        let shape = broadcast_shapes(ok.dims(), lp.dims())
            .ok_or_else(|| Error::shape(format!("{NAME}::log_prob"), lp.dims(), ok.dims()))?;
        let lp = lp.broadcast_as(shape.as_slice())?;
        let neg_inf = filled(f64::NEG_INFINITY, &shape, lp.dtype(), device)?;
        Ok(ok
            .broadcast_as(shape.as_slice())?
            .where_cond(&lp, &neg_inf)?)
    }

    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let mut shape = batch_shape.to_vec();
        shape.extend_from_slice(&self.event);
        for t in self.transforms.iter().rev() {
            shape = t.inverse_shape(&shape)?;
        }
        let base_event = self.base.event_shape().len();
        if shape.len() < base_event {
            return Err(Error::shape(
                format!("{NAME}::expand"),
                &self.batch,
                batch_shape,
            ));
        }
        let base = self.base.expand(&shape[..shape.len() - base_event])?;
        let expanded = TransformedDistribution::new(base, self.transforms.clone())?;
        if expanded.batch != batch_shape {
            return Err(Error::shape(
                format!("{NAME}::expand: the transforms' parameters broadcast the batch further"),
                batch_shape,
                &expanded.batch,
            ));
        }
        Ok(Arc::new(expanded))
    }
}

/// A transformed distribution some of whose transforms depend on a context (the parents of a
/// site): [`condition`](Self::condition) turns it into a [`TransformedDistribution`] (Pyro's
/// `ConditionalTransformedDistribution`).
///
/// ```
/// use ppl_core::dist::{ConditionalTransformedDistribution, Distribution, Normal};
/// use ppl_core::transforms::{ConditionalAffine, TransformStep};
/// use candle_core::{Device, Tensor};
///
/// // y | c ~ Normal(c, 2)
/// let d = ConditionalTransformedDistribution::new(
///     Normal::new(Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?,
///     vec![TransformStep::conditional(ConditionalAffine::new(|c: &Tensor| {
///         Ok((c.clone(), c.ones_like()?.affine(2.0, 0.0)?))
///     }))],
/// );
/// let c = Tensor::new(&[1.0f64, -1.0], &Device::Cpu)?;
/// let given = d.condition(&c)?;
/// assert_eq!(given.batch_shape(), &[2]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConditionalTransformedDistribution {
    base: DistRef,
    transforms: Vec<TransformStep>,
}

impl ConditionalTransformedDistribution {
    /// `base` pushed through `transforms`, each plain or conditional.
    pub fn new(base: impl IntoDist, transforms: Vec<TransformStep>) -> Self {
        ConditionalTransformedDistribution {
            base: base.into_dist(),
            transforms,
        }
    }

    /// The base distribution.
    pub fn base(&self) -> &DistRef {
        &self.base
    }

    /// The steps, in the order they are applied.
    pub fn transforms(&self) -> &[TransformStep] {
        &self.transforms
    }

    /// The distribution given `context`.
    pub fn condition(&self, context: &Tensor) -> Result<TransformedDistribution> {
        let ts = self
            .transforms
            .iter()
            .map(|s| s.condition(context))
            .collect::<Result<Vec<_>>>()?;
        TransformedDistribution::new(self.base.clone(), ts)
    }
}
