//! Optimisers against plainly written torch/Pyro reference updates, lazy per-parameter state,
//! per-parameter rates, optimiser state checkpoints, and parameter store persistence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};
use ppl_core::optim::{Adam, ClippedAdam, Optimizer, Sgd};
use ppl_core::params::{Constraint, Init, ParamStore};
use ppl_core::rng;
use ppl_core::Error;

type R<T = ()> = ppl_core::Result<T>;

const CPU: Device = Device::Cpu;

/// A fresh, empty folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppl-optim-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("values")
}

/// The bit patterns of a tensor's values, for bit-exact comparisons.
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("f32")
            .into_iter()
            .map(|x| x.to_bits() as u64)
            .collect(),
        _ => t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f64>())
            .expect("f64")
            .into_iter()
            .map(f64::to_bits)
            .collect(),
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn param(store: &ParamStore, name: &str) -> Tensor {
    store.entry(name).expect("stored").var.as_tensor().clone()
}

// ---------------------------------------------------------------------------------------------
// Reference updates, written plainly after torch.optim.Adam, pyro.optim.ClippedAdam and
// torch.optim.SGD.

#[derive(Clone, Copy)]
enum RefRule {
    Adam {
        lr: f64,
        b1: f64,
        b2: f64,
        eps: f64,
        wd: f64,
    },
    Clipped {
        lr: f64,
        b1: f64,
        b2: f64,
        eps: f64,
        wd: f64,
        clip: f64,
        lrd: f64,
    },
    Sgd {
        lr: f64,
        momentum: f64,
        dampening: f64,
        nesterov: bool,
        wd: f64,
    },
}

struct RefState {
    p: Tensor,
    bufs: Vec<Tensor>,
    step: i32,
    lr: f64,
}

impl RefState {
    fn new(p: &Tensor, rule: RefRule) -> R<Self> {
        let lr = match rule {
            RefRule::Adam { lr, .. } | RefRule::Clipped { lr, .. } | RefRule::Sgd { lr, .. } => lr,
        };
        Ok(RefState {
            p: p.copy()?,
            bufs: vec![p.zeros_like()?, p.zeros_like()?],
            step: 0,
            lr,
        })
    }

    fn step(&mut self, rule: RefRule, g: &Tensor) -> R {
        self.step += 1;
        let t = self.step;
        let p = &self.p;
        match rule {
            RefRule::Adam {
                b1, b2, eps, wd, ..
            } => {
                let g = (g + (p * wd)?)?;
                let m = ((&self.bufs[0] * b1)? + (&g * (1.0 - b1))?)?;
                let v = ((&self.bufs[1] * b2)? + ((&g * &g)? * (1.0 - b2))?)?;
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                let denom = ((v.sqrt()? / bc2.sqrt())? + eps)?;
                self.p = (p - ((&m / &denom)? * (self.lr / bc1))?)?;
                self.bufs = vec![m, v];
            }
            RefRule::Clipped {
                b1,
                b2,
                eps,
                wd,
                clip,
                lrd,
                ..
            } => {
                self.lr *= lrd;
                let g = g.clamp(-clip, clip)?;
                let g = (g + (p * wd)?)?;
                let m = ((&self.bufs[0] * b1)? + (&g * (1.0 - b1))?)?;
                let v = ((&self.bufs[1] * b2)? + ((&g * &g)? * (1.0 - b2))?)?;
                let denom = (v.sqrt()? + eps)?;
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                let step_size = self.lr * bc2.sqrt() / bc1;
                self.p = (p - ((&m / &denom)? * step_size)?)?;
                self.bufs = vec![m, v];
            }
            RefRule::Sgd {
                momentum,
                dampening,
                nesterov,
                wd,
                ..
            } => {
                let mut d = (g + (p * wd)?)?;
                if momentum != 0.0 {
                    let buf = if t == 1 {
                        d.clone()
                    } else {
                        ((&self.bufs[0] * momentum)? + (&d * (1.0 - dampening))?)?
                    };
                    d = if nesterov {
                        (&d + (&buf * momentum)?)?
                    } else {
                        buf.clone()
                    };
                    self.bufs[0] = buf;
                }
                self.p = (p - (d * self.lr)?)?;
            }
        }
        Ok(())
    }
}

fn build(rule: RefRule) -> Box<dyn Optimizer> {
    match rule {
        RefRule::Adam {
            lr,
            b1,
            b2,
            eps,
            wd,
        } => Box::new(Adam::new(lr).betas(b1, b2).eps(eps).weight_decay(wd)),
        RefRule::Clipped {
            lr,
            b1,
            b2,
            eps,
            wd,
            clip,
            lrd,
        } => Box::new(
            ClippedAdam::new(lr)
                .betas(b1, b2)
                .eps(eps)
                .weight_decay(wd)
                .clip_norm(clip)
                .lrd(lrd),
        ),
        RefRule::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            wd,
        } => Box::new(
            Sgd::new(lr)
                .momentum(momentum)
                .dampening(dampening)
                .nesterov(nesterov)
                .weight_decay(wd),
        ),
    }
}

/// 20 steps of `rule` on a large parameter (split across threads by the kernel) and a small
/// one whose gradient is strided, against the reference; returns the largest difference
/// relative to `1 + |reference|`, and whether any gradient element exceeded `clip`.
fn against_reference(rule: RefRule, dtype: DType, clip: f64) -> R<(f64, bool)> {
    rng::set_seed(11);
    let store = ParamStore::new();
    let big = store.var(
        "big",
        (200, 201),
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
        dtype,
        &CPU,
    )?;
    let small = store.var(
        "small",
        (3, 5),
        Init::Randn {
            mean: 0.5,
            stdev: 1.0,
        },
        dtype,
        &CPU,
    )?;
    let mut refs = [RefState::new(&big, rule)?, RefState::new(&small, rule)?];
    let mut opt = build(rule);
    let mut clipped = false;
    let mut gen = rng::from_seed(5);
    for _ in 0..20 {
        let gb = (rng::standard_normal(&mut gen, (200, 201), dtype, &CPU)? * 2.0)?;
        // A transposed (non-contiguous) gradient.
        let gs = (rng::standard_normal(&mut gen, (5, 3), dtype, &CPU)? * 2.0)?.t()?;
        clipped |= values(&gb).iter().any(|x| x.abs() > clip);
        let mut grads = GradStore::default();
        grads.insert(&big, gb.clone());
        grads.insert(&small, gs.clone());
        opt.step(&store, &grads)?;
        refs[0].step(rule, &gb)?;
        refs[1].step(rule, &gs.contiguous()?)?;
    }
    let mut worst: f64 = 0.0;
    for (t, r) in [&big, &small].into_iter().zip(&refs) {
        for (a, b) in values(t).iter().zip(values(&r.p)) {
            worst = worst.max((a - b).abs() / (1.0 + b.abs()));
        }
    }
    Ok((worst, clipped))
}

// f32: every elementary op rounds to within half an ulp (6e-8 relative); 20 steps of a few
// differently ordered ops stay within a few 1e-6. (Measured: the f32 results are identical, the
// f64 ones differ by at most 7e-16, from `powf` against `powi` in the bias corrections.)
const F32_TOL: f64 = 5e-6;
const F64_TOL: f64 = 1e-12;

#[test]
fn adam_matches_the_torch_reference() -> R {
    for wd in [0.0, 0.05] {
        let rule = RefRule::Adam {
            lr: 0.01,
            b1: 0.9,
            b2: 0.999,
            eps: 1e-8,
            wd,
        };
        let (e32, _) = against_reference(rule, DType::F32, f64::INFINITY)?;
        let (e64, _) = against_reference(rule, DType::F64, f64::INFINITY)?;
        assert!(e32 < F32_TOL, "f32 wd {wd}: {e32}");
        assert!(e64 < F64_TOL, "f64 wd {wd}: {e64}");
    }
    Ok(())
}

#[test]
fn clipped_adam_matches_the_pyro_reference() -> R {
    let rule = RefRule::Clipped {
        lr: 0.02,
        b1: 0.8,
        b2: 0.99,
        eps: 1e-6,
        wd: 0.01,
        clip: 1.5,
        lrd: 0.9,
    };
    let (e32, clipped) = against_reference(rule, DType::F32, 1.5)?;
    let (e64, _) = against_reference(rule, DType::F64, 1.5)?;
    assert!(clipped, "the test gradients must exceed the clip bound");
    assert!(e32 < F32_TOL, "f32: {e32}");
    assert!(e64 < F64_TOL, "f64: {e64}");
    Ok(())
}

#[test]
fn sgd_momentum_matches_the_torch_reference() -> R {
    for (dampening, nesterov) in [(0.1, false), (0.0, true)] {
        let rule = RefRule::Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening,
            nesterov,
            wd: 0.01,
        };
        let (e32, _) = against_reference(rule, DType::F32, f64::INFINITY)?;
        let (e64, _) = against_reference(rule, DType::F64, f64::INFINITY)?;
        assert!(e32 < F32_TOL, "f32 nesterov {nesterov}: {e32}");
        assert!(e64 < F64_TOL, "f64 nesterov {nesterov}: {e64}");
    }
    let plain = RefRule::Sgd {
        lr: 0.05,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        wd: 0.0,
    };
    assert!(against_reference(plain, DType::F64, f64::INFINITY)?.0 < F64_TOL);
    Ok(())
}

#[test]
fn adam_finds_the_minimum_of_a_quadratic() -> R {
    // loss = Σ w_i (x_i - c_i)²: minimum at c whatever the curvatures w.
    let store = ParamStore::new();
    let x = store.var("x", 4, Init::Const(0.0), DType::F64, &CPU)?;
    let c = Tensor::new(&[1.0f64, -2.0, 0.5, 3.0], &CPU)?;
    let w = Tensor::new(&[1.0f64, 10.0, 0.1, 2.0], &CPU)?;
    let mut adam = ClippedAdam::new(0.1).lrd(0.995);
    for _ in 0..1000 {
        let loss = ((&x - &c)?.sqr()? * &w)?.sum_all()?;
        adam.step(&store, &loss.backward()?)?;
    }
    // The rate has decayed to 0.1 · 0.995^1000 = 6.7e-4, which bounds the final oscillation.
    let err = max_abs_diff(&x, &c);
    assert!(err < 1e-3, "|x - c| = {err}");
    Ok(())
}

#[test]
fn a_late_parameter_starts_its_own_bias_correction() -> R {
    let store = ParamStore::new();
    let a = store.var("a", 2, Init::Const(1.0), DType::F64, &CPU)?;
    let mut adam = Adam::new(0.01);
    let ga = Tensor::new(&[0.3f64, -0.7], &CPU)?;
    for _ in 0..100 {
        let mut g = GradStore::default();
        g.insert(&a, ga.clone());
        adam.step(&store, &g)?;
    }
    let b = store.var("b", 3, Init::Const(2.0), DType::F64, &CPU)?;
    let a_before = values(&a);
    let gb = [0.5f64, -4.0, 1e-3];
    let mut g = GradStore::default();
    g.insert(&b, Tensor::new(&gb, &CPU)?);
    adam.step(&store, &g)?;
    // At a parameter's first step m̂ = g and √v̂ = |g|: the move is lr · g / (|g| + eps).
    for (x, g) in values(&b).iter().zip(gb) {
        let want = 2.0 - 0.01 * g / (g.abs() + 1e-8);
        assert!((x - want).abs() < 1e-15, "{x} vs {want}");
    }
    // `a` had no gradient this step: untouched.
    assert_eq!(values(&a), a_before);
    let state = adam.state_tensors()?;
    assert_eq!(state["a.step"].to_scalar::<i64>()?, 100);
    assert_eq!(state["b.step"].to_scalar::<i64>()?, 1);
    Ok(())
}

#[test]
fn per_prefix_and_per_name_rates_apply() -> R {
    let store = ParamStore::new();
    let frozen = store.var("enc.frozen.w", 3, Init::Const(1.0), DType::F32, &CPU)?;
    let slow = store.var("enc.w", 3, Init::Const(1.0), DType::F32, &CPU)?;
    let fast = store.var("dec.w", 3, Init::Const(1.0), DType::F32, &CPU)?;
    let mut sgd = Sgd::new(0.1)
        .lr_for_prefix("enc.", 0.01)
        .lr_for_prefix("enc.frozen.", 0.0)
        .lr_fn(|name| if name.starts_with("dec.") { 0.5 } else { 0.2 });
    assert_eq!(sgd.learning_rate(), 0.1);
    let before = bits(&frozen);
    let loss = (frozen.sum_all()? + slow.sum_all()? + fast.sum_all()?)?; // every gradient is 1
    sgd.step(&store, &loss.backward()?)?;
    assert_eq!(
        bits(&frozen),
        before,
        "a parameter with rate 0 must not move"
    );
    assert_eq!(values(&slow), vec![(1.0f32 - 0.01f32) as f64; 3]);
    assert_eq!(values(&fast), vec![0.5; 3]);
    Ok(())
}

#[test]
fn updates_are_seen_by_every_holder_of_the_parameter() -> R {
    let store = ParamStore::new();
    let held = store.var("w", (2, 2), Init::Const(1.0), DType::F32, &CPU)?;
    let later = param(&store, "w");
    let mut adam = Adam::new(0.5);
    let loss = held.sum_all()?;
    adam.step(&store, &loss.backward()?)?;
    assert_eq!(values(&held), vec![0.5; 4]);
    assert_eq!(values(&later), vec![0.5; 4]);
    Ok(())
}

#[test]
fn bad_hyper_parameters_are_typed_errors() -> R {
    let store = ParamStore::new();
    let x = store.var("x", 1, Init::Const(1.0), DType::F32, &CPU)?;
    let grads = x.sum_all()?.backward()?;
    let e = Adam::new(0.1)
        .betas(1.0, 0.9)
        .step(&store, &grads)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                param: "betas.0",
                ..
            }
        ),
        "{e}"
    );
    let e = Adam::new(-1.0).step(&store, &grads).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { param: "lr", .. }),
        "{e}"
    );
    let e = ClippedAdam::new(0.1)
        .clip_norm(0.0)
        .step(&store, &grads)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                param: "clip_norm",
                ..
            }
        ),
        "{e}"
    );
    let e = Sgd::new(0.1)
        .nesterov(true)
        .step(&store, &grads)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                param: "nesterov",
                ..
            }
        ),
        "{e}"
    );
    let e = Sgd::new(0.1)
        .lr_fn(|_| f64::NAN)
        .step(&store, &grads)
        .unwrap_err();
    assert!(e.to_string().contains("`x`"), "{e}");
    assert_eq!(
        values(&x),
        vec![1.0],
        "failed steps leave the parameter alone"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Optimiser state checkpoints.

fn train(store: &ParamStore, opt: &mut dyn Optimizer, steps: usize, seed: u64) -> R {
    let mut gen = rng::from_seed(seed);
    for _ in 0..steps {
        let mut grads = GradStore::default();
        for (_, e) in store.entries() {
            let t = e.var.as_tensor();
            let g = (rng::standard_normal(&mut gen, t.shape(), t.dtype(), &CPU)? + t)?;
            grads.insert(t, g);
        }
        opt.step(store, &grads)?;
    }
    Ok(())
}

fn two_params(dtype: DType) -> R<ParamStore> {
    rng::set_seed(3);
    let store = ParamStore::new();
    store.var(
        "layer.w",
        (4, 3),
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
        dtype,
        &CPU,
    )?;
    store.var(
        "layer.b",
        3,
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
        dtype,
        &CPU,
    )?;
    Ok(store)
}

#[test]
fn optimiser_state_round_trip_gives_identical_steps() -> R {
    let dir = scratch("state");
    type Make = fn() -> Box<dyn Optimizer>;
    let makers: [(&str, Make); 3] = [
        ("adam", || Box::new(Adam::new(0.05).weight_decay(0.01))),
        ("clipped", || {
            Box::new(ClippedAdam::new(0.05).clip_norm(0.5).lrd(0.97))
        }),
        ("sgd", || {
            Box::new(Sgd::new(0.05).momentum(0.9).dampening(0.2))
        }),
    ];
    for dtype in [DType::F32, DType::F64] {
        for (name, make) in makers {
            let store = two_params(dtype)?;
            let mut opt = make();
            train(&store, &mut *opt, 5, 1)?;
            let params = dir.join(format!("{name}.params"));
            let state = dir.join(format!("{name}.state"));
            store.save(&params)?;
            opt.save_state(&state)?;
            train(&store, &mut *opt, 5, 2)?;

            let resumed = ParamStore::new();
            resumed.load(&params)?;
            let mut opt2 = make();
            opt2.load_state_file(&state)?;
            train(&resumed, &mut *opt2, 5, 2)?;
            for n in store.names() {
                assert_eq!(
                    bits(&param(&store, &n)),
                    bits(&param(&resumed, &n)),
                    "{name} {n}"
                );
            }
            assert_eq!(opt.state_tensors()?.len(), opt2.state_tensors()?.len());
        }
    }
    // State of one optimiser is refused by another, naming the file.
    let mut sgd = Sgd::new(0.1).momentum(0.5);
    let e = sgd.load_state_file(&dir.join("adam.state")).unwrap_err();
    assert!(
        matches!(e, Error::Parse { .. }) && e.to_string().contains("adam.state"),
        "{e}"
    );
    Ok(())
}

#[test]
fn malformed_optimiser_state_changes_nothing() -> R {
    let store = two_params(DType::F64)?;
    let mut adam = Adam::new(0.1);
    train(&store, &mut adam, 3, 1)?;
    let good = adam.state_tensors()?;
    let mut broken: BTreeMap<String, Tensor> = good.clone();
    broken.remove("layer.b.exp_avg_sq");
    let e = adam.load_state(&broken).unwrap_err();
    assert!(e.to_string().contains("layer.b.exp_avg_sq"), "{e}");
    let mut odd = good.clone();
    odd.insert(
        "layer.b.velocity".into(),
        Tensor::zeros(3, DType::F64, &CPU)?,
    );
    assert!(adam
        .load_state(&odd)
        .unwrap_err()
        .to_string()
        .contains("velocity"));
    let after = adam.state_tensors()?;
    for (k, t) in &good {
        assert_eq!(
            bits(&t.to_dtype(DType::F64)?),
            bits(&after[k].to_dtype(DType::F64)?),
            "{k}"
        );
    }
    // Loaded state whose shape does not fit the parameter is refused at the step.
    let mut wrong = good.clone();
    wrong.insert(
        "layer.b.exp_avg".into(),
        Tensor::zeros(4, DType::F64, &CPU)?,
    );
    wrong.insert(
        "layer.b.exp_avg_sq".into(),
        Tensor::zeros(4, DType::F64, &CPU)?,
    );
    adam.load_state(&wrong)?;
    let e = train(&store, &mut adam, 1, 1).unwrap_err();
    assert!(e.to_string().contains("layer.b"), "{e}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ParamStore persistence.

fn constrained_store(dtype: DType) -> R<ParamStore> {
    rng::set_seed(9);
    let store = ParamStore::new();
    store.var(
        "net.w",
        (3, 2),
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
        dtype,
        &CPU,
    )?;
    let init = |v: &'static [f64], shape: &'static [usize]| {
        move || -> R<Tensor> { Ok(Tensor::new(v, &CPU)?.reshape(shape)?.to_dtype(dtype)?) }
    };
    store.get_or_init(
        "scale",
        Some(Box::new(init(&[0.5, 2.0], &[2]))),
        Constraint::Positive,
    )?;
    store.get_or_init(
        "p",
        Some(Box::new(init(&[0.25, 0.5], &[2]))),
        Constraint::Interval(-1.0, 1.5),
    )?;
    store.get_or_init(
        "probs",
        Some(Box::new(init(&[0.2, 0.3, 0.5, 0.1, 0.1, 0.8], &[2, 3]))),
        Constraint::Simplex,
    )?;
    store.get_or_init(
        "shift",
        Some(Box::new(init(&[3.0], &[1]))),
        Constraint::GreaterThan(0.1),
    )?;
    Ok(store)
}

#[test]
fn save_and_load_round_trip_bit_exactly() -> R {
    let dir = scratch("roundtrip");
    for dtype in [DType::F32, DType::F64] {
        let store = constrained_store(dtype)?;
        let path = dir.join(format!("{dtype:?}.safetensors"));
        store.save(&path)?;
        assert_eq!(
            files_in(&dir).iter().filter(|f| f.contains("tmp")).count(),
            0
        );

        let fresh = ParamStore::new();
        fresh.load(&path)?;
        assert_eq!(fresh.names(), store.names());
        for (name, e) in store.entries() {
            let f = fresh.entry(&name).expect("loaded");
            assert_eq!(f.constraint, e.constraint, "{name}");
            assert_eq!(f.var.dtype(), dtype);
            assert_eq!(f.var.dims(), e.var.dims(), "{name}");
            assert_eq!(bits(f.var.as_tensor()), bits(e.var.as_tensor()), "{name}");
        }
        assert_eq!(fresh.get("probs")?.expect("probs").dims(), &[2, 3]);

        // Into a store with the same layout: written in place, seen by earlier holders.
        let other = constrained_store(dtype)?;
        let held = param(&other, "net.w");
        Sgd::new(0.5).step(&other, &held.sum_all()?.backward()?)?;
        assert_ne!(bits(&held), bits(&param(&store, "net.w")));
        other.load(&path)?;
        assert_eq!(bits(&held), bits(&param(&store, "net.w")));
    }
    Ok(())
}

#[test]
fn a_mismatched_file_is_refused_and_changes_nothing() -> R {
    let dir = scratch("mismatch");
    let path = dir.join("file.safetensors");
    let file_store = ParamStore::new();
    file_store.var("a", 2, Init::Const(1.0), DType::F32, &CPU)?;
    file_store.var("b", 4, Init::Const(1.0), DType::F32, &CPU)?;
    file_store.var("d", 1, Init::Const(1.0), DType::F32, &CPU)?;
    file_store.get_or_init(
        "s",
        Some(Box::new(|| Ok(Tensor::new(&[1.0f32], &CPU)?))),
        Constraint::Positive,
    )?;
    file_store.save(&path)?;

    let store = ParamStore::new();
    store.var("a", 2, Init::Const(7.0), DType::F32, &CPU)?;
    store.var("b", 3, Init::Const(7.0), DType::F32, &CPU)?;
    store.var("c", 1, Init::Const(7.0), DType::F32, &CPU)?;
    store.var("s", 1, Init::Const(7.0), DType::F32, &CPU)?;
    let before: Vec<_> = store
        .entries()
        .iter()
        .map(|(_, e)| bits(e.var.as_tensor()))
        .collect();
    let e = store.load(&path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Parse { .. }), "{msg}");
    assert!(msg.contains("file.safetensors"), "{msg}");
    assert!(msg.contains("missing from the file: [\"c\"]"), "{msg}");
    assert!(msg.contains("not in the store: [\"d\"]"), "{msg}");
    assert!(
        msg.contains("`b` has shape [4] in the file, [3] in the store"),
        "{msg}"
    );
    assert!(
        msg.contains("`s` has constraint Positive in the file, Real"),
        "{msg}"
    );
    let after: Vec<_> = store
        .entries()
        .iter()
        .map(|(_, e)| bits(e.var.as_tensor()))
        .collect();
    assert_eq!(
        before, after,
        "a refused load must leave every value unchanged"
    );
    assert_eq!(store.names(), ["a", "b", "c", "s"]);
    Ok(())
}

#[test]
fn a_failed_save_leaves_the_old_file_and_no_temporary() -> R {
    let dir = scratch("failsave");
    let store = constrained_store(DType::F32)?;
    // A missing folder: an I/O error naming the target, and nothing created.
    let missing = dir.join("no-such-folder").join("p.safetensors");
    let e = store.save(&missing).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("no-such-folder"),
        "{e}"
    );
    assert!(files_in(&dir).is_empty());
    // A target that is a (non-empty) folder: the rename fails, the folder and its file are
    // intact, and the temporary file is gone.
    let target = dir.join("p.safetensors");
    std::fs::create_dir(&target).expect("mkdir");
    std::fs::write(target.join("keep"), b"old").expect("write");
    let e = store.save(&target).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(files_in(&dir), ["p.safetensors"]);
    assert_eq!(std::fs::read(target.join("keep")).expect("read"), b"old");
    // Saving over an existing file replaces it whole.
    let file = dir.join("q.safetensors");
    std::fs::write(&file, b"old contents").expect("write");
    store.save(&file)?;
    let back = ParamStore::new();
    back.load(&file)?;
    assert_eq!(back.names(), store.names());
    assert_eq!(files_in(&dir), ["p.safetensors", "q.safetensors"]);
    Ok(())
}

#[test]
fn missing_and_malformed_files_are_errors_naming_the_file() -> R {
    let dir = scratch("malformed");
    let store = ParamStore::new();
    let e = store.load(dir.join("absent.safetensors")).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("absent.safetensors"),
        "{e}"
    );
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"this is not a safetensors file").expect("write");
    let e = store.load(&bad).unwrap_err();
    assert!(
        matches!(e, Error::Parse { .. }) && e.to_string().contains("bad.safetensors"),
        "{e}"
    );
    // A file whose constraint record is unreadable.
    let good = constrained_store(DType::F64)?;
    let path = dir.join("good.safetensors");
    good.save(&path)?;
    let mut raw = std::fs::read(&path).expect("read");
    let at = raw
        .windows(b"\"positive\"".len())
        .position(|w| w == b"\"positive\"")
        .expect("the constraint is recorded");
    raw[at + 1..at + 9].copy_from_slice(b"negative");
    std::fs::write(&path, &raw).expect("write");
    let e = ParamStore::new().load(&path).unwrap_err();
    assert!(
        e.to_string().contains("`scale`") && e.to_string().contains("negative"),
        "{e}"
    );
    assert!(store.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The Simplex constraint.

#[test]
fn simplex_matches_the_stick_breaking_closed_form() -> R {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let u = [1.0f64, -0.5];
    let y = values(&Constraint::Simplex.to_constrained(&Tensor::new(&u, &CPU)?)?);
    // offsets log 2, log 1
    let z0 = sig(1.0 - 2f64.ln());
    let z1 = sig(-0.5);
    let want = [z0, (1.0 - z0) * z1, (1.0 - z0) * (1.0 - z1)];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    }
    // Zero maps to the centre of the simplex.
    let c =
        values(&Constraint::Simplex.to_constrained(&Tensor::zeros((2, 3), DType::F64, &CPU)?)?);
    assert!(c.iter().all(|x| (x - 0.25).abs() < 1e-15), "{c:?}");
    Ok(())
}

#[test]
fn simplex_round_trips_and_stays_on_the_simplex() -> R {
    let mut gen = rng::from_seed(4);
    let u = (rng::standard_normal(&mut gen, (5, 6), DType::F64, &CPU)? * 3.0)?;
    let y = Constraint::Simplex.to_constrained(&u)?;
    assert_eq!(y.dims(), &[5, 7]);
    assert!(values(&y).iter().all(|&x| x > 0.0 && x < 1.0));
    for s in values(&y.sum(1)?) {
        assert!((s - 1.0).abs() < 1e-14, "sum {s}");
    }
    let back = Constraint::Simplex.to_unconstrained("w", &y)?;
    assert_eq!(back.dims(), &[5, 6]);
    assert!(
        max_abs_diff(&back, &u) < 1e-12,
        "{}",
        max_abs_diff(&back, &u)
    );
    // A simplex with a tiny trailing element still round trips.
    let tiny = Tensor::new(&[0.5f64, 0.5 - 1e-12, 1e-12], &CPU)?;
    let again =
        Constraint::Simplex.to_constrained(&Constraint::Simplex.to_unconstrained("t", &tiny)?)?;
    let rel = values(&again)[2] / 1e-12 - 1.0;
    assert!(rel.abs() < 1e-6, "relative error of the tiny element {rel}");
    // Outside the simplex, or too short, is a typed error naming the parameter.
    for bad in [&[0.5f64, 0.7][..], &[1.2, -0.2], &[1.0]] {
        let e = Constraint::Simplex
            .to_unconstrained("w", &Tensor::new(bad, &CPU)?)
            .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidValue { site, .. } if site == "w"),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn simplex_gradients_flow_and_match_finite_differences() -> R {
    let store = ParamStore::new();
    let init = Tensor::new(&[0.1f64, 0.2, 0.3, 0.4], &CPU)?;
    let probs = store.get_or_init(
        "probs",
        Some(Box::new(move || Ok(init))),
        Constraint::Simplex,
    )?;
    assert_eq!(probs.dims(), &[4]);
    let u = param(&store, "probs");
    assert_eq!(u.dims(), &[3]);
    let c = Tensor::new(&[1.0f64, -2.0, 0.5, 3.0], &CPU)?;
    let f = |u: &Tensor| -> R<Tensor> {
        Ok((Constraint::Simplex.to_constrained(u)?.log()? * &c)?.sum_all()?)
    };
    let grads = f(&u)?.backward()?;
    let g = values(
        grads
            .get(&u)
            .expect("gradient reaches the unconstrained value"),
    );
    let h = 1e-6;
    for i in 0..3 {
        let mut e = vec![0.0f64; 3];
        e[i] = h;
        let d = Tensor::new(e.as_slice(), &CPU)?;
        let up = f(&(&u.detach() + &d)?)?.to_scalar::<f64>()?;
        let down = f(&(&u.detach() - &d)?)?.to_scalar::<f64>()?;
        let fd = (up - down) / (2.0 * h);
        assert!((g[i] - fd).abs() < 1e-6, "d/du{i}: {} vs {fd}", g[i]);
    }
    // And an optimiser moves it, keeping the constrained value on the simplex.
    let mut adam = Adam::new(0.1);
    for _ in 0..20 {
        let loss = f(&param(&store, "probs"))?.neg()?;
        adam.step(&store, &loss.backward()?)?;
    }
    let p = values(&store.get("probs")?.expect("probs"));
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-14);
    assert!(p[3] > 0.4 && p[1] < 0.2, "{p:?}");
    Ok(())
}
