//! The categorical distribution over class indices.

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor, D};

use super::common::{
    as_float_value, broadcast_params, draw_shape, expand_param, host_values, log_prob_shape,
    select, to_shape, validate, Domain,
};
use super::{validation_enabled, DistRef, Distribution, Param, Support};
use crate::error::{Error, Result};
use crate::rng::{open01, tensor_from_f64, Rng};

/// How the distribution was given, normalised along the last dim; the other form is derived on
/// demand.
#[derive(Debug, Clone)]
enum Form {
    Probs(Tensor),
    LogProbs(Tensor),
}

/// The categorical distribution over `{0, .., K-1}`, its probabilities along the last dim of
/// the parameter. The batch shape is the parameter's shape without that dim and the event shape
/// is `[]`. Values are class indices held in the distribution's float dtype (integer index
/// tensors are accepted by `log_prob` and converted).
///
/// ```
/// use ppl_core::dist::{Categorical, Distribution};
/// use candle_core::{Device, Tensor};
///
/// let d = Categorical::from_probs(Tensor::new(&[0.2f64, 0.2, 0.6], &Device::Cpu)?)?;
/// assert_eq!(d.batch_shape(), &[] as &[usize]);
/// let lp = d.log_prob(&Tensor::new(&[2.0f64, 3.0], &Device::Cpu)?)?.to_vec1::<f64>()?;
/// assert!((lp[0] - 0.6f64.ln()).abs() < 1e-12);
/// assert_eq!(lp[1], f64::NEG_INFINITY); // 3 is not a class
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Categorical {
    form: Form,
    batch: Vec<usize>,
    k: usize,
    derived: Arc<OnceLock<Tensor>>,
}

/// The shape of the parameter split into batch and category count, refusing scalars.
fn split_categories(param: &'static str, dims: &[usize]) -> Result<(Vec<usize>, usize)> {
    match dims.split_last() {
        Some((&k, batch)) if k > 0 => Ok((batch.to_vec(), k)),
        _ => Err(Error::param(
            "Categorical",
            param,
            format!("needs a last dim of at least one category, got shape {dims:?}"),
        )),
    }
}

/// The first row (along the last dim) for which `bad` holds, as an error.
fn check_rows(
    param: &'static str,
    t: &Tensor,
    k: usize,
    bad: impl Fn(&[f64]) -> bool,
    what: &str,
) -> Result<()> {
    if !validation_enabled() {
        return Ok(());
    }
    let values = host_values(t)?;
    match values.chunks(k).position(bad) {
        None => Ok(()),
        Some(i) => Err(Error::param(
            "Categorical",
            param,
            format!(
                "{what}: row {i} (flat, along the last dim) is {:?}",
                &values[i * k..(i + 1) * k]
            ),
        )),
    }
}

impl Categorical {
    /// Class probabilities along the last dim, each in `[0, 1]` with a positive sum per row;
    /// they are normalised to sum to one.
    pub fn from_probs(probs: impl Into<Param>) -> Result<Self> {
        let probs = probs.into();
        validate("Categorical", "probs", &probs, Domain::Probability)?;
        let ([probs], shape) = broadcast_params("Categorical", ["probs"], [&probs])?;
        let (batch, k) = split_categories("probs", &shape)?;
        check_rows(
            "probs",
            &probs,
            k,
            |r| r.iter().sum::<f64>() <= 0.0,
            "each row must have a positive sum",
        )?;
        let probs = probs.broadcast_div(&probs.sum_keepdim(D::Minus1)?)?;
        Ok(Self::build(Form::Probs(probs), batch, k))
    }

    /// Unnormalised log-probabilities along the last dim: not NaN or `+inf`, with at least one
    /// finite entry per row (`-inf` masks a class out).
    pub fn from_logits(logits: impl Into<Param>) -> Result<Self> {
        let logits = logits.into();
        validate("Categorical", "logits", &logits, Domain::BelowInfinity)?;
        let ([logits], shape) = broadcast_params("Categorical", ["logits"], [&logits])?;
        let (batch, k) = split_categories("logits", &shape)?;
        check_rows(
            "logits",
            &logits,
            k,
            |r| r.iter().all(|x| x.is_infinite()),
            "each row must have a finite entry",
        )?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        Ok(Self::build(Form::LogProbs(log_probs), batch, k))
    }

    fn build(form: Form, batch: Vec<usize>, k: usize) -> Self {
        Categorical {
            form,
            batch,
            k,
            derived: Arc::new(OnceLock::new()),
        }
    }

    /// The number of classes `K`.
    pub fn num_categories(&self) -> usize {
        self.k
    }

    fn table(&self) -> &Tensor {
        match &self.form {
            Form::Probs(t) | Form::LogProbs(t) => t,
        }
    }

    fn derived(&self) -> Result<Tensor> {
        if let Some(t) = self.derived.get() {
            return Ok(t.clone());
        }
        let t = match &self.form {
            Form::Probs(p) => p.log()?,
            Form::LogProbs(l) => l.exp()?,
        };
        Ok(self.derived.get_or_init(|| t).clone())
    }

    /// The normalised class probabilities, of shape `batch_shape + [K]`.
    pub fn probs(&self) -> Result<Tensor> {
        match &self.form {
            Form::Probs(p) => Ok(p.clone()),
            Form::LogProbs(_) => self.derived(),
        }
    }

    /// The normalised log-probabilities (`-inf` for impossible classes), of shape
    /// `batch_shape + [K]`.
    pub fn logits(&self) -> Result<Tensor> {
        match &self.form {
            Form::LogProbs(l) => Ok(l.clone()),
            Form::Probs(_) => self.derived(),
        }
    }
}

impl Distribution for Categorical {
    fn name(&self) -> &'static str {
        "Categorical"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        &[]
    }
    fn dtype(&self) -> DType {
        self.table().dtype()
    }
    fn device(&self) -> &Device {
        self.table().device()
    }
    fn support(&self) -> Support {
        Support::IntegerInterval(0, self.k as i64 - 1)
    }
    fn structural(&self) -> Option<&dyn super::Mechanism> {
        Some(self)
    }
    /// Gumbel-max: `argmax(log π + g)` with Gumbel noise `g` drawn on the host, the argmax on the
    /// device (the same noise representation the counterfactual machinery abducts).
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        let shape = draw_shape(sample_shape, &self.batch, &[self.k]);
        let n: usize = shape.iter().product();
        let g: Vec<f64> = (0..n).map(|_| -(-open01(rng).ln()).ln()).collect();
        let g = tensor_from_f64(g, shape, self.dtype(), self.device())?;
        let scores = g.broadcast_add(&self.logits()?)?;
        Ok(scores.argmax(D::Minus1)?.to_dtype(self.dtype())?)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let value = as_float_value(value, self.dtype())?;
        let out = log_prob_shape("Categorical", &value, self.dtype(), &self.batch, &[])?;
        let inside = value
            .ge(0.0)?
            .mul(&value.le((self.k - 1) as f64)?)?
            .mul(&value.eq(&value.round()?)?)?;
        let index = to_shape(&select(&inside, &value, 0.0)?, &out)?
            .to_dtype(DType::U32)?
            .unsqueeze(out.len())?;
        let mut table_shape = out.clone();
        table_shape.push(self.k);
        // gather wants a contiguous source of the index's rank.
        let table = to_shape(self.table(), &table_shape)?.contiguous()?;
        let picked = table.gather(&index, out.len())?.squeeze(out.len())?;
        // Taking the log after the gather keeps zero probabilities of other classes out of the
        // gradient (their 1/p would meet a zero gradient and make NaN).
        let lp = match &self.form {
            Form::Probs(_) => picked.log()?,
            Form::LogProbs(_) => picked,
        };
        select(&to_shape(&inside, &out)?, &lp, f64::NEG_INFINITY)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let e = |t: &Tensor| expand_param("Categorical", t, &self.batch, batch_shape);
        let form = match &self.form {
            Form::Probs(p) => Form::Probs(e(p)?),
            Form::LogProbs(l) => Form::LogProbs(e(l)?),
        };
        Ok(Arc::new(Self::build(form, batch_shape.to_vec(), self.k)))
    }
    fn has_enumerate_support(&self) -> bool {
        true
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        let mut shape = vec![self.k];
        shape.extend(std::iter::repeat_n(1, self.batch.len()));
        let values: Vec<f64> = (0..self.k).map(|i| i as f64).collect();
        let values = tensor_from_f64(values, shape, self.dtype(), self.device())?;
        if expand {
            Ok(values.broadcast_as(draw_shape(&[self.k], &self.batch, &[]))?)
        } else {
            Ok(values)
        }
    }
}
