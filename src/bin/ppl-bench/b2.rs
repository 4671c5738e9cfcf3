//! B2 `svi_regression`: one SVI step (guide, model, ELBO, backward, Adam) of a Bayesian
//! regression with AutoNormal, timed step by step over a 2000-step run.

use std::time::Instant;

use ppl::infer::{AutoNormal, Svi, TraceElbo};
use ppl::optim::Adam;
use ppl::prelude::*;
use ppl::workloads::b2::{self, D, SIGMA_EXACT, W_EXACT, W_TRUE};

use crate::report::{Json, Record};
use crate::Opts;

const STEPS: usize = 2000;
const T0_STEP: usize = 10;
const AVG_LAST: usize = 500;
const TOL_EXACT: f64 = 0.1;
const TOL_TRUE: f64 = 0.15;
const TOL_AVG: f64 = 0.01;

pub fn run(opts: &Opts) -> Result<bool> {
    let timed = opts.reps.unwrap_or(500).min(STEPS - T0_STEP);
    let (xv, yv) = b2::data_f64();
    let checksum = b2::checksum(&xv, &yv);
    let data_ok = b2::checksum_matches(checksum);
    let (x, y) = b2::data(&Device::Cpu)?;
    let mut ok = true;
    for validate in [true, false] {
        ppl::dist::set_validation(validate);
        let store = ParamStore::new();
        let mut svi = Svi::new(
            || b2::regression(&x, &y),
            AutoNormal::new(),
            Adam::new(0.05).betas(0.9, 0.999).eps(1e-8),
            TraceElbo::new(),
        )
        .with_store(store.clone());
        ppl::rng::set_seed(0);
        let mut times = Vec::with_capacity(STEPS);
        let mut losses = Vec::with_capacity(STEPS);
        let mut w_avg = [0.0; D];
        let mut w_final = vec![0.0; D];
        for step in 0..STEPS {
            let t0 = Instant::now();
            let loss = svi.step()?;
            times.push(t0.elapsed().as_secs_f64());
            losses.push(loss);
            if step >= STEPS - AVG_LAST || step + 1 == STEPS {
                let w = store.scope(|| svi.guide().loc("w"))?.to_vec1::<f32>()?;
                w_final = w.iter().map(|&v| v as f64).collect();
                if step >= STEPS - AVG_LAST {
                    for (a, v) in w_avg.iter_mut().zip(&w_final) {
                        *a += v / AVG_LAST as f64;
                    }
                }
            }
        }
        ppl::dist::set_validation(true);
        let max_err = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        };
        let (err_exact, err_true, err_avg) = (
            max_err(&w_final, &W_EXACT),
            max_err(&w_final, &W_TRUE),
            max_err(&w_avg, &W_EXACT),
        );
        let all_finite = losses.iter().all(|l| l.is_finite());
        let verified = data_ok
            && all_finite
            && err_exact < TOL_EXACT
            && err_true < TOL_TRUE
            && err_avg < TOL_AVG;
        let sigma = store.scope(|| svi.guide().median())?["sigma"].to_scalar::<f32>()? as f64;
        let tail = &losses[STEPS - 100..];
        let variant = if validate {
            "svi_step"
        } else {
            "svi_step,novalidate"
        };
        ok &= Record::new(
            "B2_svi_regression",
            variant,
            &times[T0_STEP..T0_STEP + timed],
            "svi_step",
            1,
            w_final.clone(),
            W_EXACT.to_vec(),
            TOL_EXACT,
            verified,
        )
        .field("w_true", W_TRUE.to_vec())
        .field("max_abs_err_vs_exact", err_exact)
        .field("max_abs_err_vs_true", err_true)
        .field("w_avg_last500", w_avg.to_vec())
        .field("max_abs_err_avg_vs_exact", err_avg)
        .field("tol_avg", TOL_AVG)
        .field("tol_true", TOL_TRUE)
        .field("sigma_median", sigma)
        .field("sigma_exact_posterior_mean", SIGMA_EXACT)
        .field("final_loss", tail.iter().sum::<f64>() / tail.len() as f64)
        .field("total_steps", STEPS)
        .field("total_s", times.iter().sum::<f64>())
        .field("validation", validate)
        .field(
            "data_checksum",
            Json::Obj(vec![
                ("sum_X".into(), checksum.0.into()),
                ("sum_y".into(), checksum.1.into()),
                ("X00".into(), checksum.2.into()),
                ("y0".into(), checksum.3.into()),
            ]),
        )
        .emit();
    }
    Ok(ok)
}
