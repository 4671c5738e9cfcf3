//! The DCGAN (shapes, a short training run on 16×16 faces, save/load) and the noise-space
//! counterfactual samplers, the latter exactly on a toy generator whose image colours are a
//! function of `z` and a toy scorer reading them.
//!
//! Run with `cargo test -p models --test dcgan`.

use candle_core::{DType, Device, Tensor};

use models::data::cartoon::CartoonFaces;
use models::face_scm::FaceData;
use models::fairness::scorer::AttributeScorer;
use models::fairness::svm::LinearSvm;
use models::generators::dcgan::{Dcgan, DcganConfig, DcganEvent, DcganTrainConfig};
use models::generators::noise_cf::{
    counterfactuals, counterfactuals_from, sample_factuals, seed_queries, AntecedentForm,
    CfOptions, CfQuery, EsmSampler, GaussianSampler, LatentIntervention, NoiseKernel,
};
use models::generators::LatentGenerator;
use ppl_core::rng::{self, from_seed, Rng};
use ppl_core::{Error, Result};
use statrs::function::erf::erfc_inv;

// ---------------------------------------------------------------------------------------------
// A toy generator and scorer: image channel k is (z_k + 1) / 2 for k < 3 (so the latents can be
// read back from the image), and the scorer thresholds the colours.

const D: usize = 5;

struct Toy;

impl LatentGenerator for Toy {
    fn latent_dim(&self) -> usize {
        D
    }
    fn image_size(&self) -> usize {
        2
    }
    fn sample_latents(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        Ok(rng::uniform01(rng, (n, D), DType::F32, &Device::Cpu)?.affine(2.0, -1.0)?)
    }
    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        let n = z.dim(0)?;
        let c = z.narrow(1, 0, 3)?.affine(0.5, 0.5)?.reshape((n, 3, 1, 1))?;
        Ok(c.broadcast_as((n, 3, 2, 2))?.contiguous()?)
    }
}

/// A: z0 > 0. B: z1 > 0. C: z2 > 0.5. S: z0 + z1 > 0.2. Never: never.
struct ToyScorer(Vec<String>);

impl ToyScorer {
    fn new() -> Self {
        ToyScorer(["A", "B", "C", "S", "Never"].map(String::from).to_vec())
    }
}

impl AttributeScorer for ToyScorer {
    fn attribute_names(&self) -> &[String] {
        &self.0
    }
    fn attribute_probs(&self, images: &Tensor) -> Result<Tensor> {
        let z = images.mean((2, 3))?.affine(2.0, -1.0)?; // [n, 3]
        let col = |k: usize| z.narrow(1, k, 1);
        let a = col(0)?.gt(0.0)?;
        let b = col(1)?.gt(0.0)?;
        let c = col(2)?.gt(0.5)?;
        let s = (col(0)? + col(1)?)?.gt(0.2)?;
        let never = a.zeros_like()?;
        Ok(Tensor::cat(&[a, b, c, s, never], 1)?.to_dtype(DType::F32)?)
    }
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_vec2::<f32>()?)
}

fn corr(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn column(r: &[Vec<f32>], k: usize) -> Vec<f64> {
    r.iter().map(|row| row[k] as f64).collect()
}

fn opts(units: usize) -> CfOptions {
    CfOptions {
        units,
        batch_size: 512,
        ..CfOptions::default()
    }
}

fn query(ev: &[(&str, bool)], ant: &[(&str, bool)]) -> Result<CfQuery> {
    CfQuery::new("toy query", ev, ant, &["A", "B", "C"])
}

// ---------------------------------------------------------------------------------------------
// Samplers on the toy pair

#[test]
fn identity_kernels_return_the_factual_latent_when_the_antecedent_already_holds() -> Result<()> {
    let q = query(&[("A", true)], &[("A", true)])?;
    let o = opts(200);
    let kernels: [&dyn NoiseKernel; 2] = [&EsmSampler::gan(1.0)?, &GaussianSampler::gan(1.0)?];
    for k in kernels {
        let r = counterfactuals(
            &Toy,
            &ToyScorer::new(),
            k,
            &q,
            &AntecedentForm::Observation,
            &o,
        )?;
        assert_eq!(rows(&r.z)?, rows(&r.z_cf)?, "{}", r.method);
        assert_eq!(r.proposals, 200, "one proposal per unit");
        assert_eq!(r.cf_acceptance, Some(1.0));
        assert_eq!(r.flip_rate, vec![0.0; 3]);
        // Evidence A = 1 on z0 > 0: every factual unit shows it.
        assert!(column(&rows(&r.z)?, 0).iter().all(|&v| v > 0.0));
        // Half the prior draws have z0 > 0: 200 units from one batch of 512 (binomial(512, 1/2)
        // ≥ 200 with overwhelming probability); acceptance 1/2 ± 4 standard errors.
        assert_eq!(r.factual_draws, 512);
        assert!((r.factual_acceptance - 0.5).abs() < 4.0 * (0.25f64 / 512.0).sqrt());
    }
    Ok(())
}

#[test]
fn zero_stickiness_and_zero_rho_ignore_the_factual_latent() -> Result<()> {
    // Antecedent C = 1 (z2 > 0.5): rejection acts on z2 only.
    let q = query(&[], &[("C", true)])?;
    let n = 3000;
    let tol = 4.0 / (n as f64).sqrt(); // 4 standard errors of a null correlation
    let kernels: [&dyn NoiseKernel; 2] = [&EsmSampler::gan(0.0)?, &GaussianSampler::gan(0.0)?];
    for k in kernels {
        let r = counterfactuals(
            &Toy,
            &ToyScorer::new(),
            k,
            &q,
            &AntecedentForm::Observation,
            &opts(n),
        )?;
        let (z, zc) = (rows(&r.z)?, rows(&r.z_cf)?);
        assert_eq!(zc.len(), n);
        for j in 0..D {
            let c = corr(&column(&z, j), &column(&zc, j));
            assert!(c.abs() < tol, "{}: corr of coordinate {j} = {c}", r.method);
        }
        // Rejection respects the antecedent, and z' keeps its prior marginal elsewhere:
        // acceptance of z2 > 0.5 is 1/4 (± 4 standard errors).
        assert!(column(&zc, 2).iter().all(|&v| v > 0.5));
        assert_eq!(r.antecedent_agreement, 1.0);
        let acc = r.cf_acceptance.unwrap();
        let se = (0.25 * 0.75 / r.proposals as f64).sqrt();
        assert!(
            (acc - 0.25).abs() < 4.0 * se,
            "{}: acceptance {acc}",
            r.method
        );
    }
    Ok(())
}

#[test]
fn intermediate_kernels_have_their_closed_form_dependence() -> Result<()> {
    let q = query(&[], &[("C", true)])?;
    let n = 3000;
    let scorer = ToyScorer::new();
    let f = sample_factuals(&Toy, &scorer, &q, &opts(n), &mut from_seed(3))?;
    // No evidence: every draw is accepted (whole batches of 512).
    assert_eq!((f.draws, f.accepted, f.acceptance()?), (3072, 3072, 1.0));
    // ESM(0.6): unconstrained coordinates (all but z2) are kept with probability 0.6.
    let esm = EsmSampler::gan(0.6)?;
    let r = counterfactuals_from(
        &Toy,
        &scorer,
        &esm,
        &q,
        &AntecedentForm::Observation,
        &f,
        &opts(n),
    )?;
    let (z, zc) = (rows(&r.z)?, rows(&r.z_cf)?);
    let (mut kept, mut total) = (0usize, 0usize);
    for (a, b) in z.iter().zip(&zc) {
        for j in [0, 1, 3, 4] {
            kept += usize::from(a[j] == b[j]);
            total += 1;
        }
    }
    let rate = kept as f64 / total as f64;
    let se = (0.6 * 0.4 / total as f64).sqrt();
    assert!((rate - 0.6).abs() < 4.0 * se, "keep rate {rate}");
    // Gaussian(0.8): the normal scores Φ⁻¹((u + 1)/2) of unconstrained coordinates have
    // correlation 0.8; the standard error of r is (1 − ρ²)/√n = 0.0066, tolerance 0.03.
    // Units with z2 near −1 practically never reach z2 > 0.5 at ρ = 0.8 (a jump of several
    // standard deviations in normal scores): they are dropped, which leaves the other
    // coordinates' law alone (the coordinates are independent and the kernel acts on each).
    let patient = CfOptions {
        max_proposals: 2000,
        skip_unresolved: true,
        ..opts(n)
    };
    let g = GaussianSampler::gan(0.8)?;
    let r = counterfactuals_from(
        &Toy,
        &scorer,
        &g,
        &q,
        &AntecedentForm::Observation,
        &f,
        &patient,
    )?;
    assert!(r.unresolved < n / 20, "{} unresolved", r.unresolved);
    let n = n - r.unresolved;
    let (z, zc) = (rows(&r.z)?, rows(&r.z_cf)?);
    let score = |v: Vec<f64>| -> Vec<f64> {
        v.into_iter()
            .map(|u| -std::f64::consts::SQRT_2 * erfc_inv(u + 1.0))
            .collect()
    };
    for j in [0, 3] {
        let c = corr(&score(column(&z, j)), &score(column(&zc, j)));
        assert!(
            (c - 0.8).abs() < 0.03,
            "coordinate {j}: normal-score corr {c}"
        );
    }
    // Marginals stay uniform on (−1, 1): mean 0 ± 4·√(1/3/n).
    let m = column(&zc, 4).iter().sum::<f64>() / n as f64;
    assert!(m.abs() < 4.0 * (1.0 / 3.0 / n as f64).sqrt(), "mean {m}");
    assert!(zc.iter().flatten().all(|&v| v > -1.0 && v < 1.0));
    Ok(())
}

#[test]
fn interventions_move_latents_across_the_fitted_hyperplanes() -> Result<()> {
    let scorer = ToyScorer::new();
    let svm = LinearSvm {
        c: 100.0,
        ..LinearSvm::default()
    };
    let iv = LatentIntervention::fit(
        &Toy,
        &scorer,
        &["S", "B"],
        1500,
        &svm,
        0.2,
        &mut from_seed(5),
    )?;
    // S is z0 + z1 > 0.2: the normal is (1, 1, 0, 0, 0)/√2.
    let hs = iv.hyperplane("S")?;
    let cos = (hs.w()[0] + hs.w()[1]) / 2f64.sqrt();
    assert!(cos > 0.99, "cos {cos}");
    let q = query(&[("A", false)], &[("S", true)])?;
    let form = AntecedentForm::Intervention(iv.clone());
    let r = counterfactuals(&Toy, &scorer, &EsmSampler::gan(1.0)?, &q, &form, &opts(400))?;
    assert_eq!(r.cf_acceptance, None);
    assert!(
        r.antecedent_agreement >= 0.98,
        "agreement {}",
        r.antecedent_agreement
    );
    let (z, zc) = (rows(&r.z)?, rows(&r.z_cf)?);
    let score = |v: &[f32]| hs.score_row(v);
    let mut moved = 0;
    for (a, b) in z.iter().zip(&zc) {
        let (s, s_cf) = (score(a)?, score(b)?);
        if s >= 0.2 {
            assert_eq!(a, b, "a unit beyond the margin is not moved");
        } else {
            moved += 1;
            assert!((s_cf - 0.2).abs() < 1e-5, "moved to the margin: {s_cf}");
            // The move is along the normal only.
            let step: Vec<f64> = a.iter().zip(b).map(|(x, y)| (y - x) as f64).collect();
            let along: f64 = step.iter().zip(hs.w()).map(|(s, w)| s * w).sum();
            for (s, w) in step.iter().zip(hs.w()) {
                assert!((s - along * w).abs() < 1e-5);
            }
        }
    }
    assert!(
        moved > 100,
        "evidence z0 < 0 leaves most units below the margin ({moved})"
    );

    // Two antecedents with sticky redraws: both distances hit their targets exactly.
    let q2 = query(&[], &[("S", true), ("B", false)])?;
    let r2 = counterfactuals(
        &Toy,
        &scorer,
        &EsmSampler::gan(0.5)?,
        &q2,
        &form,
        &opts(300),
    )?;
    let hb = iv.hyperplane("B")?;
    for (a, b) in rows(&r2.z)?.iter().zip(&rows(&r2.z_cf)?) {
        let ts = hs.score_row(a)?.max(0.2);
        let tb = hb.score_row(a)?.min(-0.2);
        assert!((hs.score_row(b)? - ts).abs() < 1e-5);
        assert!((hb.score_row(b)? - tb).abs() < 1e-5);
    }
    Ok(())
}

#[test]
fn caps_and_bad_queries_are_typed_errors_naming_the_query() -> Result<()> {
    let scorer = ToyScorer::new();
    let small = CfOptions {
        units: 10,
        batch_size: 64,
        max_factual_draws: 1024,
        max_proposals: 5,
        ..CfOptions::default()
    };
    let impossible = CfQuery::new(
        "given the impossible",
        &[("Never", true)],
        &[("A", true)],
        &[],
    )?;
    let esm = EsmSampler::gan(0.5)?;
    let err = counterfactuals(
        &Toy,
        &scorer,
        &esm,
        &impossible,
        &AntecedentForm::Observation,
        &small,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Usage(_)) && err.to_string().contains("given the impossible"),
        "{err}"
    );
    // Stickiness 1 cannot reach an antecedent the factual world contradicts.
    let q = CfQuery::new("stuck", &[("A", false)], &[("A", true)], &["B"])?;
    let err = counterfactuals(
        &Toy,
        &scorer,
        &EsmSampler::gan(1.0)?,
        &q,
        &AntecedentForm::Observation,
        &small,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("stuck") && err.to_string().contains("10 of 10"),
        "{err}"
    );
    // Skipping unresolved units: with stickiness 0.9 over 5 proposals some units resolve.
    let skip = CfOptions {
        units: 200,
        skip_unresolved: true,
        ..small
    };
    let r = counterfactuals(
        &Toy,
        &scorer,
        &EsmSampler::gan(0.9)?,
        &q,
        &AntecedentForm::Observation,
        &skip,
    )?;
    assert!(r.unresolved > 0 && r.z.dim(0)? == 200 - r.unresolved && r.z_cf.dim(0)? == r.z.dim(0)?);
    assert!(column(&rows(&r.z_cf)?, 0).iter().all(|&v| v > 0.0));
    // Unknown attributes, empty antecedents, bad parameters.
    let bad = CfQuery::new("bad", &[], &[("Moustache", true)], &[])?;
    assert!(counterfactuals(
        &Toy,
        &scorer,
        &esm,
        &bad,
        &AntecedentForm::Observation,
        &small
    )
    .unwrap_err()
    .to_string()
    .contains("Moustache"));
    assert!(CfQuery::new("empty", &[], &[], &[]).is_err());
    assert!(CfQuery::new("twice", &[("A", true), ("A", false)], &[("B", true)], &[]).is_err());
    assert!(EsmSampler::gan(1.5).is_err() && GaussianSampler::gan(-1.1).is_err());
    Ok(())
}

#[test]
fn seed_queries_name_cartoon_attributes() -> Result<()> {
    let names: Vec<&str> = models::data::cartoon::Attr::ALL
        .iter()
        .map(|a| a.name())
        .collect();
    let qs = seed_queries();
    assert_eq!(qs.len(), 4);
    assert_eq!(qs[0].label, "given a woman, what if she had a moustache");
    assert_eq!(qs[1].label, "given a young man, what if he were bald");
    for q in &qs {
        let all = q
            .evidence
            .iter()
            .chain(&q.antecedent)
            .map(|a| a.name.as_str());
        for n in all.chain(q.consequents.iter().map(|s| s.as_str())) {
            assert!(names.contains(&n), "{}: {n}", q.label);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The DCGAN

#[test]
fn dcgan_shapes_and_ranges() -> Result<()> {
    let dev = Device::Cpu;
    for s in [16, 32, 64] {
        let cfg = DcganConfig {
            image_size: s,
            latent_dim: 10,
            features: 4,
        };
        let gan = Dcgan::new(cfg, &dev, 1)?;
        let z = gan.sample_latents(3, &mut from_seed(0))?;
        let zs = z.flatten_all()?.to_vec1::<f32>()?;
        assert!(zs.iter().all(|v| v.abs() < 1.0));
        let x = gan.generate(&z)?;
        assert_eq!(x.dims(), &[3, 3, s, s]);
        // Detached: a classifier trained on these must not backpropagate into the generator.
        assert!(!x.track_op());
        let (lo, hi) = (
            x.min_all()?.to_scalar::<f32>()?,
            x.max_all()?.to_scalar::<f32>()?,
        );
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && hi > lo);
        assert_eq!(gan.discriminate(&x)?.dims(), &[3]);
    }
    // Seeded construction.
    let a = Dcgan::new(DcganConfig::tiny(), &dev, 7)?;
    let b = Dcgan::new(DcganConfig::tiny(), &dev, 7)?;
    let z = a.sample_latents(2, &mut from_seed(0))?;
    assert_eq!(
        rows(&a.generate(&z)?.flatten(1, 3)?)?,
        rows(&b.generate(&z)?.flatten(1, 3)?)?
    );
    // Bad input.
    let bad = DcganConfig {
        image_size: 48,
        ..DcganConfig::tiny()
    };
    assert!(matches!(
        Dcgan::new(bad, &dev, 0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(a
        .generate(&Tensor::zeros((2, 3), DType::F32, &dev)?)
        .is_err());
    assert!(a
        .discriminate(&Tensor::zeros((2, 3, 32, 32), DType::F32, &dev)?)
        .is_err());
    assert!(matches!(
        Dcgan::load("/nonexistent/dcgan", &dev),
        Err(Error::Io { .. })
    ));
    Ok(())
}

fn channel_means(images: &Tensor) -> Result<Vec<f64>> {
    Ok(images
        .mean((0, 2, 3))?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?)
}

fn l1(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Trains the tiny DCGAN on 512 16×16 faces for `epochs` epochs of batches of 32 at `lr`,
/// returning it, the L1 distance between generated and data per-channel mean colours before and
/// after (on 256 fixed latents), and the fixed latents.
fn train_tiny(epochs: usize, lr: f64) -> Result<(Dcgan, FaceData, f64, f64, Tensor)> {
    let dev = Device::Cpu;
    let data = FaceData::generate(&CartoonFaces::default(), 0, 0, 512, 16, &dev)?;
    let target = channel_means(&data.images)?;
    let mut gan = Dcgan::new(DcganConfig::tiny(), &dev, 0)?;
    let z = gan.sample_latents(256, &mut from_seed(9))?;
    let before = l1(&channel_means(&gan.generate(&z)?)?, &target);
    let cfg = DcganTrainConfig {
        epochs,
        batch_size: 32,
        lr,
        ..DcganTrainConfig::default()
    };
    let (mut steps, mut seen_epochs) = (0, 0);
    let summary = gan.train(&data, &cfg, |e| match e {
        DcganEvent::Step {
            total_steps,
            d_loss,
            ..
        } => {
            assert_eq!(*total_steps, 16 * epochs);
            assert!(d_loss.is_finite());
            steps += 1;
        }
        DcganEvent::Epoch { .. } => seen_epochs += 1,
    })?;
    assert_eq!((steps, seen_epochs), (16 * epochs, epochs));
    assert_eq!(summary.d_losses.len(), 16 * epochs);
    assert!(summary
        .d_losses
        .iter()
        .chain(&summary.g_losses)
        .all(|v| v.is_finite()));
    assert!(summary
        .d_real
        .iter()
        .chain(&summary.d_fake)
        .all(|v| (0.0..=1.0).contains(v)));
    let after = l1(&channel_means(&gan.generate(&z)?)?, &target);
    eprintln!(
        "colour L1 distance to the data: {before:.4} -> {after:.4} in {} steps, {:.1} s",
        16 * epochs,
        summary.seconds
    );
    Ok((gan, data, before, after, z))
}

/// 144 steps at lr 1e-3 (the paper's 2e-4 moves the colours too slowly for a test: the
/// N(0, 0.02) output layer starts every image at mid-grey). Measured: 0.685 → 0.453.
#[test]
fn short_training_moves_colours_towards_the_data_and_saves_exactly() -> Result<()> {
    let (gan, data, before, after, z) = train_tiny(9, 1e-3)?;
    assert!(
        before > 0.6,
        "the untrained generator starts at mid-grey ({before})"
    );
    assert!(after < 0.8 * before, "before {before}, after {after}");

    let dir = std::env::temp_dir().join(format!("ppl-dcgan-test-{}", std::process::id()));
    gan.save(&dir)?;
    let back = Dcgan::load(&dir, &Device::Cpu)?;
    assert_eq!(back.config(), gan.config());
    let flat = |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
    assert_eq!(flat(back.generate(&z)?)?, flat(gan.generate(&z)?)?);
    let x = data.images.narrow(0, 0, 8)?;
    assert_eq!(flat(back.discriminate(&x)?)?, flat(gan.discriminate(&x)?)?);
    // A folder whose weights do not fit its configuration is a parse error naming the file.
    let other = DcganConfig {
        features: 4,
        ..DcganConfig::tiny()
    };
    std::fs::write(dir.join("dcgan.json"), serde_json::to_vec(&other).unwrap()).unwrap();
    assert!(matches!(
        Dcgan::load(&dir, &Device::Cpu),
        Err(Error::Parse { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// 480 steps: the generated colours come close to the data's. Measured: 0.685 → 0.089 (50 s).
/// `cargo test -p models --test dcgan -- --ignored`
#[test]
#[ignore]
fn longer_training_matches_the_data_colours() -> Result<()> {
    let (_, _, _, after, _) = train_tiny(30, 1e-3)?;
    assert!(after < 0.15, "after {after}");
    Ok(())
}
