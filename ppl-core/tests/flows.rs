//! Normalizing-flow transforms: round trips in f64 and f32, log-dets against numerical
//! Jacobians, spline knots, monotonicity and boundary behaviour, and typed errors.

use candle_core::{DType, Device, Tensor};
use nalgebra::DMatrix;
use ppl_core::params::ParamStore;
use ppl_core::rng;
use ppl_core::transforms::{
    ActNorm, AffineCoupling, ChannelPermutation, ChannelSubset, ComposeTransform,
    ConditionalSpline, ConditionalTransform, CouplingMask, ExpTransform, InvertibleConv1x1,
    LearnableAffine, LogitTransform, MlpConditionalAffine, RealNvp, RealNvpConfig,
    ReshapeTransform, Spline, SplineConfig, SplineOrder, SplineTransform, SqueezeTransform,
    Transform, TransformExt, TransformRef,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

type R<T = ()> = ppl_core::Result<T>;

const CPU: Device = Device::Cpu;

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("host read")
}

/// Store entries that are buffers or structure, not free parameters.
fn is_buffer(name: &str) -> bool {
    [
        "perm",
        "sign_s",
        "initialized",
        "running_mean",
        "running_var",
    ]
    .iter()
    .any(|b| name.ends_with(b))
}

/// Every free parameter of `store` redrawn from N(0, std²), every ActNorm marked initialised,
/// so that layers that start at the identity (zero-initialised coupling outputs) are tested as
/// the general maps they become in training.
fn randomize(store: &ParamStore, std: f64) {
    for (name, e) in store.entries() {
        let t = e.var.as_tensor();
        let v = if name.ends_with("initialized") {
            t.ones_like().expect("ones")
        } else if is_buffer(&name) {
            continue;
        } else {
            rng::with_rng(|r| rng::standard_normal(r, t.dims(), t.dtype(), t.device()))
                .expect("draw")
                .affine(std, 0.0)
                .expect("scale")
        };
        e.var.set(&v).expect("set");
    }
}

/// `shape` values: standard normal, or uniform on `(lo, hi)`.
fn draw(shape: &[usize], dtype: DType, range: Option<(f64, f64)>) -> Tensor {
    rng::with_rng(|r| match range {
        None => rng::standard_normal(r, shape, dtype, &CPU),
        Some((lo, hi)) => {
            rng::uniform01(r, shape, dtype, &CPU).and_then(|u| Ok(u.affine(hi - lo, lo)?))
        }
    })
    .expect("draw")
}

/// A transform under test with an input for it.
struct Built {
    t: TransformRef,
    x: Tensor,
}

struct Case {
    name: &'static str,
    build: fn(DType) -> R<Built>,
}

fn vb(store: &ParamStore, dtype: DType) -> candle_nn::VarBuilder<'static> {
    store.var_builder(dtype, &CPU)
}

fn spline_cfg(order: SplineOrder) -> SplineConfig {
    SplineConfig {
        count_bins: 5,
        bound: 3.0,
        order,
    }
}

fn learnable_spline(order: SplineOrder, dtype: DType) -> R<Built> {
    let store = ParamStore::new();
    let t = Spline::new(vb(&store, dtype).pp("s"), 3, spline_cfg(order))?;
    // Parameter scales that keep slopes within about e^±4: steeper splines are tested by the
    // Jacobian and monotonicity properties, but cannot invert to 1e-5 in f32 (the inverse
    // multiplies the output's rounding by 1/slope).
    randomize(&store, 0.5);
    // Values on both sides of the bound, so that both branches are exercised.
    Ok(Built {
        t: t.shared(),
        x: draw(&[4, 3], dtype, Some((-4.0, 4.0))),
    })
}

fn conditional_spline(order: SplineOrder, dtype: DType) -> R<Built> {
    let store = ParamStore::new();
    let s = ConditionalSpline::new(vb(&store, dtype).pp("s"), 3, 2, &[8], spline_cfg(order))?;
    randomize(&store, 0.3);
    let ctx = draw(&[4, 2], dtype, None);
    Ok(Built {
        t: s.condition(&ctx)?,
        x: draw(&[4, 3], dtype, Some((-4.0, 4.0))),
    })
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "LearnableAffine",
            build: |dt| {
                let store = ParamStore::new();
                let t = LearnableAffine::new(vb(&store, dt).pp("a"), 3)?;
                randomize(&store, 0.5);
                Ok(Built {
                    t: t.with_event_dim(1).shared(),
                    x: draw(&[4, 3], dt, None),
                })
            },
        },
        Case {
            name: "MlpConditionalAffine",
            build: |dt| {
                let store = ParamStore::new();
                let m = MlpConditionalAffine::new(vb(&store, dt).pp("m"), 3, 2, &[8])?;
                randomize(&store, 0.5);
                Ok(Built {
                    t: m.condition(&draw(&[4, 2], dt, None))?,
                    x: draw(&[4, 3], dt, None),
                })
            },
        },
        Case {
            name: "Spline(quadratic)",
            build: |dt| learnable_spline(SplineOrder::Quadratic, dt),
        },
        Case {
            name: "Spline(linear)",
            build: |dt| learnable_spline(SplineOrder::Linear, dt),
        },
        Case {
            name: "ConditionalSpline(quadratic)",
            build: |dt| conditional_spline(SplineOrder::Quadratic, dt),
        },
        Case {
            name: "ConditionalSpline(linear)",
            build: |dt| conditional_spline(SplineOrder::Linear, dt),
        },
        Case {
            name: "LogitTransform",
            build: |dt| {
                Ok(Built {
                    t: LogitTransform::new(0.05)?.shared(),
                    x: draw(&[4, 3], dt, Some((0.02, 0.98))),
                })
            },
        },
        Case {
            name: "LogitTransform.inv",
            build: |dt| {
                Ok(Built {
                    t: LogitTransform::new(0.05)?.inv().shared(),
                    x: draw(&[4, 3], dt, Some((-4.0, 4.0))),
                })
            },
        },
        Case {
            name: "SqueezeTransform",
            build: |dt| {
                Ok(Built {
                    t: SqueezeTransform.shared(),
                    x: draw(&[2, 2, 2, 4], dt, None),
                })
            },
        },
        Case {
            name: "ReshapeTransform",
            build: |dt| {
                Ok(Built {
                    t: ReshapeTransform::new(&[1, 4, 2], &[2, 2, 2])?.shared(),
                    x: draw(&[2, 1, 4, 2], dt, None),
                })
            },
        },
        Case {
            name: "ChannelPermutation",
            build: |dt| {
                Ok(Built {
                    t: ChannelPermutation::new(&[2, 0, 1])?.shared(),
                    x: draw(&[2, 3, 2, 2], dt, None),
                })
            },
        },
        Case {
            name: "ActNorm",
            build: |dt| {
                let store = ParamStore::new();
                let a = ActNorm::new(vb(&store, dt).pp("an"), 3)?;
                randomize(&store, 0.5);
                Ok(Built {
                    t: a.shared(),
                    x: draw(&[2, 3, 2, 2], dt, None),
                })
            },
        },
        Case {
            name: "InvertibleConv1x1",
            build: |dt| {
                let store = ParamStore::new();
                let c = InvertibleConv1x1::new(vb(&store, dt).pp("c"), 4)?;
                randomize(&store, 0.4);
                Ok(Built {
                    t: c.shared(),
                    x: draw(&[2, 4, 2, 2], dt, None),
                })
            },
        },
        Case {
            name: "AffineCoupling(checkerboard, context)",
            build: |dt| {
                let store = ParamStore::new();
                let mask = CouplingMask::Checkerboard { parity: true };
                let c = AffineCoupling::new(vb(&store, dt).pp("c"), 2, 2, 4, mask)?;
                randomize(&store, 0.3);
                Ok(Built {
                    t: c.condition(&draw(&[2, 2], dt, None))?,
                    x: draw(&[2, 2, 4, 4], dt, None),
                })
            },
        },
        Case {
            name: "AffineCoupling(channel)",
            build: |dt| {
                let store = ParamStore::new();
                let mask = CouplingMask::Channel { parity: true };
                let c = AffineCoupling::new(vb(&store, dt).pp("c"), 4, 0, 4, mask)?;
                randomize(&store, 0.3);
                Ok(Built {
                    t: c.transform()?.shared(),
                    x: draw(&[2, 4, 2, 2], dt, None),
                })
            },
        },
        Case {
            name: "ChannelSubset",
            build: |dt| {
                let store = ParamStore::new();
                let c = InvertibleConv1x1::new(vb(&store, dt).pp("c"), 2)?;
                randomize(&store, 0.4);
                Ok(Built {
                    t: ChannelSubset::new(1, 2, c)?.shared(),
                    x: draw(&[2, 4, 2, 2], dt, None),
                })
            },
        },
        Case {
            name: "RealNvp(context)",
            build: |dt| {
                let store = ParamStore::new();
                let mut cfg = RealNvpConfig::new(1, (4, 4), 2);
                cfg.couplings = 1;
                cfg.hidden = 4;
                let f = RealNvp::new(vb(&store, dt).pp("flow"), cfg)?;
                randomize(&store, 0.3);
                Ok(Built {
                    t: f.condition(&draw(&[2, 2], dt, None))?,
                    x: draw(&[2, 1, 4, 4], dt, None),
                })
            },
        },
        Case {
            name: "Spline ∘ LearnableAffine ∘ Exp",
            build: |dt| {
                let store = ParamStore::new();
                let s = Spline::new(vb(&store, dt).pp("s"), 3, SplineConfig::default())?;
                let a = LearnableAffine::new(vb(&store, dt).pp("a"), 3)?;
                randomize(&store, 0.5);
                let chain =
                    ComposeTransform::new(vec![s.shared(), a.shared(), ExpTransform.shared()]);
                Ok(Built {
                    t: chain.shared(),
                    x: draw(&[4, 3], dt, Some((-4.0, 4.0))),
                })
            },
        },
    ]
}

/// Builds a case with the thread's generator at `seed`, so that f32 and f64 see the same values.
fn build(case: &Case, seed: u64, dtype: DType) -> Built {
    rng::set_seed(seed);
    (case.build)(dtype).unwrap_or_else(|e| panic!("{}: build: {e}", case.name))
}

fn check_round_trip(case: &Case, seed: u64, dtype: DType) {
    let Built { t, x } = build(case, seed, dtype);
    let y = t.forward(&x).expect("forward");
    assert_eq!(y.dtype(), dtype, "{}: forward keeps the dtype", case.name);
    let back = values(&t.inverse(&y).expect("inverse"));
    let tol = if dtype == DType::F64 { 1e-10 } else { 1e-5 };
    for (i, (b, w)) in back.iter().zip(values(&x)).enumerate() {
        let err = (b - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{} ({dtype:?}) seed {seed}: inverse(forward(x))[{i}] = {b}, x = {w}, error {err:e}",
            case.name
        );
    }
}

/// The central-difference Jacobian of `t` at `x` (f64): `(batch, n, n)` over each event's
/// flattened values, perturbing coordinate `c` of every event at once (events are independent).
fn numerical_jacobians(t: &dyn Transform, x: &Tensor) -> Vec<DMatrix<f64>> {
    let ed = t.event_dim();
    let dims = x.dims().to_vec();
    let n: usize = dims[dims.len() - ed..].iter().product();
    let batch: usize = dims[..dims.len() - ed].iter().product();
    let xv = values(x);
    let mut jac = vec![DMatrix::zeros(n, n); batch];
    let h = 1e-6;
    for c in 0..n {
        let shifted = |sign: f64| {
            let mut v = xv.clone();
            for b in 0..batch {
                v[b * n + c] += sign * h;
            }
            let xt = Tensor::from_vec(v, dims.as_slice(), &CPU).expect("tensor");
            values(&t.forward(&xt).expect("forward"))
        };
        let (yp, ym) = (shifted(1.0), shifted(-1.0));
        for (b, j) in jac.iter_mut().enumerate() {
            for r in 0..n {
                j[(r, c)] = (yp[b * n + r] - ym[b * n + r]) / (2.0 * h);
            }
        }
    }
    jac
}

fn check_jacobian(case: &Case, seed: u64) {
    let Built { t, x } = build(case, seed, DType::F64);
    let y = t.forward(&x).expect("forward");
    let ed = t.event_dim();
    let batch = &x.dims()[..x.rank() - ed];
    // From the cache the forward pass filled, and recomputed for a fresh copy of the input.
    let cached = t.log_abs_det_jacobian(&x, &y).expect("ladj");
    let x2 = x.copy().expect("copy");
    let fresh = t.log_abs_det_jacobian(&x2, &y).expect("ladj");
    assert_eq!(cached.dims(), batch, "{}: log-det shape", case.name);
    assert_eq!(fresh.dims(), batch, "{}: log-det shape", case.name);
    // And through the inverse, as log_prob computes it.
    let xi = t.inverse(&y).expect("inverse");
    let via_inverse = t.log_abs_det_jacobian(&xi, &y).expect("ladj");
    let jac = numerical_jacobians(t.as_ref(), &x);
    for (b, j) in jac.iter().enumerate() {
        let want = j.determinant().abs().ln();
        for (what, got) in [
            ("cached", &cached),
            ("recomputed", &fresh),
            ("after inverse", &via_inverse),
        ] {
            let g = values(got)[b];
            assert!(
                (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{} seed {seed}: log|det J| of event {b} ({what}) = {g}, numerical {want}",
                case.name
            );
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0xf10e_5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn inverse_undoes_forward_f64(seed in any::<u64>()) {
        for case in cases() {
            check_round_trip(&case, seed, DType::F64);
        }
    }

    #[test]
    fn inverse_undoes_forward_f32(seed in any::<u64>()) {
        for case in cases() {
            check_round_trip(&case, seed, DType::F32);
        }
    }

    #[test]
    fn log_det_matches_numerical_jacobian(seed in any::<u64>()) {
        for case in cases() {
            check_jacobian(&case, seed);
        }
    }
}

/// softmax with a floor, cumulated onto `[-b, b]`: the knots as Pyro's spline defines them,
/// computed here on the host to check the tensor code.
fn host_knots(raw: &[f64], min: f64, b: f64) -> Vec<f64> {
    let m = raw.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = raw.iter().map(|r| (r - m).exp()).collect();
    let z: f64 = e.iter().sum();
    let k = raw.len() as f64;
    let mut acc = 0.0;
    let mut out = vec![-b];
    for v in &e[..e.len() - 1] {
        acc += min + (1.0 - min * k) * v / z;
        out.push(-b + 2.0 * b * acc);
    }
    out.push(b);
    out
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &CPU).expect("tensor")
}

/// `(xs, ys, ds, lambdas)` on the host for one dimension's raw parameters.
type HostSpline = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

fn host_spline(w: &[f64], h: &[f64], d: &[f64], l: &[f64], b: f64) -> HostSpline {
    let xs = host_knots(w, 1e-3, b);
    let ys = host_knots(h, 1e-3, b);
    let mut ds = vec![1.0];
    ds.extend(d.iter().map(|&v| softplus(v) + 1e-3));
    ds.push(1.0);
    let ls = l
        .iter()
        .map(|&v| 0.025 + 0.95 / (1.0 + (-v).exp()))
        .collect();
    (xs, ys, ds, ls)
}

proptest! {
    #![proptest_config(config(24))]

    /// The spline passes through its knots with the knot derivatives (which determines a
    /// rational-quadratic spline), and a linear-rational bin passes through Dolatabadi et al.'s
    /// split point `yc = ((1 − λ) y0 + λ wb y1) / ((1 − λ) + λ wb)`, `wb = √(d0 / d1)`.
    #[test]
    fn splines_interpolate_knots_and_derivatives(
        raw in prop::collection::vec(-1.5f64..1.5, 4 * 6 - 1),
        linear in any::<bool>(),
    ) {
        let k = 6;
        let b = 2.5;
        let (w, rest) = raw.split_at(k);
        let (h, rest) = rest.split_at(k);
        let (d, l) = rest.split_at(k - 1);
        let (xs, ys, ds, ls) = host_spline(w, h, d, l, b);
        let lam = t64(l, &[1, k]);
        let t = SplineTransform::new(
            &t64(w, &[1, k]),
            &t64(h, &[1, k]),
            &t64(d, &[1, k - 1]),
            linear.then_some(&lam),
            b,
        ).expect("spline");
        // Interior knots, and the bound itself.
        let x = t64(&xs, &[k + 1, 1]);
        let y = t.forward(&x).expect("forward");
        let ladj = values(&t.log_abs_det_jacobian(&x, &y).expect("ladj"));
        for (i, (yv, want)) in values(&y).iter().zip(&ys).enumerate() {
            prop_assert!((yv - want).abs() < 1e-12, "y(x_{i}) = {yv}, knot {want}");
            prop_assert!((ladj[i] - ds[i].ln()).abs() < 1e-9, "log slope at knot {i}: {} vs {}", ladj[i], ds[i].ln());
        }
        if linear {
            for i in 0..k {
                let xc = xs[i] + ls[i] * (xs[i + 1] - xs[i]);
                let wb = (ds[i] / ds[i + 1]).sqrt();
                let yc = ((1.0 - ls[i]) * ys[i] + ls[i] * wb * ys[i + 1]) / ((1.0 - ls[i]) + ls[i] * wb);
                let got = values(&t.forward(&t64(&[xc], &[1, 1])).expect("forward"))[0];
                prop_assert!((got - yc).abs() < 1e-12, "bin {i}: y(split) = {got}, want {yc}");
            }
        }
    }

    /// Strictly increasing on a fine grid, the identity with zero log-det outside the bound, and
    /// a slope that tends to 1 at the bound, for steep random splines of both orders.
    #[test]
    fn splines_are_monotone_and_identity_outside(
        raw in prop::collection::vec(-3.0f64..3.0, 2 * (4 * 5 - 1)),
        linear in any::<bool>(),
    ) {
        let (k, b) = (5, 3.0);
        let pick = |off: usize, n: usize| -> Tensor {
            let v: Vec<f64> = (0..2).flat_map(|dim| raw[dim * (4 * k - 1) + off..][..n].to_vec()).collect();
            t64(&v, &[2, n])
        };
        let lam = pick(3 * k - 1, k);
        let t = SplineTransform::new(&pick(0, k), &pick(k, k), &pick(2 * k, k - 1), linear.then_some(&lam), b)
            .expect("spline");
        let n = 801;
        let grid: Vec<f64> = (0..n).flat_map(|i| {
            let x = -5.0 + 10.0 * i as f64 / (n - 1) as f64;
            [x, x]
        }).collect();
        let x = t64(&grid, &[n, 2]);
        let y = t.forward(&x).expect("forward");
        let ladj = values(&t.log_abs_det_jacobian(&x, &y).expect("ladj"));
        let yv = values(&y);
        for dim in 0..2 {
            for i in 1..n {
                prop_assert!(yv[2 * i + dim] > yv[2 * (i - 1) + dim], "not increasing at {}", grid[2 * i]);
            }
        }
        for (j, (&xv, &y)) in grid.iter().zip(&yv).enumerate() {
            if xv.abs() > b {
                prop_assert_eq!(y, xv);
                prop_assert_eq!(ladj[j], 0.0);
            } else {
                prop_assert!(y.abs() <= b + 1e-12);
            }
        }
        let edge = t64(&[-b, b, -b + 1e-12, b - 1e-12], &[2, 2]);
        let ye = t.forward(&edge).expect("forward");
        let le = values(&t.log_abs_det_jacobian(&edge, &ye).expect("ladj"));
        let ye = values(&ye);
        prop_assert!((ye[0] + b).abs() < 1e-12 && (ye[1] - b).abs() < 1e-12, "ends {ye:?}");
        prop_assert!(le.iter().all(|l| l.abs() < 1e-6), "log slopes at the bound {le:?}");
    }
}

/// Equal bins and unit derivatives make both spline orders the identity.
#[test]
fn flat_splines_are_the_identity() -> R {
    let k = 4;
    let zeros = Tensor::zeros((1, k), DType::F64, &CPU)?;
    // softplus(v) + 1e-3 = 1
    let d = Tensor::full((1.0f64 - 1e-3).exp_m1().ln(), (1, k - 1), &CPU)?;
    for lambdas in [None, Some(&zeros)] {
        let t = SplineTransform::new(&zeros, &zeros, &d, lambdas, 3.0)?;
        let x = t64(&[-2.9, -1.0, 0.0, 0.4, 2.2], &[5, 1]);
        let y = t.forward(&x)?;
        for (a, b) in values(&y).iter().zip(values(&x)) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(values(&t.log_abs_det_jacobian(&x, &y)?)
            .iter()
            .all(|l| l.abs() < 1e-12));
    }
    Ok(())
}

#[test]
fn spline_misuse_is_a_typed_error() -> R {
    let store = ParamStore::new();
    let bad_bins = SplineConfig {
        count_bins: 1,
        ..Default::default()
    };
    assert!(matches!(
        Spline::new(vb(&store, DType::F64), 1, bad_bins),
        Err(ppl_core::Error::InvalidParameter { .. })
    ));
    let bad_bound = SplineConfig {
        bound: -1.0,
        ..Default::default()
    };
    assert!(matches!(
        Spline::new(vb(&store, DType::F64), 1, bad_bound),
        Err(ppl_core::Error::InvalidParameter { .. })
    ));
    let w = Tensor::zeros((2, 4), DType::F64, &CPU)?;
    let wrong = Tensor::zeros((2, 4), DType::F64, &CPU)?; // derivatives need 3 per dim
    assert!(matches!(
        SplineTransform::new(&w, &w, &wrong, None, 3.0),
        Err(ppl_core::Error::ShapeMismatch { .. })
    ));
    let t = Spline::new(vb(&store, DType::F64).pp("ok"), 2, SplineConfig::default())?;
    let x = Tensor::zeros((4, 3), DType::F64, &CPU)?;
    assert!(matches!(
        t.forward(&x),
        Err(ppl_core::Error::ShapeMismatch { .. })
    ));
    Ok(())
}

#[test]
fn image_transform_misuse_is_a_typed_error() -> R {
    let odd = Tensor::zeros((1, 3, 3), DType::F32, &CPU)?;
    assert!(matches!(
        SqueezeTransform.forward(&odd),
        Err(ppl_core::Error::Usage(_))
    ));
    assert!(ReshapeTransform::new(&[4], &[2, 2]).is_err());
    assert!(ChannelPermutation::new(&[0, 0, 1]).is_err());
    assert!(LogitTransform::new(0.5).is_err());
    let store = ParamStore::new();
    let mask = CouplingMask::Channel { parity: false };
    assert!(AffineCoupling::new(vb(&store, DType::F32), 3, 0, 4, mask).is_err());
    let mut cfg = RealNvpConfig::new(1, (6, 6), 2);
    cfg.scales = 2; // 6 is not divisible by 4
    assert!(matches!(
        RealNvp::new(vb(&store, DType::F32).pp("f"), cfg),
        Err(ppl_core::Error::Usage(_))
    ));
    let flow = RealNvp::new(
        vb(&store, DType::F32).pp("g"),
        RealNvpConfig::new(1, (4, 4), 2),
    )?;
    let wrong_context = Tensor::zeros((5, 3), DType::F32, &CPU)?;
    assert!(matches!(
        flow.condition(&wrong_context),
        Err(ppl_core::Error::ShapeMismatch { .. })
    ));
    assert!(
        flow.transform().is_err(),
        "a conditional flow needs its context"
    );
    Ok(())
}

/// Flow layers hand `log_prob` the log-det they computed while inverting: asking twice gives
/// the same tensor, not a recomputation (which would run the coupling networks again).
#[test]
fn flow_layers_reuse_the_log_det_of_their_last_pass() {
    for case in cases() {
        let cached = [
            "Spline(quadratic)",
            "ConditionalSpline(linear)",
            "AffineCoupling(checkerboard, context)",
            "ChannelSubset",
            "RealNvp(context)",
            "Spline ∘ LearnableAffine ∘ Exp",
        ];
        if !cached.contains(&case.name) {
            continue;
        }
        let Built { t, x } = build(&case, 1, DType::F64);
        let y = t.forward(&x).expect("forward");
        let back = t.inverse(&y).expect("inverse");
        let a = t.log_abs_det_jacobian(&back, &y).expect("ladj");
        let b = t.log_abs_det_jacobian(&back, &y).expect("ladj");
        assert_eq!(a.id(), b.id(), "{}: the log-det was recomputed", case.name);
        let fwd = t.log_abs_det_jacobian(&x, &y).expect("ladj");
        assert_ne!(
            fwd.id(),
            a.id(),
            "{}: a stale pair hit the cache",
            case.name
        );
    }
}
