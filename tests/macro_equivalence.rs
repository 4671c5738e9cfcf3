//! `#[model]` only names and scopes: a model written with the macro and the same model written
//! with plain runtime calls produce the same trace under one seed — the same site names in the
//! same order, bit-identical values, the same plates, kinds and flags, and the same log-joint.

use ppl::prelude::*;

/// A sub-model: its sites are scoped under the name it is called by.
#[model]
fn encoder(x: &Tensor) -> Result<Tensor> {
    let loc = deterministic!((x * 0.5)?);
    let z = sample!(Normal::new(&loc, 1.0)?);
    Ok(z)
}

fn encoder_by_hand(x: &Tensor) -> Result<Tensor> {
    let loc = deterministic("loc", &(x * 0.5)?)?;
    sample("z", Normal::new(&loc, 1.0)?)
}

/// A global latent, a constrained parameter, a plate holding two calls of one sub-model (the
/// second renamed), a deterministic node, an observation, a formatted loop site and a factor.
#[model]
fn scm(data: &Tensor) -> Result<Tensor> {
    let n = data.dim(0)?;
    let mu = sample!(Normal::new(0.0, 1.0)?);
    let scale = param!(
        || Ok(Tensor::new(0.7f32, &Device::Cpu)?),
        constraint = Constraint::Positive
    );
    let h = plate!("data", n, {
        let z = encoder(data)?;
        let z2 = scope!("encoder2", encoder(&z))?;
        let h = deterministic!(z2.broadcast_add(&mu)?.broadcast_mul(&scale)?);
        observe!("x", Normal::new(&h, 1.0)?, data);
        Ok::<_, ppl::Error>(h)
    })?;
    let mut drift = mu;
    for t in 0..2 {
        drift = sample!("drift_{t}", Normal::new(&drift, 1.0)?);
    }
    factor!("prior_penalty", (drift.sqr()? * -0.5)?);
    Ok(h)
}

fn scm_by_hand(data: &Tensor) -> Result<Tensor> {
    let n = data.dim(0)?;
    let mu = sample("mu", Normal::new(0.0, 1.0)?)?;
    let scale = param_constrained(
        "scale",
        || Ok(Tensor::new(0.7f32, &Device::Cpu)?),
        Constraint::Positive,
    )?;
    let h = plate("data", n, |_| {
        let z = scope("encoder", || encoder_by_hand(data))?;
        let z2 = scope("encoder2", || encoder_by_hand(&z))?;
        let h = deterministic("h", &z2.broadcast_add(&mu)?.broadcast_mul(&scale)?)?;
        observe("x", Normal::new(&h, 1.0)?, data)?;
        Ok(h)
    })?;
    let mut drift = mu;
    for t in 0..2 {
        drift = sample(format!("drift_{t}"), Normal::new(&drift, 1.0)?)?;
    }
    factor("prior_penalty", &(drift.sqr()? * -0.5)?)?;
    Ok(h)
}

fn data() -> Result<Tensor> {
    Ok(Tensor::new(&[0.3f32, -1.2, 2.5, 0.0], &Device::Cpu)?)
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.flatten_all()?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f32::to_bits)
        .collect())
}

/// Every recorded property of two traces agrees, values bit for bit.
fn assert_same(a: &Trace, b: &Trace) -> Result<()> {
    assert_eq!(a.names().collect::<Vec<_>>(), b.names().collect::<Vec<_>>());
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x.kind, y.kind, "kind of {}", x.name);
        assert_eq!(
            (x.observed, x.intervened),
            (y.observed, y.intervened),
            "flags of {}",
            x.name
        );
        assert_eq!(x.plates, y.plates, "plates of {}", x.name);
        assert_eq!(x.scale, y.scale, "scale of {}", x.name);
        assert_eq!(x.value.dims(), y.value.dims(), "shape of {}", x.name);
        assert_eq!(bits(&x.value)?, bits(&y.value)?, "value of {}", x.name);
        if x.scores() {
            assert_eq!(
                bits(x.log_prob()?)?,
                bits(y.log_prob()?)?,
                "log_prob of {}",
                x.name
            );
        }
    }
    assert_eq!(bits(&a.log_prob_sum()?)?, bits(&b.log_prob_sum()?)?);
    Ok(())
}

/// Runs `model` traced under `seed`, with a fresh parameter store.
fn run(seed_: u64, model: impl FnOnce() -> Result<Tensor>) -> Result<Trace> {
    ParamStore::new().scope(|| trace(|| seed(seed_, model)).map(|(_, tr)| tr))
}

#[test]
fn the_macro_and_plain_calls_give_the_same_trace() -> Result<()> {
    let data = data()?;
    let with_macro = run(42, || scm(&data))?;
    let by_hand = run(42, || scm_by_hand(&data))?;
    assert_eq!(
        with_macro.names().collect::<Vec<_>>(),
        [
            "mu",
            "scale",
            "encoder/loc",
            "encoder/z",
            "encoder2/loc",
            "encoder2/z",
            "h",
            "x",
            "drift_0",
            "drift_1",
            "prior_penalty"
        ]
    );
    assert_same(&with_macro, &by_hand)?;
    // The plate reached the sites in it (batch dim of 4) and not the ones after it.
    assert_eq!(with_macro.site("encoder/z")?.plates.len(), 1);
    assert_eq!(with_macro.value("encoder2/z")?.dims(), &[4]);
    assert!(with_macro.site("drift_0")?.plates.is_empty());
    // A different seed gives different draws: the comparison above is not vacuous.
    let other = run(43, || scm(&data))?;
    assert_ne!(bits(with_macro.value("mu")?)?, bits(other.value("mu")?)?);
    Ok(())
}

#[test]
fn queries_through_site_constants_agree_with_queries_by_name() -> Result<()> {
    let data = data()?;
    let mu_obs = Tensor::new(0.25f32, &Device::Cpu)?;
    let h_new = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0], &Device::Cpu)?;
    let with_macro = run(7, || {
        do_([(scm::sites::H, &h_new)], || {
            condition([(scm::sites::MU, &mu_obs)], || scm(&data))
        })
    })?;
    let by_hand = run(7, || {
        do_([("h", &h_new)], || {
            condition([("mu", &mu_obs)], || scm_by_hand(&data))
        })
    })?;
    assert_same(&with_macro, &by_hand)?;
    assert!(with_macro.site("mu")?.observed && with_macro.site("h")?.intervened);
    assert_eq!(bits(with_macro.value("h")?)?, bits(&h_new)?);
    assert_eq!(scm::sites::ALL, ["mu", "scale", "h", "x", "prior_penalty"]);
    assert_eq!(encoder::sites::ALL, ["loc", "z"]);
    Ok(())
}

/// A sub-model that fails half-way.
#[model]
fn broken(x: &Tensor) -> Result<Tensor> {
    let _z = encoder(x)?;
    let bad = sample!(Normal::new(0.0, -1.0));
    Ok(bad)
}

/// A sub-model's own name scopes it only when another model's body calls it; an error inside
/// the nested call must not leave the nesting state behind.
#[model]
fn failing(x: &Tensor) -> Result<Tensor> {
    let ok = encoder(x)?;
    broken(&ok)
}

#[test]
fn a_failed_run_leaves_top_level_calls_unscoped() -> Result<()> {
    let data = data()?;
    let err = trace(|| failing(&data)).expect_err("a negative scale is an error");
    assert!(err.to_string().contains("bad"), "{err}");
    let (_, tr) = trace(|| encoder(&data))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["loc", "z"]);
    let by_hand = run(3, || encoder_by_hand(&data))?;
    let with_macro = run(3, || encoder(&data))?;
    assert_same(&with_macro, &by_hand)
}
