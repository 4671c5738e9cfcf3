//! Laws of the handler stack: what each handler does, how they compose, and that misuse is a
//! typed error naming the site.

use std::f64::consts::PI;

use candle_core::{DType, Device, Tensor};
use ppl_core::dist::{Bernoulli, Normal};
use ppl_core::handlers::{
    block, condition, do_, mask, replay, scale, scope, seed, substitute, trace, Hide, Trace,
};
use ppl_core::params::{Constraint, ParamStore};
use ppl_core::runtime::{
    self, deterministic, factor, observe, param, param_constrained, plate, sample, Intervention,
    Plate,
};
use ppl_core::{Error, Result};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

fn t(x: f64) -> Tensor {
    Tensor::new(x, &Device::Cpu).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

fn vec_of(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// `x ~ N(0, 1)`, `y ~ N(2x, 0.5)`, `z ~ N(y - x, 1)`, in f64.
fn chain() -> Result<Tensor> {
    let x = sample("x", Normal::new(t(0.0), 1.0))?;
    let y = sample("y", Normal::new((&x * 2.0)?, 0.5))?;
    sample("z", Normal::new((&y - &x)?, 1.0))
}

fn normal_lp(x: f64, loc: f64, sd: f64) -> f64 {
    -0.5 * ((x - loc) / sd).powi(2) - sd.ln() - HALF_LN_2PI
}

fn chain_log_joint(tr: &Trace, skip: &[&str]) -> f64 {
    let v = |n: &str| scalar(tr.value(n).unwrap());
    let (x, y, z) = (v("x"), v("y"), v("z"));
    let mut lp = 0.0;
    for (name, term) in [
        ("x", normal_lp(x, 0.0, 1.0)),
        ("y", normal_lp(y, 2.0 * x, 0.5)),
        ("z", normal_lp(z, y - x, 1.0)),
    ] {
        if !skip.contains(&name) {
            lp += term;
        }
    }
    lp
}

#[test]
fn trace_records_sites_in_order_with_the_exact_log_joint() -> Result<()> {
    let (_, tr) = trace(|| seed(1, chain))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["x", "y", "z"]);
    let lp = scalar(&tr.log_prob_sum()?);
    assert!((lp - chain_log_joint(&tr, &[])).abs() < 1e-12, "{lp}");
    Ok(())
}

#[test]
fn condition_marks_exactly_the_conditioned_sites_observed() -> Result<()> {
    let y = t(0.7);
    let (_, tr) = trace(|| condition([("y", &y)], chain))?;
    for s in tr.iter() {
        assert_eq!(s.observed, s.name == "y", "site {}", s.name);
    }
    assert_eq!(scalar(tr.value("y")?), 0.7);
    // Downstream sites see the observed value.
    let lp = scalar(&tr.log_prob_sum()?);
    assert!((lp - chain_log_joint(&tr, &[])).abs() < 1e-12);
    Ok(())
}

#[test]
fn replay_reproduces_values_and_log_joint_exactly() -> Result<()> {
    let (_, original) = trace(|| seed(3, chain))?;
    let (_, again) = trace(|| seed(99, || replay(&original, chain)))?;
    for name in ["x", "y", "z"] {
        assert_eq!(vec_of(original.value(name)?), vec_of(again.value(name)?));
    }
    assert_eq!(
        scalar(&original.log_prob_sum()?),
        scalar(&again.log_prob_sum()?)
    );
    // Replay is idempotent: replaying the replayed trace changes nothing.
    let (_, thrice) = trace(|| replay(&again, || replay(&again, chain)))?;
    assert_eq!(vec_of(thrice.value("z")?), vec_of(original.value("z")?));
    Ok(())
}

#[test]
fn replay_keeps_observed_sites_at_their_data() -> Result<()> {
    let (_, tr) = trace(|| seed(0, chain))?;
    let z = t(-4.0);
    let (_, tr2) = trace(|| replay(&tr, || condition([("z", &z)], chain)))?;
    assert_eq!(scalar(tr2.value("z")?), -4.0);
    assert_eq!(scalar(tr2.value("x")?), scalar(tr.value("x")?));
    Ok(())
}

#[test]
fn block_hides_sites_from_outer_handlers() -> Result<()> {
    let (_, tr) = trace(|| block(Hide::names(["y"]), chain))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["x", "z"]);
    let (_, tr) = trace(|| block(Hide::All, chain))?;
    assert!(tr.is_empty());
    let (_, tr) = trace(|| block(Hide::all_but(["z"]), chain))?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["z"]);
    // An outer condition cannot reach a hidden site: that is an unknown-site error.
    let y = t(1.0);
    let err = condition([("y", &y)], || block(Hide::names(["y"]), chain)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownSite {
                handler: "condition",
                ..
            }
        ),
        "{err}"
    );
    // Inner handlers still see it.
    let (_, tr) = trace(|| block(Hide::names(["y"]), || condition([("y", &y)], chain)))?;
    assert!(!tr.contains("y"));
    Ok(())
}

#[test]
fn seed_makes_runs_bit_identical_and_restores_the_stream() -> Result<()> {
    let a = trace(|| seed(42, chain))?.1;
    let b = trace(|| seed(42, chain))?.1;
    let c = trace(|| seed(43, chain))?.1;
    for n in ["x", "y", "z"] {
        assert_eq!(vec_of(a.value(n)?), vec_of(b.value(n)?));
    }
    assert_ne!(vec_of(a.value("x")?), vec_of(c.value("x")?));
    // The outer stream continues as if the seeded run had not happened.
    ppl_core::rng::set_seed(5);
    let first = scalar(&sample("u", Normal::new(t(0.0), 1.0))?);
    ppl_core::rng::set_seed(5);
    seed(9, chain)?;
    let second = scalar(&sample("u", Normal::new(t(0.0), 1.0))?);
    assert_eq!(first, second);
    Ok(())
}

fn five_nested<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    let y = t(0.1);
    trace(|| {
        seed(0, || {
            scale(2.0, || {
                condition([("y", &y)], || block(Hide::names(["nothing"]), f))
            })
        })
    })
    .map(|(r, _)| r)
}

#[test]
fn an_error_under_five_handlers_leaves_the_stack_empty() {
    let err = five_nested(|| -> Result<()> {
        chain()?;
        Err(Error::usage("the model failed"))
    })
    .unwrap_err();
    assert!(matches!(err, Error::Usage(_)));
    assert_eq!(runtime::depth(), 0);
}

#[test]
fn a_panic_under_five_handlers_leaves_the_stack_and_plate_dims_clean() {
    let caught = std::panic::catch_unwind(|| {
        five_nested(|| -> Result<()> {
            let _p = Plate::new("data", 3).dim(-1).enter()?;
            sample("w", Normal::new(t(0.0), 1.0))?;
            panic!("the model panicked");
        })
    });
    assert!(caught.is_err());
    assert_eq!(runtime::depth(), 0);
    // The plate's dim was freed by unwinding: it can be taken again.
    assert!(Plate::new("again", 2).dim(-1).enter().is_ok());
}

#[test]
fn plates_broadcast_and_scale_log_probs_as_pyro() -> Result<()> {
    // Nested plates: outer "a" (3) takes dim -1, inner "b" (2) takes dim -2.
    let (_, tr) = trace(|| {
        plate("a", 3, |pa| {
            assert_eq!(pa.dim(), -1);
            plate("b", 2, |pb| {
                assert_eq!(pb.dim(), -2);
                sample("x", Normal::new(t(0.0), 1.0))
            })
        })
    })?;
    let x = tr.value("x")?;
    assert_eq!(x.dims(), &[2, 3]);
    let hand: f64 = vec_of(x).iter().map(|&v| normal_lp(v, 0.0, 1.0)).sum();
    assert!((scalar(&tr.log_prob_sum()?) - hand).abs() < 1e-12);
    assert_eq!(tr.site("x")?.plates.len(), 2);

    // A subsampled plate of 10 visiting 4: log-density scaled by 10/4.
    let (ix, tr) = trace(|| {
        Plate::new("data", 10).subsample_size(4).run(|p| {
            let ix = p.indices()?.clone();
            sample("x", Normal::new(t(1.0), 2.0))?;
            Ok(ix)
        })
    })?;
    let x = tr.value("x")?;
    assert_eq!(x.dims(), &[4]);
    let mut seen = ix.to_vec1::<u32>()?;
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|&i| i < 10));
    let hand: f64 = vec_of(x)
        .iter()
        .map(|&v| normal_lp(v, 1.0, 2.0))
        .sum::<f64>()
        * 2.5;
    assert!((scalar(&tr.log_prob_sum()?) - hand).abs() < 1e-12);

    // A batch dim of size 1 broadcasts; an explicit dim leaves the dims right of it alone.
    let loc = Tensor::zeros((1, 5), DType::F64, &Device::Cpu)?;
    let (_, tr) = trace(|| {
        Plate::new("rows", 4)
            .dim(-2)
            .run(|_| sample("x", Normal::new(&loc, 1.0)))
    })?;
    assert_eq!(tr.value("x")?.dims(), &[4, 5]);
    Ok(())
}

#[test]
fn subsample_indices_are_replayed() -> Result<()> {
    let model = || {
        Plate::new("data", 100)
            .subsample_size(5)
            .run(|p| Ok(p.indices()?.to_vec1::<u32>()?))
    };
    let (first, tr) = trace(|| seed(1, model))?;
    let second = seed(2, || replay(&tr, model))?;
    assert_eq!(first, second);
    Ok(())
}

#[test]
fn plate_misuse_is_a_typed_error() {
    let e = plate("empty", 0, |_| Ok(())).unwrap_err();
    assert!(matches!(e, Error::Plate { .. }), "{e}");
    let e = Plate::new("p", 3).subsample_size(4).enter().err().unwrap();
    assert!(matches!(e, Error::Plate { .. }), "{e}");
    let e = Plate::new("p", 3).dim(0).enter().err().unwrap();
    assert!(matches!(e, Error::Plate { .. }), "{e}");
    let e = plate("outer", 3, |_| {
        Plate::new("inner", 2).dim(-1).run(|_| Ok(()))
    })
    .unwrap_err();
    assert!(e.to_string().contains("already taken by `outer`"), "{e}");
}

#[test]
fn a_distribution_that_does_not_fit_its_plates_names_the_site_and_the_frames() {
    let loc = Tensor::zeros(5, DType::F64, &Device::Cpu).unwrap();
    let e = plate("data", 3, |_| sample("x", Normal::new(&loc, 1.0))).unwrap_err();
    match &e {
        Error::SiteShape { site, frames, .. } => {
            assert_eq!(site, "x");
            assert!(frames.contains("data") && frames.contains("-1"), "{frames}");
        }
        other => panic!("expected SiteShape, got {other}"),
    }
}

#[test]
fn do_replaces_values_removes_their_log_density_and_feeds_descendants() -> Result<()> {
    let (_, tr) = trace(|| seed(0, || do_([("y", 3.0)], chain)))?;
    let y = tr.site("y")?;
    assert!(y.intervened && !y.observed);
    assert_eq!(scalar(&y.value), 3.0);
    assert!(y.factual_value.is_some());
    let lp = scalar(&tr.log_prob_sum()?);
    assert!((lp - chain_log_joint(&tr, &["y"])).abs() < 1e-12);

    // A function of the factual value.
    let (_, tr) = trace(|| {
        seed(0, || {
            do_([("x", Intervention::func(|x| Ok((x + 1.0)?)))], chain)
        })
    })?;
    let x = tr.site("x")?;
    let factual = scalar(x.factual_value.as_ref().unwrap());
    assert!((scalar(&x.value) - (factual + 1.0)).abs() < 1e-12);
    Ok(())
}

#[test]
fn condition_and_do_commute() -> Result<()> {
    let z = t(0.3);
    let a = trace(|| seed(7, || condition([("z", &z)], || do_([("x", 1.5)], chain))))?.1;
    let b = trace(|| seed(7, || do_([("x", 1.5)], || condition([("z", &z)], chain))))?.1;
    for n in ["x", "y", "z"] {
        assert_eq!(vec_of(a.value(n)?), vec_of(b.value(n)?));
        assert_eq!(a.site(n)?.observed, b.site(n)?.observed);
        assert_eq!(a.site(n)?.intervened, b.site(n)?.intervened);
    }
    assert_eq!(scalar(&a.log_prob_sum()?), scalar(&b.log_prob_sum()?));
    // Conditioning and intervening on the same site: the intervention wins, the site keeps
    // its observed flag, and its log-density leaves the joint either way round.
    let x = t(0.5);
    let c = trace(|| condition([("x", &x)], || do_([("x", 2.0)], chain)))?.1;
    let d = trace(|| do_([("x", 2.0)], || condition([("x", &x)], chain)))?.1;
    assert_eq!(scalar(c.value("x")?), 2.0);
    assert_eq!(scalar(d.value("x")?), 2.0);
    assert_eq!(scalar(c.site("x")?.factual_value.as_ref().unwrap()), 0.5);
    assert!(c.site("x")?.intervened && d.site("x")?.intervened);
    Ok(())
}

#[test]
fn scale_multiplies_and_mask_removes_log_densities() -> Result<()> {
    let base = trace(|| seed(2, chain))?.1;
    let lp = scalar(&base.log_prob_sum()?);
    let scaled = trace(|| seed(2, || scale(3.5, chain)))?.1;
    assert!((scalar(&scaled.log_prob_sum()?) - 3.5 * lp).abs() < 1e-10);
    let nested = trace(|| seed(2, || scale(2.0, || scale(0.5, chain))))?.1;
    assert!((scalar(&nested.log_prob_sum()?) - lp).abs() < 1e-10);
    let masked = trace(|| seed(2, || mask(false, chain)))?.1;
    assert_eq!(scalar(&masked.log_prob_sum()?), 0.0);
    // A tensor mask keeps entry by entry; masked-out -inf entries do not make NaN.
    let m = Tensor::new(&[1u8, 0, 1], &Device::Cpu)?;
    let obs = Tensor::new(&[0.5f64, -1.0, 2.0], &Device::Cpu)?;
    let (_, tr) = trace(|| {
        mask(&m, || {
            plate("d", 3, |_| {
                observe("v", ppl_core::dist::Exponential::new(t(1.0)), &obs.abs()?)
            })
        })
    })?;
    let hand = (-0.5f64) + (-2.0);
    assert!((scalar(&tr.log_prob_sum()?) - hand).abs() < 1e-12);
    assert!(scale(-1.0, chain).is_err());
    assert!(scale(f64::NAN, chain).is_err());
    Ok(())
}

#[test]
fn names_that_are_never_reached_are_errors_listing_what_was() {
    let v = t(0.0);
    for err in [
        condition([("w", &v)], chain).unwrap_err(),
        do_([("w", 1.0)], chain).unwrap_err(),
    ] {
        match err {
            Error::UnknownSite { names, reached, .. } => {
                assert_eq!(names, ["w"]);
                assert_eq!(reached, ["x", "y", "z"]);
            }
            other => panic!("expected UnknownSite, got {other}"),
        }
    }
    // A trace with a latent site the model lacks cannot be replayed.
    let (_, tr) = trace(|| {
        chain()?;
        sample("extra", Normal::new(t(0.0), 1.0))
    })
    .unwrap();
    let err = replay(&tr, chain).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownSite { handler: "replay", names, .. } if names == &["extra"]),
        "{err}"
    );
    // The error message names the handler and the names.
    let msg = condition([("w", &v)], chain).unwrap_err().to_string();
    assert!(msg.contains("condition") && msg.contains("\"w\""), "{msg}");
}

#[test]
fn a_site_address_used_twice_is_an_error() {
    let twice = || -> Result<()> {
        sample("x", Normal::new(t(0.0), 1.0))?;
        sample("x", Normal::new(t(0.0), 1.0))?;
        Ok(())
    };
    let err = trace(twice).unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateSite { name } if name == "x"),
        "{err}"
    );
    let v = t(1.0);
    let err = condition([("x", &v)], twice).unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateSite { name } if name == "x"),
        "{err}"
    );
}

#[test]
fn bad_parameters_and_data_are_typed_errors_naming_the_site() {
    // Negative scale.
    let e = sample("x", Normal::new(t(0.0), -1.0)).unwrap_err();
    assert!(
        matches!(&e, Error::AtSite { site, source } if site == "x"
            && matches!(**source, Error::InvalidParameter { dist: "Normal", param: "scale", .. })),
        "{e}"
    );
    // A probability outside [0, 1].
    let e = sample("coin", Bernoulli::from_probs(t(1.5))).unwrap_err();
    assert!(
        matches!(&e, Error::AtSite { site, source } if site == "coin"
            && matches!(**source, Error::InvalidParameter { dist: "Bernoulli", .. })),
        "{e}"
    );
    // A NaN parameter.
    let e = sample("x", Normal::new(t(f64::NAN), 1.0)).unwrap_err();
    assert!(
        matches!(&e, Error::AtSite { site, .. } if site == "x"),
        "{e}"
    );
    // An observed value of the wrong shape.
    let bad = Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap();
    let e = plate("data", 3, |_| observe("y", Normal::new(t(0.0), 1.0), &bad)).unwrap_err();
    assert!(
        matches!(&e, Error::SiteShape { site, .. } if site == "y"),
        "{e}"
    );
    let e = condition([("y", &bad)], || {
        plate("data", 3, |_| sample("y", Normal::new(t(0.0), 1.0)))
    })
    .unwrap_err();
    assert!(
        matches!(&e, Error::SiteShape { site, .. } if site == "y"),
        "{e}"
    );
    // An observed value outside the support.
    let e = observe("coin", Bernoulli::from_probs(t(0.5)), &t(0.5)).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidValue { site, .. } if site == "coin"),
        "{e}"
    );
    // An intervention of the wrong shape.
    let wrong = Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap();
    let e = plate("data", 3, |_| {
        do_([("x", &wrong)], || sample("x", Normal::new(t(0.0), 1.0)))
    })
    .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidValue { site, .. } if site == "x"),
        "{e}"
    );
}

#[test]
fn substitute_sets_latent_sites_without_observing_them() -> Result<()> {
    let x = t(2.0);
    let (_, tr) = trace(|| substitute([("x", &x), ("not_a_site", &x)], chain))?;
    let s = tr.site("x")?;
    assert_eq!(scalar(&s.value), 2.0);
    assert!(s.is_latent());
    Ok(())
}

#[test]
fn scope_prefixes_names_and_nests_outermost_first() -> Result<()> {
    let (_, tr) = trace(|| scope("outer", || scope("inner", chain)))?;
    assert_eq!(
        tr.names().collect::<Vec<_>>(),
        ["outer/inner/x", "outer/inner/y", "outer/inner/z"]
    );
    // Two scoped copies of one sub-model do not collide.
    let (_, tr) = trace(|| {
        scope("a", chain)?;
        scope("b", chain)
    })?;
    assert_eq!(tr.len(), 6);
    Ok(())
}

#[test]
fn factor_and_deterministic_sites() -> Result<()> {
    let (_, tr) = trace(|| {
        let x = sample("x", Normal::new(t(0.0), 1.0))?;
        let d = deterministic("twice", &(&x * 2.0)?)?;
        factor("penalty", &t(-1.25))?;
        Ok(d)
    })?;
    assert_eq!(tr.names().collect::<Vec<_>>(), ["x", "twice", "penalty"]);
    let x = scalar(tr.value("x")?);
    assert_eq!(scalar(tr.value("twice")?), 2.0 * x);
    let hand = normal_lp(x, 0.0, 1.0) - 1.25;
    assert!((scalar(&tr.log_prob_sum()?) - hand).abs() < 1e-12);
    // A deterministic site can be intervened on.
    let (d, _) = trace(|| {
        do_([("twice", 7.0)], || {
            let x = sample("x", Normal::new(t(0.0), 1.0))?;
            deterministic("twice", &(&x * 2.0)?)
        })
    })?;
    assert_eq!(scalar(&d), 7.0);
    Ok(())
}

#[test]
fn params_are_created_once_constrained_and_scoped_to_a_store() -> Result<()> {
    let store = ParamStore::new();
    store.scope(|| -> Result<()> {
        let a = param("a", || Ok(t(1.5)))?;
        let a2 = param("a", || Ok(t(-100.0)))?;
        assert_eq!(scalar(&a), 1.5);
        assert_eq!(scalar(&a2), 1.5);
        let s = param_constrained("s", || Ok(t(0.25)), Constraint::Positive)?;
        assert!((scalar(&s) - 0.25).abs() < 1e-12);
        let e = param_constrained("bad", || Ok(t(-1.0)), Constraint::Positive).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidValue { site, .. } if site == "bad"),
            "{e}"
        );
        Ok(())
    })?;
    assert_eq!(store.names(), ["a", "s"]);
    // The unconstrained variable of a positive parameter is its log.
    let e = store.entry("s").unwrap();
    assert!((scalar(e.var.as_tensor()) - 0.25f64.ln()).abs() < 1e-12);
    // Outside the scope the thread's own store is untouched.
    assert!(ParamStore::current().get("a")?.is_none());
    // Substitute replaces a param's value.
    let v = store.scope(|| substitute([("a", &t(9.0))], || param("a", || Ok(t(0.0)))))?;
    assert_eq!(scalar(&v), 9.0);
    Ok(())
}

#[test]
fn the_chain_log_joint_has_the_closed_form_expectation() -> Result<()> {
    // E[log p] of the prior chain = -3/2 - ln(0.5) - 3 ln sqrt(2 pi); 4000 draws, bound 5 SE.
    let n = 4000;
    let mut sum = 0.0;
    let mut sum2 = 0.0;
    seed(11, || {
        for _ in 0..n {
            let (_, tr) = trace(chain)?;
            let lp = scalar(&tr.log_prob_sum()?);
            sum += lp;
            sum2 += lp * lp;
        }
        Ok(())
    })?;
    let mean = sum / n as f64;
    let sd = (sum2 / n as f64 - mean * mean).sqrt();
    let expected = -1.5 - 0.5f64.ln() - 3.0 * (2.0 * PI).sqrt().ln();
    assert!(
        (mean - expected).abs() < 5.0 * sd / (n as f64).sqrt(),
        "{mean} vs {expected}"
    );
    Ok(())
}
