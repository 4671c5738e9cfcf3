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
