//! Interventional and observational queries on a discrete structural causal model.
//!
//! The attribute SCM of the face benchmarks (Young → Bald ← Male, Male → Mustache, ..): a model
//! is an ordinary function, and queries are handler composition:
//!
//! - `P(Bald = 1 | do(Young = 0))` by `do_` (graph surgery), against the exact 86/625;
//! - `P(Young = 1 | Bald = 1)` by `condition` and self-normalised importance weights, against
//!   the exact posterior by enumeration — and `P(Young = 1 | do(Bald = 1))`, which stays at the
//!   prior 0.75: intervening on an effect does not inform its cause, conditioning does.
//!
//! ```text
//! cargo run --release --example discrete_scm -- [--samples N] [--seed S] [--out DIR]
//! ```
//!
//! Writes `DIR/results.json` and `DIR/results.md` (default `out/discrete_scm`).

use std::path::{Path, PathBuf};

use ppl::models::data::image::write_atomic;
use ppl::prelude::*;

/// P(V = 1 | parents) of each attribute.
struct Cpds;

impl Cpds {
    const YOUNG: f64 = 0.75;
    const MALE: f64 = 0.42;
    const SMILING: f64 = 0.48;
    /// Bald | (Young, Male), indexed `[young][male]`.
    const BALD: [[f64; 2]; 2] = [[0.02, 0.30], [0.005, 0.08]];
    /// Mustache | Male.
    const MUSTACHE: [f64; 2] = [0.01, 0.15];
    /// Eyeglasses | (Young, Male).
    const EYEGLASSES: [[f64; 2]; 2] = [[0.10, 0.20], [0.04, 0.08]];
}

/// `p[a][b]` selected elementwise by binary tensors `a` and `b`.
fn table2(p: [[f64; 2]; 2], a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let not = |x: &Tensor| x.affine(-1.0, 1.0);
    let (na, nb) = (not(a)?, not(b)?);
    let terms = [
        ((&na * &nb)?, p[0][0]),
        ((&na * b)?, p[0][1]),
        ((a * &nb)?, p[1][0]),
        ((a * b)?, p[1][1]),
    ];
    let mut out = (&terms[0].0 * terms[0].1)?;
    for (ind, pr) in &terms[1..] {
        out = (out + (ind * *pr)?)?;
    }
    Ok(out)
}

/// The attribute SCM over `n` independent individuals (one plate).
fn faces(n: usize) -> Result<Tensor> {
    let p = |x: f64| Tensor::new(x as f32, &Device::Cpu);
    plate("individuals", n, |_| {
        let young = sample("young", Bernoulli::from_probs(p(Cpds::YOUNG)?))?;
        let male = sample("male", Bernoulli::from_probs(p(Cpds::MALE)?))?;
        sample("smiling", Bernoulli::from_probs(p(Cpds::SMILING)?))?;
        let bald = sample(
            "bald",
            Bernoulli::from_probs(table2(Cpds::BALD, &young, &male)?),
        )?;
        let m = &male;
        let mustache_p = m.affine(Cpds::MUSTACHE[1] - Cpds::MUSTACHE[0], Cpds::MUSTACHE[0])?;
        sample("mustache", Bernoulli::from_probs(mustache_p))?;
        sample(
            "eyeglasses",
            Bernoulli::from_probs(table2(Cpds::EYEGLASSES, &young, &male)?),
        )?;
        Ok(bald)
    })
}

/// Exact answers by enumerating the parents (truncated factorisation and Bayes' rule).
fn exact() -> (f64, f64) {
    let pm = [1.0 - Cpds::MALE, Cpds::MALE];
    let py = [1.0 - Cpds::YOUNG, Cpds::YOUNG];
    let bald_do_young0: f64 = (0..2).map(|m| pm[m] * Cpds::BALD[0][m]).sum();
    let joint = |y: usize| -> f64 { (0..2).map(|m| py[y] * pm[m] * Cpds::BALD[y][m]).sum() };
    let young_given_bald = joint(1) / (joint(0) + joint(1));
    (bald_do_young0, young_given_bald)
}

fn mean(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()?)
}

struct Query {
    name: &'static str,
    estimate: f64,
    exact: f64,
    std_error: f64,
}

fn run(n: usize, seed_value: u64) -> Result<Vec<Query>> {
    let (bald_do, young_given_bald) = exact();

    // Rung 2: do(Young = 0), then read Bald's frequency.
    let bald = seed(seed_value, || do_([("young", 0.0)], || faces(n)))?;
    let q1 = mean(&bald)?;

    // Rung 1: condition on Bald = 1; the individuals are particles from the prior, weighted by
    // the likelihood of the evidence (self-normalised importance sampling).
    let ones = Tensor::ones(n, DType::F32, &Device::Cpu)?;
    let (_, tr) = trace(|| seed(seed_value + 1, || condition([("bald", &ones)], || faces(n))))?;
    let w = tr.site("bald")?.log_prob()?.exp()?.to_dtype(DType::F64)?;
    let young = tr.value("young")?.to_dtype(DType::F64)?;
    let w_sum = w.sum_all()?.to_scalar::<f64>()?;
    let q2 = (&w * &young)?.sum_all()?.to_scalar::<f64>()? / w_sum;
    let ess = w_sum * w_sum / w.sqr()?.sum_all()?.to_scalar::<f64>()?;

    // Rung 2 on the effect: do(Bald = 1) leaves its cause at the prior.
    let (_, tr) = trace(|| seed(seed_value + 2, || do_([("bald", 1.0)], || faces(n))))?;
    let q3 = mean(tr.value("young")?)?;

    let se = |p: f64, n: f64| (p * (1.0 - p) / n).sqrt();
    Ok(vec![
        Query {
            name: "P(Bald=1 | do(Young=0))",
            estimate: q1,
            exact: bald_do,
            std_error: se(bald_do, n as f64),
        },
        Query {
            name: "P(Young=1 | Bald=1)",
            estimate: q2,
            exact: young_given_bald,
            std_error: se(young_given_bald, ess),
        },
        Query {
            name: "P(Young=1 | do(Bald=1))",
            estimate: q3,
            exact: Cpds::YOUNG,
            std_error: se(Cpds::YOUNG, n as f64),
        },
    ])
}

fn report(queries: &[Query], n: usize, seed_value: u64, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut json =
        format!("{{\n  \"samples\": {n},\n  \"seed\": {seed_value},\n  \"queries\": [\n");
    let mut md = format!(
        "# Discrete SCM queries\n\n{n} individuals, seed {seed_value}.\n\n\
         | query | estimate | exact | std. error | within 3 SE |\n|---|---|---|---|---|\n"
    );
    for (i, q) in queries.iter().enumerate() {
        let ok = (q.estimate - q.exact).abs() <= 3.0 * q.std_error;
        json.push_str(&format!(
            "    {{\"query\": \"{}\", \"estimate\": {:.6}, \"exact\": {:.6}, \"std_error\": {:.6}, \"within_3se\": {ok}}}{}\n",
            q.name,
            q.estimate,
            q.exact,
            q.std_error,
            if i + 1 < queries.len() { "," } else { "" }
        ));
        md.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {} |\n",
            q.name.replace('|', "\\|"),
            q.estimate,
            q.exact,
            q.std_error,
            if ok { "yes" } else { "NO" }
        ));
    }
    json.push_str("  ]\n}\n");
    write_atomic(out.join("results.json"), json.as_bytes())?;
    write_atomic(out.join("results.md"), md.as_bytes())
}

fn parse_args() -> std::result::Result<(usize, u64, PathBuf), String> {
    let mut n = 200_000usize;
    let mut seed_value = 0u64;
    let mut out = PathBuf::from("out/discrete_scm");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned();
        match (args[i].as_str(), val) {
            ("--samples", Some(v)) => {
                n = v
                    .parse()
                    .map_err(|_| format!("--samples: `{v}` is not a count"))?
            }
            ("--seed", Some(v)) => {
                seed_value = v
                    .parse()
                    .map_err(|_| format!("--seed: `{v}` is not an integer"))?
            }
            ("--out", Some(v)) => out = PathBuf::from(v),
            (flag, _) => {
                return Err(format!(
                "unknown or incomplete option `{flag}` (options: --samples N --seed S --out DIR)"
            ))
            }
        }
        i += 2;
    }
    if n == 0 {
        return Err("--samples must be at least 1".into());
    }
    Ok((n, seed_value, out))
}

fn main() -> std::process::ExitCode {
    ppl::runtime::pin_thread_count();
    let (n, seed_value, out) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("discrete_scm: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = run(n, seed_value).and_then(|qs| {
        report(&qs, n, seed_value, &out)?;
        Ok(qs)
    });
    match result {
        Ok(qs) => {
            for q in &qs {
                println!(
                    "{:<26} estimate {:.4}   exact {:.4}   (± {:.4} s.e.)",
                    q.name, q.estimate, q.exact, q.std_error
                );
            }
            println!("results written to {}", out.display());
            if qs
                .iter()
                .all(|q| (q.estimate - q.exact).abs() <= 3.0 * q.std_error)
            {
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!(
                    "discrete_scm: an estimate is more than 3 standard errors from its exact value"
                );
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("discrete_scm: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
