//! The concrete distributions: log-densities against statrs, reparameterised gradients against
//! finite differences and inverse-CDF derivatives, sample moments, typed errors, and shapes.

use candle_core::{DType, Device, Tensor, Var};
use ppl_core::dist::{
    Bernoulli, Beta, Categorical, Delta, DistExt, DistRef, Distribution, Exponential, Gamma,
    LogNormal, Normal, Uniform,
};
use ppl_core::rng::from_seed;
use ppl_core::Error;
use proptest::prelude::*;
use statrs::distribution as sd;
use statrs::distribution::{Continuous, ContinuousCDF, Discrete};
use statrs::statistics::Distribution as _;

const CPU: Device = Device::Cpu;

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::new(values, &CPU).unwrap().reshape(shape).unwrap()
}

fn host(x: &Tensor) -> Vec<f64> {
    x.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Elementwise `|got - want| <= tol · max(1, |want|)`, with equal infinities accepted.
fn close(got: &[f64], want: &[f64], tol: f64) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("lengths {} and {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * w.abs().max(1.0)
        };
        if !ok {
            return Err(format!("element {i}: got {g}, want {w}"));
        }
    }
    Ok(())
}

/// The reference for values of shape `[S, A, B]` against parameters broadcast from `[A, 1]` and
/// `[B]`: element `(s, i, j)` sees `a[i]` and `b[j]`.
fn pairwise(a: &[f64], b: &[f64], x: &[f64], f: impl Fn(f64, f64, f64) -> f64) -> Vec<f64> {
    let (na, nb) = (a.len(), b.len());
    x.iter()
        .enumerate()
        .map(|(k, &x)| f(a[(k / nb) % na], b[k % nb], x))
        .collect()
}

const A: usize = 3;
const B: usize = 4;
const S: usize = 2;

fn vec_in(range: std::ops::Range<f64>, n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(range, n)
}

/// Runs `log_prob` on values of shape `[S, A, B]` for a distribution whose batch shape is
/// `[A, B]`, checking the output shape.
fn log_prob_grid(d: &dyn Distribution, x: &[f64]) -> Vec<f64> {
    assert_eq!(d.batch_shape(), &[A, B]);
    let lp = d.log_prob(&t(x, &[S, A, B])).unwrap();
    assert_eq!(lp.dims(), &[S, A, B]);
    host(&lp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn normal_log_prob_matches_statrs(
        loc in vec_in(-5.0..5.0, A), scale in vec_in(0.1..5.0, B), x in vec_in(-10.0..10.0, S * A * B)
    ) {
        let d = Normal::new(t(&loc, &[A, 1]), t(&scale, &[B])).unwrap();
        let want = pairwise(&loc, &scale, &x, |m, s, x| sd::Normal::new(m, s).unwrap().ln_pdf(x));
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-12).is_ok());
        // number parameters take the fast path; it must agree too
        let d = Normal::new(loc[0], scale[0]).unwrap();
        let x0 = Tensor::new(x[0], &CPU).unwrap().to_dtype(DType::F32).unwrap();
        let got = d.log_prob(&x0).unwrap().to_scalar::<f32>().unwrap() as f64;
        let want = sd::Normal::new(loc[0], scale[0]).unwrap().ln_pdf(x[0] as f32 as f64);
        prop_assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{} vs {}", got, want);
    }

    #[test]
    fn lognormal_log_prob_matches_statrs(
        loc in vec_in(-2.0..2.0, A), scale in vec_in(0.1..3.0, B), x in vec_in(-1.0..20.0, S * A * B)
    ) {
        let d = LogNormal::new(t(&loc, &[A, 1]), t(&scale, &[B])).unwrap();
        let want = pairwise(&loc, &scale, &x, |m, s, x| {
            if x <= 0.0 { f64::NEG_INFINITY } else { sd::LogNormal::new(m, s).unwrap().ln_pdf(x) }
        });
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-12).is_ok());
    }

    #[test]
    fn uniform_log_prob_matches_statrs(
        low in vec_in(-5.0..5.0, A), width in vec_in(0.1..5.0, B), x in vec_in(-6.0..11.0, S * A * B)
    ) {
        let high: Vec<f64> = (0..A * B).map(|k| low[k / B] + width[k % B]).collect();
        let d = Uniform::new(t(&low, &[A, 1]), t(&high, &[A, B])).unwrap();
        let want: Vec<f64> = x.iter().enumerate().map(|(k, &x)| {
            let (l, h) = (low[(k / B) % A], high[k % (A * B)]);
            sd::Uniform::new(l, h).unwrap().ln_pdf(x)
        }).collect();
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-12).is_ok());
    }

    #[test]
    fn exponential_log_prob_matches_statrs(
        rate in vec_in(0.1..5.0, B), x in vec_in(-1.0..10.0, S * A * B)
    ) {
        let d = Exponential::new(t(&rate, &[B])).unwrap().expand(&[A, B]).unwrap();
        let want = pairwise(&[0.0; A], &rate, &x, |_, r, x| {
            if x < 0.0 { f64::NEG_INFINITY } else { sd::Exp::new(r).unwrap().ln_pdf(x) }
        });
        prop_assert!(close(&log_prob_grid(&*d, &x), &want, 1e-12).is_ok());
    }

    #[test]
    fn gamma_log_prob_matches_statrs(
        conc in vec_in(0.1..10.0, A), rate in vec_in(0.1..5.0, B), x in vec_in(-1.0..30.0, S * A * B)
    ) {
        let d = Gamma::new(t(&conc, &[A, 1]), t(&rate, &[B])).unwrap();
        let want = pairwise(&conc, &rate, &x, |a, b, x| {
            if x < 0.0 { f64::NEG_INFINITY } else { sd::Gamma::new(a, b).unwrap().ln_pdf(x) }
        });
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-10).is_ok());
    }

    #[test]
    fn beta_log_prob_matches_statrs(
        c1 in vec_in(0.1..10.0, A), c0 in vec_in(0.1..10.0, B), x in vec_in(-0.2..1.2, S * A * B)
    ) {
        let d = Beta::new(t(&c1, &[A, 1]), t(&c0, &[B])).unwrap();
        let want = pairwise(&c1, &c0, &x, |a, b, x| {
            if !(0.0..=1.0).contains(&x) { f64::NEG_INFINITY } else { sd::Beta::new(a, b).unwrap().ln_pdf(x) }
        });
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-10).is_ok());
    }

    #[test]
    fn bernoulli_log_prob_matches_statrs(
        probs in prop::collection::vec(prop_oneof![Just(0.0), Just(1.0), 0.0..1.0], A * B),
        logits in vec_in(-8.0..8.0, A * B),
        x in prop::collection::vec(prop::bool::ANY, S * A * B),
    ) {
        let x: Vec<f64> = x.into_iter().map(|b| b as u8 as f64).collect();
        let d = Bernoulli::from_probs(t(&probs, &[A, B])).unwrap();
        let want: Vec<f64> = x.iter().enumerate()
            .map(|(k, &x)| sd::Bernoulli::new(probs[k % (A * B)]).unwrap().ln_pmf(x as u64))
            .collect();
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-12).is_ok());

        let d = Bernoulli::from_logits(t(&logits, &[A, B])).unwrap();
        let want: Vec<f64> = x.iter().enumerate().map(|(k, &x)| {
            let p = 1.0 / (1.0 + (-logits[k % (A * B)]).exp());
            sd::Bernoulli::new(p).unwrap().ln_pmf(x as u64)
        }).collect();
        prop_assert!(close(&log_prob_grid(&d, &x), &want, 1e-10).is_ok());
    }

    // statrs' Categorical needs its `std` feature, which this build leaves off: the reference
    // is the closed form ln(w_k / Σ w).
    #[test]
    fn categorical_log_prob_matches_closed_form(
        w in vec_in(0.01..1.0, A * B), x in prop::collection::vec(0usize..B, S * A)
    ) {
        let xf: Vec<f64> = x.iter().map(|&k| k as f64).collect();
        let want: Vec<f64> = x.iter().enumerate().map(|(n, &k)| {
            let row = &w[(n % A) * B..(n % A + 1) * B];
            (row[k] / row.iter().sum::<f64>()).ln()
        }).collect();
        let probs = Categorical::from_probs(t(&w, &[A, B])).unwrap();
        let logw: Vec<f64> = w.iter().map(|w| w.ln() + 3.0).collect();
        let logits = Categorical::from_logits(t(&logw, &[A, B])).unwrap();
        for d in [&probs, &logits] {
            prop_assert_eq!(d.batch_shape(), &[A]);
            let lp = d.log_prob(&t(&xf, &[S, A])).unwrap();
            prop_assert_eq!(lp.dims(), &[S, A]);
            prop_assert!(close(&host(&lp), &want, 1e-12).is_ok());
        }
    }
}

#[test]
fn delta_log_prob_is_zero_at_the_point_only() {
    let v = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let d = Delta::new(&v, 1).unwrap();
    assert_eq!((d.batch_shape(), d.event_shape()), (&[2][..], &[3][..]));
    let x = t(
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 5.5, 6.0],
        &[2, 2, 3],
    );
    let lp = d.log_prob(&x).unwrap();
    assert_eq!(lp.dims(), &[2, 2]);
    assert_eq!(host(&lp), vec![0.0, 0.0, 0.0, f64::NEG_INFINITY]);
    let ld = d.with_log_density(&t(&[-0.5, 0.25], &[2])).unwrap();
    assert_eq!(host(&ld.log_prob(&v).unwrap()), vec![-0.5, 0.25]);
}

// ---------------------------------------------------------------------------------------------
// Reparameterised gradients

type Maker = dyn Fn(&[Tensor]) -> ppl_core::Result<DistRef>;

/// A smooth, non-linear objective of a reparameterised draw, with a fixed seed so that every
/// evaluation sees the same noise.
fn objective(d: &dyn Distribution) -> Tensor {
    let x = d.rsample(&mut from_seed(11), &[5]).unwrap();
    x.sin().unwrap().sum_all().unwrap()
}

/// Autograd gradients of [`objective`] in every parameter element against central differences.
fn check_rsample_grads(make: &Maker, params: &[Vec<f64>], tol: f64) {
    let vars: Vec<Var> = params
        .iter()
        .map(|p| Var::new(p.as_slice(), &CPU).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let d = make(&ts).unwrap();
    assert!(d.has_rsample());
    let grads = objective(&*d).backward().unwrap();
    for (pi, p) in params.iter().enumerate() {
        let g = host(grads.get(vars[pi].as_tensor()).unwrap());
        for j in 0..p.len() {
            let h = 1e-6 * p[j].abs().max(1.0);
            let at = |delta: f64| {
                let ts: Vec<Tensor> = params
                    .iter()
                    .enumerate()
                    .map(|(qi, q)| {
                        let mut q = q.clone();
                        if qi == pi {
                            q[j] += delta;
                        }
                        Tensor::new(q.as_slice(), &CPU).unwrap()
                    })
                    .collect();
                objective(&*make(&ts).unwrap()).to_scalar::<f64>().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (g[j] - fd).abs() <= tol * fd.abs().max(1.0),
                "{}: d/d param {pi}[{j}] = {}, finite difference {fd}",
                d.name(),
                g[j]
            );
        }
    }
}

#[test]
fn rsample_gradients_match_finite_differences() {
    let loc = vec![-1.0, 0.5, 2.0];
    let scale = vec![0.5, 1.0, 2.5];
    check_rsample_grads(
        &|p| Ok(Normal::new(&p[0], &p[1])?.shared()),
        &[loc.clone(), scale.clone()],
        1e-6,
    );
    check_rsample_grads(
        &|p| Ok(LogNormal::new(&p[0], &p[1])?.shared()),
        &[loc.clone(), vec![0.1, 0.3, 0.7]],
        1e-6,
    );
    check_rsample_grads(
        &|p| Ok(Uniform::new(&p[0], &p[1])?.shared()),
        &[loc.clone(), vec![0.0, 2.0, 7.0]],
        1e-6,
    );
    check_rsample_grads(
        &|p| Ok(Exponential::new(&p[0])?.shared()),
        std::slice::from_ref(&scale),
        1e-6,
    );
    check_rsample_grads(&|p| Ok(Delta::new(&p[0], 0)?.shared()), &[loc], 1e-6);
    // The rate of a gamma only rescales the draw, so the same seed gives the same noise.
    let conc = Tensor::new(&[0.3f64, 1.0, 4.0], &CPU).unwrap();
    check_rsample_grads(
        &move |p| Ok(Gamma::new(&conc, &p[0])?.shared()),
        &[scale],
        1e-6,
    );
}

#[test]
fn gamma_rsample_gradient_is_the_inverse_cdf_derivative() {
    // dz/dα at fixed u = F(z; α) equals d/dα F⁻¹(u; α): checked per draw against central
    // differences of statrs' quantile function.
    let alphas = [0.05, 0.3, 0.9, 1.0, 2.5, 7.0, 40.0];
    let a = Var::new(&alphas, &CPU).unwrap();
    let d = Gamma::new(a.as_tensor(), 1.0).unwrap();
    let z = d.rsample(&mut from_seed(5), &[4]).unwrap();
    assert_eq!(z.dims(), &[4, alphas.len()]);
    // each draw depends on its own α only, so the gradient of each row sum is dz/dα per draw
    for row in 0..4 {
        let zr = z.get(row).unwrap();
        let g = host(
            zr.sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(a.as_tensor())
                .unwrap(),
        );
        for (j, (&alpha, &zj)) in alphas.iter().zip(&host(&zr)).enumerate() {
            let u = sd::Gamma::new(alpha, 1.0).unwrap().cdf(zj);
            let h = 1e-4 * alpha;
            let q = |a: f64| sd::Gamma::new(a, 1.0).unwrap().inverse_cdf(u);
            let want = (q(alpha + h) - q(alpha - h)) / (2.0 * h);
            assert!(
                (g[j] - want).abs() <= 1e-4 * want.abs().max(zj.max(1e-3)),
                "draw {row}, α = {alpha}, z = {zj}: dz/dα = {}, inverse-cdf derivative {want}",
                g[j]
            );
        }
    }
}

/// The mean over `n` draws of the gradient of `f(draw)` in each of the two parameters,
/// with its standard error.
fn mean_gradient(
    make: &dyn Fn(&Tensor, &Tensor) -> ppl_core::Result<DistRef>,
    p: [f64; 2],
    n: usize,
    f: fn(&Tensor) -> Tensor,
) -> Vec<(f64, f64)> {
    // one parameter per draw (a batch of n copies), so that per-draw gradients can be read off
    let a = Var::new(vec![p[0]; n], &CPU).unwrap();
    let b = Var::new(vec![p[1]; n], &CPU).unwrap();
    let d = make(a.as_tensor(), b.as_tensor()).unwrap();
    let x = d.rsample(&mut from_seed(17), &[]).unwrap();
    let grads = f(&x).sum_all().unwrap().backward().unwrap();
    [&a, &b]
        .iter()
        .map(|v| {
            let g = host(grads.get(v.as_tensor()).unwrap());
            let mean = g.iter().sum::<f64>() / n as f64;
            let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (mean, (var / n as f64).sqrt())
        })
        .collect()
}

#[test]
fn beta_and_gamma_rsample_gradients_are_unbiased() {
    // d/dα E[f(X)] = E[d f(X)/dα] for a reparameterised X: checked on closed-form moments,
    // within 4 standard errors at a fixed seed.
    let (a, b) = (2.0, 3.0);
    let beta = |x: &Tensor, y: &Tensor| Ok(Beta::new(x, y)?.shared());
    let first = mean_gradient(&beta, [a, b], 4000, |x| x.clone());
    let want = [b / (a + b).powi(2), -a / (a + b).powi(2)];
    for ((m, se), w) in first.iter().zip(want) {
        assert!((m - w).abs() < 4.0 * se, "E[dB/dθ] = {m} ± {se}, want {w}");
    }
    // E[B²] = a(a+1) / ((a+b)(a+b+1))
    let second = mean_gradient(&beta, [a, b], 4000, |x| x.sqr().unwrap());
    let m2 = |a: f64, b: f64| a * (a + 1.0) / ((a + b) * (a + b + 1.0));
    let h = 1e-6;
    let want = [
        (m2(a + h, b) - m2(a - h, b)) / (2.0 * h),
        (m2(a, b + h) - m2(a, b - h)) / (2.0 * h),
    ];
    for ((m, se), w) in second.iter().zip(want) {
        assert!((m - w).abs() < 4.0 * se, "E[dB²/dθ] = {m} ± {se}, want {w}");
    }
    // E[Gamma(α, β)] = α / β, with α < 1 to exercise the boosted sampler
    let gamma = |x: &Tensor, y: &Tensor| Ok(Gamma::new(x, y)?.shared());
    let g = mean_gradient(&gamma, [0.4, 2.0], 4000, |x| x.clone());
    for ((m, se), w) in g.iter().zip([1.0 / 2.0, -0.4 / 4.0]) {
        assert!((m - w).abs() < 4.0 * se, "E[dZ/dθ] = {m} ± {se}, want {w}");
    }
}

#[test]
fn rsample_value_is_the_draw() {
    // the implicit-gradient surrogate must not move the value: rsample and sample agree exactly
    for d in [
        Gamma::new(t(&[0.2, 3.0], &[2]), 2.0).unwrap().shared(),
        Beta::new(t(&[0.5, 4.0], &[2]), 1.5).unwrap().shared(),
        Normal::new(t(&[0.5, 4.0], &[2]), 1.5).unwrap().shared(),
    ] {
        let s = d.sample(&mut from_seed(9), &[50]).unwrap();
        let r = d.rsample(&mut from_seed(9), &[50]).unwrap();
        assert_eq!(host(&s), host(&r), "{}", d.name());
    }
}

// ---------------------------------------------------------------------------------------------
// Sampling

/// Draws `n` values of a scalar distribution and checks the sample mean within 5 standard
/// errors of the distribution's mean and the sample variance within `var_tol` relative, with
/// `mean()`/`variance()` themselves checked against the given closed forms.
fn check_moments(d: &dyn Distribution, mean: f64, var: f64, var_tol: f64) {
    close(&host(&d.mean().unwrap()), &[mean], 1e-12)
        .unwrap_or_else(|e| panic!("{} mean: {e}", d.name()));
    close(&host(&d.variance().unwrap()), &[var], 1e-12)
        .unwrap_or_else(|e| panic!("{} variance: {e}", d.name()));
    let n = 20_000;
    let x = host(&d.sample(&mut from_seed(1), &[n]).unwrap());
    assert_eq!(x.len(), n);
    let m = x.iter().sum::<f64>() / n as f64;
    let v = x.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    assert!(
        (m - mean).abs() < 5.0 * (var / n as f64).sqrt(),
        "{}: sample mean {m}, want {mean}",
        d.name()
    );
    assert!(
        (v - var).abs() < var_tol * var,
        "{}: sample variance {v}, want {var}",
        d.name()
    );
    let support = d.support();
    assert!(
        support
            .check(&d.sample(&mut from_seed(2), &[n]).unwrap())
            .unwrap(),
        "{}: draws outside {support}",
        d.name()
    );
}

fn f64_param(x: f64) -> Tensor {
    Tensor::new(x, &CPU).unwrap()
}

#[test]
fn sample_moments_match_the_closed_forms() {
    let p = f64_param;
    let (m, s) = (0.3f64, 0.5f64);
    let lognormal_var = (s * s).exp_m1() * (2.0 * m + s * s).exp();
    check_moments(&Normal::new(p(1.5), 2.0).unwrap(), 1.5, 4.0, 0.05);
    let ln = LogNormal::new(p(m), s).unwrap();
    assert!((host(&ln.mean().unwrap())[0] - (m + s * s / 2.0).exp()).abs() < 1e-12);
    check_moments(&ln, host(&ln.mean().unwrap())[0], lognormal_var, 0.1);
    check_moments(&Uniform::new(p(-1.0), 3.0).unwrap(), 1.0, 16.0 / 12.0, 0.05);
    check_moments(&Exponential::new(p(2.0)).unwrap(), 0.5, 0.25, 0.05);
    for (a, r) in [(0.3, 1.0), (1.0, 2.0), (5.0, 0.5)] {
        let d = Gamma::new(p(a), r).unwrap();
        let stat = sd::Gamma::new(a, r).unwrap();
        check_moments(&d, stat.mean().unwrap(), stat.variance().unwrap(), 0.08);
    }
    for (a, b) in [(0.5, 0.5), (2.0, 5.0)] {
        let d = Beta::new(p(a), b).unwrap();
        let stat = sd::Beta::new(a, b).unwrap();
        check_moments(&d, stat.mean().unwrap(), stat.variance().unwrap(), 0.05);
    }
    check_moments(&Bernoulli::from_probs(p(0.3)).unwrap(), 0.3, 0.21, 0.05);
    let d = Bernoulli::from_logits(p(-1.0)).unwrap();
    let q = 1.0 / (1.0 + 1f64.exp());
    close(&host(&d.mean().unwrap()), &[q], 1e-12).unwrap();
    let x = host(&d.sample(&mut from_seed(4), &[20_000]).unwrap());
    let freq = x.iter().sum::<f64>() / x.len() as f64;
    assert!(
        (freq - q).abs() < 5.0 * (q * (1.0 - q) / 20_000.0).sqrt(),
        "{freq} vs {q}"
    );
    // Bernoulli(0) and Bernoulli(1) are certain, also in f32
    let edge = Bernoulli::from_probs(Tensor::new(&[0.0f32, 1.0], &CPU).unwrap()).unwrap();
    let x = edge.sample(&mut from_seed(3), &[5000]).unwrap();
    assert_eq!(host(&x.sum(0).unwrap()), vec![0.0, 5000.0]);
}

#[test]
fn categorical_frequencies_match_the_probabilities() {
    let probs = [0.1, 0.2, 0.0, 0.7];
    let n = 20_000;
    for d in [
        Categorical::from_probs(t(&probs, &[4])).unwrap(),
        Categorical::from_logits(t(
            &[0.1f64.ln(), 0.2f64.ln(), f64::NEG_INFINITY, 0.7f64.ln()],
            &[4],
        ))
        .unwrap(),
    ] {
        let x = host(&d.sample(&mut from_seed(8), &[n]).unwrap());
        for (k, &p) in probs.iter().enumerate() {
            let freq = x.iter().filter(|&&v| v == k as f64).count() as f64 / n as f64;
            assert!(
                (freq - p).abs() <= 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
                "class {k}: frequency {freq}, probability {p}"
            );
        }
    }
    // batched: each row draws from its own probabilities
    let d = Categorical::from_probs(t(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3])).unwrap();
    let x = d.sample(&mut from_seed(0), &[7]).unwrap();
    assert_eq!(x.dims(), &[7, 2]);
    assert!(host(&x).chunks(2).all(|r| r == [0.0, 2.0]));
}

#[test]
fn the_same_seed_gives_the_same_draws() {
    let p = f64_param;
    let dists: Vec<DistRef> = vec![
        Normal::new(p(0.0), 1.0).unwrap().shared(),
        LogNormal::new(p(0.0), 1.0).unwrap().shared(),
        Uniform::new(p(0.0), 1.0).unwrap().shared(),
        Exponential::new(p(1.0)).unwrap().shared(),
        Gamma::new(p(0.7), 1.0).unwrap().shared(),
        Beta::new(p(0.7), 2.0).unwrap().shared(),
        Bernoulli::from_probs(p(0.4)).unwrap().shared(),
        Categorical::from_probs(t(&[0.2, 0.3, 0.5], &[3]))
            .unwrap()
            .shared(),
    ];
    for d in dists {
        let a = host(&d.sample(&mut from_seed(21), &[64]).unwrap());
        let b = host(&d.sample(&mut from_seed(21), &[64]).unwrap());
        let c = host(&d.sample(&mut from_seed(22), &[64]).unwrap());
        assert_eq!(a, b, "{}", d.name());
        assert_ne!(a, c, "{}", d.name());
    }
}

#[test]
fn draws_have_the_distribution_dtype_device_and_shape() {
    let loc = Tensor::zeros((2, 3), DType::F32, &CPU).unwrap();
    let d = Normal::new(&loc, 1.0).unwrap();
    let x = d.sample(&mut from_seed(0), &[4, 5]).unwrap();
    assert_eq!((x.dims(), x.dtype()), (&[4, 5, 2, 3][..], DType::F32));
    let s = Normal::standard((2, 3), DType::F64, &CPU).unwrap();
    assert_eq!(s.batch_shape(), &[2, 3]);
    assert_eq!(
        s.sample(&mut from_seed(0), &[]).unwrap().dtype(),
        DType::F64
    );
    // numbers alone give f32 on the CPU
    let g = Gamma::new(2.0, 1.0).unwrap();
    assert_eq!((g.dtype(), g.batch_shape()), (DType::F32, &[][..]));
    assert_eq!(g.sample(&mut from_seed(0), &[3]).unwrap().dims(), &[3]);
}

// ---------------------------------------------------------------------------------------------
// Bad input

fn param_error<T: std::fmt::Debug>(r: ppl_core::Result<T>, dist: &str, param: &str) {
    match r {
        Err(Error::InvalidParameter {
            dist: d, param: p, ..
        }) if d == dist && p == param => {}
        other => panic!("expected an invalid `{param}` of {dist}, got {other:?}"),
    }
}

#[test]
fn invalid_parameters_are_typed_errors() {
    let nan = f64::NAN;
    param_error(Normal::new(0.0, -1.0), "Normal", "scale");
    param_error(Normal::new(0.0, 0.0), "Normal", "scale");
    param_error(Normal::new(t(&[0.0, nan], &[2]), 1.0), "Normal", "loc");
    param_error(Normal::new(0.0, f64::INFINITY), "Normal", "scale");
    param_error(LogNormal::new(0.0, nan), "LogNormal", "scale");
    param_error(Uniform::new(1.0, 0.0), "Uniform", "high");
    param_error(Uniform::new(t(&[0.0, 2.0], &[2]), 1.0), "Uniform", "high");
    param_error(Uniform::new(nan, 1.0), "Uniform", "low");
    param_error(Bernoulli::from_probs(1.5), "Bernoulli", "probs");
    param_error(
        Bernoulli::from_probs(t(&[0.5, -0.1], &[2])),
        "Bernoulli",
        "probs",
    );
    param_error(Bernoulli::from_logits(nan), "Bernoulli", "logits");
    param_error(
        Categorical::from_probs(t(&[0.5, 1.5], &[2])),
        "Categorical",
        "probs",
    );
    param_error(
        Categorical::from_probs(t(&[0.0, 0.0, 0.5, 0.5], &[2, 2])),
        "Categorical",
        "probs",
    );
    param_error(Categorical::from_probs(0.5), "Categorical", "probs");
    param_error(
        Categorical::from_logits(t(&[0.0, nan], &[2])),
        "Categorical",
        "logits",
    );
    param_error(
        Categorical::from_logits(t(&[f64::NEG_INFINITY; 2], &[2])),
        "Categorical",
        "logits",
    );
    param_error(Gamma::new(0.0, 1.0), "Gamma", "concentration");
    param_error(Gamma::new(1.0, -2.0), "Gamma", "rate");
    param_error(Beta::new(1.0, -1.0), "Beta", "concentration0");
    param_error(Beta::new(nan, 1.0), "Beta", "concentration1");
    param_error(Exponential::new(0.0), "Exponential", "rate");
    param_error(Delta::new(&t(&[1.0], &[1]), 2), "Delta", "event_dim");
    param_error(Delta::new(&t(&[nan], &[1]), 0), "Delta", "value");
    // the message names the parameter and the value
    let msg = Normal::new(0.0, -3.0).unwrap_err().to_string();
    assert!(msg.contains("scale") && msg.contains("-3"), "{msg}");
}

#[test]
fn shape_and_dtype_errors_are_typed() {
    let a = t(&[0.0, 1.0, 2.0], &[3]);
    let b = t(&[1.0, 1.0, 1.0, 1.0], &[4]);
    match Normal::new(&a, &b) {
        Err(Error::ShapeMismatch { context, .. }) => {
            assert!(context.contains("Normal"), "{context}")
        }
        other => panic!("{other:?}"),
    }
    let a_pos = a.affine(1.0, 1.0).unwrap();
    assert!(matches!(
        Gamma::new(&a_pos, &b),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Beta::new(&a_pos, &b),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Uniform::new(&a, b.affine(1.0, 5.0).unwrap()),
        Err(Error::ShapeMismatch { .. })
    ));
    let d = Normal::new(&a, 1.0).unwrap();
    assert!(matches!(d.log_prob(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(d.expand(&[4]), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        d.log_prob(&a.to_dtype(DType::F32).unwrap()),
        Err(Error::Usage(_))
    ));
    let delta = Delta::new(&t(&[1.0, 2.0], &[2]), 1).unwrap();
    assert!(matches!(
        delta.log_prob(&a),
        Err(Error::ShapeMismatch { .. })
    ));
    let ints = Tensor::new(&[1u32, 2], &CPU).unwrap();
    assert!(matches!(
        Normal::new(&ints, 1.0),
        Err(Error::Unsupported { .. })
    ));
    assert!(Exponential::new(1.0)
        .unwrap()
        .rsample(&mut from_seed(0), &[2])
        .is_ok());
    assert!(matches!(
        Bernoulli::from_probs(0.5)
            .unwrap()
            .rsample(&mut from_seed(0), &[]),
        Err(Error::NotReparameterizable { dist: "Bernoulli" })
    ));
}

/// `log_prob` of `values` is `-inf` exactly where `outside`, and the gradient of their sum in
/// every parameter is finite.
fn check_outside(
    make: &dyn Fn(&[Tensor]) -> DistRef,
    params: &[&[f64]],
    values: &[f64],
    outside: &[bool],
) {
    let vars: Vec<Var> = params.iter().map(|p| Var::new(*p, &CPU).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let d = make(&ts);
    let lp = d.log_prob(&Tensor::new(values, &CPU).unwrap()).unwrap();
    let lpv = host(&lp);
    for ((v, l), &out) in values.iter().zip(&lpv).zip(outside) {
        assert_eq!(
            *l == f64::NEG_INFINITY,
            out,
            "{}: log_prob({v}) = {l}",
            d.name()
        );
        assert!(!l.is_nan(), "{}: log_prob({v}) is NaN", d.name());
    }
    // mask the -inf entries out of the objective, as a trace under a mask would
    let finite = lp.ne(f64::NEG_INFINITY).unwrap();
    let zeros = lp.zeros_like().unwrap();
    let total = finite.where_cond(&lp, &zeros).unwrap().sum_all().unwrap();
    let grads = total.backward().unwrap();
    let grads_all = lp.sum_all().unwrap().backward().unwrap();
    for v in &vars {
        for g in [&grads, &grads_all] {
            let g = host(g.get(v.as_tensor()).unwrap());
            assert!(
                g.iter().all(|x| x.is_finite()),
                "{}: gradient {g:?}",
                d.name()
            );
        }
    }
}

#[test]
fn log_prob_outside_the_support_is_neg_inf_with_finite_gradients() {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let bad = [-1.0, -inf, inf, nan];
    let mut values = vec![0.5, 2.0];
    values.extend(bad);
    let pos_out = [false, false, true, true, true, true];
    check_outside(
        &|p| LogNormal::new(&p[0], &p[1]).unwrap().shared(),
        &[&[0.0; 6], &[1.0; 6]],
        &values,
        &pos_out,
    );
    check_outside(
        &|p| Exponential::new(&p[0]).unwrap().shared(),
        &[&[1.5; 6]],
        &values,
        &pos_out,
    );
    check_outside(
        &|p| Gamma::new(&p[0], &p[1]).unwrap().shared(),
        &[&[0.5; 6], &[2.0; 6]],
        &values,
        &pos_out,
    );
    check_outside(
        &|p| Uniform::new(&p[0], &p[1]).unwrap().shared(),
        &[&[0.0; 6], &[1.0; 6]],
        &values,
        &[false, true, true, true, true, true],
    );
    check_outside(
        &|p| Beta::new(&p[0], &p[1]).unwrap().shared(),
        &[&[2.0; 6], &[0.5; 6]],
        &values,
        &[false, true, true, true, true, true],
    );
    // Beta at the ends: x^(α-1) with α = 1 is 1, not 0·(-inf)
    check_outside(
        &|p| Beta::new(&p[0], &p[1]).unwrap().shared(),
        &[&[1.0, 1.0], &[1.0, 1.0]],
        &[0.0, 1.0],
        &[false, false],
    );
    check_outside(
        &|p| Bernoulli::from_probs(&p[0]).unwrap().shared(),
        &[&[0.3, 0.0, 1.0, 0.3, 0.3, 0.3]],
        &[1.0, 0.0, 1.0, 0.5, 2.0, nan],
        &[false, false, false, true, true, true],
    );
    check_outside(
        &|p| Bernoulli::from_logits(&p[0]).unwrap().shared(),
        &[&[0.3; 4]],
        &[1.0, 0.0, -1.0, inf],
        &[false, false, true, true],
    );
    // a zero probability of one class must not poison the gradient of the others
    check_outside(
        &|p| {
            Categorical::from_probs(p[0].reshape((1, 3)).unwrap())
                .unwrap()
                .shared()
        },
        &[&[0.5, 0.0, 0.5]],
        &[0.0, 2.0, 3.0, 1.5, -1.0, nan],
        &[false, false, true, true, true, true],
    );
    check_outside(
        &|p| {
            Categorical::from_logits(p[0].reshape((1, 3)).unwrap())
                .unwrap()
                .shared()
        },
        &[&[0.5, -2.0, 0.5]],
        &[0.0, 2.0, 3.0, 1.5],
        &[false, false, true, true],
    );
    // Bernoulli(0) at 1 and Categorical with p = 0 at that class: -inf inside the support
    let d = Bernoulli::from_probs(0.0f64).unwrap();
    let x = Tensor::new(&[1.0f32], &CPU).unwrap();
    assert_eq!(host(&d.log_prob(&x).unwrap()), vec![f64::NEG_INFINITY]);
}

// ---------------------------------------------------------------------------------------------
// Shapes

#[test]
fn enumerate_support_shapes_and_values() {
    let d = Bernoulli::from_probs(Tensor::full(0.3f64, (3, 2), &CPU).unwrap()).unwrap();
    assert!(d.has_enumerate_support());
    let e = d.enumerate_support(false).unwrap();
    assert_eq!(e.dims(), &[2, 1, 1]);
    assert_eq!(host(&e), vec![0.0, 1.0]);
    let e = d.enumerate_support(true).unwrap();
    assert_eq!(e.dims(), &[2, 3, 2]);
    // the log-probabilities of the support sum to one
    let lp = d.log_prob(&e).unwrap();
    let total = host(&lp.exp().unwrap().sum(0).unwrap());
    close(&total, &[1.0; 6], 1e-12).unwrap();

    let probs = t(
        &[
            0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 1.0, 0.0, 0.0, 0.0,
        ],
        &[3, 4],
    );
    let d = Categorical::from_probs(&probs).unwrap();
    assert_eq!(d.enumerate_support(false).unwrap().dims(), &[4, 1]);
    let e = d.enumerate_support(true).unwrap();
    assert_eq!(e.dims(), &[4, 3]);
    assert_eq!(&host(&e)[..6], &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let lp = d.log_prob(&d.enumerate_support(false).unwrap()).unwrap();
    assert_eq!(lp.dims(), &[4, 3]);
    let total = host(&lp.exp().unwrap().sum(0).unwrap());
    close(&total, &[1.0; 3], 1e-12).unwrap();
    // integer class indices are accepted
    let idx = Tensor::new(&[3u32, 0, 0], &CPU).unwrap();
    close(
        &host(&d.log_prob(&idx).unwrap()),
        &[0.4f64.ln(), 0.25f64.ln(), 0.0],
        1e-12,
    )
    .unwrap();

    assert!(!Normal::new(0.0, 1.0).unwrap().has_enumerate_support());
    assert!(matches!(
        Normal::new(0.0, 1.0).unwrap().enumerate_support(true),
        Err(Error::Unsupported { .. })
    ));
}

#[test]
fn expand_and_to_event_shapes() {
    let loc = t(&[0.0, 1.0, 2.0], &[3]);
    let d = Normal::new(&loc, 2.0).unwrap();
    let e = d.expand(&[2, 3]).unwrap();
    assert_eq!(e.batch_shape(), &[2, 3]);
    assert_eq!(
        e.sample(&mut from_seed(0), &[5]).unwrap().dims(),
        &[5, 2, 3]
    );
    let x = t(&[0.5, 1.5, -1.0], &[3]);
    let lp = e.log_prob(&x).unwrap();
    assert_eq!(lp.dims(), &[2, 3]);
    let base = host(&d.log_prob(&x).unwrap());
    close(&host(&lp)[3..], &base, 0.0).unwrap();

    let i = Normal::new(t(&[0.0; 6], &[2, 3]), 1.0)
        .unwrap()
        .to_event(1)
        .unwrap();
    assert_eq!((i.batch_shape(), i.event_shape()), (&[2][..], &[3][..]));
    let y = i.sample(&mut from_seed(0), &[4]).unwrap();
    assert_eq!(y.dims(), &[4, 2, 3]);
    assert_eq!(i.log_prob(&y).unwrap().dims(), &[4, 2]);

    let c = Categorical::from_logits(t(&[0.0; 8], &[2, 4])).unwrap();
    assert_eq!(c.batch_shape(), &[2]);
    let ce = c.expand(&[5, 2]).unwrap();
    assert_eq!(ce.batch_shape(), &[5, 2]);
    assert_eq!(ce.sample(&mut from_seed(1), &[]).unwrap().dims(), &[5, 2]);
    close(
        &host(&ce.log_prob(&t(&[3.0], &[1])).unwrap()),
        &[-(4f64.ln()); 10],
        1e-12,
    )
    .unwrap();

    let all: Vec<DistRef> = vec![
        LogNormal::new(&loc, 1.0).unwrap().shared(),
        Uniform::new(&loc, 5.0).unwrap().shared(),
        Exponential::new(loc.affine(1.0, 1.0).unwrap())
            .unwrap()
            .shared(),
        Gamma::new(loc.affine(1.0, 1.0).unwrap(), 1.0)
            .unwrap()
            .shared(),
        Beta::new(loc.affine(1.0, 1.0).unwrap(), 1.0)
            .unwrap()
            .shared(),
        Bernoulli::from_logits(&loc).unwrap().shared(),
        Delta::new(&loc, 0).unwrap().shared(),
    ];
    for d in all {
        let e = d.expand(&[4, 3]).unwrap();
        assert_eq!(e.batch_shape(), &[4, 3], "{}", d.name());
        let x = e.sample(&mut from_seed(2), &[2]).unwrap();
        assert_eq!(x.dims(), &[2, 4, 3], "{}", d.name());
        assert_eq!(e.log_prob(&x).unwrap().dims(), &[2, 4, 3], "{}", d.name());
        assert!(
            matches!(d.expand(&[2]), Err(Error::ShapeMismatch { .. })),
            "{}",
            d.name()
        );
    }

    // Delta with an event dim: the sample keeps the event, log_prob sums it out
    let v = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let d = Delta::new(&v, 2).unwrap();
    assert_eq!((d.batch_shape(), d.event_shape()), (&[][..], &[2, 3][..]));
    let x = d.sample(&mut from_seed(0), &[4]).unwrap();
    assert_eq!(x.dims(), &[4, 2, 3]);
    assert_eq!(host(&d.log_prob(&x).unwrap()), vec![0.0; 4]);
}

#[test]
fn support_contains_and_check() {
    use ppl_core::dist::Support;
    let x = t(&[-1.0, 0.0, 0.5, 1.0, 2.0, f64::INFINITY, f64::NAN], &[7]);
    let mask = |s: Support| host(&s.contains(&x).unwrap());
    assert_eq!(mask(Support::Real), vec![1., 1., 1., 1., 1., 0., 0.]);
    assert_eq!(mask(Support::Positive), vec![0., 0., 1., 1., 1., 0., 0.]);
    assert_eq!(
        mask(Support::GreaterThan(0.5)),
        vec![0., 0., 0., 1., 1., 0., 0.]
    );
    assert_eq!(
        mask(Support::UnitInterval),
        vec![0., 1., 1., 1., 0., 0., 0.]
    );
    assert_eq!(
        mask(Support::Interval(-1.0, 0.5)),
        vec![1., 1., 1., 0., 0., 0., 0.]
    );
    assert_eq!(mask(Support::Boolean), vec![0., 1., 0., 1., 0., 0., 0.]);
    assert_eq!(
        mask(Support::IntegerInterval(0, 1)),
        vec![0., 1., 0., 1., 0., 0., 0.]
    );
    assert_eq!(mask(Support::Any), vec![1.; 7]);
    assert!(Support::Simplex
        .check(&t(&[0.2, 0.8, 0.5, 0.5], &[2, 2]))
        .unwrap());
    assert!(!Support::Simplex
        .check(&t(&[0.2, 0.7, 0.5, 0.5], &[2, 2]))
        .unwrap());
    assert!(!Support::Positive.check(&x).unwrap());
    assert!(Support::Boolean.is_discrete() && !Support::Real.is_discrete());
    // supports reported by the distributions
    assert_eq!(
        Uniform::new(-1.0, 2.0).unwrap().support(),
        Support::Interval(-1.0, 2.0)
    );
    assert_eq!(
        Uniform::new(t(&[0.0, -3.0], &[2]), t(&[1.0, 4.0], &[2]))
            .unwrap()
            .support(),
        Support::Interval(-3.0, 4.0)
    );
    assert_eq!(
        Categorical::from_probs(t(&[0.5, 0.5, 0.0], &[3]))
            .unwrap()
            .support(),
        Support::IntegerInterval(0, 2)
    );
}
