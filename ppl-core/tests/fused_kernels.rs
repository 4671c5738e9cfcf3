//! The one-pass CPU kernels behind the Bernoulli, Normal and log-normal distributions,
//! `softplus`/`log1p`, the parallel uniform draws and parameter validation, against closed forms
//! computed here in f64.

use candle_core::{DType, Device, Tensor, Var};
use ppl_core::dist::{mechanism_of, Bernoulli, Distribution, LogNormal, Normal};
use ppl_core::{rng, special};

const CPU: Device = Device::Cpu;

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Values in (0, 1) spread over the range, deterministic.
fn probs(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect()
}

#[test]
fn parallel_uniform_draws_equal_sequential_ones_and_avoid_the_endpoints() {
    // 100,000 draws split over threads (above the 65,536 threshold) against the same stream
    // drawn in two calls that each stay on one thread.
    for dtype in [DType::F32, DType::F64] {
        let mut r = rng::from_seed(7);
        let all = v64(&rng::uniform01(&mut r, 100_000, dtype, &CPU).unwrap());
        let after_all = v64(&rng::uniform01(&mut r, 3, dtype, &CPU).unwrap());
        let mut r = rng::from_seed(7);
        let mut halves = v64(&rng::uniform01(&mut r, 50_000, dtype, &CPU).unwrap());
        halves.extend(v64(&rng::uniform01(&mut r, 50_000, dtype, &CPU).unwrap()));
        let after_halves = v64(&rng::uniform01(&mut r, 3, dtype, &CPU).unwrap());
        assert_eq!(all, halves, "{dtype:?}: the split changed the draws");
        assert_eq!(
            after_all, after_halves,
            "{dtype:?}: the stream was not advanced"
        );
        assert!(all.iter().all(|&u| u > 0.0 && u < 1.0));
        // Mean of U(0, 1): sd of the mean sqrt(1/12/n) = 0.00091; 4 sd.
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!(
            (mean - 0.5).abs() < 4.0 * (1.0 / 12.0 / 1e5f64).sqrt(),
            "{mean}"
        );
    }
}

#[test]
fn bernoulli_log_prob_is_exact_with_worlds_broadcast_and_its_gradient_is_the_score() {
    let n = 1000;
    let p = probs(n);
    let pv = Var::from_vec(p.clone(), n, &CPU).unwrap();
    // Two rows (say two worlds) of values against one row of probabilities; 0.5 is off the
    // support.
    let x: Vec<f64> = (0..2 * n)
        .map(|k| match k % 7 {
            0 => 0.5,
            1 | 3 | 4 => 1.0,
            _ => 0.0,
        })
        .collect();
    let xt = Tensor::from_vec(x.clone(), (2, n), &CPU).unwrap();
    let d = Bernoulli::from_probs(pv.as_tensor()).unwrap();
    let lp = d.log_prob(&xt).unwrap();
    assert_eq!(lp.dims(), [2, n]);
    let got = v64(&lp);
    for (k, (&g, &xk)) in got.iter().zip(&x).enumerate() {
        let pk = p[k % n];
        let want = if xk == 1.0 {
            pk.ln()
        } else if xk == 0.0 {
            (-pk).ln_1p()
        } else {
            f64::NEG_INFINITY
        };
        assert!(g == want || (g - want).abs() < 1e-14, "{k}: {g} vs {want}");
    }
    // The gradient of the in-support terms: Σ_worlds x/p − (1 − x)/(1 − p).
    let inside = Tensor::from_vec(
        x.iter()
            .map(|&v| if v == 0.5 { 0.0 } else { 1.0 })
            .collect::<Vec<f64>>(),
        (2, n),
        &CPU,
    )
    .unwrap();
    let masked = inside
        .ne(0.0)
        .unwrap()
        .where_cond(&lp, &Tensor::zeros((2, n), DType::F64, &CPU).unwrap())
        .unwrap();
    let grads = masked.sum_all().unwrap().backward().unwrap();
    let g = v64(grads.get(pv.as_tensor()).unwrap());
    for (i, &gi) in g.iter().enumerate() {
        let want: f64 = [x[i], x[n + i]]
            .iter()
            .map(|&v| {
                if v == 1.0 {
                    1.0 / p[i]
                } else if v == 0.0 {
                    -1.0 / (1.0 - p[i])
                } else {
                    0.0
                }
            })
            .sum();
        assert!(
            (gi - want).abs() < 1e-9 * want.abs().max(1.0),
            "{i}: {gi} vs {want}"
        );
    }
}

#[test]
fn bernoulli_logits_log_prob_and_gradient() {
    let l: Vec<f64> = (0..200).map(|i| -60.0 + 0.6 * i as f64).collect();
    let lv = Var::from_vec(l.clone(), l.len(), &CPU).unwrap();
    let x: Vec<f64> = (0..l.len()).map(|i| (i % 2) as f64).collect();
    let d = Bernoulli::from_logits(lv.as_tensor()).unwrap();
    let lp = d
        .log_prob(&Tensor::from_vec(x.clone(), l.len(), &CPU).unwrap())
        .unwrap();
    let got = v64(&lp);
    let grads = lp.sum_all().unwrap().backward().unwrap();
    let g = v64(grads.get(lv.as_tensor()).unwrap());
    for i in 0..l.len() {
        // log σ(l) = −softplus(−l), log(1 − σ(l)) = −softplus(l), in f64 by hand.
        let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
        let want = if x[i] == 1.0 {
            -softplus(-l[i])
        } else {
            -softplus(l[i])
        };
        assert!((got[i] - want).abs() < 1e-12 * want.abs().max(1.0), "{i}");
        let sigmoid = 1.0 / (1.0 + (-l[i]).exp());
        assert!((g[i] - (x[i] - sigmoid)).abs() < 1e-12, "{i}");
    }
}

#[test]
fn bernoulli_f32_log_prob_keeps_the_digits_of_small_probabilities() {
    // ln(1 − p) for p = 1e-7 is −1.0000000500e-7; ln of the rounded 1 − p would give
    // −1.1920929e-7 (19% off).
    let p = [1e-7f32, 3e-5, 0.25, 0.999];
    let d = Bernoulli::from_probs(Tensor::new(&p, &CPU).unwrap()).unwrap();
    let lp = d
        .log_prob(&Tensor::zeros(4, DType::F32, &CPU).unwrap())
        .unwrap();
    for (g, &pk) in v64(&lp).iter().zip(&p) {
        let want = (-(pk as f64)).ln_1p();
        assert!((g - want).abs() < 2e-7 * want.abs(), "{pk}: {g} vs {want}");
    }
}

#[test]
fn bernoulli_draws_have_the_right_frequency_and_equal_the_structural_form() {
    let n = 200_000;
    for dtype in [DType::F32, DType::F64] {
        let p = Tensor::from_vec(probs(n), n, &CPU)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let d = Bernoulli::from_probs(&p).unwrap();
        let mut r = rng::from_seed(11);
        let x = d.sample(&mut r, &[]).unwrap();
        let mut r = rng::from_seed(11);
        let m = mechanism_of(&d).unwrap();
        let pushed = m.push(&m.draw_noise(&mut r, &[n]).unwrap()).unwrap();
        assert_eq!(v64(&x), v64(&pushed), "{dtype:?}");
        // E[Σ x] = Σ p = n/2, Var = Σ p(1 − p) ≈ n/6; 4 sd.
        let ones: f64 = v64(&x).iter().sum();
        let sd = (n as f64 / 6.0).sqrt();
        assert!(
            (ones - n as f64 / 2.0).abs() < 4.0 * sd,
            "{dtype:?}: {ones}"
        );
        assert!(v64(&x).iter().all(|&v| v == 0.0 || v == 1.0));
        // Abduction: the noise given x = 1 lies below p, given 0 above it.
        let mut r = rng::from_seed(12);
        let u = v64(&m.abduct(&mut r, &x).unwrap());
        for ((&uk, &xk), pk) in u.iter().zip(&v64(&x)).zip(probs(n)) {
            let tol = if dtype == DType::F32 { 1e-6 } else { 1e-12 };
            assert!(uk > 0.0 && uk < 1.0);
            assert!(if xk == 1.0 {
                uk <= pk + tol
            } else {
                uk >= pk - tol
            });
        }
    }
}

#[test]
fn softplus_and_log1p_match_closed_forms_with_their_derivatives() {
    let xs: Vec<f64> = vec![-80.0, -20.0, -1.0, -1e-9, 0.0, 1e-9, 0.5, 3.0, 40.0, 90.0];
    let x = Var::from_vec(xs.clone(), xs.len(), &CPU).unwrap();
    let sp = special::softplus(x.as_tensor()).unwrap();
    let g = sp.sum_all().unwrap().backward().unwrap();
    let (got, grad) = (v64(&sp), v64(g.get(x.as_tensor()).unwrap()));
    for (i, &v) in xs.iter().enumerate() {
        let want = v.max(0.0) + (-v.abs()).exp().ln_1p();
        assert!(
            (got[i] - want).abs() <= 1e-15 * want.abs().max(1e-300),
            "{v}"
        );
        let sigmoid = 1.0 / (1.0 + (-v).exp());
        assert!((grad[i] - sigmoid).abs() < 1e-15, "{v}");
    }
    let ys: Vec<f64> = vec![-0.999, -0.5, -1e-12, 0.0, 1e-12, 1e-5, 0.75, 10.0];
    let y = Var::from_vec(ys.clone(), ys.len(), &CPU).unwrap();
    let l = special::log1p(y.as_tensor()).unwrap();
    let g = l.sum_all().unwrap().backward().unwrap();
    let (got, grad) = (v64(&l), v64(g.get(y.as_tensor()).unwrap()));
    for (i, &v) in ys.iter().enumerate() {
        assert!((got[i] - v.ln_1p()).abs() <= 1e-15 * v.ln_1p().abs(), "{v}");
        assert!(
            (grad[i] - 1.0 / (1.0 + v)).abs() < 1e-12 * grad[i].abs(),
            "{v}"
        );
    }
    // f32: the rounding of 1 + x is cancelled (1e-6 would be 5% off otherwise).
    let t = Tensor::new(&[1e-6f32, -3e-7, 2e-3], &CPU).unwrap();
    for (g, v) in v64(&special::log1p(&t).unwrap())
        .iter()
        .zip([1e-6f64, -3e-7, 2e-3])
    {
        let v = v as f32 as f64;
        assert!((g - v.ln_1p()).abs() < 2e-7 * v.ln_1p().abs(), "{v}");
    }
}

/// Normal and log-normal with every argument a tensor: values and all three gradients.
#[test]
fn normal_and_log_normal_log_prob_gradients_in_value_loc_and_scale() {
    let n = 50;
    let xs: Vec<f64> = (0..n).map(|i| 0.1 + 0.2 * i as f64).collect();
    let ms: Vec<f64> = (0..n).map(|i| -1.0 + 0.05 * i as f64).collect();
    let ss: Vec<f64> = (0..n).map(|i| 0.3 + 0.04 * i as f64).collect();
    let var = |v: &[f64]| Var::from_vec(v.to_vec(), v.len(), &CPU).unwrap();
    for log_normal in [false, true] {
        let (x, m, s) = (var(&xs), var(&ms), var(&ss));
        let lp = if log_normal {
            LogNormal::new(m.as_tensor(), s.as_tensor())
                .unwrap()
                .log_prob(x.as_tensor())
                .unwrap()
        } else {
            Normal::new(m.as_tensor(), s.as_tensor())
                .unwrap()
                .log_prob(x.as_tensor())
                .unwrap()
        };
        let grads = lp.sum_all().unwrap().backward().unwrap();
        let got = v64(&lp);
        let (gx, gm, gs) = (
            v64(grads.get(x.as_tensor()).unwrap()),
            v64(grads.get(m.as_tensor()).unwrap()),
            v64(grads.get(s.as_tensor()).unwrap()),
        );
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        for i in 0..n {
            let y = if log_normal { xs[i].ln() } else { xs[i] };
            let z = (y - ms[i]) / ss[i];
            let mut want = -0.5 * z * z - ss[i].ln() - half_ln_2pi;
            let mut want_gx = -z / ss[i];
            if log_normal {
                want -= y;
                want_gx = (want_gx - 1.0) / xs[i];
            }
            let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * b.abs().max(1.0);
            assert!(
                close(got[i], want),
                "{log_normal} {i}: {} vs {want}",
                got[i]
            );
            assert!(close(gx[i], want_gx), "{log_normal} {i}: d/dx");
            assert!(close(gm[i], z / ss[i]), "{log_normal} {i}: d/dloc");
            assert!(
                close(gs[i], (z * z - 1.0) / ss[i]),
                "{log_normal} {i}: d/dscale"
            );
        }
    }
    // Off the log-normal's support: −inf, and zero (not NaN) gradients.
    let x = Var::from_vec(vec![-1.0f64, 0.0, 2.0], 3, &CPU).unwrap();
    let m = Var::from_vec(vec![0.0f64; 3], 3, &CPU).unwrap();
    let d = LogNormal::new(m.as_tensor(), 1.0).unwrap();
    let lp = d.log_prob(x.as_tensor()).unwrap();
    let got = v64(&lp);
    assert_eq!(&got[..2], &[f64::NEG_INFINITY; 2]);
    assert!(got[2].is_finite());
    let masked = lp.narrow(0, 2, 1).unwrap();
    let grads = masked.sum_all().unwrap().backward().unwrap();
    for g in [
        v64(grads.get(x.as_tensor()).unwrap()),
        v64(grads.get(m.as_tensor()).unwrap()),
    ] {
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert_eq!(&g[..2], &[0.0, 0.0]);
    }
}

#[test]
fn validation_names_the_first_bad_element_of_large_and_strided_tensors() {
    let n = 200_000;
    let mut p = probs(n);
    p[150_001] = 1.5;
    p[180_000] = -2.0;
    let t = Tensor::from_vec(p, n, &CPU).unwrap();
    let e = Bernoulli::from_probs(&t).unwrap_err().to_string();
    assert!(e.contains("flat index 150001") && e.contains("1.5"), "{e}");
    // A transposed (non-contiguous) tensor: the index is in the tensor's own row-major order.
    let mut q = vec![0.5f64; 6];
    q[1] = f64::NAN; // stored at (row 0, col 1) of a 2 × 3 tensor; (1, 0) of its transpose
    let tt = Tensor::from_vec(q, (2, 3), &CPU).unwrap().t().unwrap();
    let e = Normal::new(&tt, 1.0).unwrap_err().to_string();
    assert!(e.contains("flat index 2"), "{e}");
    // An observed value off the support is refused the same way.
    assert!(!ppl_core::dist::Support::Boolean
        .check(&Tensor::new(&[0.0f32, 1.0, 0.5], &CPU).unwrap())
        .unwrap());
    assert!(ppl_core::dist::Support::Boolean
        .check(&Tensor::new(&[0.0f32, 1.0, 1.0], &CPU).unwrap())
        .unwrap());
}

/// `cpt` against direct indexing: binary parents with a world dim, a ternary parent, five
/// parents (the gather path), and the errors.
#[test]
fn cpt_picks_table_entries_by_parent_values() {
    use ppl_core::causal::cpt;
    // Binary × binary, one parent carrying two worlds.
    let t = Tensor::new(&[[0.02f64, 0.30], [0.005, 0.08]], &CPU).unwrap();
    let young = Tensor::new(&[[0.0f64], [1.0]], &CPU).unwrap();
    let male: Vec<f64> = (0..100_000).map(|i| (i % 3 == 0) as u8 as f64).collect();
    let m = Tensor::from_vec(male.clone(), male.len(), &CPU).unwrap();
    let got = cpt(&t, &[&young, &m]).unwrap();
    assert_eq!(got.dims(), [2, male.len()]);
    let got = got.to_vec2::<f64>().unwrap();
    let tv = [[0.02, 0.30], [0.005, 0.08]];
    for (w, row) in got.iter().enumerate() {
        for (k, &v) in row.iter().enumerate() {
            assert_eq!(v, tv[w][male[k] as usize]);
        }
    }
    // A ternary parent and a binary one, f32.
    let t3: Vec<f32> = (0..6).map(|i| i as f32 / 10.0).collect();
    let t3 = Tensor::from_vec(t3, (3, 2), &CPU).unwrap();
    let a = Tensor::new(&[0.0f32, 1.0, 2.0, 2.0], &CPU).unwrap();
    let b = Tensor::new(&[1.0f32, 0.0, 1.0, 0.0], &CPU).unwrap();
    let got = cpt(&t3, &[&a, &b]).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(got, [0.1, 0.2, 0.5, 0.4]);
    // Five binary parents: table[v0..v4] = their binary number / 32.
    let t5 = Tensor::arange(0f64, 32.0, &CPU)
        .unwrap()
        .affine(1.0 / 32.0, 0.0)
        .unwrap()
        .reshape((2, 2, 2, 2, 2))
        .unwrap();
    let bits: Vec<Tensor> = (0..5)
        .map(|j| {
            let v: Vec<f64> = (0..32).map(|c| ((c >> (4 - j)) & 1) as f64).collect();
            Tensor::from_vec(v, 32, &CPU).unwrap()
        })
        .collect();
    let refs: Vec<&Tensor> = bits.iter().collect();
    let got = cpt(&t5, &refs).unwrap().to_vec1::<f64>().unwrap();
    let want: Vec<f64> = (0..32).map(|c| c as f64 / 32.0).collect();
    assert_eq!(got, want);
    // A value off its dim names the parent, the index and the value.
    let bad = Tensor::new(&[0.0f32, 1.0, 0.5], &CPU).unwrap();
    let e = cpt(&t3, &[&Tensor::new(&[1.0f32; 3], &CPU).unwrap(), &bad])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parent 1") && e.contains("0.5") && e.contains("flat index 2"),
        "{e}"
    );
    let e = cpt(&t3, &[&Tensor::new(&[3.0f32], &CPU).unwrap(), &b])
        .unwrap_err()
        .to_string();
    assert!(e.contains("parent 0") && e.contains("size 3"), "{e}");
    assert!(cpt(&t3, &[&a]).is_err(), "one parent for a two-dim table");
}

/// `weighted_mean` against the sums written out in f64, on 300,000 particles (several
/// threads' chunks) with log weights far below zero, and its refusals.
#[test]
fn weighted_mean_matches_direct_sums() {
    use ppl_core::infer::weighted_mean;
    let n = 300_000;
    let lw: Vec<f64> = (0..n)
        .map(|i| -1000.0 - ((i * 7919) % 1000) as f64 / 100.0)
        .collect();
    let f: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
    let max = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = lw.iter().map(|l| (l - max).exp()).collect();
    let sw: f64 = w.iter().sum();
    let want_mean = w.iter().zip(&f).map(|(w, f)| w * f).sum::<f64>() / sw;
    let want_ess = sw * sw / w.iter().map(|w| w * w).sum::<f64>();
    let want_lz = max + (sw / n as f64).ln();
    for dtype in [DType::F64, DType::F32] {
        let lwt = Tensor::from_vec(lw.clone(), n, &CPU)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let ft = Tensor::from_vec(f.clone(), n, &CPU)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let est = weighted_mean(&lwt, &ft).unwrap();
        // f32 log weights are rounded (spacing 6e-5 near -1000): weights move by that much.
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
        assert!(
            (est.mean - want_mean).abs() < tol * want_mean,
            "{dtype:?} {}",
            est.mean
        );
        assert!(
            (est.ess - want_ess).abs() < tol * want_ess,
            "{dtype:?} {}",
            est.ess
        );
        assert!(
            (est.log_evidence - want_lz).abs() < tol * 1000.0,
            "{dtype:?}"
        );
    }
    let z = Tensor::new(&[f32::NEG_INFINITY; 3], &CPU).unwrap();
    let v = Tensor::new(&[1.0f32; 3], &CPU).unwrap();
    assert!(weighted_mean(&z, &v).is_err());
    assert!(weighted_mean(&v, &Tensor::new(&[1.0f32; 2], &CPU).unwrap()).is_err());
}
