//! The special functions against statrs and the standard library, in f32 and f64, with their
//! autograd derivatives.

use candle_core::{DType, Device, Tensor, Var};
use ppl_core::special;
use statrs::function::beta::ln_beta;
use statrs::function::gamma::{digamma, ln_gamma};

type TensorFn = fn(&Tensor) -> ppl_core::Result<Tensor>;

/// Arguments from 1e-8 to 1e8: a log-spaced sweep plus a fine grid over (0, 20] where the shift
/// and the series meet.
fn positive_args() -> Vec<f64> {
    let mut xs: Vec<f64> = (0..=64)
        .map(|i| 10f64.powf(-8.0 + 16.0 * i as f64 / 64.0))
        .collect();
    xs.extend((1..=400).map(|i| i as f64 * 0.05));
    xs.extend([
        0.5,
        1.0,
        1.461_632_144_968_362,
        2.0,
        5.999_999,
        6.0,
        6.000_001,
    ]);
    xs
}

/// Evaluates `f` elementwise in `dtype`; also returns the inputs as rounded to `dtype`, which
/// are the points the references must be computed at.
fn eval(f: TensorFn, xs: &[f64], dtype: DType) -> (Vec<f64>, Vec<f64>) {
    let x = Tensor::new(xs, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    let y = f(&x).unwrap();
    assert_eq!(y.dims(), x.dims());
    assert_eq!(y.dtype(), dtype);
    let y = y.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    let x = x.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    (x, y)
}

/// Asserts `|got - want| <= tol * max(1, |want|)` elementwise (relative for large values,
/// absolute near zeros of the function).
fn assert_close(name: &str, xs: &[f64], got: &[f64], want: &[f64], tol: f64) {
    for ((x, g), w) in xs.iter().zip(got).zip(want) {
        let err = (g - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{name}({x:e}) = {g:e}, want {w:e} (error {err:e} > {tol:e})"
        );
    }
}

/// The derivative of `f` by candle's autograd, in `dtype`.
fn grad(f: TensorFn, xs: &[f64], dtype: DType) -> Vec<f64> {
    let x = Var::from_tensor(
        &Tensor::new(xs, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap(),
    )
    .unwrap();
    let y = f(x.as_tensor()).unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    g.get(x.as_tensor())
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

#[test]
fn lgamma_matches_statrs_in_f64() {
    let (xs, got) = eval(special::lgamma, &positive_args(), DType::F64);
    let want: Vec<f64> = xs.iter().map(|&x| ln_gamma(x)).collect();
    assert_close("lgamma", &xs, &got, &want, 1e-13);
}

#[test]
fn lgamma_matches_statrs_in_f32() {
    let (xs, got) = eval(special::lgamma, &positive_args(), DType::F32);
    let want: Vec<f64> = xs.iter().map(|&x| ln_gamma(x)).collect();
    assert_close("lgamma", &xs, &got, &want, 3e-6);
}

#[test]
fn lgamma_is_nan_off_its_domain() {
    let (_, got) = eval(special::lgamma, &[-1.5, -3.0], DType::F64);
    assert!(got.iter().all(|v| v.is_nan()), "{got:?}");
}

#[test]
fn digamma_matches_statrs() {
    let args = positive_args();
    let (xs, got) = eval(special::digamma, &args, DType::F64);
    let want: Vec<f64> = xs.iter().map(|&x| digamma(x)).collect();
    assert_close("digamma", &xs, &got, &want, 1e-12);
    let (xs, got) = eval(special::digamma, &args, DType::F32);
    let want: Vec<f64> = xs.iter().map(|&x| digamma(x)).collect();
    assert_close("digamma", &xs, &got, &want, 3e-6);
}

#[test]
fn lgamma_differentiates_to_digamma() {
    let args = positive_args();
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 5e-6)] {
        let (xs, _) = eval(special::lgamma, &args, dtype);
        let got = grad(special::lgamma, &args, dtype);
        let want: Vec<f64> = xs.iter().map(|&x| digamma(x)).collect();
        assert_close("d lgamma", &xs, &got, &want, tol);
    }
}

#[test]
fn digamma_differentiates_to_trigamma() {
    // trigamma by a central difference of statrs' digamma, away from the smallest arguments
    // where the difference itself is inaccurate.
    let args: Vec<f64> = positive_args().into_iter().filter(|&x| x > 1e-3).collect();
    let got = grad(special::digamma, &args, DType::F64);
    let want: Vec<f64> = args
        .iter()
        .map(|&x| {
            let h = 1e-5 * x;
            (digamma(x + h) - digamma(x - h)) / (2.0 * h)
        })
        .collect();
    assert_close("d digamma", &args, &got, &want, 1e-5);
}

fn log1p_args() -> Vec<f64> {
    let mut xs = vec![
        -0.999_999, -0.9, -0.5, -0.3, 0.0, 0.3, 0.999, 1.0, 3.0, 1e10, 1e300,
    ];
    for e in 1..=30 {
        let x = 10f64.powi(-e);
        xs.push(x);
        xs.push(-x);
    }
    xs
}

/// Asserts full relative accuracy: `|got - want| <= tol * |want|`, the property that `log1p`
/// and `expm1` exist for (the naive formulas lose every digit for tiny arguments).
fn assert_rel(name: &str, xs: &[f64], got: &[f64], want: &[f64], tol: f64) {
    for ((x, g), w) in xs.iter().zip(got).zip(want) {
        let err = (g - w).abs();
        assert!(
            err <= tol * w.abs(),
            "{name}({x:e}) = {g:e}, want {w:e} (relative error {:e})",
            err / w.abs()
        );
    }
}

#[test]
fn log1p_is_accurate_for_tiny_and_large_arguments() {
    for (dtype, tol) in [(DType::F64, 1e-15), (DType::F32, 1e-6)] {
        let mut args = log1p_args();
        if dtype == DType::F32 {
            args.retain(|x| (*x as f32).is_finite());
        }
        let (xs, got) = eval(special::log1p, &args, dtype);
        let want: Vec<f64> = xs.iter().map(|x| x.ln_1p()).collect();
        assert_rel("log1p", &xs, &got, &want, tol);
    }
    let (_, ends) = eval(special::log1p, &[-1.0, f64::INFINITY], DType::F64);
    assert_eq!(ends, vec![f64::NEG_INFINITY, f64::INFINITY]);
    let xs = [1e-20, -0.5, 3.0];
    let g = grad(special::log1p, &xs, DType::F64);
    assert_close("d log1p", &xs, &g, &[1.0, 2.0, 0.25], 1e-15);
}

#[test]
fn expm1_is_accurate_for_tiny_and_large_arguments() {
    let mut args = log1p_args();
    args.retain(|x| x.abs() < 700.0);
    args.extend([-50.0, -700.0, 20.0, 700.0]);
    for (dtype, tol) in [(DType::F64, 1e-15), (DType::F32, 1e-6)] {
        let args: Vec<f64> = if dtype == DType::F32 {
            args.iter().copied().filter(|x| x.abs() < 80.0).collect()
        } else {
            args.clone()
        };
        let (xs, got) = eval(special::expm1, &args, dtype);
        let want: Vec<f64> = xs.iter().map(|x| x.exp_m1()).collect();
        assert_rel("expm1", &xs, &got, &want, tol);
    }
    let (_, ends) = eval(special::expm1, &[f64::NEG_INFINITY, 1000.0], DType::F64);
    assert_eq!(ends, vec![-1.0, f64::INFINITY]);
    let xs = [1e-20, -2.0, 3.0];
    let g = grad(special::expm1, &xs, DType::F64);
    let want: Vec<f64> = xs.iter().map(|x| x.exp()).collect();
    assert_close("d expm1", &xs, &g, &want, 1e-15);
}

/// `ln(1 + e^x)` on the host, in the stable form.
fn softplus_ref(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[test]
fn softplus_and_log_sigmoid_are_stable() {
    let args = [-1000.0, -50.0, -3.0, -1e-10, 0.0, 1e-10, 2.0, 40.0, 1000.0];
    for (dtype, tol) in [(DType::F64, 1e-15), (DType::F32, 1e-6)] {
        // relative: at x = -50 the value is e^-50, which ln(1 + e^x) would round to 0
        let (xs, got) = eval(special::softplus, &args, dtype);
        let want: Vec<f64> = xs.iter().map(|&x| softplus_ref(x)).collect();
        assert_rel("softplus", &xs, &got, &want, tol);

        let (xs, got) = eval(special::log_sigmoid, &args, dtype);
        let want: Vec<f64> = xs.iter().map(|&x| -softplus_ref(-x)).collect();
        assert_close("log_sigmoid", &xs, &got, &want, tol);
    }
    // d softplus = sigmoid, finite everywhere (also at the kink of max(x, 0))
    let g = grad(special::softplus, &args, DType::F64);
    let want: Vec<f64> = args.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
    assert_close("d softplus", &args, &g, &want, 1e-15);
    let g = grad(special::log_sigmoid, &args, DType::F64);
    let want: Vec<f64> = args.iter().map(|&x| 1.0 / (1.0 + x.exp())).collect();
    assert_close("d log_sigmoid", &args, &g, &want, 1e-15);
}

#[test]
fn logit_inverts_the_sigmoid() {
    let ps = [1e-12, 1e-3, 0.25, 0.5, 0.75, 0.999, 1.0 - 1e-12];
    let (xs, got) = eval(special::logit, &ps, DType::F64);
    let want: Vec<f64> = xs.iter().map(|&p| (p / (1.0 - p)).ln()).collect();
    assert_close("logit", &xs, &got, &want, 1e-12);
    let (_, ends) = eval(special::logit, &[0.0, 1.0], DType::F64);
    assert_eq!(ends, vec![f64::NEG_INFINITY, f64::INFINITY]);
    let (xs, got) = eval(special::logit, &[0.1, 0.5, 0.9], DType::F32);
    let want: Vec<f64> = xs.iter().map(|&p| (p / (1.0 - p)).ln()).collect();
    assert_close("logit", &xs, &got, &want, 1e-6);
    // d logit = 1 / (p (1 - p))
    let g = grad(special::logit, &[0.2, 0.5], DType::F64);
    assert_close("d logit", &[0.2, 0.5], &g, &[6.25, 4.0], 1e-12);
}

#[test]
fn lbeta_matches_statrs_and_broadcasts() {
    let a_vals = [1e-3, 0.5, 1.0, 2.5, 40.0, 1e4];
    let b_vals = [0.2, 3.0, 700.0];
    // lbeta is a difference of lgammas, so its error scales with their size, not with the result.
    for (dtype, tol) in [(DType::F64, 1e-13), (DType::F32, 1e-6)] {
        let a = Tensor::new(&a_vals, &Device::Cpu)
            .unwrap()
            .reshape((6, 1))
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let b = Tensor::new(&b_vals, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let got = special::lbeta(&a, &b).unwrap();
        assert_eq!(got.dims(), &[6, 3]);
        let got = got.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
        let a64 = a
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let b64 = b.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        for (i, &ai) in a64.iter().enumerate() {
            for (j, &bj) in b64.iter().enumerate() {
                let want = ln_beta(ai, bj);
                let scale = ln_gamma(ai).abs() + ln_gamma(bj).abs() + ln_gamma(ai + bj).abs();
                let err = (got[i][j] - want).abs();
                assert!(
                    err <= tol * scale.max(1.0),
                    "lbeta({ai}, {bj}) = {}, want {want}",
                    got[i][j]
                );
            }
        }
    }
    let bad = special::lbeta(
        &Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap(),
        &Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap(),
    );
    assert!(matches!(bad, Err(ppl_core::Error::ShapeMismatch { .. })));
}
