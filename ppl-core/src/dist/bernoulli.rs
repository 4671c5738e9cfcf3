//! The Bernoulli distribution.

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};

use super::common::{
    as_float_value, below_one, broadcast_params, draw_shape, expand_param, log_prob_shape, select,
    to_shape, validate, Domain,
};
use super::{DistRef, Distribution, Param, Support};
use crate::error::Result;
use crate::kernels::bernoulli as kernels;
use crate::rng::{open01, tensor_from_f64, Rng};
use crate::special;

/// How the distribution was given: the other form is derived on demand.
#[derive(Debug, Clone)]
enum Form {
    Probs(Tensor),
    Logits(Tensor),
}

/// The Bernoulli distribution over `{0, 1}`, with values in the distribution's float dtype (as
/// Pyro's). Given by the probability of 1 or by its logit.
///
/// ```
/// use ppl_core::dist::{Bernoulli, Distribution};
/// use candle_core::{Device, Tensor};
///
/// let d = Bernoulli::from_probs(Tensor::new(&[0.25f64, 0.9], &Device::Cpu)?)?;
/// let lp = d.log_prob(&Tensor::new(&[1.0f64, 0.0], &Device::Cpu)?)?.to_vec1::<f64>()?;
/// assert!((lp[0] - 0.25f64.ln()).abs() < 1e-12 && (lp[1] - 0.1f64.ln()).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Bernoulli {
    form: Form,
    batch: Vec<usize>,
    derived: Arc<OnceLock<Tensor>>,
}

impl Bernoulli {
    /// `P(X = 1) = probs`, each in `[0, 1]`.
    pub fn from_probs(probs: impl Into<Param>) -> Result<Self> {
        let probs = probs.into();
        validate("Bernoulli", "probs", &probs, Domain::Probability)?;
        let ([probs], batch) = broadcast_params("Bernoulli", ["probs"], [&probs])?;
        Ok(Self::build(Form::Probs(probs), batch))
    }

    /// `P(X = 1) = sigmoid(logits)`, each finite.
    pub fn from_logits(logits: impl Into<Param>) -> Result<Self> {
        let logits = logits.into();
        validate("Bernoulli", "logits", &logits, Domain::Finite)?;
        let ([logits], batch) = broadcast_params("Bernoulli", ["logits"], [&logits])?;
        Ok(Self::build(Form::Logits(logits), batch))
    }

    fn build(form: Form, batch: Vec<usize>) -> Self {
        Bernoulli {
            form,
            batch,
            derived: Arc::new(OnceLock::new()),
        }
    }

    fn param(&self) -> &Tensor {
        match &self.form {
            Form::Probs(t) | Form::Logits(t) => t,
        }
    }

    fn derived(&self) -> Result<Tensor> {
        if let Some(t) = self.derived.get() {
            return Ok(t.clone());
        }
        let t = match &self.form {
            Form::Probs(p) => special::logit(p)?,
            Form::Logits(l) => candle_nn::ops::sigmoid(l)?,
        };
        Ok(self.derived.get_or_init(|| t).clone())
    }

    /// The parameter as given, for the fused CPU kernels.
    fn kernel_form(&self) -> (&Tensor, kernels::Param) {
        match &self.form {
            Form::Probs(p) => (p, kernels::Param::Probs),
            Form::Logits(l) => (l, kernels::Param::Logits),
        }
    }

    /// `P(X = 1)`, of the batch shape (computed once from the logits if given those).
    pub fn probs(&self) -> Result<Tensor> {
        match &self.form {
            Form::Probs(p) => Ok(p.clone()),
            Form::Logits(_) => self.derived(),
        }
    }

    /// `logit P(X = 1)`, of the batch shape (computed once from the probabilities if given
    /// those; `±inf` where they are 0 or 1).
    pub fn logits(&self) -> Result<Tensor> {
        match &self.form {
            Form::Logits(l) => Ok(l.clone()),
            Form::Probs(_) => self.derived(),
        }
    }
}

impl Distribution for Bernoulli {
    fn name(&self) -> &'static str {
        "Bernoulli"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.param().dtype()
    }
    fn device(&self) -> &Device {
        self.param().device()
    }
    fn support(&self) -> Support {
        Support::Boolean
    }
    fn structural(&self) -> Option<&dyn super::Mechanism> {
        Some(self)
    }
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let shape = draw_shape(sample_shape, &self.batch, &[]);
        let (param, form) = self.kernel_form();
        if let Some(x) = kernels::sample(rng, param, form, &shape)? {
            return Ok(x);
        }
        let n: usize = shape.iter().product();
        // X = 1[u < p], compared on the device; with logits, 1[logit(u) < logits], which
        // needs no sigmoid of the parameter.
        let top = below_one(self.dtype());
        let mut u: Vec<f64> = (0..n).map(|_| open01(rng).min(top)).collect();
        let threshold = match &self.form {
            Form::Probs(p) => p,
            Form::Logits(l) => {
                u.iter_mut().for_each(|u| *u = u.ln() - (-*u).ln_1p());
                l
            }
        };
        let u = tensor_from_f64(u, shape, self.dtype(), self.device())?;
        Ok(u.broadcast_lt(threshold)?.to_dtype(self.dtype())?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let value = as_float_value(value, self.dtype())?;
        let out = log_prob_shape("Bernoulli", &value, self.dtype(), &self.batch, &[])?;
        let (param, form) = self.kernel_form();
        if let Some(lp) = kernels::log_prob(&value, param, form, &out)? {
            return Ok(lp);
        }
        let inside = value.eq(0.0)?.add(&value.eq(1.0)?)?;
        let x = select(&inside, &value, 0.0)?;
        let lp = match &self.form {
            // log(x p + (1 - x)) + log1p(-(1 - x) p): for x in {0, 1} exactly one term is
            // non-zero, and neither multiplies an infinite log by zero when p is 0 or 1.
            Form::Probs(p) => {
                let xp = x.broadcast_mul(p)?;
                let one_minus_x = x.affine(-1.0, 1.0)?;
                let log_p = xp.broadcast_add(&one_minus_x)?.log()?;
                let log_q = special::log1p(&xp.broadcast_sub(p)?)?;
                log_p.add(&log_q)?
            }
            Form::Logits(l) => x.broadcast_mul(l)?.broadcast_sub(&special::softplus(l)?)?,
        };
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let form = match &self.form {
            Form::Probs(p) => Form::Probs(expand_param("Bernoulli", p, &self.batch, batch_shape)?),
            Form::Logits(l) => {
                Form::Logits(expand_param("Bernoulli", l, &self.batch, batch_shape)?)
            }
        };
        Ok(Arc::new(Self::build(form, batch_shape.to_vec())))
    }
    fn narrow_batch(&self, dim: usize, start: usize, len: usize) -> Result<Option<DistRef>> {
        if dim >= self.batch.len() || start + len > self.batch[dim] {
            return Ok(None);
        }
        let form = match &self.form {
            Form::Probs(p) => Form::Probs(p.narrow(dim, start, len)?),
            Form::Logits(l) => Form::Logits(l.narrow(dim, start, len)?),
        };
        let mut batch = self.batch.clone();
        batch[dim] = len;
        Ok(Some(Arc::new(Self::build(form, batch))))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let mut shape = vec![2];
        shape.extend(std::iter::repeat_n(1, self.batch.len()));
        let values = tensor_from_f64(vec![0.0, 1.0], shape, self.dtype(), self.device())?;
        if expand {
            Ok(values.broadcast_as(draw_shape(&[2], &self.batch, &[]))?)
        } else {
            Ok(values)
        }
    }
    fn mean(&self) -> Result<Tensor> {
        self.probs()
    }
    fn variance(&self) -> Result<Tensor> {
        let p = self.probs()?;
        Ok(p.mul(&p.affine(-1.0, 1.0)?)?)
    }
}
