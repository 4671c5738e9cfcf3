//! `ppl-bench`: the peer workloads of `shared/BENCHMARKS.md`, run through ppl's public API and
//! printed as JSON lines in the peers' format (`shared/peers/README.md`).
//!
//! `cargo run --release --bin ppl-bench -- [B1|B2|B3|B4|B5|all] [--reps N] [--warmup N]`
//!
//! Each workload verifies its answer as the peers do; the command exits non-zero when a check
//! fails. `--reps`/`--warmup` override every workload's defaults (for smoke runs).

use std::process::ExitCode;

mod b1;
mod b2;
mod b3;
mod b4;
mod b5;
mod report;

/// Command-line options shared by the workloads.
pub struct Opts {
    pub reps: Option<usize>,
    pub warmup: Option<usize>,
}

const WORKLOADS: [&str; 5] = ["B1", "B2", "B3", "B4", "B5"];

fn run(which: &str, opts: &Opts) -> ppl::Result<bool> {
    match which {
        "B1" => b1::run(opts),
        "B2" => b2::run(opts),
        "B3" => b3::run(opts),
        "B4" => b4::run(opts),
        "B5" => b5::run(opts),
        _ => unreachable!("checked against WORKLOADS"),
    }
}

fn main() -> ExitCode {
    ppl::runtime::pin_thread_count();
    ppl::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut which: Vec<String> = Vec::new();
    let mut opts = Opts {
        reps: None,
        warmup: None,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--reps" | "--warmup" => {
                let Some(v) = args.get(i + 1).and_then(|v| v.parse::<usize>().ok()) else {
                    eprintln!("ppl-bench: {} needs a non-negative integer", args[i]);
                    return ExitCode::from(2);
                };
                if args[i] == "--reps" {
                    opts.reps = Some(v.max(1));
                } else {
                    opts.warmup = Some(v);
                }
                i += 2;
            }
            "-h" | "--help" => {
                println!(
                    "usage: ppl-bench [{}|all] [--reps N] [--warmup N]",
                    WORKLOADS.join("|")
                );
                return ExitCode::SUCCESS;
            }
            "all" => {
                which.extend(WORKLOADS.iter().map(|w| w.to_string()));
                i += 1;
            }
            w => {
                let w = w.to_uppercase();
                if !WORKLOADS.contains(&w.as_str()) {
                    eprintln!(
                        "ppl-bench: unknown workload `{}` (implemented: {})",
                        args[i],
                        WORKLOADS.join(", ")
                    );
                    return ExitCode::from(2);
                }
                which.push(w);
                i += 1;
            }
        }
    }
    if which.is_empty() {
        which.extend(WORKLOADS.iter().map(|w| w.to_string()));
    }
    let mut failed = Vec::new();
    for w in &which {
        match run(w, &opts) {
            Ok(true) => {}
            Ok(false) => failed.push(format!("{w}: verification failed")),
            Err(e) => failed.push(format!("{w}: {e}")),
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in failed {
            eprintln!("ppl-bench: {f}");
        }
        ExitCode::FAILURE
    }
}
