//! TraceElbo, Importance, Predictive and the autoguides against closed forms.

use candle_core::{DType, Device, Tensor, Var};
use ppl_core::dist::{DistRef, Distribution, Normal};
use ppl_core::handlers::{seed, trace};
use ppl_core::infer::{AutoNormal, Guide, Importance, Predictive, TraceElbo};
use ppl_core::rng::Rng;
use ppl_core::runtime::{observe, sample};
use ppl_core::{Error, Result};

const LN_2PI: f64 = 1.8378770664093453;

fn t(x: f64) -> Tensor {
    Tensor::new(x, &Device::Cpu).unwrap()
}

fn log_normal(x: f64, m: f64, s: f64) -> f64 {
    -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * LN_2PI
}

/// z ~ N(0, 1), x | z ~ N(z, 1), x observed.
fn model(x: f64) -> Result<()> {
    let z = sample("z", Normal::new(t(0.0), 1.0)?)?;
    observe("x", Normal::new(&z, 1.0)?, &t(x))?;
    Ok(())
}

#[test]
fn elbo_equals_the_hand_computed_value_for_a_fixed_draw() -> Result<()> {
    let (m, s, x) = (0.3, 0.7, 0.5);
    let mut guide = || sample("z", Normal::new(t(m), s)?);
    let mut elbo = TraceElbo::new();
    let loss = seed(11, || elbo.loss(|| model(x), &mut guide))?;
    // The same seed gives the guide the same draw.
    let z = seed(11, guide)?.to_scalar::<f64>()?;
    let expected = -(log_normal(z, 0.0, 1.0) + log_normal(x, z, 1.0) - log_normal(z, m, s));
    assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    Ok(())
}

/// A Normal that pretends it cannot reparameterise, so the ELBO must use the score function.
#[derive(Debug)]
struct ScoreOnly(Normal);

impl Distribution for ScoreOnly {
    fn name(&self) -> &'static str {
        "ScoreOnly"
    }
    fn batch_shape(&self) -> &[usize] {
        self.0.batch_shape()
    }
    fn event_shape(&self) -> &[usize] {
        self.0.event_shape()
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn device(&self) -> &Device {
        self.0.device()
    }
    fn support(&self) -> ppl_core::dist::Support {
        self.0.support()
    }
    fn sample(&self, rng: &mut Rng, shape: &[usize]) -> Result<Tensor> {
        Ok(self.0.sample(rng, shape)?.detach())
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        self.0.log_prob(value)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let d = self.0.expand(batch_shape)?;
        let loc = d.mean()?;
        let scale = d.variance()?.sqrt()?;
        Ok(std::sync::Arc::new(ScoreOnly(Normal::new(&loc, &scale)?)))
    }
}

/// The gradient of −ELBO with respect to the guide's location, with `p` vectorised particles.
fn grad_wrt_loc(reparam: bool, p: usize) -> Result<f64> {
    let (m0, s, x) = (0.2, 0.5, 1.0);
    let m = Var::new(m0, &Device::Cpu)?;
    let mut guide = || -> Result<Tensor> {
        let d = Normal::new(m.as_tensor(), s)?;
        if reparam {
            sample("z", d)
        } else {
            sample("z", ScoreOnly(d))
        }
    };
    let mut elbo = TraceElbo::new().num_particles(p).vectorize_particles(0);
    let est = seed(5, || elbo.estimate(|| model(x), &mut guide))?;
    let grads = est.surrogate.backward()?;
    Ok(grads
        .get(m.as_tensor())
        .expect("m has a gradient")
        .to_scalar::<f64>()?)
}

#[test]
fn score_function_and_reparameterised_gradients_agree_with_the_exact_gradient() -> Result<()> {
    // ELBO(m, s) = −(m² + s²)/2 − ((x − m)² + s²)/2 + log s + const, so d(−ELBO)/dm = 2m − x.
    let exact = 2.0 * 0.2 - 1.0;
    let p = 20_000;
    // Reparameterised: per-particle gradient 2z − x has sd 2s = 1, so SE = 1/√p ≈ 0.007.
    let g_r = grad_wrt_loc(true, p)?;
    assert!(
        (g_r - exact).abs() < 5.0 / (p as f64).sqrt(),
        "reparam {g_r} vs {exact}"
    );
    // Score function (baseline = the batch mean): per-particle sd ≈ 3 here, SE ≈ 0.02.
    let g_s = grad_wrt_loc(false, p)?;
    assert!((g_s - exact).abs() < 0.1, "score {g_s} vs {exact}");
    Ok(())
}

#[test]
fn importance_with_the_exact_posterior_gives_the_exact_evidence() -> Result<()> {
    // p(x) = N(x; 0, 2); the posterior is N(x/2, 1/2): every weight equals p(x).
    let x = 0.8;
    let mut guide = || sample("z", Normal::new(t(x / 2.0), 0.5f64.sqrt())?);
    let post = seed(0, || {
        Importance::new(50).run_with_guide(|| model(x), &mut guide)
    })?;
    let exact = log_normal(x, 0.0, 2f64.sqrt());
    assert!((post.log_evidence() - exact).abs() < 1e-12);
    assert!((post.effective_sample_size() - 50.0).abs() < 1e-9);
    // With the prior as proposal the estimate is statistical: 20k draws, error well under 0.02.
    let post = seed(1, || Importance::new(20_000).run(|| model(x)))?;
    assert!((post.log_evidence() - exact).abs() < 0.02);
    let mean = post.mean("z")?[0];
    // E[z | x] = 0.4; posterior sd 0.71, ESS ≈ 14k: SE ≈ 0.006.
    assert!((mean - 0.4).abs() < 0.03, "{mean}");
    Ok(())
}

#[test]
fn predictive_draws_observed_sites_from_the_posterior_predictive() -> Result<()> {
    let x = 0.8;
    let mut guide = || sample("z", Normal::new(t(x / 2.0), 0.5f64.sqrt())?);
    let draws = seed(2, || {
        Predictive::new(4000).run_with_guide(|| model(x), &mut guide)
    })?;
    let xs = draws["x"].to_vec1::<f64>()?;
    let mean = xs.iter().sum::<f64>() / 4000.0;
    let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3999.0;
    // x_new ~ N(0.4, 1.5): SE of the mean 0.019, of the variance 0.034.
    assert!((mean - 0.4).abs() < 0.1, "{mean}");
    assert!((var - 1.5).abs() < 0.17, "{var}");
    let kept = seed(2, || {
        Predictive::new(3)
            .keep_observed()
            .return_sites(["x"])
            .run(|| model(x))
    })?;
    assert_eq!(kept["x"].to_vec1::<f64>()?, vec![x; 3]);
    let err = Predictive::new(2)
        .return_sites(["nope"])
        .run(|| model(x))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownSite { .. }), "{err}");
    Ok(())
}

#[test]
fn autonormal_follows_plates_and_minibatches() -> Result<()> {
    // A local latent per data point, subsampled 3 of 10 per run.
    let data = Tensor::arange(0.0f64, 10.0, &Device::Cpu)?;
    let mut model = || -> Result<()> {
        ppl_core::runtime::Plate::new("data", 10)
            .subsample_size(3)
            .run(|p| {
                let z = sample(
                    "z",
                    Normal::new(&Tensor::zeros(3, DType::F64, &Device::Cpu)?, 1.0)?,
                )?;
                let y = data.index_select(p.indices()?, 0)?;
                observe("y", Normal::new(&z, 1.0)?, &y)?;
                Ok(())
            })
    };
    let mut guide = AutoNormal::new();
    let store = ppl_core::params::ParamStore::new();
    store.scope(|| -> Result<()> {
        let (_, gtr) = seed(3, || trace(|| guide.call(&mut model)))?;
        // Parameters have the plate's full size; the draw has the minibatch's.
        assert_eq!(guide.loc("z")?.dims(), &[10]);
        assert_eq!(gtr.value("z")?.dims(), &[3]);
        assert_eq!(gtr.site("z")?.scale, 10.0 / 3.0);
        // The model replays the guide's minibatch.
        let (_, mtr) = trace(|| ppl_core::handlers::replay(&gtr, model))?;
        assert_eq!(
            mtr.value("data")?.to_vec1::<u32>()?,
            gtr.value("data")?.to_vec1::<u32>()?
        );
        Ok(())
    })?;
    // Discrete latent sites are refused with the site's name.
    let discrete = || sample("c", ppl_core::dist::Bernoulli::from_probs(0.5)?);
    let err = AutoNormal::new()
        .call(&mut || discrete().map(|_| ()))
        .unwrap_err();
    assert!(err.to_string().contains("`c`"), "{err}");
    Ok(())
}

#[test]
fn a_non_finite_loss_names_the_site_and_keeps_the_last_finite_parameters() -> Result<()> {
    use ppl_core::infer::Svi;
    use ppl_core::optim::Sgd;
    use ppl_core::params::ParamStore;
    use ppl_core::runtime::{factor, param};
    // log p − 100 p is maximal at p = 0.01; a plain SGD step of 1 from p = 0.5 overshoots to
    // p = 0.5 − (100 − 1/0.5) = −97.5, where log p is NaN.
    let model = || -> Result<()> {
        let p = param("p", || Ok(t(0.5)))?;
        factor("objective", &(p.log()? - (&p * 100.0)?)?)
    };
    let store = ParamStore::new();
    let mut svi =
        Svi::new(model, || Ok(()), Sgd::new(1.0), TraceElbo::new()).with_store(store.clone());
    let first = svi.step()?;
    assert!((first - (50.0 - 0.5f64.ln())).abs() < 1e-9);
    let p_after = store
        .scope(|| store.get("p"))?
        .unwrap()
        .to_scalar::<f64>()?;
    assert!((p_after + 97.5).abs() < 1e-9, "{p_after}");
    let err = svi.step().unwrap_err();
    match &err {
        Error::NonFinite { site, .. } => assert_eq!(site, "objective"),
        other => panic!("expected NonFinite, got {other}"),
    }
    let p_kept = store.get("p")?.unwrap().to_scalar::<f64>()?;
    assert_eq!(p_kept, p_after);
    Ok(())
}
