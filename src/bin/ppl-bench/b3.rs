//! B3 `twin_world_linear`: the twin-world counterfactual `z` under `do(x := x + 1)` given all of
//! `(x, y, z)`, with exact abduction, for N = 10,000 and 100,000 individuals.

use ppl::prelude::*;
use ppl::workloads::b3;

use crate::report::{timed, Json, Record};
use crate::Opts;

const BENCH: &str = "B3_twin_world_linear";
const SIZES: [usize; 2] = [10_000, 100_000];
const TOL: f64 = 1e-4;

fn max_abs(t: &Tensor) -> Result<f64> {
    Ok(t.abs()?
        .max_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?)
}

fn mean_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok((a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?
        .mean_all()?
        .to_scalar::<f64>()?)
}

/// The same abduction, action and prediction in five tensor ops (the peers' `torch` floor).
fn by_hand(x: &Tensor, y: &Tensor, z: &Tensor) -> Result<Tensor> {
    let u_y = (y - x.affine(2.0, 0.0)?)?;
    let u_z = (z + y.affine(1.5, 0.0)?)?;
    let y_cf = (x.affine(2.0, 2.0)? + u_y)?;
    Ok((y_cf.affine(-1.5, 0.0)? + u_z)?)
}

pub fn run(opts: &Opts) -> Result<bool> {
    let (reps, warmup) = (opts.reps.unwrap_or(50), opts.warmup.unwrap_or(3));
    let mut ok = true;
    for n in SIZES {
        let (xv, yv, zv) = b3::data_f64(n);
        let f32sum = |v: &[f64]| v.iter().map(|&a| a as f32 as f64).sum::<f64>();
        let sums = (f32sum(&xv), f32sum(&yv), f32sum(&zv));
        let data_ok = b3::expected_checksum(n).is_some_and(|(sx, sy, sz)| {
            (sums.0 - sx).abs() < 1e-9 && (sums.1 - sy).abs() < 1e-9 && (sums.2 - sz).abs() < 1e-9
        });
        let checksum = Json::Obj(vec![
            ("sum_x".into(), sums.0.into()),
            ("sum_y".into(), sums.1.into()),
            ("sum_z".into(), sums.2.into()),
        ]);
        let (x, y, z) = b3::data(n, &Device::Cpu)?;
        for validate in [true, false] {
            ppl::dist::set_validation(validate);
            let run = timed(warmup, reps, || b3::query(&x, &y, &z));
            ppl::dist::set_validation(true);
            let (times, (y_cf, z_cf, z_f)) = run?;
            let err = max_abs(&((&z_cf - &z)? + 3.0)?)?;
            let err_y = max_abs(&((&y_cf - &y)? - 2.0)?)?;
            let err_f = max_abs(&(&z_f - &z)?)?;
            let verified =
                data_ok && err < TOL && err_y < TOL && err_f == 0.0 && z_cf.dims() == [n];
            let variant = format!(
                "twin_world,N={n}{}",
                if validate { "" } else { ",novalidate" }
            );
            ok &= Record::new(
                BENCH,
                &variant,
                &times,
                "individual",
                n,
                mean_diff(&z_cf, &z)?,
                -3.0,
                TOL,
                verified,
            )
            .field("N", n)
            .field("max_abs_err", err)
            .field("max_abs_err_y_cf", err_y)
            .field("factual_world_err", err_f)
            .field("validation", validate)
            .field("data_checksum", checksum.clone())
            .emit();
        }
        let (times, z_cf) = timed(warmup, reps, || by_hand(&x, &y, &z))?;
        let err = max_abs(&((&z_cf - &z)? + 3.0)?)?;
        ok &= Record::new(
            BENCH,
            &format!("by_hand,N={n}"),
            &times,
            "individual",
            n,
            mean_diff(&z_cf, &z)?,
            -3.0,
            TOL,
            data_ok && err < TOL,
        )
        .system("candle")
        .field("N", n)
        .field("max_abs_err", err)
        .field("data_checksum", checksum)
        .emit();
    }
    Ok(ok)
}
