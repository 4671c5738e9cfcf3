//! The audit on cartoon faces with a planted bias: every counterfactual has an exact reference.
//!
//! Populations: the *training* world is `planted_bias_faces(strength)` (Mustache tied to Male);
//! the *balanced* world is `planted_bias_faces(0)` (Mustache independent of Male), where the
//! classifier is tested. Every generator is trained on the training world, as an auditor would
//! train on the data at hand; its counterfactuals are scored on held-out faces of that world
//! against the world's true counterfactuals.

use candle_core::Tensor;
use ppl::models::data::cartoon::{Attr, CartoonFaces};
use ppl::models::data::image::PixelScale;
use ppl::models::face_scm::{
    self, FaceCfOptions, FaceData, FaceIntervention, FaceScm, FaceScmConfig, FaceTrainConfig,
};
use ppl::models::fairness::cf_fairness::{
    cf_fairness, compare_engine, rank_engines, EngineCfFairness,
};
use ppl::models::fairness::classifier::AttributeClassifier;
use ppl::models::fairness::esm::{Antecedent, Esm};
use ppl::models::fairness::latent_debias::{evaluate, DebiasOutcome, LabelledImages};
use ppl::models::fairness::planted::{planted_bias_faces, PLANTED_PROTECTED, PLANTED_TASK};
use ppl::models::generators::dcgan::{Dcgan, DcganConfig, DcganEvent, DcganTrainConfig};
use ppl::models::generators::intact_vae::{
    self, IntactConfig, IntactData, IntactTrainConfig, IntactVae,
};
use ppl::models::generators::noise_cf::{
    counterfactuals_from, sample_factuals, seed_queries, AntecedentForm, CfOptions, CfQuery,
    CfResult, EsmSampler, GaussianSampler, NoiseKernel,
};
use ppl::models::generators::procedural::ProceduralFaces;
use ppl::models::generators::vae::{
    attribute_share, condition_tensor, generation_audit, mae255, rebalance, CfMode, ConvVae,
    CvaeCounterfactual,
};
use ppl::models::generators::LatentGenerator;
use ppl::models::report::grid::ImageGrid;
use ppl::models::report::plot::BarChart;
use ppl::models::report::table::{fmt_num, fmt_pct, MarkdownReport, Table};
use ppl::models::report::write_json;
use ppl::prelude::*;
use serde_json::{json, Value};

use crate::debias;
use crate::progress::{bar, note, timed};
use crate::Options;

/// Image side of every model (the face SCM supports 32 and 64; 32 keeps CPU runs short).
const SIZE: usize = 32;
/// The attributes the labelling classifier reads (trained on the balanced world): all nine, so
/// every seed query's evidence, antecedent and consequents can be read.
const LABELS: [Attr; 9] = Attr::ALL;
/// Units in the counterfactual grids.
const GRID_ROWS: usize = 6;

/// Everything the sections share.
struct Audit<'a> {
    opts: &'a Options,
    device: Device,
    planted: CartoonFaces,
    train: FaceData,
    /// Held-out faces of the training world (counterfactual engines).
    held_out: FaceData,
    /// Held-out faces of the balanced world (classifier audit).
    balanced_test: FaceData,
    balanced_train: FaceData,
    md: MarkdownReport,
    json: serde_json::Map<String, Value>,
}

pub fn audit(opts: &Options, device: &Device) -> Result<()> {
    let planted = planted_bias_faces(opts.strength)?;
    let balanced = planted_bias_faces(0.0)?;
    note(format!(
        "generating {} + {} training faces and {} + {} held-out faces ..",
        opts.train, opts.train, opts.test, opts.test
    ));
    let seed = opts.seed;
    let mut a = Audit {
        opts,
        device: device.clone(),
        train: FaceData::generate(&planted, seed, 0, opts.train, SIZE, device)?,
        held_out: FaceData::generate(&planted, seed, 1_000_000, opts.test, SIZE, device)?,
        balanced_train: FaceData::generate(&balanced, seed + 1, 0, opts.train, SIZE, device)?,
        balanced_test: FaceData::generate(&balanced, seed + 1, 1_000_000, opts.test, SIZE, device)?,
        planted,
        md: MarkdownReport::new("Counterfactual fairness audit: cartoon faces with a planted bias"),
        json: serde_json::Map::new(),
    };
    a.introduction();
    let labeller = timed("labeller", || a.labeller())?;
    let plain_vae = timed("plain VAE", || {
        debias::train_vae("VAE", &a.train.images, None, SIZE, opts, device)
    })?;
    let gan = timed("DCGAN", || a.train_dcgan())?;
    let procedural = ProceduralFaces::new(a.planted.clone(), SIZE, device)?;
    let outcomes = timed("de-biasing", || {
        a.debiasing(
            &labeller,
            &[
                ("procedural (oracle)", &procedural as &dyn LatentGenerator),
                ("VAE", &plain_vae),
                ("DCGAN", &gan),
            ],
        )
    })?;
    let baseline = &outcomes[0].1.baseline;
    let debiased: Vec<(String, &AttributeClassifier)> = outcomes
        .iter()
        .map(|(n, o)| (format!("de-biased with {n}"), &o.debiased))
        .collect();
    timed("engines", || a.engines(baseline, &debiased))?;
    timed("generation audit", || a.generation(&labeller, &plain_vae))?;
    timed("GAN queries", || a.gan_queries(&labeller, &gan))?;
    a.md.write(opts.out.join("report.md"))?;
    write_json(opts.out.join("report.json"), &Value::Object(a.json))?;
    Ok(())
}

impl Audit<'_> {
    fn introduction(&mut self) {
        let o = self.opts;
        self.md.paragraph(&format!(
            "Training world: `planted_bias_faces({})` — {} is tied to {} (P({} | man) = {:.2}, \
             P({} | woman) = {:.2}); balanced world: the same faces with {} independent of {}. \
             {} training and {} held-out faces per world at {SIZE}×{SIZE}, {} epochs, seed {}, \
             {} bootstrap resamples (intervals are median ± 2σ).",
            o.strength,
            PLANTED_TASK.name(),
            PLANTED_PROTECTED.name(),
            PLANTED_TASK.name(),
            (1.0 + o.strength) / 2.0,
            PLANTED_TASK.name(),
            (1.0 - o.strength) / 2.0,
            PLANTED_TASK.name(),
            PLANTED_PROTECTED.name(),
            o.train,
            o.test,
            o.epochs,
            o.seed,
            o.resamples,
        ));
        self.json.insert(
            "setup".into(),
            json!({"strength": o.strength, "train": o.train, "test": o.test,
                   "epochs": o.epochs, "seed": o.seed, "image_size": SIZE,
                   "task": PLANTED_TASK.name(), "protected": PLANTED_PROTECTED.name()}),
        );
    }

    /// The labeller: every attribute, trained on the balanced world.
    fn labeller(&self) -> Result<AttributeClassifier> {
        let names: Vec<&str> = LABELS.iter().map(|a| a.name()).collect();
        debias::train_labeller(
            "labeller",
            &names,
            &self.balanced_train.images,
            &self.balanced_train.binary,
            SIZE,
            self.opts,
            &self.device,
        )
    }

    /// The classifier audit (does it detect the plant?) and the de-biasing runs, one per
    /// generator that can make complementary pairs (the first, the oracle, must).
    fn debiasing(
        &mut self,
        labeller: &AttributeClassifier,
        generators: &[(&str, &dyn LatentGenerator)],
    ) -> Result<Vec<(String, DebiasOutcome)>> {
        let train = LabelledImages::from_face_data(&self.train, PLANTED_TASK, PLANTED_PROTECTED)?;
        let test =
            LabelledImages::from_face_data(&self.balanced_test, PLANTED_TASK, PLANTED_PROTECTED)?;
        let cfg = debias::config(
            PLANTED_TASK.name(),
            PLANTED_PROTECTED.name(),
            SIZE,
            self.opts,
        );
        let mut outcomes: Vec<(String, DebiasOutcome)> = Vec::new();
        let mut failures: Vec<(String, String)> = Vec::new();
        for (i, (name, g)) in generators.iter().enumerate() {
            match debias::run(name, *g, labeller, &train, &test, &cfg) {
                Ok(o) => outcomes.push((name.to_string(), o)),
                // A learned generator too weak to make both groups (every image read the
                // same) is itself a finding; the oracle failing is a bug.
                Err(e) if i > 0 => {
                    note(format!("{name}: no de-biasing ({e})"));
                    failures.push((name.to_string(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        // The audit: the baseline (trained on the planted world) against a reference of the
        // same architecture trained on the balanced world (the labeller's task column).
        let reference = evaluate(labeller, &test, &cfg)?;
        let base = &outcomes[0].1.report.baseline;
        let detected = base.deo.value > reference.deo.high();
        let mut table = debias::metrics_table();
        debias::metrics_row(
            &mut table,
            "reference (trained on the balanced world)",
            &reference,
        )?;
        debias::metrics_row(&mut table, "baseline (trained on the planted world)", base)?;
        self.md.section("Classifier audit");
        self.md.paragraph(&format!(
            "A {task} classifier trained on the planted world, tested on {} faces of the \
             balanced world, next to a reference trained on the balanced world. The audit {} the \
             plant: the baseline's DEO {} {} the reference's bootstrap interval [{}, {}].",
            self.balanced_test.len(),
            if detected {
                "detects"
            } else {
                "does NOT detect"
            },
            fmt_num(base.deo.value, 3),
            if detected {
                "lies above"
            } else {
                "does not lie above"
            },
            fmt_num(reference.deo.low(), 3),
            fmt_num(reference.deo.high(), 3),
            task = PLANTED_TASK.name(),
        ));
        self.md.table(&table);
        let runs: Vec<(String, &DebiasOutcome)> =
            outcomes.iter().map(|(n, o)| (n.clone(), o)).collect();
        let v = debias::section(&mut self.md, &runs, &self.opts.out)?;
        // DEO's fair value is 0 and BA's is 0 from either side (negative BA is the classifier
        // under-using the attribute), so both are compared in magnitude.
        let moved: Vec<String> = outcomes
            .iter()
            .map(|(n, o)| {
                let r = &o.report;
                let deo = r.debiased.deo.value < r.baseline.deo.value;
                let ba = r.debiased.ba.value.abs() < r.baseline.ba.value.abs();
                format!(
                    "{n}: DEO {} ({} → {}), |BA| {} ({} → {})",
                    if deo { "reduced" } else { "NOT reduced" },
                    fmt_num(r.baseline.deo.value, 3),
                    fmt_num(r.debiased.deo.value, 3),
                    if ba { "reduced" } else { "NOT reduced" },
                    fmt_num(r.baseline.ba.value.abs(), 3),
                    fmt_num(r.debiased.ba.value.abs(), 3),
                )
            })
            .collect();
        self.md
            .paragraph(&format!("Against the baseline — {}.", moved.join("; ")));
        for (name, why) in &failures {
            self.md.paragraph(&format!(
                "No de-biasing with the {name} generator: {why}. Its generations do not show \
                 both groups as the labeller reads them, so no latent hyperplane exists."
            ));
        }
        self.json.insert(
            "classifier_audit".into(),
            json!({"reference": reference, "baseline": base, "detected": detected}),
        );
        self.json.insert("debias".into(), v);
        self.json.insert(
            "debias_failures".into(),
            json!(failures
                .iter()
                .map(|(n, w)| json!({"generator": n, "error": w}))
                .collect::<Vec<_>>()),
        );
        Ok(outcomes)
    }

    /// Counterfactual engines answering do(Male = 1 − Male) on held-out faces of the training
    /// world, scored against the true counterfactuals; the baseline classifier's counterfactual
    /// flip rate under each.
    fn engines(
        &mut self,
        baseline: &AttributeClassifier,
        debiased: &[(String, &AttributeClassifier)],
    ) -> Result<()> {
        let units = self.held_out.head(self.opts.test.min(500))?;
        let n = units.len();
        // The truth: every face re-rendered with Male flipped and the same noise.
        let truth_samples = units
            .samples
            .iter()
            .map(|s| {
                let v = if s.attributes.get(Attr::Male) {
                    0.0
                } else {
                    1.0
                };
                self.planted.counterfactual(s, &[("Male", v)])
            })
            .collect::<Result<Vec<_>>>()?;
        let truth = FaceData::from_samples(truth_samples, SIZE, &self.device)?;
        let mut rows: Vec<(String, Tensor)> = Vec::new();

        // DeepSCM: the face SCM, Male flipped per face through the world handlers.
        let scm = self.train_face_scm()?;
        let mut deep = Vec::with_capacity(n);
        for i in 0..n {
            let unit = units.select(&[i])?;
            let v = if units.samples[i].attributes.get(Attr::Male) {
                0.0
            } else {
                1.0
            };
            let cf = face_scm::counterfactual(
                &scm,
                &unit,
                &FaceIntervention::new(&[("Male", v)])?,
                &FaceCfOptions::default(),
            )?;
            deep.push((cf.image / 255.0)?);
        }
        rows.push(("DeepSCM".into(), Tensor::cat(&deep, 0)?));

        // Conditional VAE on Male: decoder flip, encoder-only flip, scaled ×2.
        let cvae = self.train_vae("CVAE(Male)", &self.train, &[Attr::Male])?;
        let c = condition_tensor(&units, &[Attr::Male])?;
        for query in [
            CvaeCounterfactual::new(CfMode::Decoder),
            CvaeCounterfactual::new(CfMode::EncoderOnly),
            CvaeCounterfactual::new(CfMode::Decoder).with_scale(2.0)?,
        ] {
            let out = query.apply(&cvae, &units.images, &c)?;
            rows.push((format!("CVAE {}", query.label()), out.image));
        }

        // β-intact-VAE: treatment Male, covariate Young.
        let intact = self.train_intact()?;
        let data = IntactData::new(units.clone(), &[Attr::Young], Attr::Male)?;
        let cf = intact_vae::counterfactual(&intact, data.images(), &data.x, &data.t, 1.0)?;
        rows.push(("β-intact-VAE".into(), cf));

        let mut table = Table::new([
            "engine",
            "image MAE vs truth (0–255)",
            "flip rate (engine)",
            "flip rate (truth)",
            "error",
            "unit agreement",
        ])
        .numeric();
        let mut results: Vec<EngineCfFairness> = Vec::new();
        let factual_mae = mae255(&units.images, &truth.images)?;
        table.row([
            "factual image (nothing changes)".to_string(),
            fmt_num(factual_mae, 2),
            "0".into(),
            String::new(),
            String::new(),
            String::new(),
        ])?;
        for (name, images) in &rows {
            let r = compare_engine(
                name,
                baseline,
                PLANTED_TASK.name(),
                &units.images,
                images,
                &truth.images,
                0.5,
            )?;
            table.row([
                name.clone(),
                fmt_num(mae255(images, &truth.images)?, 2),
                fmt_pct(r.estimated.flip_rate, 1),
                fmt_pct(r.truth.flip_rate, 1),
                fmt_num(r.flip_rate_error, 3),
                fmt_pct(r.unit_agreement, 1),
            ])?;
            results.push(r);
        }
        let ranking = rank_engines(&results, "DeepSCM")?;
        let verdict = ranking.verdict();
        self.md
            .section("Counterfactual engines: do(Male = 1 − Male)");
        self.md.paragraph(&format!(
            "{n} held-out faces of the training world. Each engine's counterfactual image is \
             compared with the true counterfactual (the generator's own re-render with the same \
             noise), and the baseline {task} classifier's counterfactual flip rate — how often \
             its verdict changes when only the person's sex changes — is estimated with each \
             engine next to its value on the true counterfactuals. {verdict}",
            task = PLANTED_TASK.name()
        ));
        self.md.table(&table);
        let chart = BarChart::new(
            format!(
                "Counterfactual flip rate of the {} classifier",
                PLANTED_TASK.name()
            ),
            // The charts' bitmap font is ASCII.
            results
                .iter()
                .map(|r| r.engine.replace('β', "beta").replace('×', "x")),
        )
        .y_label("flip rate")
        .group(
            "engine",
            &results
                .iter()
                .map(|r| r.estimated.flip_rate)
                .collect::<Vec<_>>(),
        )
        .group(
            "truth",
            &results
                .iter()
                .map(|r| r.truth.flip_rate)
                .collect::<Vec<_>>(),
        );
        chart.write_png(self.opts.out.join("cf_flip_rates.png"))?;
        self.md.image("flip rates", "cf_flip_rates.png");

        // The classifiers' own counterfactual fairness on true counterfactuals: the total
        // effect (the moustache follows Male through the planted mechanism) and the direct
        // one (the moustache held at its factual value, so only sex-linked looks change).
        let held: Vec<_> = units
            .samples
            .iter()
            .map(|s| {
                let a = &s.attributes;
                let v = if a.get(Attr::Male) { 0.0 } else { 1.0 };
                let m = if a.get(PLANTED_TASK) { 1.0 } else { 0.0 };
                self.planted
                    .counterfactual(s, &[("Male", v), (PLANTED_TASK.name(), m)])
            })
            .collect::<Result<Vec<_>>>()?;
        let direct = FaceData::from_samples(held, SIZE, &self.device)?;
        let mut fair = Table::new([
            "classifier",
            "flip rate, total effect",
            "flip rate, direct effect (Mustache held)",
            "mean |Δp|, direct",
        ])
        .numeric();
        let mut fair_json = Vec::new();
        for (name, clf) in std::iter::once(("baseline".to_string(), baseline))
            .chain(debiased.iter().map(|(n, c)| (n.clone(), *c)))
        {
            let total = cf_fairness(clf, PLANTED_TASK.name(), &units.images, &truth.images, 0.5)?;
            let d = cf_fairness(clf, PLANTED_TASK.name(), &units.images, &direct.images, 0.5)?;
            fair.row([
                name.clone(),
                fmt_pct(total.flip_rate, 1),
                fmt_pct(d.flip_rate, 1),
                fmt_num(d.mean_abs_change, 3),
            ])?;
            fair_json.push(json!({"classifier": name, "total": total, "direct": d}));
        }
        self.md.paragraph(&format!(
            "The classifiers' own counterfactual fairness, on true counterfactuals. Under the \
             total effect the moustache follows Male through the planted mechanism, so a \
             perfect {task} classifier flips wherever the true moustache does. Under the direct \
             effect the moustache is held at its factual value and only the sex-linked looks \
             change: a classifier that reads the moustache flips 0%, and every flip is the \
             classifier leaning on sex.",
            task = PLANTED_TASK.name()
        ));
        self.md.table(&fair);
        self.json
            .insert("classifier_cf_fairness".into(), json!(fair_json));

        // The grid: factual | truth | every engine.
        let k = GRID_ROWS.min(n);
        let mut headers = vec!["factual".to_string(), "truth".to_string()];
        headers.extend(rows.iter().map(|(name, _)| grid_header(name)));
        let mut grid = ImageGrid::new(k, headers.len())?
            .scale(3)
            .title("do(Male = 1 - Male)")
            .column_headers(headers.iter().cloned());
        for i in 0..k {
            grid.set_tensor(i, 0, &(units.images.get(i)? * 255.0)?, PixelScale::Byte)?;
            grid.set_tensor(i, 1, &(truth.images.get(i)? * 255.0)?, PixelScale::Byte)?;
            for (j, (_, images)) in rows.iter().enumerate() {
                let img = (images.get(i)?.clamp(0f32, 1f32)? * 255.0)?;
                grid.set_tensor(i, j + 2, &img, PixelScale::Byte)?;
            }
        }
        grid.write_png(self.opts.out.join("cf_grid.png"))?;
        self.md.image("counterfactual grid", "cf_grid.png");
        self.json.insert(
            "engines".into(),
            json!({"units": n, "factual_mae": factual_mae, "ranking": ranking, "results": results}),
        );
        Ok(())
    }

    fn train_face_scm(&self) -> Result<FaceScm> {
        let mut scm = FaceScm::new(FaceScmConfig::default(), &self.device, self.opts.seed)?;
        let cfg = FaceTrainConfig {
            epochs: self.opts.epochs,
            seed: self.opts.seed,
            ..FaceTrainConfig::default()
        };
        let steps = cfg.epochs * (self.train.len() / cfg.batch_size).max(1);
        let pb = bar(steps, "DeepSCM");
        face_scm::train(&mut scm, &self.train, &cfg, None, |e| {
            if let face_scm::FaceTrainEvent::Step { .. } = e {
                pb.inc(1)
            }
        })?;
        pb.finish_and_clear();
        Ok(scm)
    }

    fn train_vae(&self, what: &str, data: &FaceData, cond: &[Attr]) -> Result<ConvVae> {
        let c = if cond.is_empty() {
            None
        } else {
            Some(condition_tensor(data, cond)?)
        };
        let (opts, device) = (self.opts, &self.device);
        debias::train_vae(what, &data.images, c.as_ref(), SIZE, opts, device)
    }

    fn train_intact(&self) -> Result<IntactVae> {
        let cfg = IntactConfig {
            image_size: SIZE,
            covariates: vec![Attr::Young],
            treatment: Attr::Male,
            ..IntactConfig::default()
        };
        let data = IntactData::new(self.train.clone(), &[Attr::Young], Attr::Male)?;
        let model = IntactVae::new(cfg, &self.device, self.opts.seed)?;
        let tc = IntactTrainConfig {
            epochs: self.opts.epochs,
            seed: self.opts.seed,
            ..IntactTrainConfig::default()
        };
        let pb = bar(
            tc.epochs * (data.len() / tc.batch_size).max(1),
            "β-intact-VAE",
        );
        intact_vae::train(&model, &data, &tc, |_| pb.inc(1))?;
        pb.finish_and_clear();
        Ok(model)
    }

    /// Generation audit: plain VAEs trained on the training world re-balanced to a male share
    /// of 0.5 and 0.8; the male share among their random generations, read by the labeller.
    fn generation(&mut self, labeller: &AttributeClassifier, plain: &ConvVae) -> Result<()> {
        let mut table = Table::new([
            "training share (Male)",
            "generated share",
            "95% interval",
            "covers the training share",
        ])
        .numeric();
        let n = self.train.len() / 2;
        let mut rows = Vec::new();
        let skewed = rebalance(&self.train, Attr::Male, 0.8, n, self.opts.seed)?;
        let skewed_vae = self.train_vae("VAE(0.8 men)", &skewed, &[])?;
        for (data, model) in [(&self.train, plain), (&skewed, &skewed_vae)] {
            let actual = attribute_share(data, Attr::Male)?;
            let p = generation_audit(
                model,
                labeller,
                Attr::Male.name(),
                actual,
                self.opts.test,
                self.opts.seed,
            )?;
            table.row([
                fmt_num(actual, 3),
                fmt_num(p.share, 3),
                format!("[{}, {}]", fmt_num(p.low, 3), fmt_num(p.high, 3)),
                if p.covers_target() { "yes" } else { "no" }.to_string(),
            ])?;
            rows.push(json!({"training_share": actual, "generated_share": p.share,
                             "low": p.low, "high": p.high}));
        }
        self.md.section("Generation audit (plain VAE)");
        self.md.paragraph(&format!(
            "Plain VAEs trained on the {} training-world faces and on {n} of them re-balanced \
             to 80% men; {} random generations each, read by the labeller. A faithful \
             generator reproduces its training share.",
            self.train.len(),
            self.opts.test
        ));
        self.md.table(&table);
        self.json.insert("generation".into(), json!(rows));
        Ok(())
    }

    /// Lucas & Kemp's queries on a DCGAN trained on the training world, answered with the ESM
    /// and Gaussian samplers (observation form), next to the exact ESM answer of the data's own
    /// attribute SCM.
    fn gan_queries(&mut self, labeller: &AttributeClassifier, gan: &Dcgan) -> Result<()> {
        let opts = CfOptions {
            units: if self.opts.quick { 40 } else { 200 },
            max_factual_draws: if self.opts.quick { 20_000 } else { 100_000 },
            seed: self.opts.seed,
            skip_unresolved: true,
            ..CfOptions::default()
        };
        let stickiness = 0.8;
        let scm = self.planted.config().cpds.to_scm()?;
        let esm = Esm::new(&scm, stickiness)?;
        let mut table = Table::new([
            "query",
            "method",
            "consequent",
            "factual",
            "counterfactual (GAN)",
            "exact ESM (data SCM)",
        ])
        .numeric();
        let mut results: Vec<Value> = Vec::new();
        let mut grid_pairs: Vec<(String, Tensor, Tensor)> = Vec::new();
        let mut unresolved: Vec<Value> = Vec::new();
        for query in seed_queries() {
            if !Self::labels_cover(labeller, &query) {
                continue;
            }
            let factuals = match sample_factuals(
                gan,
                labeller,
                &query,
                &opts,
                &mut ppl::ppl_core::rng::from_seed(opts.seed),
            ) {
                Ok(f) => f,
                Err(e) => {
                    note(format!("{}: skipped ({e})", query.label));
                    unresolved.push(json!({"query": query.label, "method": "factual units",
                                           "error": e.to_string()}));
                    continue;
                }
            };
            let exact = exact_esm(&esm, &query)?;
            let esm_k = EsmSampler::gan(stickiness)?;
            let gauss = GaussianSampler::gan(0.8)?;
            let mut answers: Vec<CfResult> = Vec::new();
            let samplers: [(&str, &dyn NoiseKernel); 2] = [("ESM", &esm_k), ("Gaussian", &gauss)];
            for (method, sampler) in samplers {
                match counterfactuals_from(
                    gan,
                    labeller,
                    sampler,
                    &query,
                    &AntecedentForm::Observation,
                    &factuals,
                    &opts,
                ) {
                    Ok(r) => answers.push(r),
                    // The generator never showing the antecedent within the proposal budget is
                    // an answer about the generator, reported rather than fatal.
                    Err(e) => {
                        note(format!("{}: {method} sampler: {e}", query.label));
                        unresolved.push(json!({"query": query.label, "method": method,
                                               "error": e.to_string()}));
                    }
                }
            }
            for r in &answers {
                for (j, c) in r.consequents.iter().enumerate() {
                    table.row([
                        r.query.clone(),
                        r.method.clone(),
                        c.clone(),
                        fmt_num(r.factual_freq[j], 2),
                        fmt_num(r.counterfactual_freq[j], 2),
                        exact
                            .get(j)
                            .map(|p| fmt_num(*p, 2))
                            .unwrap_or_else(|| "–".into()),
                    ])?;
                }
                results.push(json!({"query": r.query, "method": r.method,
                    "consequents": r.consequents, "factual": r.factual_freq,
                    "counterfactual": r.counterfactual_freq, "exact_esm": exact}));
            }
            if let Some(r) = answers.first() {
                let k = r.z.dim(0)?.min(6);
                grid_pairs.push((
                    r.query.clone(),
                    gan.generate(&r.z.narrow(0, 0, k)?)?,
                    gan.generate(&r.z_cf.narrow(0, 0, k)?)?,
                ));
            }
        }
        self.md
            .section("GAN noise-space counterfactuals (Lucas & Kemp)");
        self.md.paragraph(&format!(
            "A DCGAN ({SIZE}×{SIZE}, z ∈ [−1, 1]^100) trained on the training world; factual units \
             are prior draws whose image the labeller reads the evidence in; counterfactual \
             latents come from the ESM kernel (stickiness {stickiness}) or a Gaussian copula \
             (ρ = 0.8), conditioned on the labeller reading the antecedent. The exact column is \
             the ESM answer of the data's own attribute SCM with the same stickiness (discrete \
             ESM engine over `Cpds::to_scm`), the reference a perfect generator and labeller \
             would reach."
        ));
        self.md.table(&table);
        self.write_gan_grid(&grid_pairs)?;
        if !unresolved.is_empty() {
            self.md.paragraph(&format!(
                "Unanswered (the generator never showed the antecedent, or the evidence, within \
                 the sampling budget): {}.",
                unresolved
                    .iter()
                    .map(|u| format!("{} ({})", u["query"], u["method"]))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        self.json.insert(
            "gan_queries".into(),
            json!({"answers": results, "unresolved": unresolved}),
        );
        Ok(())
    }

    fn labels_cover(labeller: &AttributeClassifier, q: &CfQuery) -> bool {
        use models::fairness::scorer::AttributeScorer;
        q.evidence
            .iter()
            .chain(&q.antecedent)
            .map(|v| &v.name)
            .chain(&q.consequents)
            .all(|name| labeller.column(name).is_ok())
    }

    fn write_gan_grid(&mut self, pairs: &[(String, Tensor, Tensor)]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let cols = 6usize;
        let mut grid = ImageGrid::new(2 * pairs.len(), cols)?
            .scale(3)
            .title("GAN counterfactuals (ESM, observation form)");
        let mut labels = Vec::new();
        for (q, (label, f, c)) in pairs.iter().enumerate() {
            let k = cols.min(f.dim(0)?);
            for i in 0..k {
                grid.set_tensor(2 * q, i, &(f.get(i)? * 255.0)?, PixelScale::Byte)?;
                grid.set_tensor(2 * q + 1, i, &(c.get(i)? * 255.0)?, PixelScale::Byte)?;
            }
            labels.push(format!("{label}: factual"));
            labels.push("counterfactual".to_string());
        }
        grid = grid.row_labels(labels);
        grid.write_png(self.opts.out.join("gan_grid.png"))?;
        self.md.image("GAN counterfactual grid", "gan_grid.png");
        Ok(())
    }

    fn train_dcgan(&self) -> Result<Dcgan> {
        let cfg = DcganConfig {
            image_size: SIZE,
            ..DcganConfig::default()
        };
        let mut gan = Dcgan::new(cfg, &self.device, self.opts.seed)?;
        let tc = DcganTrainConfig {
            epochs: 2 * self.opts.epochs,
            seed: self.opts.seed,
            ..DcganTrainConfig::default()
        };
        let pb = bar(
            tc.epochs * (self.train.len() / tc.batch_size).max(1),
            "DCGAN",
        );
        gan.train(&self.train, &tc, |e| {
            if let DcganEvent::Step { d_loss, g_loss, .. } = e {
                pb.inc(1);
                pb.set_message(format!("D {d_loss:.3} G {g_loss:.3}"));
            }
        })?;
        pb.finish_and_clear();
        Ok(gan)
    }
}

/// The exact ESM answer of the attribute SCM to `query`: per consequent, the probability it
/// holds in the counterfactual world.
fn exact_esm(esm: &Esm, query: &CfQuery) -> Result<Vec<f64>> {
    let evidence: Vec<(&str, usize)> = query
        .evidence
        .iter()
        .map(|v| (v.name.as_str(), usize::from(v.value)))
        .collect();
    let antecedent: Vec<(&str, usize)> = query
        .antecedent
        .iter()
        .map(|v| (v.name.as_str(), usize::from(v.value)))
        .collect();
    let joint = esm.exact(&evidence, &Antecedent::observe(&antecedent))?;
    query
        .consequents
        .iter()
        .map(|c| Ok(joint.cf_marginal(c)?[1]))
        .collect()
}

/// A grid column header short enough for a 96-pixel column (the bitmap font is ASCII).
fn grid_header(engine: &str) -> String {
    match engine {
        "CVAE decoder" => "CVAE".into(),
        "CVAE encoder-only" => "CVAE enc".into(),
        "CVAE decoder ×2" => "CVAE x2".into(),
        "β-intact-VAE" => "intact".into(),
        other => other.chars().filter(char::is_ascii).take(8).collect(),
    }
}
