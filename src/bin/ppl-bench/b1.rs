//! B1 `site_overhead`: trace + log-joint of a 100-site Gaussian random walk.

use std::time::Instant;

use ppl::prelude::*;

use crate::report::Record;
use crate::Opts;

const T: usize = 100;

/// B1's model: `x_0 ~ N(0, 1)`, `x_t ~ N(x_{t-1}, 1)`.
fn random_walk() -> Result<Tensor> {
    let mut x = sample("x_0", Normal::new(0.0f32, 1.0f32))?;
    for t in 1..T {
        x = sample(format!("x_{t}"), Normal::new(&x, 1.0f32))?;
    }
    Ok(x)
}

fn closed_form(xs: &[f64]) -> f64 {
    let mut prev = 0.0;
    let mut lp = 0.0;
    for &x in xs {
        lp += -0.5 * (x - prev) * (x - prev) - 0.5 * (2.0 * std::f64::consts::PI).ln();
        prev = x;
    }
    lp
}

pub fn run(opts: &Opts) -> Result<bool> {
    let (reps, warmup) = (opts.reps.unwrap_or(1000), opts.warmup.unwrap_or(20));
    ppl::dist::set_validation(false);
    let once = || -> Result<(f32, Trace)> {
        let (_, tr) = trace(random_walk)?;
        let lp = tr.log_prob_sum()?.to_scalar::<f32>()?;
        Ok((lp, tr))
    };
    ppl::rng::set_seed(0);
    for _ in 0..warmup {
        once()?;
    }
    let mut times = Vec::with_capacity(reps);
    let mut lps = Vec::with_capacity(reps);
    let mut max_err: f64 = 0.0;
    let mut complete = true;
    for _ in 0..reps {
        let t0 = Instant::now();
        let (lp, tr) = once()?;
        times.push(t0.elapsed().as_secs_f64());
        let xs: Vec<f64> = (0..T)
            .map(|t| Ok(tr.value(&format!("x_{t}"))?.to_scalar::<f32>()? as f64))
            .collect::<Result<_>>()?;
        complete &= tr.len() == T;
        max_err = max_err.max((lp as f64 - closed_form(&xs)).abs());
        lps.push(lp as f64);
    }
    ppl::dist::set_validation(true);
    let expected = -(T as f64) / 2.0 * (1.0 + (2.0 * std::f64::consts::PI).ln());
    let mean_lp = lps.iter().sum::<f64>() / reps as f64;
    let tol = 5.0 * (T as f64 / 2.0).sqrt() / (reps as f64).sqrt();
    let verified = complete && (mean_lp - expected).abs() <= tol && max_err < 1e-3;
    let median = crate::report::summarise(&times).median;
    Ok(Record::new(
        "B1_site_overhead",
        "trace+log_prob_sum,novalidate",
        &times,
        "site",
        T,
        mean_lp,
        expected,
        tol,
        verified,
    )
    .field("max_abs_err_vs_closed_form", max_err)
    .field("per_rep_us", median * 1e6)
    .emit())
}
