//! Classifier audit and latent-space de-biasing (Ramaswamy et al. 2021), shared by the cartoon
//! and CelebA paths: metrics tables, the before/after bar chart and the JSON.

use candle_core::Tensor;
use ppl::models::fairness::classifier::{AttributeClassifier, ClassifierConfig, ClassifierEvent};
use ppl::models::fairness::latent_debias::{
    debias, evaluate, DebiasConfig, DebiasEvent, DebiasOutcome, FairnessMetrics, LabelledImages,
    MetricInterval,
};
use ppl::models::fairness::scorer::AttributeScorer;
use ppl::models::generators::vae::{self, ConvVae, VaeConfig, VaeTrainConfig, VaeTrainEvent};
use ppl::models::generators::LatentGenerator;
use ppl::models::report::plot::BarChart;
use ppl::models::report::table::{fmt_num, MarkdownReport, Table};
use ppl::prelude::*;
use serde_json::{json, Value};

use crate::progress::{bar, note, say};
use crate::Options;

/// The de-biasing settings of this run.
pub fn config(target: &str, protected: &str, size: usize, opts: &Options) -> DebiasConfig {
    let classifier = ClassifierConfig {
        epochs: opts.epochs,
        seed: opts.seed,
        ..ClassifierConfig::new(size, &[target])
    };
    DebiasConfig {
        n_latents: if opts.quick { 400 } else { 3000 },
        seed: opts.seed,
        resamples: opts.resamples,
        bootstrap_seed: opts.seed,
        ..DebiasConfig::new(target, protected, classifier)
    }
}

/// A multi-label classifier of `names` trained on `images` with `[n, k]` 0/1 `labels`.
pub fn train_labeller(
    what: &str,
    names: &[&str],
    images: &Tensor,
    labels: &Tensor,
    size: usize,
    opts: &Options,
    device: &Device,
) -> Result<AttributeClassifier> {
    let cfg = ClassifierConfig {
        epochs: opts.epochs,
        seed: opts.seed,
        ..ClassifierConfig::new(size, names)
    };
    let mut clf = AttributeClassifier::new(cfg, device)?;
    let n = images.dim(0)?;
    let pb = bar(opts.epochs * (n / 64).max(1), what);
    clf.train(images, labels, None, |e| match e {
        ClassifierEvent::Step { loss, .. } => {
            pb.inc(1);
            pb.set_message(format!("loss {loss:.3}"));
        }
        ClassifierEvent::Epoch {
            epoch, mean_loss, ..
        } => say(
            &pb,
            format!("{what}: epoch {} loss {mean_loss:.4}", epoch + 1),
        ),
    })?;
    pb.finish_and_clear();
    Ok(clf)
}

/// A VAE trained on `images`: plain, or conditional on `conditions` (`[n, m]`, ±1).
pub fn train_vae(
    what: &str,
    images: &Tensor,
    conditions: Option<&Tensor>,
    size: usize,
    opts: &Options,
    device: &Device,
) -> Result<ConvVae> {
    let cond_dim = conditions.map(|c| c.dim(1)).transpose()?.unwrap_or(0);
    let cfg = VaeConfig {
        image_size: size,
        ..VaeConfig::default()
    }
    .with_cond_dim(cond_dim);
    let mut model = ConvVae::new(cfg, device, opts.seed)?;
    let tc = VaeTrainConfig {
        epochs: opts.epochs,
        seed: opts.seed,
        ..VaeTrainConfig::default()
    };
    let pb = bar(tc.epochs * (images.dim(0)? / tc.batch_size).max(1), what);
    vae::train(&mut model, images, conditions, &tc, None, |e| {
        if let VaeTrainEvent::Step { .. } = e {
            pb.inc(1)
        }
    })?;
    pb.finish_and_clear();
    Ok(model)
}

/// Runs [`debias`] with `generator`, a progress bar per classifier.
pub fn run(
    name: &str,
    generator: &dyn LatentGenerator,
    labeller: &dyn AttributeScorer,
    train: &LabelledImages,
    test: &LabelledImages,
    cfg: &DebiasConfig,
) -> Result<DebiasOutcome> {
    let steps = cfg.classifier.epochs * (train.len() / cfg.classifier.batch_size).max(1);
    crate::progress::note(format!("de-biasing with the {name} generator .."));
    let mut pb = bar(steps, &format!("{name}: baseline"));
    let out = debias(generator, labeller, train, test, cfg, |e| match e {
        DebiasEvent::Stage(stage) => {
            if *stage == "debiased" {
                pb.finish_and_clear();
                pb = bar(3 * steps, &format!("{name}: de-biased"));
            }
        }
        DebiasEvent::Train(_, ClassifierEvent::Step { .. }) => pb.inc(1),
        DebiasEvent::Train(..) => {}
    })?;
    pb.finish_and_clear();
    Ok(out)
}

fn cell(m: &MetricInterval) -> String {
    format!(
        "{} [{}, {}]",
        fmt_num(m.value, 3),
        fmt_num(m.low(), 3),
        fmt_num(m.high(), 3)
    )
}

/// A table row of the four metrics.
pub fn metrics_row(table: &mut Table, label: &str, m: &FairnessMetrics) -> Result<()> {
    table.row([
        label.to_string(),
        cell(&m.ap),
        cell(&m.deo),
        cell(&m.ba),
        cell(&m.kl),
    ])?;
    Ok(())
}

/// An empty metrics table.
pub fn metrics_table() -> Table {
    Table::new([
        "classifier",
        "AP ↑",
        "DEO ↓",
        "BA (attribute → task) ↓",
        "KL between groups ↓",
    ])
}

/// The de-biasing section: one row pair per generator, a bar chart of DEO and BA before and
/// after, and the JSON of every report.
pub fn section(
    md: &mut MarkdownReport,
    runs: &[(String, &DebiasOutcome)],
    out_dir: &std::path::Path,
) -> Result<Value> {
    let mut table = metrics_table();
    let mut aug = Table::new([
        "generator",
        "SVM accuracy (target / protected)",
        "cos(w_target, w_protected)",
        "target kept",
        "protected flipped",
    ])
    .numeric();
    for (name, o) in runs {
        let r = &o.report;
        metrics_row(&mut table, &format!("{name}: baseline"), &r.baseline)?;
        metrics_row(&mut table, &format!("{name}: de-biased"), &r.debiased)?;
        let s = &r.augmentation;
        aug.row([
            name.clone(),
            format!(
                "{} / {}",
                fmt_num(s.target_svm_accuracy, 3),
                fmt_num(s.protected_svm_accuracy, 3)
            ),
            fmt_num(s.hyperplane_cos, 3),
            fmt_num(s.target_kept_rate, 3),
            fmt_num(s.protected_flipped_rate, 3),
        ])?;
    }
    md.section("Latent-space de-biasing (Ramaswamy et al. 2021)");
    md.paragraph(
        "Each generator's latents are labelled by the labeller, linear SVM hyperplanes are fitted \
         for the target and the protected attribute, and every latent gets its complementary \
         latent (target score kept, protected score negated). The target classifier is then \
         trained on the real images plus both generated images of every pair, labelled with the \
         target label of the first; baseline = the same classifier on the real images only. \
         Metrics on the held-out set, with bootstrap median ± 2σ intervals.",
    );
    md.table(&table);
    md.paragraph("How well the complementary latents did their job, as the labeller reads them:");
    md.table(&aug);
    let cats = ["DEO", "BA"];
    let mut chart = BarChart::new("DEO and bias amplification before / after", cats)
        .y_label("metric (lower is fairer)");
    for (name, o) in runs {
        let r = &o.report;
        let iv = |m: &MetricInterval| (m.low(), m.high());
        chart = chart.group_with_intervals(
            format!("{name} baseline"),
            &[r.baseline.deo.value, r.baseline.ba.value],
            &[iv(&r.baseline.deo), iv(&r.baseline.ba)],
        );
        chart = chart.group_with_intervals(
            format!("{name} de-biased"),
            &[r.debiased.deo.value, r.debiased.ba.value],
            &[iv(&r.debiased.deo), iv(&r.debiased.ba)],
        );
    }
    chart.write_png(out_dir.join("debias.png"))?;
    md.image("DEO and BA before and after de-biasing", "debias.png");
    Ok(json!(runs
        .iter()
        .map(|(name, o)| json!({"generator": name, "report": o.report}))
        .collect::<Vec<_>>()))
}

/// The CelebA path: the audited classifier (the task alone, trained on the train split) with
/// its metrics by the protected attribute; then a labeller of both attributes, a VAE on the
/// training images and the de-biasing run with it, reported as impossible when the VAE's
/// generations do not show both groups.
#[allow(clippy::too_many_arguments)]
pub fn audit_and_debias(
    md: &mut MarkdownReport,
    json_out: &mut serde_json::Map<String, Value>,
    names: &[&str; 2],
    train: &LabelledImages,
    test: &LabelledImages,
    size: usize,
    opts: &Options,
    device: &Device,
) -> Result<()> {
    let n = train.len();
    let bits = |v: &[bool]| {
        v.iter()
            .map(|&b| f32::from(u8::from(b)))
            .collect::<Vec<_>>()
    };
    let target = Tensor::from_vec(bits(&train.target), (n, 1), device)?;
    let cfg = config(names[0], names[1], size, opts);
    let classifier = train_labeller(
        "classifier",
        &names[..1],
        &train.images,
        &target,
        size,
        opts,
        device,
    )?;
    let audit = evaluate(&classifier, test, &cfg)?;
    // Without a reference population, the audit asks whether the gap between the groups'
    // miss rates is distinguishable from none: DEO's bootstrap interval above zero.
    let detected = audit.deo.low() > 0.0;
    let mut table = metrics_table();
    metrics_row(&mut table, &format!("{} classifier", names[0]), &audit)?;
    md.section("Classifier audit");
    md.paragraph(&format!(
        "A {task} classifier trained on the {n} training images, its metrics on the {} test \
         images by {protected}. DEO = |FNR({protected}) − FNR(not {protected})|; its bootstrap \
         interval {} zero, so the audit {} a gap between the groups.",
        test.len(),
        if detected { "excludes" } else { "includes" },
        if detected { "finds" } else { "does not find" },
        task = names[0],
        protected = names[1],
    ));
    md.table(&table);
    json_out.insert(
        "classifier_audit".into(),
        json!({"metrics": audit, "gap_detected": detected}),
    );

    let labels: Vec<f32> = (0..n)
        .flat_map(|i| {
            [
                f32::from(u8::from(train.target[i])),
                f32::from(u8::from(train.protected[i])),
            ]
        })
        .collect();
    let labels = Tensor::from_vec(labels, (n, 2), device)?;
    let labeller = train_labeller(
        "labeller",
        names,
        &train.images,
        &labels,
        size,
        opts,
        device,
    )?;
    let vae = train_vae("VAE", &train.images, None, size, opts, device)?;
    match run("VAE", &vae, &labeller, train, test, &cfg) {
        Ok(out) => {
            let v = section(md, &[("VAE".to_string(), &out)], &opts.out)?;
            json_out.insert("debias".into(), v);
        }
        Err(e) => {
            note(format!("VAE: no de-biasing ({e})"));
            md.section("Latent-space de-biasing (Ramaswamy et al. 2021)");
            md.paragraph(&format!(
                "Not possible with this run's VAE: {e}. Its generations do not show both groups \
                 as the labeller reads them; train longer (`--epochs`) or on more images."
            ));
            json_out.insert("debias".into(), json!({"error": e.to_string()}));
        }
    }
    Ok(())
}
