//! The B3 and B5 workload queries give their exact answers.

use ppl::prelude::*;
use ppl::workloads::{b3, b5};

#[test]
fn b3_twin_world_query_is_exact() -> Result<()> {
    let n = 10_000;
    let (xv, yv, zv) = b3::data_f64(n);
    let f32sum = |v: &[f64]| v.iter().map(|&a| a as f32 as f64).sum::<f64>();
    let (sx, sy, sz) = b3::expected_checksum(n).unwrap();
    assert!((f32sum(&xv) - sx).abs() < 1e-9 && (f32sum(&yv) - sy).abs() < 1e-9);
    assert!((f32sum(&zv) - sz).abs() < 1e-9);
    let (x, y, z) = b3::data(n, &Device::Cpu)?;
    let (y_cf, z_cf, z_f) = b3::query(&x, &y, &z)?;
    let max = |t: Tensor| -> Result<f32> { Ok(t.abs()?.max_all()?.to_scalar::<f32>()?) };
    assert!(max(((&z_cf - &z)? + 3.0)?)? < 1e-4);
    assert!(max(((&y_cf - &y)? - 2.0)?)? < 1e-4);
    assert_eq!(max((&z_f - &z)?)?, 0.0);
    Ok(())
}

#[test]
fn b5_queries_are_within_three_standard_errors() -> Result<()> {
    let n = 200_000;
    let q1 = seed(0, || b5::q1(n, &Device::Cpu))?;
    let se1 = (b5::Q1_EXACT * (1.0 - b5::Q1_EXACT) / n as f64).sqrt();
    assert!((q1 - b5::Q1_EXACT).abs() < 3.0 * se1, "Q1 {q1}");
    let (q2, n_eff) = seed(0, || b5::q2(n, &Device::Cpu))?;
    let se2 = (b5::Q2_EXACT * (1.0 - b5::Q2_EXACT) / n_eff).sqrt();
    assert!(
        (q2 - b5::Q2_EXACT).abs() < 3.0 * se2,
        "Q2 {q2} (n_eff {n_eff})"
    );
    Ok(())
}

#[test]
fn b4_elbo_and_counterfactuals_match_closed_forms() -> Result<()> {
    use ppl::workloads::b4;
    let (xh, th, ih) = b4::data_host();
    assert!(b4::checksum_matches(b4::checksum(&xh, &th, &ih)));
    let d = b4::data(&Device::Cpu)?;
    ppl::rng::set_seed(0);
    let store = ParamStore::new();
    let m = b4::Morpho::new(&store, &Device::Cpu)?;
    assert_eq!(b4::n_params(&store), b4::N_PARAMS);
    let mut svi = Svi::new(
        || b4::model(&m, Some(&d.x), Some(&d.t), Some(&d.i), b4::B),
        || b4::guide(&m, &d.x, &d.t, &d.i),
        Adam::new(1e-3),
        TraceElbo::new(),
    )
    .with_store(store.clone());
    // One step: the checks below then run at parameters the optimiser has updated in place.
    assert!(svi.step()?.is_finite());
    // (1) TraceElbo's loss is the closed-form −ELBO at the guide's draw (same seed, same z).
    let loss = seed(123, || {
        TraceElbo::new().loss(
            || b4::model(&m, Some(&d.x), Some(&d.t), Some(&d.i), b4::B),
            &mut || b4::guide(&m, &d.x, &d.t, &d.i),
        )
    })?;
    let (z, _) = seed(123, || trace(|| b4::guide(&m, &d.x, &d.t, &d.i)))?;
    let hand = b4::neg_elbo_by_hand(&m, &d, &z)?;
    assert!(
        ((loss - hand) / hand).abs() < 1e-5,
        "TraceElbo {loss} vs by hand {hand}"
    );
    // (2) The twin-world query abducts u_i as the hand-written abduction does.
    let tw = seed(0, || b4::cf_twin_world(&m, &d))?;
    let hand = b4::cf_by_hand(&m, &d)?;
    let (err_img, err_i, err_f, t_exact) = b4::cf_errors(&m, &d, &tw, &hand)?;
    assert!(t_exact, "t' != t + 1");
    assert!(err_img < 1e-5, "images differ by {err_img}");
    assert!(err_i < 1e-5, "i' differs by {err_i}");
    assert!(err_f < 1e-5, "factual images differ by {err_f}");
    Ok(())
}
