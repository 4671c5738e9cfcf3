//! `ppl-bench`: the peer workloads of `shared/BENCHMARKS.md`, run through ppl's public API and
//! printed as JSON lines in the peers' format.
//!
//! `cargo run --release --bin ppl-bench -- B1 [--reps N] [--warmup N]`
//!
//! Implemented: B1 (site overhead). Each workload verifies its answer as the peers do and the
//! command exits non-zero when a check fails.

use std::process::ExitCode;
use std::time::Instant;

use ppl::prelude::*;

const T: usize = 100;

/// B1's model: a 100-site Gaussian random walk.
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

struct Summary {
    median: f64,
    min: f64,
    mean: f64,
    p90: f64,
}

fn summarise(times: &mut [f64]) -> Summary {
    times.sort_by(|a, b| a.total_cmp(b));
    let n = times.len();
    Summary {
        median: if n % 2 == 1 {
            times[n / 2]
        } else {
            0.5 * (times[n / 2 - 1] + times[n / 2])
        },
        min: times[0],
        mean: times.iter().sum::<f64>() / n as f64,
        p90: times[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

fn b1(reps: usize, warmup: usize) -> Result<bool> {
    ppl::dist::set_validation(false);
    let run = || -> Result<(f32, Trace)> {
        let (_, tr) = trace(random_walk)?;
        let lp = tr.log_prob_sum()?.to_scalar::<f32>()?;
        Ok((lp, tr))
    };
    ppl::rng::set_seed(0);
    for _ in 0..warmup {
        run()?;
    }
    let mut times = Vec::with_capacity(reps);
    let mut lps = Vec::with_capacity(reps);
    let mut max_err: f64 = 0.0;
    for _ in 0..reps {
        let t0 = Instant::now();
        let (lp, tr) = run()?;
        times.push(t0.elapsed().as_secs_f64());
        let xs: Vec<f64> = (0..T)
            .map(|t| Ok(tr.value(&format!("x_{t}"))?.to_scalar::<f32>()? as f64))
            .collect::<Result<_>>()?;
        if tr.len() != T {
            return Ok(false);
        }
        max_err = max_err.max((lp as f64 - closed_form(&xs)).abs());
        lps.push(lp as f64);
    }
    ppl::dist::set_validation(true);
    let expected = -(T as f64) / 2.0 * (1.0 + (2.0 * std::f64::consts::PI).ln());
    let mean_lp = lps.iter().sum::<f64>() / reps as f64;
    let tol = 5.0 * (T as f64 / 2.0).sqrt() / (reps as f64).sqrt();
    let verified = (mean_lp - expected).abs() <= tol && max_err < 1e-3;
    let s = summarise(&mut times);
    println!(
        "{{\"bench\": \"B1_site_overhead\", \"system\": \"ppl\", \"variant\": \"trace+log_prob_sum,novalidate\", \
         \"median_s\": {:e}, \"min_s\": {:e}, \"mean_s\": {:e}, \"p90_s\": {:e}, \"per_unit_us\": {:.4}, \
         \"unit\": \"site\", \"units_per_rep\": {T}, \"reps\": {reps}, \"answer\": {mean_lp:.4}, \
         \"expected\": {expected:.4}, \"tol\": {tol:.4}, \"verified\": {verified}, \
         \"max_abs_err_vs_closed_form\": {max_err:e}, \"per_rep_us\": {:.3}}}",
        s.median,
        s.min,
        s.mean,
        s.p90,
        s.median / T as f64 * 1e6,
        s.median * 1e6
    );
    Ok(verified)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut which = "all".to_string();
    let mut reps = 1000;
    let mut warmup = 20;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--reps" | "--warmup" if i + 1 < args.len() => {
                let Ok(v) = args[i + 1].parse::<usize>() else {
                    eprintln!("ppl-bench: {} needs a positive integer", args[i]);
                    return ExitCode::from(2);
                };
                if args[i] == "--reps" {
                    reps = v.max(1);
                } else {
                    warmup = v;
                }
                i += 2;
            }
            "-h" | "--help" => {
                println!("usage: ppl-bench [B1|all] [--reps N] [--warmup N]");
                return ExitCode::SUCCESS;
            }
            w => {
                which = w.to_string();
                i += 1;
            }
        }
    }
    let result = match which.as_str() {
        "B1" | "b1" | "all" => b1(reps, warmup),
        other => {
            eprintln!("ppl-bench: unknown workload `{other}` (implemented: B1)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("ppl-bench: VERIFICATION FAILED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ppl-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
