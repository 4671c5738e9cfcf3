//! The DeepSCM tutorial: train a deep structural causal model of glyph images and ask it
//! counterfactual questions — "what would this glyph look like, had its stroke been thicker?" —
//! then score every answer against the truth, which the data generator knows.
//!
//! The SCM is DeepSCM's Morpho model (Pawlowski, Castro & Glocker 2020): thickness `t` →
//! intensity `i` → image `x` ← latent `z`, with a spline flow for `t`, a conditional flow for
//! `i | t` and a conditional VAE decoder for the image, whose encoder abducts `z`. Three variants
//! are trained side by side — Independent (`x | z`), Conditional (`x | z, t, i`) and Full (the
//! data's graph) — and compared on held-out glyphs (see `docs/deepscm_tutorial.md`).
//!
//! ```text
//! cargo run --release --example deepscm_tutorial -- [--quick] [--train N] [--test N]
//!     [--epochs N] [--variants full,conditional,independent] [--faces-train N]
//!     [--faces-epochs N] [--device cpu|cuda] [--seed S] [--out DIR] [--fresh]
//! ```
//!
//! Writes to `DIR` (default `out/deepscm_tutorial`): `report.md` and `report.json` (the
//! tables), `training_curve.png`, one counterfactual grid per variant (`grid_<variant>.png`:
//! original, reconstruction, do(t), do(i) and the true counterfactual side by side), and
//! `checkpoints/`, from which a rerun with the same settings resumes.
//!
//! Part two asks the same kind of question of cartoon faces — "what would this face look like
//! with blue eyes, with glasses, had this person been young, been male?" — with a deep SCM whose
//! attributes follow the data set's DAG and whose image mechanism is a conditional VAE
//! (`grid_faces.png`; `--faces-train 0` skips it).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ppl::models::data::cartoon::CartoonFaces;
use ppl::models::data::image::PixelScale;
use ppl::models::data::morpho::{Intervention, MorphoGlyphs};
use ppl::models::deepscm::eval::{evaluate, EvalConfig, Evaluation, InterventionReport};
use ppl::models::deepscm::{
    counterfactual, default_data_size, quick_data_size, train, tutorial_data_config,
    CfIntervention, CfOptions, Checkpointing, DeepScm, Observed, ScmConfig, Target, TrainConfig,
    TrainEvent, Variant,
};
use ppl::models::face_scm::{
    self, FaceData, FaceEvalConfig, FaceEvaluation, FaceScm, FaceScmConfig, FaceTrainConfig,
    FaceTrainEvent,
};
use ppl::models::report::checkpoint::fingerprint;
use ppl::models::report::grid::ImageGrid;
use ppl::models::report::plot::LinePlot;
use ppl::models::report::table::{fmt_num, MarkdownReport, Table};
use ppl::models::report::write_json;
use ppl::models::training::Trainable;
use ppl::prelude::*;
use serde_json::{json, Value};

/// The quality bars of the tutorial (issue #9), checked in the report.
mod bars {
    /// Thickness effectiveness MAE (pixels) under do(t) and do(i).
    pub const THICKNESS_MAE: f64 = 0.25;
    /// Intensity effectiveness MAE (grey levels, 0–255) under do(t) and do(i).
    pub const INTENSITY_MAE: f64 = 12.0;
    /// Per-pixel MAE (0–255) of the counterfactual image against the true one.
    pub const GROUND_TRUTH_MAE: f64 = 8.0;
    /// Composition: MAE after 10 null interventions over the single reconstruction's MAE.
    pub const COMPOSITION_RATIO: f64 = 1.5;
}

/// Command-line options.
struct Options {
    quick: bool,
    train: usize,
    test: usize,
    epochs: usize,
    variants: Vec<Variant>,
    device: String,
    seed: u64,
    out: PathBuf,
    fresh: bool,
    /// Cartoon faces: training faces (0 skips the faces part) and epochs.
    faces_train: usize,
    faces_epochs: usize,
}

fn usage() -> Error {
    Error::usage(
        "usage: deepscm_tutorial [--quick] [--train N] [--test N] [--epochs N] \
         [--variants full,conditional,independent] [--faces-train N] [--faces-epochs N] \
         [--device cpu|cuda] [--seed S] [--out DIR] [--fresh]",
    )
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = Options {
            quick,
            train: if quick {
                quick_data_size()
            } else {
                default_data_size()
            },
            test: if quick { 500 } else { 1000 },
            epochs: if quick {
                TrainConfig::quick().epochs
            } else {
                TrainConfig::standard().epochs
            },
            variants: Variant::ALL.to_vec(),
            device: "cpu".into(),
            seed: 0,
            out: PathBuf::from("out/deepscm_tutorial"),
            fresh: false,
            faces_train: if quick { 1000 } else { 4000 },
            faces_epochs: if quick {
                8
            } else {
                FaceTrainConfig::default().epochs
            },
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
                "--fresh" => o.fresh = true,
                "--train" => o.train = number(value()?)?,
                "--test" => o.test = number(value()?)?,
                "--epochs" => o.epochs = number(value()?)?,
                "--faces-train" => o.faces_train = number(value()?)?,
                "--faces-epochs" => o.faces_epochs = number(value()?)?,
                "--seed" => o.seed = number(value()?)? as u64,
                "--device" => o.device = value()?,
                "--out" => o.out = PathBuf::from(value()?),
                "--variants" => {
                    o.variants = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<Vec<Variant>>>()?
                }
                "--help" | "-h" => return Err(usage()),
                other => {
                    return Err(Error::usage(format!(
                        "unknown option `{other}`\n{}",
                        usage()
                    )))
                }
            }
        }
        if o.train == 0 || o.test == 0 || o.epochs == 0 || o.variants.is_empty() {
            return Err(Error::usage(
                "--train, --test, --epochs and --variants must be non-empty",
            ));
        }
        Ok(o)
    }

    fn device(&self) -> Result<Device> {
        match self.device.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Device::new_cuda(0).map_err(|e| {
                Error::usage(format!(
                    "--device cuda: {e} (build with `cargo run --release --features cuda ..`)"
                ))
            }),
            other => Err(Error::usage(format!(
                "--device: expected cpu or cuda, got `{other}`"
            ))),
        }
    }

    fn train_config(&self) -> TrainConfig {
        let base = if self.quick {
            TrainConfig::quick()
        } else {
            TrainConfig::standard()
        };
        TrainConfig {
            epochs: self.epochs,
            seed: self.seed,
            ..base
        }
    }
}

/// A progress bar on a terminal, nothing otherwise.
fn progress_bar(len: u64, variant: Variant) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(variant.name());
    bar
}

/// A line above the progress bar, or on stderr when there is no terminal (a hidden bar
/// prints nothing, and a log should still show progress).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Per-epoch mean losses and per-step losses of one variant, kept beside its checkpoint so a
/// resumed run still plots the whole curve.
#[derive(Default)]
struct Curve {
    steps: Vec<f64>,
    epochs: Vec<f64>,
}

impl Curve {
    fn path(dir: &Path) -> PathBuf {
        dir.join("curve.json")
    }

    fn load(dir: &Path) -> Curve {
        let read = || -> Option<Curve> {
            let v: Value = serde_json::from_slice(&std::fs::read(Self::path(dir)).ok()?).ok()?;
            let list = |k: &str| -> Option<Vec<f64>> {
                v.get(k)?.as_array()?.iter().map(Value::as_f64).collect()
            };
            Some(Curve {
                steps: list("steps")?,
                epochs: list("epochs")?,
            })
        };
        read().unwrap_or_default()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        write_json(
            Self::path(dir),
            &json!({"steps": self.steps, "epochs": self.epochs}),
        )
    }
}

/// Trains (or resumes) one variant, with a progress bar and a checkpoint per epoch.
fn fit(
    variant: Variant,
    data: &MorphoGlyphs,
    opts: &Options,
    device: &Device,
) -> Result<(DeepScm, Curve, f64)> {
    let cfg = ScmConfig::new(variant);
    let train_cfg = opts.train_config();
    // Settings that change what is learned name the checkpoint; more epochs resume it.
    let key = fingerprint(&format!(
        "{cfg:?} {:?} n={} seed={} lr={} flow_lr={} batch={}",
        tutorial_data_config(),
        opts.train,
        opts.seed,
        train_cfg.lr,
        train_cfg.flow_lr,
        train_cfg.batch_size
    ))?;
    let dir = opts
        .out
        .join("checkpoints")
        .join(format!("{}-{key}", variant.name()));
    let mut scm = DeepScm::new(cfg, device, opts.seed)?;
    let mut curve = Curve::default();
    if !opts.fresh && dir.join("progress.txt").exists() {
        scm.load_checkpoint(&dir)?;
        curve = Curve::load(&dir);
        eprintln!(
            "{variant}: resumed from {} after {} epochs",
            dir.display(),
            scm.epochs_done()
        );
    }
    if scm.epochs_done() >= train_cfg.epochs {
        return Ok((scm, curve, 0.0));
    }
    let batches_per_epoch = data.len() / train_cfg.batch_size.min(data.len());
    let remaining = (train_cfg.epochs - scm.epochs_done()) * batches_per_epoch.max(1);
    let bar = progress_bar(remaining as u64, variant);
    let start = Instant::now();
    let mut failure: Option<Error> = None;
    let summary = train(
        &mut scm,
        data,
        &train_cfg,
        &Checkpointing {
            dir: Some(dir.clone()),
        },
        |event| match event {
            TrainEvent::Step { loss, .. } => {
                curve.steps.push(*loss);
                bar.inc(1);
                bar.set_message(format!("loss {loss:.3} nats/image"));
            }
            TrainEvent::Epoch {
                epoch, mean_loss, ..
            } => {
                curve.epochs.push(*mean_loss);
                // The checkpoint was just written; the curve goes beside it.
                if let Err(e) = curve.save(&dir) {
                    failure.get_or_insert(e);
                }
                say(
                    &bar,
                    format!("{variant}: epoch {} mean loss {mean_loss:.3}", epoch + 1),
                );
            }
        },
    );
    bar.finish_and_clear();
    summary?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((scm, curve, start.elapsed().as_secs_f64()))
}

/// Original, reconstruction, and two do(t) and two do(i) answers each beside the truth, for
/// the first `rows` held-out glyphs.
fn write_grid(scm: &DeepScm, test: &MorphoGlyphs, rows: usize, path: &Path) -> Result<()> {
    let units = MorphoGlyphs::from_samples(test.samples()[..rows].to_vec(), scm.device())?;
    let obs = Observed::from_glyphs(&units, scm.device())?;
    let queries = [
        (
            "t=1.5",
            Intervention::thickness(1.5),
            CfIntervention {
                thickness: Some(Target::Value(1.5)),
                intensity: None,
            },
        ),
        (
            "t=4",
            Intervention::thickness(4.0),
            CfIntervention {
                thickness: Some(Target::Value(4.0)),
                intensity: None,
            },
        ),
        (
            "i=100",
            Intervention::intensity(100.0),
            CfIntervention {
                thickness: None,
                intensity: Some(Target::Value(100.0)),
            },
        ),
        (
            "i=240",
            Intervention::intensity(240.0),
            CfIntervention {
                thickness: None,
                intensity: Some(Target::Value(240.0)),
            },
        ),
    ];
    let mut headers = vec!["original".to_string(), "recon".to_string()];
    for (label, ..) in &queries {
        headers.push(format!("do({label})"));
        headers.push("truth".to_string());
    }
    let mut grid = ImageGrid::new(rows, headers.len())?
        .scale(3)
        .title(format!("DeepSCM ({}) counterfactuals", scm.variant()))
        .column_headers(headers);
    let null = counterfactual(scm, &obs, &CfIntervention::default(), &CfOptions::default())?;
    let mut columns = vec![obs.image.clone(), null.factual_loc.clone()];
    for (_, truth, query) in &queries {
        let cf = counterfactual(scm, &obs, query, &CfOptions::default())?;
        columns.push(cf.image);
        columns.push(units.counterfactual(truth)?.images().clone());
    }
    for (c, images) in columns.iter().enumerate() {
        for r in 0..rows {
            grid.set_tensor(r, c, &images.get(r)?, PixelScale::Byte)?;
        }
    }
    grid.write_png(path)
}

/// One row of a quality bar: the measured value, the bar, and whether it is met.
fn bar_row(table: &mut Table, what: &str, value: f64, bar: f64) -> Result<Value> {
    let met = value < bar;
    let margin = if met {
        "met".to_string()
    } else {
        format!("missed by {}", fmt_num(value - bar, 3))
    };
    table.row(vec![
        what.to_string(),
        fmt_num(value, 3),
        format!("< {}", fmt_num(bar, 3)),
        margin,
    ])?;
    Ok(json!({"what": what, "value": value, "bar": bar, "met": met}))
}

fn intervention_json(r: &InterventionReport) -> Value {
    let e = &r.effectiveness;
    json!({
        "effectiveness": {
            "thickness_mae": e.thickness_mae,
            "intensity_mae": e.intensity_mae,
            "thickness_mae_vs_true": e.thickness_mae_true,
            "intensity_mae_vs_true": e.intensity_mae_true,
            "oracle_mae": [e.oracle_mae.0, e.oracle_mae.1],
        },
        "ground_truth_mae": r.ground_truth_mae,
        "ground_truth_mae_noise_free": r.ground_truth_mae_loc,
        "reversibility_mae": [r.reversibility_mae.0, r.reversibility_mae.1],
        "reversibility_mae_noise_free": [r.reversibility_mae_loc.0, r.reversibility_mae_loc.1],
    })
}

fn evaluation_json(e: &Evaluation) -> Value {
    let ll = &e.log_likelihoods;
    json!({
        "log_likelihoods": {
            "thickness": ll.thickness, "intensity": ll.intensity, "image": ll.image,
            "kl": ll.kl, "elbo": ll.elbo, "n": ll.n,
        },
        "do_thickness": intervention_json(&e.do_thickness),
        "do_intensity": intervention_json(&e.do_intensity),
        "composition": {
            "noise_free": e.composition.loc,
            "abducted": e.composition.abducted,
        },
        "cf_units": e.cf_units,
        "seconds": e.seconds,
    })
}

/// The composition measure's ratio: MAE after the last null intervention over the first's.
fn composition_ratio(e: &Evaluation) -> f64 {
    let loc = &e.composition.loc;
    match (loc.first(), loc.last()) {
        (Some(first), Some(last)) if first.1 > 0.0 => last.1 / first.1,
        _ => f64::NAN,
    }
}

struct Trained {
    variant: Variant,
    eval: Evaluation,
    curve: Curve,
    train_seconds: f64,
}

fn write_report(
    opts: &Options,
    runs: &[Trained],
    faces: Option<&(FaceEvaluation, f64)>,
    total_seconds: f64,
) -> Result<()> {
    let mut md =
        MarkdownReport::new("DeepSCM tutorial: counterfactual glyphs, scored against truth");
    md.paragraph(&format!(
        "{} training and {} held-out glyphs (class {}, seed {}), {} epochs{}; device {}. \
         Images are 28×28 grey levels; errors are mean absolute errors on the 0–255 scale, \
         thickness in pixels. Total time {:.0} s.",
        opts.train,
        opts.test,
        ppl::models::deepscm::TUTORIAL_CLASS,
        opts.seed,
        opts.epochs,
        if opts.quick { " (--quick)" } else { "" },
        opts.device,
        total_seconds
    ));
    md.image("training curve", "training_curve.png");

    md.section("Held-out log-likelihoods (nats per glyph)");
    let mut ll = Table::new(vec![
        "variant",
        "log p(t)",
        "log p(i|·)",
        "E log p(x|·)",
        "KL",
        "ELBO",
    ]);
    for r in runs {
        let l = &r.eval.log_likelihoods;
        ll.row(vec![
            r.variant.to_string(),
            fmt_num(l.thickness, 3),
            fmt_num(l.intensity, 3),
            fmt_num(l.image, 1),
            fmt_num(l.kl, 1),
            fmt_num(l.elbo, 1),
        ])?;
    }
    md.table(&ll);

    md.section("Counterfactual soundness");
    md.paragraph(
        "Targets of do(t) and do(i) are the attributes of other held-out glyphs, so they span \
         the data's range. Effectiveness: the oracle's measurement of the counterfactual image \
         against the model's counterfactual attribute. Ground truth: the counterfactual image \
         against the data generator's re-render with the same noise. Reversibility: intervene, \
         then intervene back to the factual value. Composition: the null intervention applied \
         1 and 10 times (noise-free decoding fed back).",
    );
    let mut cf = Table::new(vec![
        "variant",
        "query",
        "thickness MAE",
        "intensity MAE",
        "ground-truth MAE",
        "reversibility MAE",
    ]);
    for r in runs {
        for (q, rep) in [
            ("do(t)", &r.eval.do_thickness),
            ("do(i)", &r.eval.do_intensity),
        ] {
            let e = &rep.effectiveness;
            cf.row(vec![
                r.variant.to_string(),
                q.to_string(),
                fmt_num(e.thickness_mae, 3),
                fmt_num(e.intensity_mae, 2),
                fmt_num(rep.ground_truth_mae, 2),
                fmt_num(rep.reversibility_mae.0, 2),
            ])?;
        }
    }
    md.table(&cf);
    let mut comp = Table::new(vec![
        "variant",
        "after 1",
        "after 2",
        "after 10",
        "ratio 10/1",
        "after 10, noise abducted",
    ]);
    for r in runs {
        let mut row = vec![r.variant.to_string()];
        row.extend(r.eval.composition.loc.iter().map(|(_, m)| fmt_num(*m, 2)));
        row.resize(4, String::new());
        row.push(fmt_num(composition_ratio(&r.eval), 3));
        let abducted = r
            .eval
            .composition
            .abducted
            .last()
            .map_or(f64::NAN, |(_, m)| *m);
        row.push(format!("{abducted:.1e}"));
        comp.row(row)?;
    }
    md.subsection("Composition (MAE to the original)");
    md.paragraph(
        "Noise-free decodings fed back (the bar below is checked on these); the last column \
         repeats the null intervention with the pixel noise abducted each time, DeepSCM's own \
         counterfactual, which composes exactly up to float rounding.",
    );
    md.table(&comp);

    md.section("Quality bars");
    let mut bars_table = Table::new(vec!["check", "value", "bar", "result"]);
    let mut bars_json = Vec::new();
    if let Some(full) = runs.iter().find(|r| r.variant == Variant::Full) {
        let e = &full.eval;
        for (q, rep) in [("do(t)", &e.do_thickness), ("do(i)", &e.do_intensity)] {
            bars_json.push(bar_row(
                &mut bars_table,
                &format!("Full {q}: thickness MAE"),
                rep.effectiveness.thickness_mae,
                bars::THICKNESS_MAE,
            )?);
            bars_json.push(bar_row(
                &mut bars_table,
                &format!("Full {q}: intensity MAE"),
                rep.effectiveness.intensity_mae,
                bars::INTENSITY_MAE,
            )?);
            bars_json.push(bar_row(
                &mut bars_table,
                &format!("Full {q}: ground-truth MAE"),
                rep.ground_truth_mae,
                bars::GROUND_TRUTH_MAE,
            )?);
        }
        bars_json.push(bar_row(
            &mut bars_table,
            "Full: composition ratio 10/1",
            composition_ratio(e),
            bars::COMPOSITION_RATIO,
        )?);
        if let Some(ind) = runs.iter().find(|r| r.variant == Variant::Independent) {
            for (q, f, i) in [
                ("do(t)", &e.do_thickness, &ind.eval.do_thickness),
                ("do(i)", &e.do_intensity, &ind.eval.do_intensity),
            ] {
                // The intervened attribute's effectiveness and the ground truth: the other
                // attribute of Independent's unchanged image is trivially "preserved".
                let pairs = if q == "do(t)" {
                    [
                        (
                            "thickness MAE",
                            f.effectiveness.thickness_mae,
                            i.effectiveness.thickness_mae,
                        ),
                        ("ground-truth MAE", f.ground_truth_mae, i.ground_truth_mae),
                    ]
                } else {
                    [
                        (
                            "intensity MAE",
                            f.effectiveness.intensity_mae,
                            i.effectiveness.intensity_mae,
                        ),
                        ("ground-truth MAE", f.ground_truth_mae, i.ground_truth_mae),
                    ]
                };
                for (what, full_v, ind_v) in pairs {
                    // Full beats Independent: the bar is Independent's own value.
                    bars_json.push(bar_row(
                        &mut bars_table,
                        &format!("Full beats Independent, {q} {what}"),
                        full_v,
                        ind_v,
                    )?);
                }
            }
        }
    } else {
        md.paragraph("The quality bars are stated for the Full variant, which was not trained.");
    }
    md.table(&bars_table);

    md.section("Counterfactual grids");
    for r in runs {
        md.image(
            &format!("{} counterfactuals", r.variant),
            &format!("grid_{}.png", r.variant.name()),
        );
    }
    if let Some((e, _)) = faces {
        faces_section(&mut md, e, opts)?;
    }
    md.write(opts.out.join("report.md"))?;

    let json = json!({
        "settings": {
            "train": opts.train, "test": opts.test, "epochs": opts.epochs, "seed": opts.seed,
            "quick": opts.quick, "device": opts.device,
        },
        "variants": runs.iter().map(|r| json!({
            "variant": r.variant.name(),
            "train_seconds": r.train_seconds,
            "final_epoch_loss": r.curve.epochs.last(),
            "evaluation": evaluation_json(&r.eval),
        })).collect::<Vec<_>>(),
        "quality_bars": bars_json,
        "faces": faces.map(|(e, secs)| faces_json(e, *secs)),
        "total_seconds": total_seconds,
    });
    write_json(opts.out.join("report.json"), &json)
}

/// Part two: the cartoon-face SCM, trained (or resumed), scored and drawn.
fn faces_part(opts: &Options, device: &Device) -> Result<(FaceEvaluation, f64)> {
    let faces = CartoonFaces::default();
    let cfg = FaceScmConfig::default();
    let size = cfg.image_size;
    eprintln!("faces: generating {} + 256 faces ..", opts.faces_train);
    let train_set = FaceData::generate(&faces, opts.seed, 0, opts.faces_train, size, device)?;
    let test_set = FaceData::generate(&faces, opts.seed, 1 << 40, 256, size, device)?;
    let train_cfg = FaceTrainConfig {
        epochs: opts.faces_epochs,
        seed: opts.seed,
        ..FaceTrainConfig::default()
    };
    let key = fingerprint(&format!(
        "{cfg:?} n={} seed={} lr={} cpd_lr={} batch={}",
        opts.faces_train, opts.seed, train_cfg.lr, train_cfg.cpd_lr, train_cfg.batch_size
    ))?;
    let dir = opts.out.join("checkpoints").join(format!("faces-{key}"));
    let mut scm = FaceScm::new(cfg, device, opts.seed)?;
    if !opts.fresh && dir.join("progress.txt").exists() {
        scm.load_checkpoint(&dir)?;
        eprintln!("faces: resumed after {} epochs", scm.epochs_done());
    }
    let start = Instant::now();
    if scm.epochs_done() < train_cfg.epochs {
        let per_epoch = (opts.faces_train / train_cfg.batch_size).max(1);
        let bar = ProgressBar::with_draw_target(
            Some(((train_cfg.epochs - scm.epochs_done()) * per_epoch) as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix("faces");
        let summary =
            face_scm::train(
                &mut scm,
                &train_set,
                &train_cfg,
                Some(&dir),
                |event| match event {
                    FaceTrainEvent::Step { loss, .. } => {
                        bar.inc(1);
                        bar.set_message(format!("loss {loss:.0} nats/face"));
                    }
                    FaceTrainEvent::Epoch {
                        epoch, mean_loss, ..
                    } => say(
                        &bar,
                        format!("faces: epoch {} mean loss {mean_loss:.0}", epoch + 1),
                    ),
                },
            );
        bar.finish_and_clear();
        summary?;
    }
    let train_seconds = start.elapsed().as_secs_f64();
    eprintln!("faces: evaluating ..");
    let eval_cfg = FaceEvalConfig {
        seed: opts.seed + 17,
        ..FaceEvalConfig::default()
    };
    let eval = face_scm::evaluate(&scm, &test_set, &faces, &eval_cfg)?;
    face_scm::write_counterfactual_grid(
        &scm,
        &test_set.head(6)?,
        &faces,
        &eval_cfg.interventions,
        &face_scm::FaceCfOptions {
            particles: eval_cfg.particles,
            seed: opts.seed,
        },
        3,
        opts.out.join("grid_faces.png"),
    )?;
    Ok((eval, train_seconds))
}

fn faces_json(e: &FaceEvaluation, train_seconds: f64) -> Value {
    json!({
        "train_seconds": train_seconds,
        "elbo": e.elbo,
        "attribute_log_lik": e.attribute_log_lik,
        "image_log_lik": e.image_log_lik,
        "kl": e.kl,
        "reconstruction_mae": e.reconstruction_mae,
        "interventions": e.interventions.iter().map(|s| json!({
            "label": s.label,
            "effectiveness": s.effectiveness,
            "effectiveness_ceiling": s.effectiveness_ceiling,
            "preservation": s.preservation,
            "preservation_ceiling": s.preservation_ceiling,
            "ground_truth_mae": s.ground_truth_mae,
            "descendant_agreement": s.descendant_agreement,
            "oracle_failures": s.oracle_failures,
        })).collect::<Vec<_>>(),
    })
}

fn faces_section(md: &mut MarkdownReport, e: &FaceEvaluation, opts: &Options) -> Result<()> {
    md.section("Part two: cartoon faces");
    md.paragraph(&format!(
        "{} training faces at {s}×{s} (the 64×64 renders average-pooled), {} epochs. Held-out \
         ELBO {} nats per face (attributes {}, image {}, KL {}); reconstruction MAE {} of 255. \
         Effectiveness and preservation are the attribute oracle's accuracy on the \
         counterfactual image (intervened attribute; attributes the intervention cannot \
         change); the ceiling is the oracle's accuracy on the true counterfactual at the same \
         resolution, so it bounds what any model can score here.",
        opts.faces_train,
        opts.faces_epochs,
        fmt_num(e.elbo, 0),
        fmt_num(e.attribute_log_lik, 2),
        fmt_num(e.image_log_lik, 0),
        fmt_num(e.kl, 1),
        fmt_num(e.reconstruction_mae, 2),
        s = FaceScmConfig::default().image_size,
    ));
    let mut t = Table::new(vec![
        "query",
        "effectiveness (ceiling)",
        "preservation (ceiling)",
        "ground-truth MAE",
        "descendants agree",
    ]);
    for s in &e.interventions {
        t.row(vec![
            s.label.clone(),
            format!(
                "{} ({})",
                fmt_num(s.effectiveness, 2),
                fmt_num(s.effectiveness_ceiling, 2)
            ),
            format!(
                "{} ({})",
                fmt_num(s.preservation, 2),
                fmt_num(s.preservation_ceiling, 2)
            ),
            fmt_num(s.ground_truth_mae, 2),
            s.descendant_agreement
                .map_or("—".to_string(), |a| fmt_num(a, 2)),
        ])?;
    }
    md.table(&t);
    md.image("face counterfactuals", "grid_faces.png");
    Ok(())
}

fn write_curve(opts: &Options, runs: &[Trained]) -> Result<()> {
    let mut plot = LinePlot::new("DeepSCM training: negative ELBO per glyph")
        .x_label("SVI step")
        .y_label("loss (nats / glyph)")
        .smooth(Some(25));
    for r in runs.iter().filter(|r| !r.curve.steps.is_empty()) {
        plot = plot.series_y(r.variant.name(), &r.curve.steps);
    }
    plot.write_png(opts.out.join("training_curve.png"))
}

fn run() -> Result<()> {
    ppl::runtime::pin_thread_count();
    ppl::runtime::keep_freed_memory();
    let opts = Options::parse()?;
    let device = opts.device()?;
    let start = Instant::now();
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;

    eprintln!("generating {} + {} glyphs ..", opts.train, opts.test);
    let data = tutorial_data_config();
    let train_set = MorphoGlyphs::generate_with(opts.train, opts.seed, &data, &device)?;
    let test_set = MorphoGlyphs::generate_with(opts.test, opts.seed + 1_000_003, &data, &device)?;

    let mut runs = Vec::new();
    for &variant in &opts.variants {
        let (scm, curve, train_seconds) = fit(variant, &train_set, &opts, &device)?;
        eprintln!("{variant}: evaluating on {} held-out glyphs ..", opts.test);
        let eval = evaluate(
            &scm,
            &test_set,
            &EvalConfig {
                cf_units: opts.test.min(500),
                seed: opts.seed + 17,
                ..EvalConfig::default()
            },
        )?;
        write_grid(
            &scm,
            &test_set,
            opts.test.min(8),
            &opts.out.join(format!("grid_{}.png", variant.name())),
        )?;
        runs.push(Trained {
            variant,
            eval,
            curve,
            train_seconds,
        });
    }
    write_curve(&opts, &runs)?;
    let faces = if opts.faces_train > 0 {
        Some(faces_part(&opts, &device)?)
    } else {
        None
    };
    write_report(&opts, &runs, faces.as_ref(), start.elapsed().as_secs_f64())?;
    println!(
        "wrote {} (report.md, report.json, training_curve.png, grids) in {:.0} s",
        opts.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("deepscm_tutorial: {e}");
        std::process::exit(1);
    }
}
