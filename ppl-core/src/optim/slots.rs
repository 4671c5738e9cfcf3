//! Per-parameter optimiser state, created lazily and keyed by parameter name, and the step loop
//! shared by every optimiser.

use std::collections::BTreeMap;
use std::fmt;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Shape, Tensor, TensorId};

use super::lr::LearningRates;
use super::unfused;
use crate::error::{Error, Result};
use crate::kernels::adam::{self as fused, HostState, Update};
use crate::params::ParamStore;

/// An update rule with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rule {
    Adam {
        b1: f64,
        b2: f64,
        eps: f64,
        weight_decay: f64,
    },
    ClippedAdam {
        b1: f64,
        b2: f64,
        eps: f64,
        weight_decay: f64,
        clip_norm: f64,
        lrd: f64,
    },
    Sgd {
        momentum: f64,
        dampening: f64,
        nesterov: bool,
        weight_decay: f64,
    },
}

impl Rule {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Rule::Adam { .. } => "Adam",
            Rule::ClippedAdam { .. } => "ClippedAdam",
            Rule::Sgd { .. } => "Sgd",
        }
    }

    /// The names of the state buffers, as torch calls them.
    fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            Rule::Adam { .. } | Rule::ClippedAdam { .. } => &["exp_avg", "exp_avg_sq"],
            Rule::Sgd { momentum, .. } if *momentum != 0.0 => &["momentum_buffer"],
            Rule::Sgd { .. } => &[],
        }
    }

    fn validate(&self) -> Result<()> {
        let kind = self.kind();
        let bad = |param: &'static str, reason: String| Err(Error::param(kind, param, reason));
        let (b1, b2, eps, weight_decay) = match *self {
            Rule::Adam {
                b1,
                b2,
                eps,
                weight_decay,
            } => (b1, b2, eps, weight_decay),
            Rule::ClippedAdam {
                b1,
                b2,
                eps,
                weight_decay,
                clip_norm,
                lrd,
            } => {
                if clip_norm.is_nan() || clip_norm <= 0.0 {
                    return bad("clip_norm", format!("must be > 0, got {clip_norm}"));
                }
                if !(lrd > 0.0 && lrd.is_finite()) {
                    return bad("lrd", format!("must be finite and > 0, got {lrd}"));
                }
                (b1, b2, eps, weight_decay)
            }
            Rule::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => {
                if !(momentum >= 0.0 && momentum.is_finite()) {
                    return bad(
                        "momentum",
                        format!("must be finite and >= 0, got {momentum}"),
                    );
                }
                if !(0.0..=1.0).contains(&dampening) {
                    return bad("dampening", format!("must lie in [0, 1], got {dampening}"));
                }
                if nesterov && (momentum == 0.0 || dampening != 0.0) {
                    return bad(
                        "nesterov",
                        "Nesterov momentum needs momentum > 0 and dampening 0".into(),
                    );
                }
                if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
                    return bad(
                        "weight_decay",
                        format!("must be finite and >= 0, got {weight_decay}"),
                    );
                }
                return Ok(());
            }
        };
        for (param, b) in [("betas.0", b1), ("betas.1", b2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(param, format!("must lie in [0, 1), got {b}"));
            }
        }
        if !(eps >= 0.0 && eps.is_finite()) {
            return bad("eps", format!("must be finite and >= 0, got {eps}"));
        }
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            return bad(
                "weight_decay",
                format!("must be finite and >= 0, got {weight_decay}"),
            );
        }
        Ok(())
    }

    /// The update of a parameter with base rate `lr` at its own step `step` (from 1).
    fn update(&self, lr: f64, step: u64) -> Update {
        let t = step as f64;
        match *self {
            // torch: p -= lr / bc1 · m / (√v / √bc2 + eps)
            Rule::Adam {
                b1,
                b2,
                eps,
                weight_decay,
            } => Update::Adam {
                b1,
                b2,
                eps,
                weight_decay,
                clip: None,
                step_size: lr / (1.0 - b1.powf(t)),
                v_scale: 1.0 / (1.0 - b2.powf(t)).sqrt(),
            },
            // Pyro: the rate decays before each step, and eps is added to √v before the bias
            // correction: p -= lr·lrd^t · √bc2 / bc1 · m / (√v + eps)
            Rule::ClippedAdam {
                b1,
                b2,
                eps,
                weight_decay,
                clip_norm,
                lrd,
            } => Update::Adam {
                b1,
                b2,
                eps,
                weight_decay,
                clip: Some(clip_norm),
                step_size: lr * lrd.powf(t) * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t)),
                v_scale: 1.0,
            },
            Rule::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => Update::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
                first: step == 1,
            },
        }
    }
}

/// Where a parameter's state lives: nowhere yet, in host vectors for the fused CPU kernel, or in
/// tensors for the tensor-op path (other devices and dtypes, and freshly loaded state).
#[derive(Clone)]
enum State {
    Fresh,
    Host(HostState),
    Tensors(Vec<Tensor>),
}

#[derive(Clone)]
struct Slot {
    /// The parameter's own base rate.
    lr: f64,
    /// Steps taken by this parameter (its bias correction and rate decay count from its first).
    step: u64,
    /// The variable this state belongs to; `None` for loaded state not yet matched to one.
    owner: Option<TensorId>,
    /// The parameter's shape, once known.
    shape: Option<Shape>,
    state: State,
}

impl Slot {
    fn new(lr: f64) -> Self {
        Slot {
            lr,
            step: 0,
            owner: None,
            shape: None,
            state: State::Fresh,
        }
    }

    /// Ties the slot to `param`. A parameter re-created under the same name (a cleared store)
    /// starts afresh, as a new tensor gets a new optimiser in Pyro; loaded state must fit.
    fn bind(&mut self, name: &str, param: &Tensor) -> Result<()> {
        match self.owner {
            Some(id) if id == param.id() => return Ok(()),
            Some(_) => *self = Slot::new(self.lr),
            None => {
                if let Some(shape) = &self.shape {
                    if shape != param.shape() {
                        return Err(Error::shape(
                            format!("optimiser state of parameter `{name}`"),
                            param.dims(),
                            shape.dims(),
                        ));
                    }
                }
            }
        }
        self.owner = Some(param.id());
        self.shape = Some(param.shape().clone());
        Ok(())
    }

    fn host(&mut self, dtype: DType, buffers: usize) -> Result<&mut HostState> {
        let shape = self.shape.clone().unwrap_or_else(|| Shape::from(()));
        let len = buffers * shape.elem_count();
        let ready = matches!(&self.state, State::Host(h) if h.dtype() == dtype && h.len() == len);
        if !ready {
            // State of another size (the rule's buffers changed) cannot be carried over.
            let host = match std::mem::replace(&mut self.state, State::Fresh) {
                State::Tensors(ts) if ts.len() == buffers => tensors_to_host(&ts, dtype)?,
                _ => HostState::zeros(dtype, len).ok_or_else(|| {
                    Error::usage(format!("no host optimiser state for dtype {dtype:?}"))
                })?,
            };
            self.state = State::Host(host);
        }
        match &mut self.state {
            State::Host(h) => Ok(h),
            _ => unreachable!("set above"),
        }
    }

    fn tensors(&mut self, like: &Tensor, buffers: usize) -> Result<&mut Vec<Tensor>> {
        let n = like.elem_count();
        let ts = match std::mem::replace(&mut self.state, State::Fresh) {
            State::Host(h) if h.len() == buffers * n => host_to_tensors(&h, buffers, like.shape())?,
            State::Tensors(ts) if ts.len() == buffers => ts,
            // Fresh, or state of another size (the rule's buffers changed).
            _ => (0..buffers)
                .map(|_| like.zeros_like())
                .collect::<candle_core::Result<Vec<_>>>()?,
        };
        let ts = ts
            .into_iter()
            .map(|t| {
                let t = if t.device().same_device(like.device()) {
                    t
                } else {
                    t.to_device(like.device())?
                };
                t.to_dtype(like.dtype())
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.state = State::Tensors(ts);
        match &mut self.state {
            State::Tensors(ts) => Ok(ts),
            _ => unreachable!("set above"),
        }
    }

    /// The state buffers as tensors of the parameter's shape (copies, never aliases).
    fn export(&self, buffers: usize) -> Result<Vec<Tensor>> {
        let shape = self.shape.clone().unwrap_or_else(|| Shape::from(()));
        Ok(match &self.state {
            State::Fresh => Vec::new(),
            State::Host(h) => host_to_tensors(h, buffers, &shape)?,
            State::Tensors(ts) => ts
                .iter()
                .map(|t| t.copy())
                .collect::<candle_core::Result<_>>()?,
        })
    }
}

fn host_to_tensors(h: &HostState, buffers: usize, shape: &Shape) -> Result<Vec<Tensor>> {
    let n = shape.elem_count();
    if h.len() != buffers * n {
        return Err(Error::usage(format!(
            "optimiser state holds {} values, not {buffers} buffers of shape {shape:?}",
            h.len()
        )));
    }
    (0..buffers)
        .map(|k| {
            let t = match h {
                HostState::F32(v) => {
                    Tensor::from_slice(&v[k * n..(k + 1) * n], shape, &Device::Cpu)
                }
                HostState::F64(v) => {
                    Tensor::from_slice(&v[k * n..(k + 1) * n], shape, &Device::Cpu)
                }
            };
            Ok(t?)
        })
        .collect()
}

fn tensors_to_host(ts: &[Tensor], dtype: DType) -> Result<HostState> {
    Ok(match dtype {
        DType::F32 => {
            let mut v = Vec::new();
            for t in ts {
                v.extend(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
            }
            HostState::F32(v)
        }
        DType::F64 => {
            let mut v = Vec::new();
            for t in ts {
                v.extend(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
            }
            HostState::F64(v)
        }
        other => {
            return Err(Error::usage(format!(
                "no host optimiser state for dtype {other:?}"
            )))
        }
    })
}

/// Every parameter's state, and the step loop.
#[derive(Clone, Default)]
pub(crate) struct Slots {
    slots: BTreeMap<String, Slot>,
    /// Tests force the tensor-op path on the CPU to compare it with the fused kernel.
    #[cfg(test)]
    pub(crate) force_unfused: bool,
}

impl fmt::Debug for Slots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.slots.iter().map(|(k, s)| (k, s.step)))
            .finish()
    }
}

impl Slots {
    /// One step of `rule` on every parameter of `store` that has a gradient in `grads`.
    pub(crate) fn step(
        &mut self,
        rule: &Rule,
        lrs: &LearningRates,
        store: &ParamStore,
        grads: &GradStore,
    ) -> Result<()> {
        rule.validate()?;
        lrs.validate(rule.kind())?;
        for (name, entry) in store.entries() {
            let param = entry.var.as_tensor();
            let Some(grad) = grads.get(param) else {
                continue;
            };
            if grad.dims() != param.dims() {
                return Err(Error::shape(
                    format!("gradient of parameter `{name}`"),
                    param.dims(),
                    grad.dims(),
                ));
            }
            let grad = if grad.dtype() == param.dtype() {
                grad.clone()
            } else {
                grad.to_dtype(param.dtype())?
            };
            let slot = match self.slots.get_mut(&name) {
                Some(s) => s,
                None => {
                    let lr = lrs.of(rule.kind(), &name)?;
                    self.slots.entry(name.clone()).or_insert(Slot::new(lr))
                }
            };
            slot.bind(&name, param)?;
            let step = slot.step + 1;
            let update = rule.update(slot.lr, step);
            #[cfg(test)]
            let fused = fused::supports(param) && !self.force_unfused;
            #[cfg(not(test))]
            let fused = fused::supports(param);
            if fused {
                let host = slot.host(param.dtype(), update.buffers())?;
                fused::step_in_place(param, &grad, host, &update)?;
            } else {
                let bufs = slot.tensors(param, update.buffers())?;
                unfused::step(&entry.var, &grad, bufs, &update)?;
            }
            slot.step = step;
        }
        Ok(())
    }

    /// `<name>.step` (an i64 scalar) and `<name>.<buffer>` for every parameter stepped so far.
    pub(crate) fn export(&self, rule: &Rule) -> Result<BTreeMap<String, Tensor>> {
        let names = rule.buffer_names();
        let mut out = BTreeMap::new();
        for (name, slot) in &self.slots {
            if slot.step == 0 {
                continue;
            }
            out.insert(
                format!("{name}.step"),
                Tensor::new(slot.step as i64, &Device::Cpu)?,
            );
            for (buf, t) in names.iter().zip(slot.export(names.len())?) {
                out.insert(format!("{name}.{buf}"), t);
            }
        }
        Ok(out)
    }

    /// Replaces every parameter's state by `tensors` (as [`export`](Self::export) writes them),
    /// after checking all of it: on error nothing changes.
    pub(crate) fn import(
        &mut self,
        rule: &Rule,
        lrs: &LearningRates,
        tensors: &BTreeMap<String, Tensor>,
    ) -> Result<()> {
        let names = rule.buffer_names();
        let kind = rule.kind();
        let bad = |msg: String| Error::usage(format!("{kind} state: {msg}"));
        let mut groups: BTreeMap<&str, (Option<u64>, Vec<Option<Tensor>>)> = BTreeMap::new();
        for (key, t) in tensors {
            let (param, field) = key
                .rsplit_once('.')
                .ok_or_else(|| bad(format!("entry `{key}` is not `<parameter>.<field>`")))?;
            let group = groups
                .entry(param)
                .or_insert_with(|| (None, vec![None; names.len()]));
            if field == "step" {
                let v = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
                match v[..] {
                    [s] if s >= 1.0 && s.fract() == 0.0 && s < 9.0e15 => group.0 = Some(s as u64),
                    _ => return Err(bad(format!("`{key}` must be one integer >= 1, got {v:?}"))),
                }
            } else if let Some(i) = names.iter().position(|n| *n == field) {
                if !t.dtype().is_float() {
                    return Err(bad(format!("`{key}` has non-float dtype {:?}", t.dtype())));
                }
                group.1[i] = Some(t.clone());
            } else {
                return Err(bad(format!(
                    "unexpected entry `{key}` (expected `.step` and {names:?})"
                )));
            }
        }
        let mut slots = BTreeMap::new();
        for (param, (step, bufs)) in groups {
            let step = step.ok_or_else(|| bad(format!("`{param}.step` is missing")))?;
            let mut ts = Vec::with_capacity(bufs.len());
            for (buf, t) in names.iter().zip(bufs) {
                ts.push(t.ok_or_else(|| bad(format!("`{param}.{buf}` is missing")))?);
            }
            if let Some(first) = ts.first() {
                if let Some(t) = ts.iter().find(|t| t.shape() != first.shape()) {
                    return Err(bad(format!(
                        "the buffers of `{param}` have shapes {:?} and {:?}",
                        first.dims(),
                        t.dims()
                    )));
                }
            }
            let mut slot = Slot::new(lrs.of(kind, param)?);
            slot.step = step;
            slot.shape = ts.first().map(|t| t.shape().clone());
            slot.state = if ts.is_empty() {
                State::Fresh
            } else {
                State::Tensors(ts)
            };
            slots.insert(param.to_string(), slot);
        }
        self.slots = slots;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::backprop::GradStore;
    use candle_core::{DType, Device, Tensor};

    use crate::error::Result;
    use crate::optim::{Adam, ClippedAdam, Optimizer, Sgd};
    use crate::params::{Init, ParamStore};
    use crate::rng;

    /// 20 steps of the fused kernel and of the tensor-op path (the one CUDA and Metal run) on
    /// the same gradients; the largest difference of the parameters and of the saved state.
    fn fused_against_tensor_ops(
        make: impl Fn() -> (Box<dyn Optimizer>, Box<dyn Optimizer>),
        dtype: DType,
    ) -> Result<f64> {
        let stores = [ParamStore::new(), ParamStore::new()];
        for s in &stores {
            rng::set_seed(2);
            s.var(
                "w",
                (70, 300),
                Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
                dtype,
                &Device::Cpu,
            )?;
            s.var("b", 5, Init::Const(0.3), dtype, &Device::Cpu)?;
        }
        let (mut fused, mut plain) = make();
        let mut gen = rng::from_seed(8);
        for _ in 0..20 {
            let mut grads = [GradStore::default(), GradStore::default()];
            for name in ["w", "b"] {
                let t = stores[0].entry(name).expect("w").var.as_tensor().clone();
                let g = (rng::standard_normal(&mut gen, t.shape(), dtype, &Device::Cpu)? * 3.0)?;
                for (s, gs) in stores.iter().zip(grads.iter_mut()) {
                    gs.insert(s.entry(name).expect("stored").var.as_tensor(), g.clone());
                }
            }
            fused.step(&stores[0], &grads[0])?;
            plain.step(&stores[1], &grads[1])?;
        }
        let diff = |a: &Tensor, b: &Tensor| -> Result<f64> {
            let d = (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?;
            Ok(d.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?)
        };
        let mut worst: f64 = 0.0;
        for name in ["w", "b"] {
            let a = stores[0].entry(name).expect("w").var.as_tensor().clone();
            let b = stores[1].entry(name).expect("w").var.as_tensor().clone();
            worst = worst.max(diff(&a, &b)?);
        }
        let (sa, sb) = (fused.state_tensors()?, plain.state_tensors()?);
        assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
        for (k, t) in &sa {
            worst = worst.max(diff(t, &sb[k])?);
        }
        Ok(worst)
    }

    #[test]
    fn fused_kernel_matches_the_tensor_op_path() -> Result<()> {
        type Pair = (Box<dyn Optimizer>, Box<dyn Optimizer>);
        let makers: Vec<Box<dyn Fn() -> Pair>> = vec![
            Box::new(|| -> Pair {
                let a = || Adam::new(0.01).weight_decay(0.1);
                (Box::new(a()), Box::new(a().force_unfused()))
            }),
            Box::new(|| -> Pair {
                let a = || {
                    ClippedAdam::new(0.01)
                        .clip_norm(2.0)
                        .lrd(0.95)
                        .weight_decay(0.1)
                };
                (Box::new(a()), Box::new(a().force_unfused()))
            }),
            Box::new(|| -> Pair {
                let a = || {
                    Sgd::new(0.01)
                        .momentum(0.8)
                        .dampening(0.3)
                        .weight_decay(0.1)
                };
                (Box::new(a()), Box::new(a().force_unfused()))
            }),
            Box::new(|| -> Pair {
                let a = || Sgd::new(0.01).momentum(0.8).nesterov(true);
                (Box::new(a()), Box::new(a().force_unfused()))
            }),
        ];
        for (i, make) in makers.iter().enumerate() {
            let e64 = fused_against_tensor_ops(make, DType::F64)?;
            assert!(e64 < 1e-12, "rule {i}, f64: {e64}");
            // Parameters and states are O(1..10): a few f32 ulps after 20 steps.
            let e32 = fused_against_tensor_ops(make, DType::F32)?;
            assert!(e32 < 1e-5, "rule {i}, f32: {e32}");
        }
        Ok(())
    }

    #[test]
    fn half_precision_parameters_take_the_tensor_op_path() -> Result<()> {
        let store = ParamStore::new();
        let x = store.var("x", 3, Init::Const(1.0), DType::BF16, &Device::Cpu)?;
        let mut adam = Adam::new(0.25);
        let grads = x.to_dtype(DType::F32)?.sum_all()?.backward()?;
        adam.step(&store, &grads)?;
        // First Adam step moves by lr · g/(|g| + eps) = 0.25, exact in bf16.
        assert_eq!(x.to_dtype(DType::F32)?.to_vec1::<f32>()?, [0.75; 3]);
        assert_eq!(adam.state_tensors()?["x.exp_avg"].dtype(), DType::BF16);
        Ok(())
    }
}
