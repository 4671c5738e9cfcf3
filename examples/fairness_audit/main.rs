//! # Counterfactual fairness audit
//!
//! Audits an attribute classifier and the counterfactual image generators of the field on
//! cartoon faces with a planted bias, where the data's true SCM gives every counterfactual and
//! every fairness figure an exact reference; or, with `--celeba DIR`, audits a classifier on
//! the real CelebA files.
//!
//! ```text
//! cargo run --release --example fairness_audit                 # full run (~9 min on 2 cores)
//! cargo run --release --example fairness_audit -- --quick      # smoke run (~2 min)
//! cargo run --release --example fairness_audit -- --celeba ~/data/celeba --task Eyeglasses
//! # the CelebA path on planted cartoon faces written in CelebA's layout:
//! cargo run --release --example fairness_audit -- --write-celeba /tmp/celeba-planted
//! cargo run --release --example fairness_audit -- --celeba /tmp/celeba-planted --task Mustache
//! ```
//!
//! It writes `report.md`, `report.json`, bar charts and counterfactual grids to `--out`
//! (default `out/fairness_audit`). See `docs/fairness_audit.md`.

mod celeba;
mod debias;
mod faces;
mod progress;

use std::path::PathBuf;
use std::time::Instant;

use ppl::prelude::*;

/// Command-line options.
pub struct Options {
    /// Smaller data, networks and epochs.
    pub quick: bool,
    /// Training faces (planted population) and held-out faces.
    pub train: usize,
    /// Held-out faces for the classifier audit and the counterfactual engines.
    pub test: usize,
    /// Epochs of every network (the DCGAN gets twice as many).
    pub epochs: usize,
    /// The plant's strength in `[0, 1]` (see `models::fairness::planted`).
    pub strength: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Seeds everything.
    pub seed: u64,
    /// Where the report goes.
    pub out: PathBuf,
    /// A CelebA root (audits real data instead of the cartoon faces).
    pub celeba: Option<PathBuf>,
    /// CelebA: the task and protected attributes, and how many images per split.
    pub task: String,
    /// CelebA: the protected attribute.
    pub protected: String,
    /// CelebA: images per split at most (0: all).
    pub limit: usize,
    /// Writes planted-bias faces in CelebA's layout here and stops (to try the CelebA path).
    pub write_celeba: Option<PathBuf>,
}

fn usage() -> Error {
    Error::usage(
        "usage: fairness_audit [--quick] [--train N] [--test N] [--epochs N] [--strength S] \
         [--resamples N] [--seed S] [--out DIR] \
         [--celeba DIR [--task ATTR] [--protected ATTR] [--limit N]] \
         [--write-celeba DIR]",
    )
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = Options {
            quick,
            train: if quick { 2000 } else { 6000 },
            test: if quick { 500 } else { 1500 },
            epochs: if quick { 6 } else { 12 },
            strength: 0.9,
            resamples: if quick { 50 } else { 200 },
            seed: 0,
            out: PathBuf::from("out/fairness_audit"),
            celeba: None,
            task: "Eyeglasses".into(),
            protected: "Male".into(),
            limit: if quick { 2000 } else { 0 },
            write_celeba: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(usage);
            let number = |s: String| {
                s.parse::<usize>()
                    .map_err(|_| Error::usage(format!("{flag}: expected a number, got `{s}`")))
            };
            match flag.as_str() {
                "--quick" => {}
                "--train" => o.train = number(value()?)?,
                "--test" => o.test = number(value()?)?,
                "--epochs" => o.epochs = number(value()?)?,
                "--resamples" => o.resamples = number(value()?)?,
                "--seed" => o.seed = number(value()?)? as u64,
                "--limit" => o.limit = number(value()?)?,
                "--strength" => {
                    let s = value()?;
                    o.strength = s.parse().map_err(|_| {
                        Error::usage(format!("--strength: expected a number, got `{s}`"))
                    })?
                }
                "--out" => o.out = PathBuf::from(value()?),
                "--celeba" => o.celeba = Some(PathBuf::from(value()?)),
                "--write-celeba" => o.write_celeba = Some(PathBuf::from(value()?)),
                "--task" => o.task = value()?,
                "--protected" => o.protected = value()?,
                "--help" | "-h" => return Err(usage()),
                other => {
                    return Err(Error::usage(format!(
                        "unknown option `{other}`\n{}",
                        usage()
                    )))
                }
            }
        }
        if o.train < 200 || o.test < 100 || o.epochs == 0 || o.resamples < 2 {
            return Err(Error::usage(
                "--train must be at least 200, --test at least 100, --epochs at least 1 and \
                 --resamples at least 2",
            ));
        }
        if !(0.0..=1.0).contains(&o.strength) {
            return Err(Error::usage(format!(
                "--strength must lie in [0, 1], got {}",
                o.strength
            )));
        }
        Ok(o)
    }
}

fn run() -> Result<()> {
    ppl::runtime::pin_thread_count();
    ppl::runtime::keep_freed_memory();
    let opts = Options::parse()?;
    let start = Instant::now();
    if let Some(dir) = &opts.write_celeba {
        return celeba::write_planted(&opts, dir);
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let device = Device::Cpu;
    match &opts.celeba {
        Some(root) => celeba::audit(&opts, root, &device)?,
        None => faces::audit(&opts, &device)?,
    }
    println!(
        "wrote {} (report.md, report.json, charts, grids) in {:.0} s",
        opts.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fairness_audit: {e}");
        std::process::exit(1);
    }
}
