//! Small formulas that candle spells with many ops — `softplus`, `log1p`, the Normal and
//! log-normal log-densities — as one differentiable op each on the CPU.
//!
//! On a small model every candle op costs its dispatch, an allocation, a graph node and its
//! backward step regardless of the tensor's size: AutoNormal's softplus was twelve ops and the
//! Normal log-density six, together about half of an SVI step of the B2 regression. Each op
//! here is one pass forward and one or two passes backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};

use super::elementwise::{self, compact, compact_shape, map, Real};
use super::same_dims;
use crate::dist::to_shape;
use crate::error::Result;

/// `½ ln 2π`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The one-argument formulas, each with its derivative.
#[derive(Debug, Clone, Copy)]
enum Unary {
    /// `ln(1 + eˣ)`, derivative `σ(x)`.
    Softplus,
    /// `ln(1 + x)`, derivative `1 / (1 + x)`.
    Log1p,
}

impl Unary {
    #[inline(always)]
    fn value<T: Real>(self, x: T) -> T {
        match self {
            Unary::Softplus => elementwise::softplus(x),
            Unary::Log1p => x.ln_1p(),
        }
    }
    #[inline(always)]
    fn derivative<T: Real>(self, x: T) -> T {
        match self {
            Unary::Softplus => elementwise::sigmoid(x),
            Unary::Log1p => T::ONE / (T::ONE + x),
        }
    }
}

/// The op of a [`Unary`]: its value, or (for the backward pass, which multiplies by the
/// incoming gradient) its derivative.
#[derive(Debug, Clone, Copy)]
struct UnaryOp {
    unary: Unary,
    derivative: bool,
}

impl CustomOp1 for UnaryOp {
    fn name(&self) -> &'static str {
        match (self.unary, self.derivative) {
            (_, true) => "ppl-unary-derivative",
            (Unary::Softplus, false) => "ppl-softplus",
            (Unary::Log1p, false) => "ppl-log1p",
        }
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        // One loop per formula, fixed at compile time (see the Bernoulli kernels).
        macro_rules! run {
            ($f:ident, $u:expr) => {
                match s {
                    CpuStorage::F32(x) => CpuStorage::F32(map(
                        [x],
                        [l],
                        #[inline(always)]
                        |[v]| $u.$f(v),
                    )),
                    CpuStorage::F64(x) => CpuStorage::F64(map(
                        [x],
                        [l],
                        #[inline(always)]
                        |[v]| $u.$f(v),
                    )),
                    other => candle_core::bail!("{name}: no CPU kernel for {:?}", other.dtype()),
                }
            };
        }
        let out = match (self.derivative, self.unary) {
            (false, Unary::Softplus) => run!(value, Unary::Softplus),
            (false, Unary::Log1p) => run!(value, Unary::Log1p),
            (true, Unary::Softplus) => run!(derivative, Unary::Softplus),
            (true, Unary::Log1p) => run!(derivative, Unary::Log1p),
        };
        Ok((out, l.shape().clone()))
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let derivative = UnaryOp {
            unary: self.unary,
            derivative: true,
        };
        let d = x.apply_op1_no_bwd(&derivative)?;
        Ok(Some(grad.mul(&d)?))
    }
}

fn unary(x: &Tensor, u: Unary) -> Result<Option<Tensor>> {
    if super::ours(x) {
        Ok(Some(x.apply_op1(UnaryOp {
            unary: u,
            derivative: false,
        })?))
    } else {
        Ok(None)
    }
}

/// `ln(1 + eˣ)` as one op on the CPU (f32, f64); `None` elsewhere.
pub(crate) fn softplus(x: &Tensor) -> Result<Option<Tensor>> {
    unary(x, Unary::Softplus)
}

/// `ln(1 + x)` as one op on the CPU (f32, f64); `None` elsewhere.
pub(crate) fn log1p(x: &Tensor) -> Result<Option<Tensor>> {
    unary(x, Unary::Log1p)
}

/// A location-scale law on the reals or, through `exp`, on the positive reals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Law {
    Normal,
    LogNormal,
}

/// What a [`LocScale`] pass computes from `(x, loc, scale)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The log-density.
    LogProb,
    /// Its derivative in `x`.
    Value,
    /// Its derivative in `loc`.
    Loc,
    /// Its derivative in `scale`.
    Scale,
}

#[derive(Debug, Clone, Copy)]
struct LocScale {
    law: Law,
    part: Part,
}

impl LocScale {
    #[inline(always)]
    fn at<T: Real>(self, x: T, m: T, s: T) -> T {
        // The log-normal is the normal of y = ln x, less ln x, and −inf off (0, inf).
        let y = match self.law {
            Law::Normal => x,
            Law::LogNormal if x > T::ZERO && x < T::ONE / T::ZERO => x.ln(),
            Law::LogNormal if self.part == Part::LogProb => return T::NEG_INFINITY,
            Law::LogNormal => return T::ZERO,
        };
        let z = (y - m) / s;
        match self.part {
            Part::LogProb => {
                let lp = T::ZERO - T::from_f64(0.5) * z * z - s.ln() - T::from_f64(HALF_LN_2PI);
                match self.law {
                    Law::Normal => lp,
                    Law::LogNormal => lp - y,
                }
            }
            Part::Value => match self.law {
                Law::Normal => T::ZERO - z / s,
                Law::LogNormal => (T::ZERO - z / s - T::ONE) / x,
            },
            Part::Loc => z / s,
            Part::Scale => (z * z - T::ONE) / s,
        }
    }
}

/// A three-operand op's CPU forward: `f32_op`/`f64_op` over the operands broadcast to one shape.
fn fwd3(
    name: &str,
    [(s1, l1), (s2, l2), (s3, l3)]: [(&CpuStorage, &Layout); 3],
    f32_op: impl Fn([f32; 3]) -> f32 + Sync,
    f64_op: impl Fn([f64; 3]) -> f64 + Sync,
) -> candle_core::Result<(CpuStorage, Shape)> {
    same_dims(name, &[l1, l2, l3])?;
    let ls = [l1, l2, l3];
    let out = match (s1, s2, s3) {
        (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)) => {
            CpuStorage::F32(map([a, b, c], ls, f32_op))
        }
        (CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)) => {
            CpuStorage::F64(map([a, b, c], ls, f64_op))
        }
        (a, _, _) => candle_core::bail!("{name}: no CPU kernel for {:?}", a.dtype()),
    };
    Ok((out, l1.shape().clone()))
}

/// The Normal log-density with one scale for every element.
fn normal_shared_scale<T: Real>(x: &[T], lx: &Layout, m: &[T], lm: &Layout, s: T) -> Vec<T> {
    let inv = T::ONE / s;
    let half = T::from_f64(0.5);
    let c = T::ZERO - s.ln() - T::from_f64(HALF_LN_2PI);
    map([x, m], [lx, lm], |[x, m]| {
        let z = (x - m) * inv;
        c - half * z * z
    })
}

impl CustomOp3 for LocScale {
    fn name(&self) -> &'static str {
        "ppl-loc-scale"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = self.name();
        same_dims(name, &[l1, l2, l3])?;
        let op = *self;
        // A scale shared by every element (a number broadcast): its logarithm once.
        if l3.stride().iter().all(|&s| s == 0) && op.law == Law::Normal && op.part == Part::LogProb
        {
            let at = l3.start_offset();
            return Ok((
                match (s1, s2, s3) {
                    (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)) => {
                        CpuStorage::F32(normal_shared_scale(a, l1, b, l2, c[at]))
                    }
                    (CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)) => {
                        CpuStorage::F64(normal_shared_scale(a, l1, b, l2, c[at]))
                    }
                    (a, _, _) => {
                        candle_core::bail!("{name}: no CPU kernel for {:?}", a.dtype())
                    }
                },
                l1.shape().clone(),
            ));
        }
        // One loop per (law, part), fixed at compile time (see the Bernoulli kernels).
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        macro_rules! run {
            ($law:expr, $part:expr) => {{
                const OP: LocScale = LocScale {
                    law: $law,
                    part: $part,
                };
                fwd3(
                    name,
                    operands,
                    #[inline(always)]
                    |[x, m, s]| OP.at(x, m, s),
                    #[inline(always)]
                    |[x, m, s]| OP.at(x, m, s),
                )
            }};
        }
        match (op.law, op.part) {
            (Law::Normal, Part::LogProb) => run!(Law::Normal, Part::LogProb),
            (Law::Normal, Part::Value) => run!(Law::Normal, Part::Value),
            (Law::Normal, Part::Loc) => run!(Law::Normal, Part::Loc),
            (Law::Normal, Part::Scale) => run!(Law::Normal, Part::Scale),
            (Law::LogNormal, Part::LogProb) => run!(Law::LogNormal, Part::LogProb),
            (Law::LogNormal, Part::Value) => run!(Law::LogNormal, Part::Value),
            (Law::LogNormal, Part::Loc) => run!(Law::LogNormal, Part::Loc),
            (Law::LogNormal, Part::Scale) => run!(Law::LogNormal, Part::Scale),
        }
    }
    fn bwd(
        &self,
        x: &Tensor,
        loc: &Tensor,
        scale: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let part = |p: Part, wanted: bool| -> candle_core::Result<Option<Tensor>> {
            if !wanted {
                return Ok(None);
            }
            let d = x.apply_op3_no_bwd(
                loc,
                scale,
                &LocScale {
                    law: self.law,
                    part: p,
                },
            )?;
            Ok(Some(grad.mul(&d)?))
        };
        let gx = part(Part::Value, x.track_op())?;
        let gm = part(Part::Loc, loc.track_op())?;
        let gs = part(Part::Scale, scale.track_op())?;
        Ok((gx, gm, gs))
    }
}

/// The log-density of `x` under `law` with `loc` and `scale`, all broadcast to `shape`, as one
/// op on the CPU (f32, f64, one dtype throughout); `None` elsewhere.
fn loc_scale_log_prob(
    law: Law,
    x: &Tensor,
    loc: &Tensor,
    scale: &Tensor,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    let same = x.dtype() == loc.dtype() && x.dtype() == scale.dtype();
    if !(same && super::ours(x) && loc.device().is_cpu() && scale.device().is_cpu()) {
        return Ok(None);
    }
    // A broadcast is a graph node with its own backward step: only where needed.
    let (x, m, s) = (
        to_shape(x, shape)?,
        to_shape(loc, shape)?,
        to_shape(scale, shape)?,
    );
    let op = LocScale {
        law,
        part: Part::LogProb,
    };
    Ok(Some(x.apply_op3(&m, &s, op)?))
}

/// The Normal log-density (see [`loc_scale_log_prob`]).
pub(crate) fn normal_log_prob(
    x: &Tensor,
    loc: &Tensor,
    scale: &Tensor,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    loc_scale_log_prob(Law::Normal, x, loc, scale, shape)
}

/// The log-normal log-density, `−inf` off `(0, inf)` with zero gradients there (see
/// [`loc_scale_log_prob`]).
pub(crate) fn log_normal_log_prob(
    x: &Tensor,
    loc: &Tensor,
    scale: &Tensor,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    loc_scale_log_prob(Law::LogNormal, x, loc, scale, shape)
}

/// `m ≠ 0 ? a : b` elementwise over `(m, a, b)` broadcast to one shape, the mask already in the
/// values' dtype.
#[derive(Debug, Clone, Copy)]
struct Where;

impl CustomOp3 for Where {
    fn name(&self) -> &'static str {
        "ppl-where"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        #[inline(always)]
        fn pick<T: Real>([m, a, b]: [T; 3]) -> T {
            if m != T::ZERO {
                a
            } else {
                b
            }
        }
        fwd3(self.name(), [(s1, l1), (s2, l2), (s3, l3)], pick, pick)
    }
    fn bwd(
        &self,
        m: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let zero = grad.zeros_like()?;
        let ga = if a.track_op() {
            Some(m.apply_op3_no_bwd(grad, &zero, &Where)?)
        } else {
            None
        };
        let gb = if b.track_op() {
            Some(m.apply_op3_no_bwd(&zero, grad, &Where)?)
        } else {
            None
        };
        Ok((None, ga, gb))
    }
}

/// `mask ? a : b` at `shape` (every operand broadcast to it) as one pass on the CPU for f32 and
/// f64 values, differentiable in `a` and `b`; `None` elsewhere. candle's `where_cond` walks
/// broadcast operands element by element through a strided index, which made the world masks'
/// selects the slowest passes of a twin-world query.
pub(crate) fn select(
    mask: &Tensor,
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    let ok = super::ours(a) && a.dtype() == b.dtype() && b.device().is_cpu();
    if !ok || !mask.device().is_cpu() {
        return Ok(None);
    }
    let m = mask.to_dtype(a.dtype())?;
    if let Some(small) = compact_shape(&[&m, a, b], shape) {
        // Every operand a broadcast of something smaller: select there, then broadcast.
        let (mc, ac, bc) = (compact(&m)?, compact(a)?, compact(b)?);
        let s = select(&mc, &ac, &bc, &small)?.expect("checked: CPU, f32/f64");
        return Ok(Some(s.broadcast_as(shape)?));
    }
    Ok(Some(to_shape(&m, shape)?.apply_op3(
        &to_shape(a, shape)?,
        &to_shape(b, shape)?,
        Where,
    )?))
}
