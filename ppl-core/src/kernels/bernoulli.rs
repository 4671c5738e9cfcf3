//! The Bernoulli distribution's draws, structural form and log-probability as single passes on
//! the CPU (see [`super::elementwise`] for why).
//!
//! Every function returns `None` when its operands are not CPU tensors of f32 or f64; the
//! distribution then computes with candle's ops.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::elementwise::{
    advance, compact, compact_shape, cpu_tensor, map, map_with, rng_at, sigmoid, softplus,
    with_cpu, Real,
};
use super::same_dims;
use crate::error::Result;
use crate::rng::Rng;

/// How the parameter is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Probs,
    Logits,
}

/// Draws `n` values `f(u, operands)` with `u` uniform on (0, 1), the generator advanced as if
/// the draws had been made one after another.
fn draw<T: Real, const N: usize>(
    rng: &mut Rng,
    operands: [&Tensor; N],
    f: impl Fn(T, [T; N]) -> T + Sync,
) -> Option<Vec<T>> {
    let pos0 = rng.get_word_pos();
    let base = rng.clone();
    let out = with_cpu::<T, _, N>(operands, |bufs, layouts| {
        map_with(
            bufs,
            layouts,
            |k0| rng_at::<T>(&base, pos0, k0),
            #[inline(always)]
            |r, a| f(T::uniform(r), a),
        )
    })?;
    advance::<T>(rng, pos0, out.len());
    Some(out)
}

#[inline(always)]
fn hit<T: Real>(b: bool) -> T {
    if b {
        T::ONE
    } else {
        T::ZERO
    }
}

/// `1[u < p]`, or `1[logit(u) < l]` for logits (no sigmoid of the parameter needed).
#[inline(always)]
fn threshold<T: Real>(param: Param, u: T, p: T) -> T {
    match param {
        Param::Probs => hit(u < p),
        Param::Logits => hit(u.ln() - (T::ZERO - u).ln_1p() < p),
    }
}

/// Bernoulli draws of `shape` (the parameter broadcast to it).
pub(crate) fn sample(
    rng: &mut Rng,
    param: &Tensor,
    form: Param,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    let p = param.broadcast_as(shape)?;
    Ok(match p.dtype() {
        candle_core::DType::F32 => draw::<f32, 1>(rng, [&p], |u, [p]| threshold(form, u, p))
            .map(|v| cpu_tensor(v, shape))
            .transpose()?,
        candle_core::DType::F64 => draw::<f64, 1>(rng, [&p], |u, [p]| threshold(form, u, p))
            .map(|v| cpu_tensor(v, shape))
            .transpose()?,
        _ => None,
    })
}

/// `1[u < p]` for noise `u` and probabilities `p` broadcast to `shape`.
pub(crate) fn push(noise: &Tensor, probs: &Tensor, shape: &[usize]) -> Result<Option<Tensor>> {
    let (u, p) = (noise.broadcast_as(shape)?, probs.broadcast_as(shape)?);
    if u.dtype() != p.dtype() {
        return Ok(None);
    }
    Ok(match p.dtype() {
        candle_core::DType::F32 => {
            with_cpu::<f32, _, 2>([&u, &p], |b, l| map(b, l, |[u, p]| hit::<f32>(u < p)))
                .map(|v| cpu_tensor(v, shape))
                .transpose()?
        }
        candle_core::DType::F64 => {
            with_cpu::<f64, _, 2>([&u, &p], |b, l| map(b, l, |[u, p]| hit::<f64>(u < p)))
                .map(|v| cpu_tensor(v, shape))
                .transpose()?
        }
        _ => None,
    })
}

/// The noise given the value: `p·v` for a value of 1, `p + (1 − p)·v` otherwise, `v` uniform.
pub(crate) fn abduct(
    rng: &mut Rng,
    value: &Tensor,
    probs: &Tensor,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    let (x, p) = (value.broadcast_as(shape)?, probs.broadcast_as(shape)?);
    if x.dtype() != p.dtype() {
        return Ok(None);
    }
    fn f<T: Real>(v: T, [x, p]: [T; 2]) -> T {
        if x == T::ONE {
            p * v
        } else {
            p + (T::ONE - p) * v
        }
    }
    Ok(match p.dtype() {
        candle_core::DType::F32 => draw::<f32, 2>(rng, [&x, &p], f)
            .map(|v| cpu_tensor(v, shape))
            .transpose()?,
        candle_core::DType::F64 => draw::<f64, 2>(rng, [&x, &p], f)
            .map(|v| cpu_tensor(v, shape))
            .transpose()?,
        _ => None,
    })
}

/// `log P(x)`: `ln p` at 1, `ln(1 − p)` at 0 (for logits `x·l − softplus(l)`), `−inf` off
/// `{0, 1}`. Written with selects rather than branches, so that a loop over it vectorises.
#[inline(always)]
fn log_prob_at<T: Real>(form: Param, x: T, p: T) -> T {
    let (one, zero) = (x == T::ONE, x == T::ZERO);
    let (at_one, at_zero) = match form {
        Param::Probs => {
            // One logarithm: of u = p at 1 and u = 1 − p at 0, times y/(u − 1) with
            // y = u − 1 computed exactly (p − 1 at 1, −p at 0), which is 1 at 1 and cancels the
            // rounding of 1 − p at 0 (as in log1p).
            let u = if one { p } else { T::ONE - p };
            let y = if one { p - T::ONE } else { T::ZERO - p };
            let lp = if u == T::ONE {
                y
            } else {
                u.ln() * (y / (u - T::ONE))
            };
            (lp, lp)
        }
        Param::Logits => {
            let sp = softplus(p);
            (p - sp, T::ZERO - sp)
        }
    };
    if one {
        at_one
    } else if zero {
        at_zero
    } else {
        T::NEG_INFINITY
    }
}

/// `d log P(x) / d param`: `1/p` at 1 and `−1/(1 − p)` at 0 (for logits `x − σ(l)`), 0 off
/// `{0, 1}`.
#[inline(always)]
fn score_at<T: Real>(form: Param, x: T, p: T) -> T {
    let one = x == T::ONE;
    if !one && x != T::ZERO {
        return T::ZERO;
    }
    match form {
        Param::Probs if one => T::ONE / p,
        Param::Probs => T::ZERO - T::ONE / (T::ONE - p),
        Param::Logits => x - sigmoid(p),
    }
}

/// The log-probability op over `(value, param)` (both broadcast to the output's shape) when
/// `score` is false; its derivative in the parameter, used by the backward pass, when true.
#[derive(Debug, Clone, Copy)]
struct LogProb {
    form: Param,
    score: bool,
}

impl CustomOp2 for LogProb {
    fn name(&self) -> &'static str {
        if self.score {
            "ppl-bernoulli-score"
        } else {
            "ppl-bernoulli-log-prob"
        }
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        same_dims(name, &[l1, l2])?;
        // One loop per (formula, parameterisation), each with its choice fixed at compile time:
        // a choice made per element keeps the loop from vectorising.
        macro_rules! run {
            ($f:ident, $form:expr) => {
                match (s1, s2) {
                    (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(map(
                        [a, b],
                        [l1, l2],
                        #[inline(always)]
                        |[x, p]| $f($form, x, p),
                    )),
                    (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(map(
                        [a, b],
                        [l1, l2],
                        #[inline(always)]
                        |[x, p]| $f($form, x, p),
                    )),
                    (a, b) => candle_core::bail!(
                        "{name}: no CPU kernel for dtypes {:?} and {:?}",
                        a.dtype(),
                        b.dtype()
                    ),
                }
            };
        }
        let out = match (self.score, self.form) {
            (false, Param::Probs) => run!(log_prob_at, Param::Probs),
            (false, Param::Logits) => run!(log_prob_at, Param::Logits),
            (true, Param::Probs) => run!(score_at, Param::Probs),
            (true, Param::Logits) => run!(score_at, Param::Logits),
        };
        Ok((out, l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        p: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let score = LogProb {
            form: self.form,
            score: true,
        };
        let d = x.apply_op2_no_bwd(p, &score)?;
        Ok((None, Some(grad.mul(&d)?)))
    }
}

/// `log P(value)` of shape `shape`, differentiable in the parameter; `None` off the CPU or for
/// dtypes other than f32 and f64 (or when the value's dtype differs from the parameter's).
pub(crate) fn log_prob(
    value: &Tensor,
    param: &Tensor,
    form: Param,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    if !super::ours(param) || !value.device().is_cpu() || value.dtype() != param.dtype() {
        return Ok(None);
    }
    if let Some(small) = compact_shape(&[value, param], shape) {
        // Few distinct (value, parameter) pairs: score those, then broadcast.
        let (x, p) = (compact(value)?, compact(param)?);
        let lp = x.broadcast_as(small.as_slice())?.apply_op2(
            &p.broadcast_as(small.as_slice())?,
            LogProb { form, score: false },
        )?;
        return Ok(Some(lp.broadcast_as(shape)?));
    }
    let (x, p) = (value.broadcast_as(shape)?, param.broadcast_as(shape)?);
    Ok(Some(x.apply_op2(&p, LogProb { form, score: false })?))
}
