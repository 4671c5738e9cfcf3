//! Exact enumeration against hand-computed posteriors.

use candle_core::{DType, Device, Tensor};
use ppl_core::dist::{Bernoulli, Categorical, Normal};
use ppl_core::handlers::{condition, do_};
use ppl_core::infer::{enumerate, Enumerate};
use ppl_core::runtime::{plate, sample, Intervention};
use ppl_core::{Error, Result};

fn t(x: f64) -> Tensor {
    Tensor::new(x, &Device::Cpu).unwrap()
}

fn val(tr: &ppl_core::handlers::Trace, name: &str) -> Result<f64> {
    Ok(tr.value(name)?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Rain → Sprinkler, (Rain, Sprinkler) → WetGrass, with the classic CPTs.
fn sprinkler() -> Result<Tensor> {
    let rain = sample("rain", Bernoulli::from_probs(t(0.2))?)?;
    let r = rain.to_scalar::<f64>()?;
    let sprinkler = sample(
        "sprinkler",
        Bernoulli::from_probs(t(if r == 1.0 { 0.01 } else { 0.4 }))?,
    )?;
    let s = sprinkler.to_scalar::<f64>()?;
    let p_wet = match (s == 1.0, r == 1.0) {
        (false, false) => 0.0,
        (false, true) => 0.8,
        (true, false) => 0.9,
        (true, true) => 0.99,
    };
    sample("wet", Bernoulli::from_probs(t(p_wet))?)
}

#[test]
fn sprinkler_posterior_is_exact() -> Result<()> {
    let post = enumerate(|| condition([("wet", t(1.0))], sprinkler))?;
    // Joint of (rain, sprinkler, wet = 1), by hand.
    let j = |r: f64, s: f64| -> f64 {
        let pr = if r == 1.0 { 0.2 } else { 0.8 };
        let ps1 = if r == 1.0 { 0.01 } else { 0.4 };
        let ps = if s == 1.0 { ps1 } else { 1.0 - ps1 };
        let pw = match (s == 1.0, r == 1.0) {
            (false, false) => 0.0,
            (false, true) => 0.8,
            (true, false) => 0.9,
            (true, true) => 0.99,
        };
        pr * ps * pw
    };
    let evidence = j(0., 0.) + j(0., 1.) + j(1., 0.) + j(1., 1.);
    assert_eq!(post.len(), 4);
    assert!((post.log_evidence() - evidence.ln()).abs() < 1e-12);
    let p_rain = post.probability(|tr| Ok(val(tr, "rain")? == 1.0))?;
    assert!((p_rain - (j(1., 0.) + j(1., 1.)) / evidence).abs() < 1e-12);
    let m = post.marginal("sprinkler")?;
    assert_eq!(m.values, vec![vec![0.0], vec![1.0]]);
    assert!((m.prob(&[1.0]) - (j(0., 1.) + j(1., 1.)) / evidence).abs() < 1e-12);
    assert!((m.probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    Ok(())
}

#[test]
fn intervention_cuts_the_parent_and_leaves_the_joint() -> Result<()> {
    // P(wet | do(sprinkler = 1)) = Σ_r P(r) P(wet | s = 1, r).
    let post = enumerate(|| do_([("sprinkler", 1.0)], sprinkler))?;
    let p = post.probability(|tr| Ok(val(tr, "wet")? == 1.0))?;
    assert!((p - (0.8 * 0.9 + 0.2 * 0.99)).abs() < 1e-12);
    // The intervened site is drawn, not enumerated: 2 (rain) × 2 (wet) assignments.
    assert_eq!(post.len(), 4);
    assert!(post.log_evidence().abs() < 1e-12);
    Ok(())
}

#[test]
fn function_interventions_enumerate_the_factual_value() -> Result<()> {
    // do(sprinkler := 1 - sprinkler): the factual value matters and keeps its probability.
    let flip = Intervention::func(|x| Ok((1.0 - x)?));
    let post = enumerate(|| do_([("sprinkler", flip.clone())], sprinkler))?;
    let p = post.probability(|tr| Ok(val(tr, "wet")? == 1.0))?;
    // rain = 1: sprinkler' = 1 w.p. 0.99; rain = 0: sprinkler' = 1 w.p. 0.6.
    let expected = 0.2 * (0.99 * 0.99 + 0.01 * 0.8) + 0.8 * (0.6 * 0.9 + 0.4 * 0.0);
    assert!((p - expected).abs() < 1e-12);
    assert!(post.log_evidence().abs() < 1e-12);
    Ok(())
}

#[test]
fn batched_sites_enumerate_every_element() -> Result<()> {
    // Three iid coins with bias θ ∈ {0.2, 0.7} (uniform prior); two heads observed in total.
    let model = || -> Result<()> {
        let theta_ix = sample(
            "theta",
            Categorical::from_probs(&Tensor::new(&[0.5f64, 0.5], &Device::Cpu)?)?,
        )?;
        let theta = if theta_ix.to_scalar::<f64>()? == 0.0 {
            0.2
        } else {
            0.7
        };
        let coins = plate("coins", 3, |_| {
            sample("coin", Bernoulli::from_probs(t(theta))?)
        })?;
        assert_eq!(coins.dims(), &[3]);
        let heads = coins.sum_all()?.to_scalar::<f64>()?;
        ppl_core::runtime::factor(
            "two_heads",
            &t(if heads == 2.0 { 0.0 } else { f64::NEG_INFINITY }),
        )
    };
    let post = enumerate(model)?;
    assert_eq!(post.len(), 2 * 8);
    let lik = |p: f64| 3.0 * p * p * (1.0 - p);
    let p7 = post.probability(|tr| Ok(val(tr, "theta")? == 1.0))?;
    assert!((p7 - lik(0.7) / (lik(0.2) + lik(0.7))).abs() < 1e-12);
    assert!((post.log_evidence() - (0.5 * lik(0.2) + 0.5 * lik(0.7)).ln()).abs() < 1e-12);
    // Each coin is heads with probability 2/3 given two heads of three.
    let coin_mean = post.marginal("coin")?.mean();
    for m in coin_mean {
        assert!((m - 2.0 / 3.0).abs() < 1e-12);
    }
    Ok(())
}

#[test]
fn continuous_latents_and_impossible_evidence_are_errors() {
    let err = enumerate(|| sample("x", Normal::new(0.0, 1.0)?)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("`x`"), "{err}");

    let err = enumerate(|| {
        let a = sample("a", Bernoulli::from_probs(t(0.0))?)?;
        condition([("b", t(1.0))], || sample("b", Bernoulli::from_probs(&a)?))
    })
    .unwrap_err();
    assert!(err.to_string().contains("impossible"), "{err}");

    let err = Enumerate::new()
        .max_assignments(100)
        .run(|| plate("p", 10, |_| sample("c", Bernoulli::from_probs(t(0.5))?)))
        .unwrap_err();
    assert!(err.to_string().contains("`c`"), "{err}");
}
