//! The fused, in-place CPU update of the optimisers in [`crate::optim`].
//!
//! candle-nn's AdamW spends about a dozen allocating tensor ops per parameter and step. Here one
//! pass over each parameter reads its gradient and optimiser state and writes the new state and
//! the new parameter value, through candle's public [`InplaceOp2`] (the parameter is the
//! destination, so every tensor sharing its storage sees the update). The state lives in host
//! vectors owned by the optimiser, borrowed by the op for the duration of the call. Large
//! parameters are split into chunks updated in parallel.

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Sub};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// Elements per parallel work item: large enough that a chunk's work outweighs the scheduling.
const CHUNK: usize = 1 << 14;

/// The scalars of one parameter's update at one step (computed in f64, cast once per call).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Update {
    /// `m ← b1 m + (1-b1) g`, `v ← b2 v + (1-b2) g²`, `p ← p - step_size · m / (√v · v_scale + eps)`
    /// with `g` first clamped to `[-clip, clip]` (when `clip` is set) and then given
    /// `weight_decay · p`. State: `m` then `v`.
    Adam {
        b1: f64,
        b2: f64,
        eps: f64,
        weight_decay: f64,
        clip: Option<f64>,
        step_size: f64,
        v_scale: f64,
    },
    /// torch's SGD: `d = g + weight_decay · p`; with momentum, `buf ← d` on the first step and
    /// `buf ← momentum · buf + (1 - dampening) d` after, and `d = buf` (or `d + momentum · buf`
    /// with Nesterov); `p ← p - lr · d`. State: `buf` when `momentum ≠ 0`, else nothing.
    Sgd {
        lr: f64,
        momentum: f64,
        dampening: f64,
        nesterov: bool,
        weight_decay: f64,
        first: bool,
    },
}

impl Update {
    /// How many parameter-sized state buffers the update keeps.
    pub(crate) fn buffers(&self) -> usize {
        match self {
            Update::Adam { .. } => 2,
            Update::Sgd { momentum, .. } => usize::from(*momentum != 0.0),
        }
    }
}

/// Optimiser state on the host, buffer after buffer (`buffers() × elements` values).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HostState {
    /// For f32 parameters.
    F32(Vec<f32>),
    /// For f64 parameters.
    F64(Vec<f64>),
}

impl HostState {
    /// Zeroed state of `len` values for a parameter of `dtype` (f32 or f64).
    pub(crate) fn zeros(dtype: DType, len: usize) -> Option<Self> {
        match dtype {
            DType::F32 => Some(HostState::F32(vec![0.0; len])),
            DType::F64 => Some(HostState::F64(vec![0.0; len])),
            _ => None,
        }
    }

    /// The dtype of the parameters this state belongs to.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            HostState::F32(_) => DType::F32,
            HostState::F64(_) => DType::F64,
        }
    }

    /// Number of stored values.
    pub(crate) fn len(&self) -> usize {
        match self {
            HostState::F32(v) => v.len(),
            HostState::F64(v) => v.len(),
        }
    }
}

/// Whether [`step_in_place`] can update `param`: a contiguous f32 or f64 tensor on the CPU.
pub(crate) fn supports(param: &Tensor) -> bool {
    param.device().is_cpu()
        && matches!(param.dtype(), DType::F32 | DType::F64)
        && param.is_contiguous()
}

/// Applies `update` to `param` (a variable's tensor, written in place) with gradient `grad`
/// (same dtype and element count) and host `state` (of `param`'s dtype, `update.buffers()`
/// times its element count).
pub(crate) fn step_in_place(
    param: &Tensor,
    grad: &Tensor,
    state: &mut HostState,
    update: &Update,
) -> Result<()> {
    // The kernel indexes linearly, so a strided gradient is compacted first.
    let grad = grad.contiguous()?;
    let op = FusedStep {
        update: *update,
        state: RefCell::new(state),
    };
    param.inplace_op2(&grad, &op)?;
    Ok(())
}

struct FusedStep<'a> {
    update: Update,
    state: RefCell<&'a mut HostState>,
}

fn fail(msg: String) -> candle_core::Error {
    candle_core::Error::Msg(msg).bt()
}

impl InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "ppl-fused-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (p0, p1) = l1
            .contiguous_offsets()
            .ok_or_else(|| fail("fused optimiser step: parameter is not contiguous".into()))?;
        let (g0, g1) = l2
            .contiguous_offsets()
            .ok_or_else(|| fail("fused optimiser step: gradient is not contiguous".into()))?;
        let mut state = self.state.borrow_mut();
        match (s1, s2, &mut **state) {
            (CpuStorage::F32(p), CpuStorage::F32(g), HostState::F32(s)) => {
                run(&self.update, &mut p[p0..p1], &g[g0..g1], s)
            }
            (CpuStorage::F64(p), CpuStorage::F64(g), HostState::F64(s)) => {
                run(&self.update, &mut p[p0..p1], &g[g0..g1], s)
            }
            (p, g, s) => Err(fail(format!(
                "fused optimiser step: dtypes differ (parameter {:?}, gradient {:?}, state {:?})",
                p.dtype(),
                g.dtype(),
                s.dtype()
            ))),
        }
    }
}

/// The arithmetic the kernels need, for f32 and f64.
trait Elem:
    Copy
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    fn of(x: f64) -> Self;
    fn sqrt(self) -> Self;
    fn clamp_to(self, lo: Self, hi: Self) -> Self;
}

impl Elem for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn clamp_to(self, lo: Self, hi: Self) -> Self {
        self.clamp(lo, hi)
    }
}

impl Elem for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn clamp_to(self, lo: Self, hi: Self) -> Self {
        self.clamp(lo, hi)
    }
}

fn run<T: Elem>(u: &Update, p: &mut [T], g: &[T], s: &mut [T]) -> candle_core::Result<()> {
    let n = p.len();
    if g.len() != n || s.len() != u.buffers() * n {
        return Err(fail(format!(
            "fused optimiser step: {n} parameter values, {} gradient values, {} state values",
            g.len(),
            s.len()
        )));
    }
    match *u {
        Update::Adam {
            b1,
            b2,
            eps,
            weight_decay,
            clip,
            step_size,
            v_scale,
        } => {
            let k = AdamK {
                b1: T::of(b1),
                omb1: T::of(1.0 - b1),
                b2: T::of(b2),
                omb2: T::of(1.0 - b2),
                eps: T::of(eps),
                wd: T::of(weight_decay),
                clip: T::of(clip.unwrap_or(0.0)),
                step_size: T::of(step_size),
                v_scale: T::of(v_scale),
            };
            let (m, v) = s.split_at_mut(n);
            // Clipping and decay are chosen once per call, so the inner loop has no branches.
            match (clip.is_some(), weight_decay != 0.0) {
                (false, false) => par4(p, g, m, v, |p, g, m, v| {
                    adam::<T, false, false>(&k, p, g, m, v)
                }),
                (false, true) => par4(p, g, m, v, |p, g, m, v| {
                    adam::<T, false, true>(&k, p, g, m, v)
                }),
                (true, false) => par4(p, g, m, v, |p, g, m, v| {
                    adam::<T, true, false>(&k, p, g, m, v)
                }),
                (true, true) => par4(p, g, m, v, |p, g, m, v| {
                    adam::<T, true, true>(&k, p, g, m, v)
                }),
            }
        }
        Update::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            first,
        } => {
            let k = SgdK {
                lr: T::of(lr),
                mom: T::of(momentum),
                keep: T::of(1.0 - dampening),
                wd: T::of(weight_decay),
            };
            if momentum == 0.0 {
                par2(p, g, |p, g| sgd_plain(&k, p, g));
            } else {
                par3(p, g, s, |p, g, b| {
                    sgd_momentum(&k, first, nesterov, p, g, b)
                });
            }
        }
    }
    Ok(())
}

struct AdamK<T> {
    b1: T,
    omb1: T,
    b2: T,
    omb2: T,
    eps: T,
    wd: T,
    clip: T,
    step_size: T,
    v_scale: T,
}

fn adam<T: Elem, const CLIP: bool, const DECAY: bool>(
    k: &AdamK<T>,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let lo = T::of(0.0) - k.clip;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let mut g = g;
        if CLIP {
            g = g.clamp_to(lo, k.clip);
        }
        if DECAY {
            g = g + k.wd * *p;
        }
        *m = k.b1 * *m + k.omb1 * g;
        *v = k.b2 * *v + k.omb2 * (g * g);
        *p = *p - k.step_size * (*m / ((*v).sqrt() * k.v_scale + k.eps));
    }
}

struct SgdK<T> {
    lr: T,
    mom: T,
    keep: T,
    wd: T,
}

fn sgd_plain<T: Elem>(k: &SgdK<T>, p: &mut [T], g: &[T]) {
    for (p, &g) in p.iter_mut().zip(g) {
        *p = *p - k.lr * (g + k.wd * *p);
    }
}

fn sgd_momentum<T: Elem>(
    k: &SgdK<T>,
    first: bool,
    nesterov: bool,
    p: &mut [T],
    g: &[T],
    b: &mut [T],
) {
    for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
        let d = g + k.wd * *p;
        *b = if first { d } else { k.mom * *b + k.keep * d };
        let d = if nesterov { d + k.mom * *b } else { *b };
        *p = *p - k.lr * d;
    }
}

fn par2<T: Elem>(p: &mut [T], g: &[T], f: impl Fn(&mut [T], &[T]) + Sync) {
    if p.len() <= CHUNK {
        return f(p, g);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .for_each(|(p, g)| f(p, g));
}

fn par3<T: Elem>(p: &mut [T], g: &[T], a: &mut [T], f: impl Fn(&mut [T], &[T], &mut [T]) + Sync) {
    if p.len() <= CHUNK {
        return f(p, g, a);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(a.par_chunks_mut(CHUNK))
        .for_each(|((p, g), a)| f(p, g, a));
}

fn par4<T: Elem>(
    p: &mut [T],
    g: &[T],
    a: &mut [T],
    b: &mut [T],
    f: impl Fn(&mut [T], &[T], &mut [T], &mut [T]) + Sync,
) {
    if p.len() <= CHUNK {
        return f(p, g, a, b);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(a.par_chunks_mut(CHUNK))
        .zip(b.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), a), b)| f(p, g, a, b));
}
