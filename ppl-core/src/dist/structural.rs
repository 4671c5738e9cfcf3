//! Structural forms: every distribution that admits one is a *mechanism* — exogenous noise `u`
//! and a deterministic map from `u` (and the parameters, i.e. the parents) to the value — with
//! *abduction*, the noise consistent with an observed value. Counterfactual worlds share the
//! noise and push it through each world's parameters (DESIGN.md section 4).
//!
//! | distribution | noise `u` | value | abduction |
//! |---|---|---|---|
//! | Normal, LogNormal | standard normal | `loc + scale·u` (then `exp`) | exact |
//! | Uniform | `U(0,1)` | `low + (high − low)·u` | exact |
//! | Exponential | `U(0,1)` | `−ln(u) / rate` (inverse CDF) | exact |
//! | Delta | none | the point | exact |
//! | Independent | the base's | the base's | the base's |
//! | TransformedDistribution (any [`Transform`](crate::transforms::Transform)) | the base's | `t_n(… t_1(base(u)))` | the base's, after the inverse transforms |
//! | Bernoulli(p) | `U(0,1)` | `1[u < p]` | `U(0,p)` if 1, `U(p,1)` if 0 |
//! | Categorical(π) | Gumbel vector | `argmax(log π + g)` | top-down Gumbel posterior (Oberst & Sontag 2019) |
//!
//! Beta and Gamma have none: [`mechanism_of`] says so with an error naming them.
//!
//! ```
//! use ppl_core::dist::{mechanism_of, Abduction, Bernoulli, Normal};
//! use candle_core::{Device, Tensor};
//!
//! let d = Normal::new(Tensor::new(&[1.0f64, -1.0], &Device::Cpu)?, 2.0)?;
//! let m = mechanism_of(&d)?;
//! let x = Tensor::new(&[3.0f64, 0.0], &Device::Cpu)?;
//! let u = m.abduct(&mut ppl_core::rng::from_seed(0), &x)?;
//! assert_eq!(u.to_vec1::<f64>()?, vec![1.0, 0.5]);
//! assert_eq!(m.push(&u)?.to_vec1::<f64>()?, vec![3.0, 0.0]);
//! assert_eq!(m.abduction(), Abduction::Exact);
//! assert_eq!(mechanism_of(&Bernoulli::from_probs(0.3)?)?.abduction(), Abduction::Posterior);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::{DType, Tensor, D};

use super::common::{below_one, draw_shape, host_values, to_shape};
use super::{
    broadcast_shapes, Bernoulli, Categorical, Delta, Distribution, Exponential, Independent,
    LogNormal, Normal, TransformedDistribution, Uniform,
};
use crate::error::{Error, Result};
use crate::rng::{open01, standard_normal, tensor_from_f64, Rng};

/// How abduction recovers the noise of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abduction {
    /// The mechanism is invertible: the noise is a function of the value.
    Exact,
    /// Many noise values give the same value: abduction draws from the posterior of the noise.
    Posterior,
}

/// A distribution's structural form: exogenous noise, the value as a deterministic function of
/// noise and parameters, and abduction of the noise given a value.
///
/// Shapes: noise for a batch of shape `b` has shape `b + noise_event` (`noise_event` is `[K]`
/// for a categorical, the event shape for `Independent`, else `[]`); `b` need only broadcast with
/// the distribution's batch shape, so one draw of noise can be pushed through several batched
/// parameter settings (the counterfactual worlds).
pub trait Mechanism: Send + Sync {
    /// The shape of the noise for a batch of shape `batch_shape`.
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize>;

    /// Exogenous noise for a batch of shape `batch_shape`, drawn from its prior.
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor>;

    /// The value the mechanism gives `noise`, of shape `broadcast(noise batch, batch_shape) +
    /// event_shape` (with gradients to the parameters where the map is differentiable).
    fn push(&self, noise: &Tensor) -> Result<Tensor>;

    /// Noise consistent with `value`: its inverse image for an invertible mechanism, a draw
    /// from the posterior of the noise given the value otherwise. Its batch is
    /// `broadcast(value batch, batch_shape)`.
    fn abduct(&self, rng: &mut Rng, value: &Tensor) -> Result<Tensor>;

    /// Whether [`abduct`](Self::abduct) is exact or a posterior draw.
    fn abduction(&self) -> Abduction;

    /// The joint log-probability of the values of several worlds that share one noise draw:
    /// `values` has the distribution's batch and event shape, and the batch positions
    /// `world_axes` index worlds whose parameters differ. The result has the batch shape with
    /// those axes reduced to size 1. `None` for continuous mechanisms, whose joint across worlds
    /// has no density (one world's value determines the others').
    fn coupled_log_prob(&self, values: &Tensor, world_axes: &[usize]) -> Result<Option<Tensor>> {
        let _ = (values, world_axes);
        Ok(None)
    }
}

/// The structural form of `dist`, or an error naming the distribution when it has none.
pub fn mechanism_of(dist: &dyn Distribution) -> Result<&dyn Mechanism> {
    dist.structural().ok_or_else(|| Error::Unsupported {
        what: format!(
            "the structural form (exogenous noise and abduction) of {}",
            dist.name()
        ),
        why: "no closed-form mechanism is implemented for it; a counterfactual world draws such \
              a site afresh (its trace entry says so), or reparameterise it as a transformed \
              distribution of Normal or Uniform noise"
            .into(),
    })
}

/// `values` broadcast with `batch + event`, for abduction.
fn value_shape(value: &Tensor, batch: &[usize], event: &[usize], who: &str) -> Result<Vec<usize>> {
    let mut full = batch.to_vec();
    full.extend_from_slice(event);
    broadcast_shapes(value.dims(), &full).ok_or_else(|| {
        Error::shape(
            format!("{who}: abduction of a value that does not broadcast with the batch shape"),
            &full,
            value.dims(),
        )
    })
}

fn uniform_noise(
    rng: &mut Rng,
    shape: &[usize],
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    if device.is_cpu() && matches!(dtype, DType::F32 | DType::F64) {
        // Never 1 in the dtype, and the draws Bernoulli's `sample` compares with.
        return crate::rng::uniform01(rng, shape, dtype, device);
    }
    let top = below_one(dtype);
    let n: usize = shape.iter().product();
    let u: Vec<f64> = (0..n).map(|_| open01(rng).min(top)).collect();
    tensor_from_f64(u, shape, dtype, device)
}

/// Standard Gumbel draws of `shape`.
fn gumbel(
    rng: &mut Rng,
    shape: &[usize],
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let g: Vec<f64> = (0..n).map(|_| -(-open01(rng).ln()).ln()).collect();
    tensor_from_f64(g, shape, dtype, device)
}

impl Mechanism for Normal {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        standard_normal(rng, batch_shape, self.dtype(), self.device())
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        self.transform_noise(noise)
    }
    fn abduct(&self, _rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        self.standardize(value)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Exact
    }
}

impl Mechanism for LogNormal {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        self.base().draw_noise(rng, batch_shape)
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        Ok(self.base().push(noise)?.exp()?)
    }
    fn abduct(&self, rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        self.base().abduct(rng, &value.log()?)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Exact
    }
}

impl Mechanism for Uniform {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        uniform_noise(rng, batch_shape, self.dtype(), self.device())
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        let width = self.high().sub(self.low())?;
        Ok(noise.broadcast_mul(&width)?.broadcast_add(self.low())?)
    }
    fn abduct(&self, _rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        let width = self.high().sub(self.low())?;
        Ok(value.broadcast_sub(self.low())?.broadcast_div(&width)?)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Exact
    }
}

impl Mechanism for Exponential {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        uniform_noise(rng, batch_shape, self.dtype(), self.device())
    }
    /// The inverse CDF of the survival function: `x = −ln(u) / rate`.
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        Ok(noise.log()?.neg()?.broadcast_div(self.rate())?)
    }
    fn abduct(&self, _rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        Ok(value.broadcast_mul(self.rate())?.neg()?.exp()?)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Exact
    }
}

impl Mechanism for Delta {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    /// A point mass needs no noise: zeros stand in for it, so that shapes flow as elsewhere.
    fn draw_noise(&self, _rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::zeros(batch_shape, self.dtype(), self.device())?)
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        let batch = broadcast_shapes(noise.dims(), self.batch_shape()).ok_or_else(|| {
            Error::shape(
                "Delta: noise that does not broadcast with the batch shape",
                self.batch_shape(),
                noise.dims(),
            )
        })?;
        Ok(to_shape(self.value(), &draw_shape(&batch, &[], self.event_shape()))?.contiguous()?)
    }
    fn abduct(&self, _rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        let full = value_shape(value, self.batch_shape(), self.event_shape(), "Delta")?;
        let batch = &full[..full.len() - self.event_shape().len()];
        Ok(Tensor::zeros(batch, self.dtype(), self.device())?)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Exact
    }
}

impl Mechanism for Independent {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        match self.base().structural() {
            Some(m) => m.noise_shape(&self.base_batch(batch_shape)),
            None => self.base_batch(batch_shape),
        }
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        mechanism_of(&**self.base())?.draw_noise(rng, &self.base_batch(batch_shape))
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        mechanism_of(&**self.base())?.push(noise)
    }
    fn abduct(&self, rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        mechanism_of(&**self.base())?.abduct(rng, value)
    }
    fn abduction(&self) -> Abduction {
        self.base()
            .structural()
            .map_or(Abduction::Exact, |m| m.abduction())
    }
    fn coupled_log_prob(&self, values: &Tensor, world_axes: &[usize]) -> Result<Option<Tensor>> {
        let Some(lp) = mechanism_of(&**self.base())?.coupled_log_prob(values, world_axes)? else {
            return Ok(None);
        };
        crate::transforms::sum_rightmost(&lp, self.reinterpreted(), "Independent").map(Some)
    }
}

impl Independent {
    /// The base's batch shape for a batch of `batch_shape`: the reinterpreted dims appended.
    fn base_batch(&self, batch_shape: &[usize]) -> Vec<usize> {
        let b = self.base().batch_shape();
        let mut out = batch_shape.to_vec();
        out.extend_from_slice(&b[b.len() - self.reinterpreted()..]);
        out
    }
}

impl Mechanism for TransformedDistribution {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        self.base()
            .structural()
            .map_or_else(|| batch_shape.to_vec(), |m| m.noise_shape(batch_shape))
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        mechanism_of(&**self.base())?.draw_noise(rng, batch_shape)
    }
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        let mut v = mechanism_of(&**self.base())?.push(noise)?;
        for t in self.transforms() {
            v = t.forward(&v)?;
        }
        Ok(v)
    }
    fn abduct(&self, rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        let mut v = value.clone();
        for t in self.transforms().iter().rev() {
            v = t.inverse(&v)?;
        }
        mechanism_of(&**self.base())?.abduct(rng, &v)
    }
    fn abduction(&self) -> Abduction {
        self.base()
            .structural()
            .map_or(Abduction::Exact, |m| m.abduction())
    }
    fn coupled_log_prob(&self, values: &Tensor, world_axes: &[usize]) -> Result<Option<Tensor>> {
        let mut v = values.clone();
        for t in self.transforms().iter().rev() {
            v = t.inverse(&v)?;
        }
        mechanism_of(&**self.base())?.coupled_log_prob(&v, world_axes)
    }
}

impl Mechanism for Bernoulli {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        batch_shape.to_vec()
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        uniform_noise(rng, batch_shape, self.dtype(), self.device())
    }
    /// `1[u < p]`: the same threshold as [`sample`](Distribution::sample) uses.
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        let p = self.probs()?;
        if let Some(shape) = broadcast_shapes(noise.dims(), p.dims()) {
            if let Some(x) = crate::kernels::bernoulli::push(noise, &p, &shape)? {
                return Ok(x);
            }
        }
        Ok(noise.broadcast_lt(&p)?.to_dtype(self.dtype())?)
    }
    /// `u = p·v` for a value of 1 and `u = p + (1 − p)·v` for 0, with `v ~ U(0, 1)`.
    fn abduct(&self, rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        let full = value_shape(value, self.batch_shape(), &[], "Bernoulli")?;
        let x = value.to_dtype(self.dtype())?;
        if let Some(u) = crate::kernels::bernoulli::abduct(rng, &x, &self.probs()?, &full)? {
            return Ok(u);
        }
        let v = uniform_noise(rng, &full, self.dtype(), self.device())?;
        let p = to_shape(&self.probs()?, &full)?;
        let one = to_shape(&x, &full)?.eq(1.0)?;
        let low = p.mul(&v)?;
        let high = p.add(&p.affine(-1.0, 1.0)?.mul(&v)?)?;
        Ok(one.where_cond(&low, &high)?)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Posterior
    }
    /// `P(all worlds' values) = max(0, min_{w: x_w = 1} p_w − max_{w: x_w = 0} p_w)`: one
    /// uniform threshold decides every world.
    fn coupled_log_prob(&self, values: &Tensor, world_axes: &[usize]) -> Result<Option<Tensor>> {
        let x = values.to_dtype(self.dtype())?;
        let shape = broadcast_shapes(x.dims(), self.batch_shape()).ok_or_else(|| {
            Error::shape("Bernoulli: coupled values", self.batch_shape(), x.dims())
        })?;
        let x = to_shape(&x, &shape)?;
        let p = to_shape(&self.probs()?, &shape)?;
        let is_one = x.eq(1.0)?;
        let is_zero = x.eq(0.0)?;
        let ones = super::common::filled(1.0, &shape, p.dtype(), p.device())?;
        let zeros = super::common::filled(0.0, &shape, p.dtype(), p.device())?;
        let mut hi = is_one.where_cond(&p, &ones)?;
        let mut lo = is_zero.where_cond(&p, &zeros)?;
        let mut valid = is_one.add(&is_zero)?.to_dtype(p.dtype())?;
        for &a in world_axes {
            hi = hi.min_keepdim(a)?;
            lo = lo.max_keepdim(a)?;
            valid = valid.min_keepdim(a)?;
        }
        let mass = hi.sub(&lo)?.relu()?.mul(&valid)?;
        Ok(Some(mass.log()?))
    }
}

impl Mechanism for Categorical {
    fn noise_shape(&self, batch_shape: &[usize]) -> Vec<usize> {
        draw_shape(batch_shape, &[], &[self.num_categories()])
    }
    fn draw_noise(&self, rng: &mut Rng, batch_shape: &[usize]) -> Result<Tensor> {
        gumbel(
            rng,
            &self.noise_shape(batch_shape),
            self.dtype(),
            self.device(),
        )
    }
    /// Gumbel-max: `argmax(log π + g)`.
    fn push(&self, noise: &Tensor) -> Result<Tensor> {
        let scores = noise.broadcast_add(&self.logits()?)?;
        Ok(scores.argmax(D::Minus1)?.to_dtype(self.dtype())?)
    }
    /// The top-down Gumbel posterior: the maximum `log π_k + g_k` is `Gumbel(0)` (the
    /// log-probabilities are normalised) and sits at the observed class; every other class's
    /// score is a `Gumbel(log π_k)` truncated below it.
    fn abduct(&self, rng: &mut Rng, value: &Tensor) -> Result<Tensor> {
        let k = self.num_categories();
        let full = value_shape(value, self.batch_shape(), &[], "Categorical")?;
        let noise_shape = self.noise_shape(&full);
        let dtype = self.dtype();
        let dev = self.device();
        let draws = self.draw_noise(rng, &full)?;
        let top = gumbel(rng, &draw_shape(&full, &[], &[1]), dtype, dev)?;
        let logits = to_shape(&self.logits()?, &noise_shape)?;
        let finite = logits.ge(f64::MIN)?;
        let safe_logits = finite.where_cond(&logits, &logits.zeros_like()?)?;
        // Score of class k: Gumbel(log π_k) truncated below `top`, as −log(e^−top + e^−y).
        let y = safe_logits.add(&draws)?;
        let top_b = top.broadcast_as(noise_shape.as_slice())?;
        let m = y.minimum(&top_b)?;
        let gap = y.sub(&top_b)?.abs()?.neg()?.exp()?;
        let truncated = m.sub(&gap.affine(1.0, 1.0)?.log()?)?;
        let classes = Tensor::arange(0u32, k as u32, dev)?.to_dtype(dtype)?;
        let index = to_shape(&value.to_dtype(dtype)?, &full)?.unsqueeze(full.len())?;
        let winner = index.broadcast_eq(&classes)?;
        let score = winner.where_cond(&top_b, &truncated)?;
        // An impossible class keeps an unconditioned Gumbel draw: it never wins anyway.
        let g = finite.where_cond(&score.sub(&safe_logits)?, &draws)?;
        Ok(g)
    }
    fn abduction(&self) -> Abduction {
        Abduction::Posterior
    }
    /// The joint law of two worlds' classes under one Gumbel vector, in closed form (exponential
    /// races; see [`gumbel_pair_prob`]). More than two worlds is refused.
    fn coupled_log_prob(&self, values: &Tensor, world_axes: &[usize]) -> Result<Option<Tensor>> {
        let k = self.num_categories();
        let x = values.to_dtype(self.dtype())?;
        let shape = broadcast_shapes(x.dims(), self.batch_shape()).ok_or_else(|| {
            Error::shape("Categorical: coupled values", self.batch_shape(), x.dims())
        })?;
        let worlds: usize = world_axes.iter().map(|&a| shape[a]).product();
        if worlds > 2 {
            return Err(Error::Unsupported {
                what: format!(
                    "the exact joint law of a Gumbel-max categorical across {worlds} worlds"
                ),
                why:
                    "the closed form covers two worlds; sample the query instead of enumerating it"
                        .into(),
            });
        }
        // Move the (single) world axis of size 2 to the front, flatten the rest.
        let axis = world_axes.iter().copied().find(|&a| shape[a] == 2);
        let x = to_shape(&x, &shape)?;
        let mut lshape = shape.clone();
        lshape.push(k);
        let logits = to_shape(&self.logits()?, &lshape)?;
        let Some(axis) = axis else {
            // One world: the ordinary log-probability.
            let mut lp = self.log_prob(&x)?;
            for &a in world_axes {
                lp = lp.max_keepdim(a)?;
            }
            return Ok(Some(lp));
        };
        let front = |t: &Tensor| -> Result<Tensor> {
            Ok(if axis == 0 {
                t.clone()
            } else {
                t.transpose(0, axis)?.contiguous()?
            })
        };
        let xs = host_values(&front(&x)?)?;
        let ls = host_values(&front(&logits)?)?;
        let n = xs.len() / 2;
        let mut out = Vec::with_capacity(n);
        for e in 0..n {
            let (i, j) = (xs[e], xs[n + e]);
            let a = &ls[e * k..(e + 1) * k];
            let b = &ls[(n + e) * k..(n + e + 1) * k];
            let valid = |c: f64| c >= 0.0 && c < k as f64 && c.fract() == 0.0;
            let p = if valid(i) && valid(j) {
                gumbel_pair_prob(a, b, i as usize, j as usize)
            } else {
                0.0
            };
            out.push(p.ln());
        }
        let mut rshape = shape.clone();
        rshape.swap(0, axis);
        rshape[0] = 1;
        let t = tensor_from_f64(out, rshape, self.dtype(), self.device())?;
        Ok(Some(front(&t)?))
    }
}

/// `P(argmax(a + g) = i, argmax(b + g) = j)` for one standard Gumbel vector `g` and two vectors
/// of log-probabilities `a`, `b` (entries may be `-inf`).
///
/// With `E_k = e^{-g_k} ~ Exp(1)`, class `k` wins world `a` when `E_k e^{-a_k}` is smallest (an
/// exponential race). For `i = j` that gives `1 / Σ_k exp(max(a_k − a_i, b_k − b_i))`; for
/// `i ≠ j`, substituting `E_j = r·E_i` and integrating `E_i` out leaves
/// `∫_{α_j}^{1/β_i} dr / C(r)²` with `C(r) = 1 + r + Σ_{k ≠ i,j} max(α_k, r β_k)`,
/// `α_k = e^{a_k − a_i}`, `β_k = e^{b_k − b_j}`: `C` is piecewise linear in `r`, so the integral
/// is a finite sum in closed form.
pub fn gumbel_pair_prob(a: &[f64], b: &[f64], i: usize, j: usize) -> f64 {
    let k = a.len();
    if a[i] == f64::NEG_INFINITY || b[j] == f64::NEG_INFINITY {
        return 0.0;
    }
    if i == j {
        let s: f64 = (0..k)
            .map(|c| {
                let x = (a[c] - a[i]).max(b[c] - b[i]);
                if x == f64::NEG_INFINITY {
                    0.0
                } else {
                    x.exp()
                }
            })
            .sum();
        return 1.0 / s;
    }
    let alpha = |c: usize| (a[c] - a[i]).exp();
    let beta = |c: usize| (b[c] - b[j]).exp();
    let lo = alpha(j);
    let hi = if beta(i) == 0.0 {
        f64::INFINITY
    } else {
        1.0 / beta(i)
    };
    if lo >= hi || lo.is_nan() {
        return 0.0;
    }
    let others: Vec<usize> = (0..k).filter(|&c| c != i && c != j).collect();
    // Breakpoints where max(α_k, r β_k) switches branch.
    let mut cuts: Vec<f64> = others
        .iter()
        .filter(|&&c| beta(c) > 0.0)
        .map(|&c| alpha(c) / beta(c))
        .filter(|&r| r > lo && r < hi)
        .collect();
    cuts.push(lo);
    cuts.push(hi);
    cuts.sort_by(f64::total_cmp);
    let mut total = 0.0;
    for w in cuts.windows(2) {
        let (r1, r2) = (w[0], w[1]);
        if r1 >= r2 {
            continue;
        }
        let mid = if r2.is_finite() {
            0.5 * (r1 + r2)
        } else {
            r1 + 1.0
        };
        let (mut c0, mut c1) = (1.0, 1.0);
        for &c in &others {
            if mid * beta(c) > alpha(c) {
                c1 += beta(c);
            } else {
                c0 += alpha(c);
            }
        }
        let f = |r: f64| {
            if r.is_finite() {
                1.0 / (c0 + c1 * r)
            } else {
                0.0
            }
        };
        total += (f(r1) - f(r2)) / c1;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_softmax(x: &[f64]) -> Vec<f64> {
        let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = x.iter().map(|v| (v - m).exp()).sum::<f64>().ln() + m;
        x.iter().map(|v| v - z).collect()
    }

    #[test]
    fn gumbel_pairs_have_the_right_marginals() {
        let a = log_softmax(&[0.3, -1.0, 1.2, 0.0]);
        let b = log_softmax(&[-0.5, 2.0, 0.1, f64::NEG_INFINITY]);
        let k = a.len();
        for i in 0..k {
            let row: f64 = (0..k).map(|j| gumbel_pair_prob(&a, &b, i, j)).sum();
            assert!(
                (row - a[i].exp()).abs() < 1e-12,
                "row {i}: {row} vs {}",
                a[i].exp()
            );
        }
        for j in 0..k {
            let col: f64 = (0..k).map(|i| gumbel_pair_prob(&a, &b, i, j)).sum();
            assert!(
                (col - b[j].exp()).abs() < 1e-12,
                "col {j}: {col} vs {}",
                b[j].exp()
            );
        }
    }

    #[test]
    fn identical_worlds_agree_and_pairs_match_monte_carlo() {
        let a = log_softmax(&[0.3, -1.0, 1.2]);
        for i in 0..3 {
            for j in 0..3 {
                let p = gumbel_pair_prob(&a, &a, i, j);
                let want = if i == j { a[i].exp() } else { 0.0 };
                assert!((p - want).abs() < 1e-12);
            }
        }
        // Against a Monte Carlo of the race, 200k draws, 5 standard errors.
        let b = log_softmax(&[1.0, 0.5, -0.7]);
        let mut rng = crate::rng::from_seed(11);
        let n = 200_000;
        let mut counts = [[0usize; 3]; 3];
        for _ in 0..n {
            let g: Vec<f64> = (0..3).map(|_| -(-open01(&mut rng).ln()).ln()).collect();
            let am = (0..3)
                .max_by(|&x, &y| (a[x] + g[x]).total_cmp(&(a[y] + g[y])))
                .unwrap();
            let bm = (0..3)
                .max_by(|&x, &y| (b[x] + g[x]).total_cmp(&(b[y] + g[y])))
                .unwrap();
            counts[am][bm] += 1;
        }
        for (i, row) in counts.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                let p = gumbel_pair_prob(&a, &b, i, j);
                let f = count as f64 / n as f64;
                let se = (p * (1.0 - p) / n as f64).sqrt().max(1e-6);
                assert!((f - p).abs() < 5.0 * se, "({i},{j}): mc {f} vs {p}");
            }
        }
    }
}
