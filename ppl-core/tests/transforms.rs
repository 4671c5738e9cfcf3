//! Transforms and transformed distributions: round trips, log-dets against numerical Jacobians,
//! densities against statrs closed forms, and typed errors on bad input.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use nalgebra::DMatrix;
use ppl_core::dist::{
    ConditionalTransformedDistribution, Distribution, Normal, Support, TransformedDistribution,
};
use ppl_core::rng;
use ppl_core::transforms::{
    AffineTransform, ComposeTransform, ConditionalAffine, ConditionalTransform, ExpTransform,
    SigmoidTransform, SoftplusTransform, Transform, TransformExt, TransformRef, TransformStep,
};
use ppl_core::Error;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use statrs::distribution::Continuous;

type R<T = ()> = ppl_core::Result<T>;

const CPU: Device = Device::Cpu;

fn tensor(values: &[f64], shape: &[usize], dtype: DType) -> Tensor {
    Tensor::new(values, &CPU)
        .and_then(|t| t.reshape(shape))
        .and_then(|t| t.to_dtype(dtype))
        .expect("test tensor")
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("host read")
}

fn scalar(x: f64) -> Tensor {
    Tensor::new(x, &CPU).expect("scalar")
}

/// `|a - b| <= tol · max(1, |b|)`, element by element.
fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w} (error {err:e}, tolerance {tol:e})"
        );
    }
}

/// The value shape every property test uses: a batch of 2 events of 3.
const SHAPE: [usize; 2] = [2, 3];

/// Where a case's inputs live, per dtype: f32 ranges are narrower where the transform itself is
/// ill-conditioned (a sigmoid near 1 loses the digits of `x`), not to hide implementation error.
#[derive(Clone, Copy)]
enum Domain {
    Real { f64: f64, f32: f64 },
    Between(f64, f64),
}

struct Case {
    name: &'static str,
    domain: Domain,
    build: fn(&[f64]) -> R<TransformRef>,
}

/// Parameters in [-1, 1] mapped to a non-zero scale of magnitude [0.5, 2.5] (sign from `s`).
fn nz_scale(p: f64, s: f64) -> f64 {
    (0.5 + 2.0 * p.abs()) * if s < 0.0 { -1.0 } else { 1.0 }
}

fn vec3(p: &[f64], f: impl Fn(f64) -> f64) -> Tensor {
    tensor(&[f(p[0]), f(p[1]), f(p[2])], &[3], DType::F64)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "affine scalar",
            domain: Domain::Real { f64: 3.0, f32: 3.0 },
            build: |p| Ok(AffineTransform::new(2.0 * p[0], nz_scale(p[1], p[2]))?.shared()),
        },
        Case {
            name: "affine scalar, event_dim 1",
            domain: Domain::Real { f64: 3.0, f32: 3.0 },
            build: |p| {
                Ok(AffineTransform::new(p[3], nz_scale(p[4], p[5]))?
                    .with_event_dim(1)
                    .shared())
            },
        },
        Case {
            name: "affine tensor",
            domain: Domain::Real { f64: 3.0, f32: 3.0 },
            build: |p| {
                let scale = tensor(
                    &[
                        nz_scale(p[3], p[0]),
                        nz_scale(p[4], p[1]),
                        nz_scale(p[5], p[2]),
                    ],
                    &[3],
                    DType::F64,
                );
                Ok(AffineTransform::new(vec3(p, |v| 2.0 * v), scale)?.shared())
            },
        },
        Case {
            name: "affine tensor, event_dim 1",
            domain: Domain::Real { f64: 3.0, f32: 3.0 },
            build: |p| {
                let scale = tensor(
                    &[
                        nz_scale(p[3], p[1]),
                        nz_scale(p[4], p[2]),
                        nz_scale(p[5], p[0]),
                    ],
                    &[3],
                    DType::F64,
                );
                Ok(AffineTransform::new(vec3(p, |v| 2.0 * v), scale)?
                    .with_event_dim(1)
                    .shared())
            },
        },
        Case {
            name: "affine log-scale, event_dim 1",
            domain: Domain::Real { f64: 3.0, f32: 3.0 },
            build: |p| {
                let log_scale = vec3(&p[3..], |v| 0.9 * v);
                Ok(
                    AffineTransform::from_log_scale(vec3(p, |v| 2.0 * v), log_scale)?
                        .with_event_dim(1)
                        .shared(),
                )
            },
        },
        Case {
            name: "affine broadcast [2,1], event_dim 2",
            domain: Domain::Real { f64: 3.0, f32: 3.0 },
            build: |p| {
                let loc = tensor(&[p[0], p[1]], &[2, 1], DType::F64);
                let scale = tensor(
                    &[nz_scale(p[2], p[3]), nz_scale(p[4], p[5])],
                    &[2, 1],
                    DType::F64,
                );
                Ok(AffineTransform::new(loc, scale)?.with_event_dim(2).shared())
            },
        },
        Case {
            name: "exp",
            domain: Domain::Real {
                f64: 10.0,
                f32: 10.0,
            },
            build: |_| Ok(ExpTransform.shared()),
        },
        Case {
            name: "sigmoid",
            domain: Domain::Real {
                f64: 10.0,
                f32: 3.0,
            },
            build: |_| Ok(SigmoidTransform.shared()),
        },
        Case {
            name: "softplus",
            domain: Domain::Real {
                f64: 30.0,
                f32: 10.0,
            },
            build: |_| Ok(SoftplusTransform.shared()),
        },
        Case {
            name: "inverse exp (log)",
            domain: Domain::Between(0.01, 20.0),
            build: |_| Ok(ExpTransform.inv().shared()),
        },
        Case {
            name: "inverse sigmoid (logit)",
            domain: Domain::Between(0.01, 0.99),
            build: |_| Ok(SigmoidTransform.inv().shared()),
        },
        Case {
            name: "inverse softplus",
            domain: Domain::Between(0.01, 20.0),
            build: |_| Ok(SoftplusTransform.inv().shared()),
        },
        Case {
            name: "compose affine, sigmoid",
            domain: Domain::Real { f64: 3.0, f32: 1.0 },
            build: |p| {
                Ok(AffineTransform::new(p[0], nz_scale(p[1], p[2]))?
                    .then(SigmoidTransform)
                    .shared())
            },
        },
        Case {
            name: "compose exp, affine event_dim 1",
            domain: Domain::Real { f64: 3.0, f32: 2.0 },
            build: |p| {
                let scale = vec3(&p[3..], |v| nz_scale(v, v));
                let affine = AffineTransform::new(vec3(p, |v| v), scale)?.with_event_dim(1);
                Ok(ExpTransform.then(affine).shared())
            },
        },
        Case {
            name: "compose softplus, log, affine",
            domain: Domain::Real {
                f64: 10.0,
                f32: 5.0,
            },
            build: |p| {
                let affine = AffineTransform::new(p[0], nz_scale(p[1], p[2]))?;
                Ok(ComposeTransform::new(vec![
                    SoftplusTransform.shared(),
                    ExpTransform.inv().shared(),
                    affine.shared(),
                ])
                .shared())
            },
        },
        Case {
            name: "compose independent exp, affine event_dim 1",
            domain: Domain::Real { f64: 3.0, f32: 2.0 },
            build: |p| {
                let affine =
                    AffineTransform::new(vec3(p, |v| v), vec3(&p[3..], |v| nz_scale(v, -v)))?
                        .with_event_dim(1);
                Ok(ExpTransform.independent(1).then(affine).shared())
            },
        },
        Case {
            name: "inverse of compose affine, sigmoid",
            domain: Domain::Between(0.05, 0.95),
            build: |p| {
                Ok(AffineTransform::new(p[0], nz_scale(p[1], p[2]))?
                    .then(SigmoidTransform)
                    .inv()
                    .shared())
            },
        },
    ]
}

/// Inputs in [0, 1] mapped into the case's domain.
fn inputs(domain: Domain, u: &[f64], dtype: DType) -> Vec<f64> {
    u.iter()
        .map(|&u| match domain {
            Domain::Real { f64: r, f32: r32 } => {
                let r = if dtype == DType::F64 { r } else { r32 };
                r * (2.0 * u - 1.0)
            }
            Domain::Between(lo, hi) => lo + (hi - lo) * u,
        })
        .collect()
}

/// The central-difference Jacobian of `t` at `x` (f64), as an `n × n` matrix over the flattened
/// value.
fn numerical_jacobian(t: &dyn Transform, x: &[f64], shape: &[usize]) -> DMatrix<f64> {
    let n = x.len();
    let mut j = DMatrix::zeros(n, n);
    for c in 0..n {
        let h = 1e-5 * x[c].abs().max(1.0);
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[c] += h;
        xm[c] -= h;
        let yp = values(&t.forward(&tensor(&xp, shape, DType::F64)).expect("forward"));
        let ym = values(&t.forward(&tensor(&xm, shape, DType::F64)).expect("forward"));
        for r in 0..n {
            j[(r, c)] = (yp[r] - ym[r]) / (2.0 * h);
        }
    }
    j
}

fn check_round_trip(case: &Case, p: &[f64], u: &[f64], dtype: DType) {
    let t = (case.build)(p).expect("build");
    let x = inputs(case.domain, u, dtype);
    let xt = tensor(&x, &SHAPE, dtype);
    let y = t.forward(&xt).expect("forward");
    assert_eq!(y.dtype(), dtype, "{}: forward keeps the dtype", case.name);
    let back = values(&t.inverse(&y).expect("inverse"));
    let x_seen = values(&xt);
    let tol = if dtype == DType::F64 { 1e-10 } else { 1e-5 };
    assert_close(
        &back,
        &x_seen,
        tol,
        &format!("{} ({dtype:?}) inverse(forward(x))", case.name),
    );
}

fn check_jacobian(case: &Case, p: &[f64], u: &[f64]) {
    let t = (case.build)(p).expect("build");
    let x = inputs(case.domain, u, DType::F64);
    let xt = tensor(&x, &SHAPE, DType::F64);
    let y = t.forward(&xt).expect("forward");
    let ladj = t
        .log_abs_det_jacobian(&xt, &y)
        .expect("log_abs_det_jacobian");
    let ed = t.event_dim();
    assert_eq!(
        ladj.dims(),
        &SHAPE[..SHAPE.len() - ed],
        "{}: log-det shape",
        case.name
    );
    let (y2, ladj2) = t.forward_and_log_det(&xt).expect("forward_and_log_det");
    assert_close(
        &values(&y2),
        &values(&y),
        1e-14,
        &format!("{}: forward_and_log_det y", case.name),
    );
    assert_close(
        &values(&ladj2),
        &values(&ladj),
        1e-12,
        &format!("{}: forward_and_log_det ladj", case.name),
    );

    let jac = numerical_jacobian(t.as_ref(), &x, &SHAPE);
    let m: usize = SHAPE[SHAPE.len() - ed..].iter().product();
    let ladj = values(&ladj);
    let scale = jac.abs().max();
    for (e, &l) in ladj.iter().enumerate() {
        let block = jac.view((e * m, e * m), (m, m)).into_owned();
        let want = block.determinant().abs().ln();
        assert_close(
            &[l],
            &[want],
            1e-6,
            &format!("{}: log|det J| of event {e}", case.name),
        );
    }
    // Events are not coupled: the Jacobian is block diagonal.
    for r in 0..x.len() {
        for c in 0..x.len() {
            if r / m != c / m {
                assert!(
                    jac[(r, c)].abs() <= 1e-9 * scale,
                    "{}: J[{r},{c}] couples two events",
                    case.name
                );
            }
        }
    }
}

/// Fixed seeds and no regression files: the same cases on every run and machine.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x5eed_7a5f),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn params_and_inputs() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (
        prop::collection::vec(-1.0f64..1.0, 6),
        prop::collection::vec(0.0f64..1.0, 6),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inverse_undoes_forward_f64((p, u) in params_and_inputs()) {
        for case in cases() {
            check_round_trip(&case, &p, &u, DType::F64);
        }
    }

    #[test]
    fn inverse_undoes_forward_f32((p, u) in params_and_inputs()) {
        for case in cases() {
            check_round_trip(&case, &p, &u, DType::F32);
        }
    }

    #[test]
    fn log_det_matches_numerical_jacobian((p, u) in params_and_inputs()) {
        for case in cases() {
            check_jacobian(&case, &p, &u);
        }
    }

    /// The f32 log-det agrees with the f64 one: nothing in it is computed in a way that loses
    /// single-precision digits.
    #[test]
    fn f32_log_det_agrees_with_f64((p, u) in params_and_inputs()) {
        for case in cases() {
            let t = (case.build)(&p).expect("build");
            let mut ladj = Vec::new();
            for dtype in [DType::F64, DType::F32] {
                let x = tensor(&inputs(case.domain, &u, DType::F32), &SHAPE, dtype);
                let y = t.forward(&x).expect("forward");
                ladj.push(values(&t.log_abs_det_jacobian(&x, &y).expect("ladj")));
            }
            assert_close(&ladj[1], &ladj[0], 1e-5, &format!("{}: f32 log-det", case.name));
        }
    }
}

#[test]
fn tails_stay_finite_and_exact() -> R {
    // Sigmoid log-det in the far tails, where σ(x) rounds to 0 or 1: log σ'(x) ≈ -|x|.
    let x = tensor(&[-800.0, -40.0, 40.0, 800.0], &[4], DType::F64);
    let l = values(&SigmoidTransform.log_abs_det_jacobian(&x, &SigmoidTransform.forward(&x)?)?);
    assert_close(
        &l,
        &[-800.0, -40.0, -40.0, -800.0],
        1e-12,
        "sigmoid log-det tails",
    );
    // As in Pyro, the sigmoid is clamped inside (0, 1), so that it inverts to finite values.
    let y = values(&SigmoidTransform.forward(&x)?);
    assert!(
        y.iter().all(|&v| v > 0.0 && v < 1.0),
        "sigmoid clamped: {y:?}"
    );
    assert!(
        values(&SigmoidTransform.inverse(&SigmoidTransform.forward(&x)?)?)
            .iter()
            .all(|v| v.is_finite())
    );
    // Softplus: forward of -40 is e^-40 to full relative precision, and inverts exactly.
    let y = SoftplusTransform.forward(&tensor(&[-40.0], &[1], DType::F64))?;
    assert_close(&values(&y), &[(-40f64).exp()], 1e-14, "softplus(-40)");
    assert_close(
        &values(&SoftplusTransform.inverse(&y)?),
        &[-40.0],
        1e-13,
        "softplus⁻¹",
    );
    Ok(())
}

#[test]
fn compose_handles_event_dims_and_identity() -> R {
    // Exp (event_dim 0) then Affine(event_dim 1): the chain's event dim is 1 and the exp log-det
    // is summed over the event: Σ x + Σ log|scale|.
    let scale = tensor(&[2.0, -3.0, 0.5], &[3], DType::F64);
    let chain = ExpTransform.then(AffineTransform::new(1.0, &scale)?.with_event_dim(1));
    assert_eq!(chain.event_dim(), 1);
    assert_eq!(chain.codomain(), Support::Real);
    let x = tensor(&[0.1, 0.2, 0.3, -1.0, 0.0, 1.0], &[2, 3], DType::F64);
    let l = values(&chain.log_abs_det_jacobian(&x, &chain.forward(&x)?)?);
    let c = 3f64.ln();
    assert_close(&l, &[0.6 + c, c], 1e-13, "compose log-det");
    // The empty chain is the identity with zero log-det.
    let id = ComposeTransform::new(vec![]);
    assert_eq!(values(&id.forward(&x)?), values(&x));
    assert_eq!(values(&id.log_abs_det_jacobian(&x, &x)?), vec![0.0; 6]);
    // An inverse chain's domain and codomain swap.
    let logit = SigmoidTransform.inv();
    assert_eq!(
        (logit.domain(), logit.codomain()),
        (Support::UnitInterval, Support::Real)
    );
    Ok(())
}

// ---- transformed distributions ----

fn normal(loc: &Tensor, scale: &Tensor) -> Normal {
    Normal::new(loc, scale).expect("Normal")
}

fn positive_inputs() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.01f64..50.0, 5)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn normal_through_exp_is_log_normal(mu in -2.0f64..2.0, sigma in 0.2f64..3.0, ys in positive_inputs()) {
        let d = TransformedDistribution::new(normal(&scalar(mu), &scalar(sigma)), vec![ExpTransform.shared()]).expect("td");
        let y = tensor(&ys, &[ys.len()], DType::F64);
        let got = values(&d.log_prob(&y).expect("log_prob"));
        let reference = statrs::distribution::LogNormal::new(mu, sigma).expect("statrs");
        let want: Vec<f64> = ys.iter().map(|&y| reference.ln_pdf(y)).collect();
        assert_close(&got, &want, 1e-10, "log-normal log_prob");
        prop_assert_eq!(d.support(), Support::Positive);
    }

    #[test]
    fn normal_through_affine_is_normal(
        mu in -2.0f64..2.0, sigma in 0.2f64..3.0, a in -5.0f64..5.0, b in 0.1f64..4.0, neg in any::<bool>(),
        ys in prop::collection::vec(-20.0f64..20.0, 5),
    ) {
        let b = if neg { -b } else { b };
        let d = TransformedDistribution::new(normal(&scalar(mu), &scalar(sigma)), vec![AffineTransform::new(a, b).expect("affine").shared()]).expect("td");
        let y = tensor(&ys, &[ys.len()], DType::F64);
        let got = values(&d.log_prob(&y).expect("log_prob"));
        let reference = statrs::distribution::Normal::new(a + b * mu, b.abs() * sigma).expect("statrs");
        let want: Vec<f64> = ys.iter().map(|&y| reference.ln_pdf(y)).collect();
        assert_close(&got, &want, 1e-10, "affine normal log_prob");
    }

    #[test]
    fn to_base_undoes_from_base(us in prop::collection::vec(-4.0f64..4.0, 6), a in -2.0f64..2.0, b in 0.2f64..2.0) {
        let base = normal(&tensor(&[0.0; 3], &[3], DType::F64), &scalar(1.0));
        let d = TransformedDistribution::new(base, vec![
            SoftplusTransform.shared(),
            AffineTransform::new(a, b).expect("affine").shared(),
            ExpTransform.shared(),
        ]).expect("td");
        let u = tensor(&us, &[2, 3], DType::F64);
        let back = values(&d.to_base(&d.from_base(&u).expect("from_base")).expect("to_base"));
        assert_close(&back, &us, 1e-10, "to_base(from_base(u))");
    }
}

#[test]
fn f32_log_normal_matches_statrs() -> R {
    let loc = Tensor::new(0.3f32, &CPU)?;
    let d = TransformedDistribution::new(Normal::new(&loc, 0.7)?, vec![ExpTransform.shared()])?;
    assert_eq!(d.dtype(), DType::F32);
    let ys = [0.05, 0.5, 1.0, 3.0, 12.0];
    let got = values(&d.log_prob(&tensor(&ys, &[5], DType::F32))?);
    let reference = statrs::distribution::LogNormal::new(0.3, 0.7).expect("statrs");
    let want: Vec<f64> = ys.iter().map(|&y| reference.ln_pdf(y)).collect();
    assert_close(&got, &want, 1e-5, "f32 log-normal log_prob");
    Ok(())
}

#[test]
fn parameters_broadcast_the_base_and_event_dims_follow_pyro() -> R {
    // A scalar base through an affine map with a [4] loc: a batch of 4.
    let loc = tensor(&[0.0, 1.0, 2.0, 3.0], &[4], DType::F64);
    let d = TransformedDistribution::new(
        normal(&scalar(0.0), &scalar(1.0)),
        vec![AffineTransform::new(&loc, 2.0)?.shared()],
    )?;
    assert_eq!(
        (d.batch_shape(), d.event_shape()),
        (&[4usize][..], &[] as &[usize])
    );
    let x = d.sample(&mut rng::from_seed(1), &[5])?;
    assert_eq!(x.dims(), &[5, 4]);
    assert_eq!(d.log_prob(&x)?.dims(), &[5, 4]);

    // A [2, 3] batch of normals through an affine map acting on 1 event dim: the rightmost batch
    // dim becomes an event dim, and log_prob sums it.
    let mu = tensor(&[0.0, 0.5, 1.0, -1.0, 2.0, 0.1], &[2, 3], DType::F64);
    let sigma = tensor(&[1.0, 2.0, 0.5, 1.5, 0.3, 1.0], &[2, 3], DType::F64);
    let (a, b) = (1.5, -2.0);
    let d = TransformedDistribution::new(
        normal(&mu, &sigma),
        vec![AffineTransform::new(a, b)?.with_event_dim(1).shared()],
    )?;
    assert_eq!(
        (d.batch_shape(), d.event_shape()),
        (&[2usize][..], &[3usize][..])
    );
    let ys = [0.3, -1.0, 2.0, 4.0, -0.5, 1.0];
    let got = values(&d.log_prob(&tensor(&ys, &[2, 3], DType::F64))?);
    let (mu, sigma) = (values(&mu), values(&sigma));
    let want: Vec<f64> = (0..2)
        .map(|r| {
            (0..3)
                .map(|c| {
                    let i = r * 3 + c;
                    let n = statrs::distribution::Normal::new(a + b * mu[i], b.abs() * sigma[i])
                        .expect("statrs");
                    n.ln_pdf(ys[i])
                })
                .sum()
        })
        .collect();
    assert_close(&got, &want, 1e-10, "event-dim affine log_prob");

    // Expanding keeps the density per element.
    let e = TransformedDistribution::new(
        normal(&scalar(0.2), &scalar(0.5)),
        vec![ExpTransform.shared()],
    )?;
    let ex = e.expand(&[3])?;
    assert_eq!(ex.batch_shape(), &[3]);
    let y = tensor(&[0.5, 1.0, 2.0], &[3], DType::F64);
    assert_close(
        &values(&ex.log_prob(&y)?),
        &values(&e.log_prob(&y)?),
        1e-15,
        "expanded log_prob",
    );
    Ok(())
}

#[test]
fn sample_is_the_base_draw_pushed_forward() -> R {
    let base = normal(&tensor(&[0.0, 1.0], &[2], DType::F64), &scalar(0.5));
    let d = TransformedDistribution::new(
        base.clone(),
        vec![
            SoftplusTransform.shared(),
            AffineTransform::new(1.0, 3.0)?.shared(),
        ],
    )?;
    let y = d.sample(&mut rng::from_seed(9), &[4])?;
    let u = base.sample(&mut rng::from_seed(9), &[4])?;
    assert_close(
        &values(&y),
        &values(&d.from_base(&u)?),
        1e-15,
        "sample = from_base(base draw)",
    );
    assert_close(
        &values(&d.to_base(&y)?),
        &values(&u),
        1e-10,
        "abduction recovers the draw",
    );
    Ok(())
}

#[test]
fn rsample_carries_gradients_and_sample_does_not() -> R {
    let loc = Var::new(&[0.5f64, -0.5], &CPU)?;
    let d = TransformedDistribution::new(
        normal(&scalar(0.0), &scalar(1.0)),
        vec![AffineTransform::new(loc.as_tensor(), 2.0)?.shared()],
    )?;
    assert!(d.has_rsample());
    let y = d.rsample(&mut rng::from_seed(3), &[5])?;
    let grads = y.sum_all()?.backward()?;
    let g = grads.get(loc.as_tensor()).expect("gradient reaches loc");
    assert_eq!(values(g), vec![5.0, 5.0]);
    let y = d.sample(&mut rng::from_seed(3), &[5])?;
    assert!(y.sum_all()?.backward()?.get(loc.as_tensor()).is_none());
    Ok(())
}

#[test]
fn outside_the_support_is_minus_infinity_with_finite_gradients() -> R {
    let mu = Var::new(0.3f64, &CPU)?;
    let d = TransformedDistribution::new(
        normal(mu.as_tensor(), &scalar(1.0)),
        vec![ExpTransform.shared()],
    )?;
    let lp = d.log_prob(&tensor(&[-1.0, 0.0, 2.0], &[3], DType::F64))?;
    let v = values(&lp);
    assert_eq!((v[0], v[1]), (f64::NEG_INFINITY, f64::NEG_INFINITY));
    assert!(v[2].is_finite());
    // Only the finite term contributes: d/dμ log N(log 2; μ, 1) = log 2 - μ.
    let inside = lp.narrow(0, 2, 1)?.sum_all()?;
    let g = values(inside.backward()?.get(mu.as_tensor()).expect("gradient"));
    assert_close(&g, &[2f64.ln() - 0.3], 1e-12, "gradient");
    let masked = lp
        .gt(f64::NEG_INFINITY)?
        .where_cond(&lp, &lp.zeros_like()?)?;
    let g = values(
        masked
            .sum_all()?
            .backward()?
            .get(mu.as_tensor())
            .expect("gradient"),
    );
    assert!(g[0].is_finite(), "no NaN leaks from the masked branch");
    Ok(())
}

#[test]
fn conditional_affine_has_the_closed_form_density() -> R {
    // y | c ~ Normal(2c + 1, exp(c / 2)), written both ways; then pushed through exp.
    let by_scale =
        ConditionalAffine::new(|c: &Tensor| Ok((c.affine(2.0, 1.0)?, c.affine(0.5, 0.0)?.exp()?)));
    let by_log_scale = ConditionalAffine::from_log_scale(|c: &Tensor| {
        Ok((c.affine(2.0, 1.0)?, c.affine(0.5, 0.0)?))
    });
    let cs = [-1.0, 0.0, 0.5, 2.0];
    let ys = [0.3, -2.0, 1.7, 6.0];
    let c = tensor(&cs, &[4], DType::F64);
    let y = tensor(&ys, &[4], DType::F64);
    let base = normal(&scalar(0.0), &scalar(1.0));
    for mech in [by_scale, by_log_scale] {
        let d = ConditionalTransformedDistribution::new(
            base.clone(),
            vec![TransformStep::conditional(mech.clone())],
        );
        let given = d.condition(&c)?;
        assert_eq!(given.batch_shape(), &[4]);
        let want: Vec<f64> = cs
            .iter()
            .zip(&ys)
            .map(|(&c, &y)| {
                statrs::distribution::Normal::new(2.0 * c + 1.0, (0.5 * c).exp())
                    .expect("statrs")
                    .ln_pdf(y)
            })
            .collect();
        assert_close(
            &values(&given.log_prob(&y)?),
            &want,
            1e-12,
            "conditional affine log_prob",
        );
        // Abduction: the noise of y under context c is (y - loc(c)) / scale(c).
        let u: Vec<f64> = cs
            .iter()
            .zip(&ys)
            .map(|(&c, &y)| (y - 2.0 * c - 1.0) / (0.5 * c).exp())
            .collect();
        assert_close(
            &values(&given.to_base(&y)?),
            &u,
            1e-12,
            "conditional abduction",
        );

        let d = ConditionalTransformedDistribution::new(
            base.clone(),
            vec![
                TransformStep::conditional(mech),
                TransformStep::plain(ExpTransform),
            ],
        );
        let pos = tensor(&[0.5, 1.0, 2.0, 30.0], &[4], DType::F64);
        let want: Vec<f64> = cs
            .iter()
            .zip(values(&pos))
            .map(|(&c, y)| {
                statrs::distribution::LogNormal::new(2.0 * c + 1.0, (0.5 * c).exp())
                    .expect("statrs")
                    .ln_pdf(y)
            })
            .collect();
        assert_close(
            &values(&d.condition(&c)?.log_prob(&pos)?),
            &want,
            1e-12,
            "conditional log-normal",
        );
    }
    Ok(())
}

// ---- bad input: typed errors, never a panic ----

fn is_param_error(r: R<impl std::fmt::Debug>, param: &str) -> bool {
    matches!(r, Err(Error::InvalidParameter { param: p, .. }) if p == param)
}

fn is_shape_error(r: R<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::ShapeMismatch { .. }))
}

#[test]
fn bad_affine_parameters_are_typed_errors() {
    assert!(is_param_error(AffineTransform::new(1.0, 0.0), "scale"));
    assert!(is_param_error(AffineTransform::new(1.0, f64::NAN), "scale"));
    assert!(is_param_error(
        AffineTransform::new(f64::INFINITY, 1.0),
        "loc"
    ));
    let with_zero = tensor(&[1.0, 0.0, 2.0], &[3], DType::F64);
    assert!(is_param_error(
        AffineTransform::new(0.0, &with_zero),
        "scale"
    ));
    let with_nan = tensor(&[1.0, f64::NAN], &[2], DType::F32);
    assert!(is_param_error(
        AffineTransform::new(0.0, &with_nan),
        "scale"
    ));
    assert!(is_param_error(
        AffineTransform::from_log_scale(0.0, -1e4),
        "log_scale"
    ));
    let underflow = tensor(&[0.0, -1e4], &[2], DType::F64);
    assert!(is_param_error(
        AffineTransform::from_log_scale(0.0, &underflow),
        "log_scale"
    ));

    let conditional = ConditionalAffine::new(|c: &Tensor| Ok((c.clone(), c.zeros_like()?)));
    assert!(is_param_error(
        conditional.condition(&tensor(&[1.0], &[1], DType::F64)),
        "scale"
    ));
}

#[test]
fn shape_mismatches_are_typed_errors() -> R {
    let three = tensor(&[1.0, 2.0, 3.0], &[3], DType::F64);
    let two = tensor(&[1.0, 2.0], &[2], DType::F64);
    // loc and scale that do not broadcast
    assert!(is_shape_error(AffineTransform::new(&three, &two)));
    // a value that does not broadcast with the parameters
    let t = AffineTransform::new(&three, 2.0)?;
    assert!(is_shape_error(t.forward(&two)));
    assert!(is_shape_error(t.inverse(&two)));
    assert!(is_shape_error(t.log_abs_det_jacobian(&two, &two)));
    // a transform acting on more dims than the value has
    let t = AffineTransform::new(0.0, 2.0)?.with_event_dim(2);
    assert!(is_shape_error(t.forward(&three)));
    assert!(is_shape_error(
        ExpTransform
            .independent(2)
            .log_abs_det_jacobian(&three, &three)
    ));
    // a conditional map whose loc and scale do not broadcast
    let bad = ConditionalAffine::new(|c: &Tensor| {
        Ok((c.clone(), Tensor::ones(2, c.dtype(), c.device())?))
    });
    assert!(is_shape_error(bad.condition(&three)));

    // a base that the transforms' parameters do not broadcast with
    let base = normal(&two, &scalar(1.0));
    assert!(is_shape_error(TransformedDistribution::new(
        base.clone(),
        vec![AffineTransform::new(&three, 1.0)?.shared()]
    )));
    // transforms acting on more dims than the base has
    let scalar_base = normal(&scalar(0.0), &scalar(1.0));
    assert!(is_shape_error(TransformedDistribution::new(
        scalar_base.clone(),
        vec![ExpTransform.independent(1).shared()]
    )));
    // values of the wrong event or batch shape
    let d = TransformedDistribution::new(
        base,
        vec![AffineTransform::new(0.0, 2.0)?.with_event_dim(1).shared()],
    )?;
    assert!(is_shape_error(d.log_prob(&three)));
    assert!(is_shape_error(d.to_base(&three)));
    assert!(is_shape_error(d.from_base(&tensor(
        &[1.0; 6],
        &[2, 3],
        DType::F64
    ))));
    // expanding to a batch the parameters broadcast beyond
    let d = TransformedDistribution::new(
        scalar_base,
        vec![AffineTransform::new(&three, 1.0)?.shared()],
    )?;
    assert!(d.expand(&[1]).is_err());
    assert_eq!(d.expand(&[2, 3])?.batch_shape(), &[2, 3]);
    // a chain of shared references composes like the transforms themselves
    let shared: Vec<TransformRef> = vec![Arc::new(ExpTransform), Arc::new(SigmoidTransform)];
    assert_eq!(
        ComposeTransform::new(shared).codomain(),
        Support::UnitInterval
    );
    Ok(())
}
