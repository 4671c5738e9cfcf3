//! Soft conditioning: observing deterministic sites through a kernel (ChiRho's
//! `AutoSoftConditioning`).
//!
//! A structural model written with explicit noise sites (`u ~ Uniform(0, 1)`, then
//! `y = deterministic("y", 1[u < p])`) has no density at `y`, so `condition` cannot observe it.
//! Under [`soft_condition`] an observed deterministic site becomes an observed sample site whose
//! log-density is a kernel between the observation and the value the model computed: a Normal
//! kernel `log N(obs − computed; 0, scale)` for real values (the default for float values), or a
//! Bernoulli kernel `log Bernoulli(obs; ε + (1 − 2ε)·computed)` with `ε = scale` for 0/1 values
//! (the default for integer values). As `scale → 0` the weights approach exact conditioning.
//! The site returns the observation; in counterfactual worlds the other worlds keep the computed
//! value (the mechanism has no noise of its own).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::dist::{broadcast_shapes, Abduction, DistRef, Distribution, Mechanism, Support};
use crate::error::{Error, Result};
use crate::handlers::collect;
use crate::rng::Rng;
use crate::runtime::{self, Message, Messenger, SiteKind};

/// The kernel that scores an observed deterministic site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `log N(obs − computed; 0, scale)`: for real values.
    Normal,
    /// `log Bernoulli(obs; ε + (1 − 2ε)·computed)`, `ε = scale`: for 0/1 values.
    Bernoulli,
}

/// The kernel's law of an observation given the computed value. A point mass at the computed
/// value as a mechanism (no noise), so that counterfactual worlds keep their computed values.
#[derive(Debug, Clone)]
struct SoftKernel {
    computed: Tensor,
    scale: f64,
    kernel: Kernel,
}

impl Distribution for SoftKernel {
    fn name(&self) -> &'static str {
        "SoftKernel"
    }
    fn batch_shape(&self) -> &[usize] {
        self.computed.dims()
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.computed.dtype()
    }
    fn device(&self) -> &Device {
        self.computed.device()
    }
    fn support(&self) -> Support {
        match self.kernel {
            Kernel::Normal => Support::Real,
            Kernel::Bernoulli => Support::Boolean,
        }
    }
    fn structural(&self) -> Option<&dyn Mechanism> {
        Some(self)
    }
    fn sample(&self, _rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(self.computed.dims());
        Ok(self.computed.broadcast_as(shape)?.contiguous()?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let v = value.to_dtype(self.dtype())?;
        let c = &self.computed;
        let s = self.scale;
        Ok(match self.kernel {
            Kernel::Normal => v.broadcast_sub(c)?.sqr()?.affine(
                -0.5 / (s * s),
                -s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln(),
            )?,
            Kernel::Bernoulli => {
                let p = c.affine(1.0 - 2.0 * s, s)?;
                let lp1 = p.log()?;
                let lp0 = p.affine(-1.0, 1.0)?.log()?;
                let shape = broadcast_shapes(v.dims(), p.dims())
                    .ok_or_else(|| Error::shape("SoftKernel::log_prob", p.dims(), v.dims()))?;
                let one = v.broadcast_as(shape.as_slice())?.eq(1.0)?;
                one.where_cond(
                    &lp1.broadcast_as(shape.as_slice())?,
                    &lp0.broadcast_as(shape.as_slice())?,
                )?
            }
        })
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Ok(Arc::new(SoftKernel {
            computed: self.computed.broadcast_as(batch_shape)?.contiguous()?,
            ..self.clone()
        }))
    }
}

impl Mechanism for SoftKernel {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    fn draw_noise(&self, _rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::zeros(batch_shape, self.dtype(), self.device())?)
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        let shape = broadcast_shapes(noise.dims(), self.computed.dims())
            .ok_or_else(|| Error::shape("SoftKernel: noise", self.computed.dims(), noise.dims()))?;
        Ok(self.computed.broadcast_as(shape)?.contiguous()?)
    }
    fn abduct(&self, _rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        let shape = broadcast_shapes(value.dims(), self.computed.dims())
            .ok_or_else(|| Error::shape("SoftKernel: value", self.computed.dims(), value.dims()))?;
        Ok(Tensor::zeros(shape, self.dtype(), self.device())?)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Exact
    }
}

/// Observes deterministic sites through a kernel (see [`soft_condition`]).
#[derive(Debug)]
pub struct SoftConditionMessenger {
    data: HashMap<String, Tensor>,
    scale: f64,
    kernels: HashMap<String, Kernel>,
    matched: HashSet<String>,
    seen: Vec<String>,
}

impl SoftConditionMessenger {
    /// Observes `data` with kernels of width `scale` (> 0).
    pub fn new(data: HashMap<String, Tensor>, scale: f64) -> Result<Self> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(Error::param(
                "soft_condition",
                "scale",
                format!("must be finite and > 0, got {scale}"),
            ));
        }
        Ok(SoftConditionMessenger {
            data,
            scale,
            kernels: HashMap::new(),
            matched: HashSet::new(),
            seen: Vec::new(),
        })
    }

    /// Scores site `name` with `kernel` instead of the one its dtype picks.
    pub fn kernel(mut self, name: impl Into<String>, kernel: Kernel) -> Self {
        self.kernels.insert(name.into(), kernel);
        self
    }

    /// An `UnknownSite` error if some names were never reached.
    pub fn check(&self) -> Result<()> {
        let mut missing: Vec<String> = self
            .data
            .keys()
            .filter(|k| !self.matched.contains(*k))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        Err(Error::UnknownSite {
            handler: "soft_condition",
            names: missing,
            reached: self.seen.clone(),
        })
    }
}

impl Messenger for SoftConditionMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if msg.kind != SiteKind::Deterministic {
            return Ok(());
        }
        self.seen.push(msg.name.clone());
        let Some(obs) = self.data.get(&msg.name) else {
            return Ok(());
        };
        if !self.matched.insert(msg.name.clone()) {
            return Err(Error::DuplicateSite {
                name: msg.name.clone(),
            });
        }
        let computed = msg.value.take().ok_or_else(|| {
            Error::usage(format!("deterministic site `{}` has no value", msg.name))
        })?;
        let kernel =
            self.kernels
                .get(&msg.name)
                .copied()
                .unwrap_or(if computed.dtype().is_float() {
                    Kernel::Normal
                } else {
                    Kernel::Bernoulli
                });
        let dtype = if computed.dtype().is_float() {
            computed.dtype()
        } else {
            DType::F32
        };
        msg.kind = SiteKind::Sample;
        msg.dist = Some(Arc::new(SoftKernel {
            computed: computed.to_dtype(dtype)?,
            scale: self.scale,
            kernel,
        }));
        msg.value = Some(obs.to_dtype(dtype)?.to_device(computed.device())?);
        msg.observed = true;
        Ok(())
    }
}

/// Runs `f` with the named deterministic sites observed through kernels of width `scale` (> 0),
/// as ChiRho's `AutoSoftConditioning`.
///
/// A structural model written with explicit noise sites (`u ~ Uniform(0, 1)`, then
/// `y = deterministic("y", 1[u < p])`) has no density at `y`, so `condition` cannot observe it.
/// Here an observed deterministic site becomes an observed sample site whose log-density is a
/// kernel between the observation and the computed value: `log N(obs − computed; 0, scale)` for
/// float values ([`Kernel::Normal`]), `log Bernoulli(obs; ε + (1 − 2ε)·computed)` with
/// `ε = scale` for integer values ([`Kernel::Bernoulli`]); [`SoftConditionMessenger::kernel`]
/// overrides the choice per site. As `scale → 0` the weights approach exact conditioning. The
/// site returns the observation; in counterfactual worlds the other worlds keep their computed
/// values (the mechanism has no noise of its own). A name the run never reaches is an
/// [`UnknownSite`](crate::Error::UnknownSite) error.
///
/// ```
/// use ppl_core::causal::soft_condition;
/// use ppl_core::{dist::Uniform, handlers::trace, runtime::{deterministic, sample}};
/// use candle_core::{Device, Tensor};
///
/// let model = || {
///     let u = sample("u", Uniform::new(0.0, 1.0)?)?;
///     deterministic("y", &u.lt(0.3)?.to_dtype(candle_core::DType::F32)?)
/// };
/// let one = Tensor::new(1.0f32, &Device::Cpu)?;
/// let (y, tr) = trace(|| soft_condition([("y", &one)], 0.01, model))?;
/// assert_eq!(y.to_scalar::<f32>()?, 1.0);
/// let lp = tr.site("y")?.log_prob()?.to_scalar::<f32>()?;
/// let u = tr.value("u")?.to_scalar::<f32>()?;
/// // log N(0; 0, 0.01) when u < 0.3, about -5000 otherwise.
/// assert_eq!(u < 0.3, lp > 0.0);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn soft_condition<I, K, V, R>(data: I, scale: f64, f: impl FnOnce() -> Result<R>) -> Result<R>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: crate::handlers::SiteValue<Tensor>,
{
    soft_condition_with(SoftConditionMessenger::new(collect(data), scale)?, f)
}

/// [`soft_condition`] with a configured messenger (per-site kernels).
pub fn soft_condition_with<R>(
    messenger: SoftConditionMessenger,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let (rc, guard) = runtime::enter(messenger);
    let out = f();
    drop(guard);
    let out = out?;
    rc.borrow().check()?;
    Ok(out)
}
