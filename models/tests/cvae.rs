//! The conv VAE / conditional VAE on 16×16 cartoon faces: SVI training, decoder-flip
//! counterfactuals against the data's true ones, re-balanced training sets, the generation
//! share audit, and typed errors on bad input.
//!
//! The cartoon oracle cannot read 16×16 faces (measured: 57% accuracy on Male for real pooled
//! faces, and it read 1% of true do(Male) counterfactuals as flipped), so the audits here read
//! attributes with a [`LinearProbe`] fitted on real 16×16 faces, whose held-out accuracy is
//! asserted first. Models are trained once per process and shared between the tests.

use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use models::data::cartoon::{Attr, CartoonFaces};
use models::face_scm::FaceData;
use models::fairness::scorer::AttributeScorer;
use models::generators::vae::*;
use models::generators::LatentGenerator;
use models::training::Trainable;
use ppl_core::Error;

const S: usize = 16;
/// Training faces per model and SVI steps: 512 faces, batches of 32, 12 epochs = 192 steps.
const N_TRAIN: usize = 512;

fn train_cfg() -> VaeTrainConfig {
    VaeTrainConfig {
        epochs: 12,
        batch_size: 32,
        lr: 1e-2,
        seed: 0,
    }
}

fn faces() -> &'static CartoonFaces {
    static F: OnceLock<CartoonFaces> = OnceLock::new();
    F.get_or_init(CartoonFaces::default)
}

/// A pool to draw training sets from, and disjoint held-out faces.
fn pool() -> &'static FaceData {
    static P: OnceLock<FaceData> = OnceLock::new();
    P.get_or_init(|| FaceData::generate(faces(), 1, 0, 1500, S, &Device::Cpu).unwrap())
}

fn test_faces() -> &'static FaceData {
    static T: OnceLock<FaceData> = OnceLock::new();
    T.get_or_init(|| FaceData::generate(faces(), 1, 100_000, 200, S, &Device::Cpu).unwrap())
}

fn probe() -> &'static LinearProbe {
    static P: OnceLock<LinearProbe> = OnceLock::new();
    P.get_or_init(|| {
        let fit = pool().head(1000).unwrap();
        LinearProbe::fit_attrs(
            &fit,
            &[Attr::Male, Attr::Eyeglasses],
            &ProbeConfig::default(),
        )
        .unwrap()
    })
}

struct Trained {
    vae: ConvVae,
    elbo_before: VaeElbo,
    elbo_after: VaeElbo,
    summary: VaeTrainSummary,
    steps_seen: usize,
    epochs_seen: usize,
}

fn fit(data: &FaceData, cond: &[Attr], seed: u64) -> Trained {
    let m = cond.len();
    let mut vae = ConvVae::new(VaeConfig::tiny().with_cond_dim(m), &Device::Cpu, seed).unwrap();
    let c = (m > 0).then(|| condition_tensor(data, cond).unwrap());
    let t = test_faces();
    let ct = (m > 0).then(|| condition_tensor(t, cond).unwrap());
    let elbo_before = held_out_elbo(&vae, &t.images, ct.as_ref(), 100, 0).unwrap();
    let (mut steps_seen, mut epochs_seen) = (0, 0);
    let summary = train(
        &mut vae,
        &data.images,
        c.as_ref(),
        &train_cfg(),
        None,
        |e| match e {
            VaeTrainEvent::Step { .. } => steps_seen += 1,
            VaeTrainEvent::Epoch { .. } => epochs_seen += 1,
        },
    )
    .unwrap();
    let elbo_after = held_out_elbo(&vae, &t.images, ct.as_ref(), 100, 0).unwrap();
    Trained {
        vae,
        elbo_before,
        elbo_after,
        summary,
        steps_seen,
        epochs_seen,
    }
}

/// The CVAE conditioned on Male (the attribute with the largest pixel footprint: hair length,
/// jaw and brows all change), trained on the pool's natural mix.
fn cvae() -> &'static Trained {
    static M: OnceLock<Trained> = OnceLock::new();
    M.get_or_init(|| fit(&pool().head(N_TRAIN).unwrap(), &[Attr::Male], 3))
}

/// A plain VAE trained on a set with 80% men.
fn plain80() -> &'static Trained {
    static A: OnceLock<Trained> = OnceLock::new();
    A.get_or_init(|| {
        let data = rebalance(pool(), Attr::Male, 0.8, N_TRAIN, 7).unwrap();
        fit(&data, &[], 5)
    })
}

/// The probe reads real 16×16 faces: Male and Eyeglasses at ≥ 95% on held-out faces
/// (measured 99% and 95.5–98%).
#[test]
fn probe_reads_small_faces() {
    let acc = probe().accuracy(test_faces()).unwrap();
    assert!(acc[0] >= 0.95 && acc[1] >= 0.93, "{acc:?}");
}

/// 192 SVI steps raise the held-out ELBO per 16×16 image by more than 2000 nats (measured
/// −1557 → about +870), the mean training loss falls from the first to the last epoch, and the
/// callback sees every step and epoch.
#[test]
fn elbo_improves_in_192_steps() {
    let t = plain80();
    let gain = t.elbo_after.elbo - t.elbo_before.elbo;
    assert!(gain > 2000.0, "{:?} -> {:?}", t.elbo_before, t.elbo_after);
    let e = &t.summary.epoch_losses;
    assert!(e[e.len() - 1] < e[0] - 1000.0, "{e:?}");
    assert_eq!((t.steps_seen, t.epochs_seen), (192, 12));
    assert_eq!(t.vae.steps_taken(), 192);
    assert_eq!(t.vae.epochs_done(), 12);
}

/// The decoder flip (encode with the factual Male, decode with the flipped one) moves the
/// model's output towards the true do(Male = 1 − Male) face: its error against the truth is
/// at least 1.5 grey levels below that of the model's own "nothing changes" answer (its factual
/// reconstruction; measured 15.2 vs 18.4 of 255), the probe reads Male flipped on ≥ 90% of
/// faces, and the encoder-only flip (which the decoder never sees) flips ≤ 10% and does not
/// beat the reconstruction. The images with the factual pixel noise abducted are reported, not
/// asserted: at 16×16 they are no closer to the truth than the factual face (measured 8.4 vs
/// 7.9).
#[test]
fn decoder_flip_moves_towards_the_true_counterfactual() {
    let vae = &cvae().vae;
    let attrs = [Attr::Male];
    let dec = counterfactual_audit(
        vae,
        faces(),
        test_faces(),
        &attrs,
        &CvaeCounterfactual::new(CfMode::Decoder),
        probe(),
    )
    .unwrap();
    let enc = counterfactual_audit(
        vae,
        faces(),
        test_faces(),
        &attrs,
        &CvaeCounterfactual::new(CfMode::EncoderOnly),
        probe(),
    )
    .unwrap();
    let twice = counterfactual_audit(
        vae,
        faces(),
        test_faces(),
        &attrs,
        &CvaeCounterfactual::new(CfMode::Decoder)
            .with_scale(2.0)
            .unwrap(),
        probe(),
    )
    .unwrap();
    eprintln!("{dec:?}\n{enc:?}\n{twice:?}");
    assert!(
        dec.mae_image_loc < dec.mae_reconstruction_to_truth - 1.5,
        "{dec:?}"
    );
    assert!(
        dec.flip_rates[0] >= 0.9 && dec.effectiveness[0] >= 0.9,
        "{dec:?}"
    );
    assert!(dec.true_flip_rates[0] >= 0.9, "{dec:?}");
    assert!(enc.flip_rates[0] <= 0.1, "{enc:?}");
    assert!(enc.mae_image_loc >= dec.mae_image_loc, "{enc:?}");
    // The ×2 condition is still a flip of the same sign.
    assert!(twice.flip_rates[0] >= 0.9, "{twice:?}");
    assert_eq!(twice.label, "decoder ×2");
}

/// The counterfactual condition: flipped columns become −scale·c, others stay.
#[test]
fn counterfactual_condition_is_exact() {
    let c = Tensor::new(&[[1f32, -1.0], [-1.0, -1.0]], &Device::Cpu).unwrap();
    let q = CvaeCounterfactual::new(CfMode::Decoder)
        .flipping(&[0])
        .with_scale(2.0)
        .unwrap();
    let got = q
        .counterfactual_condition(&c)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(got, vec![vec![-2.0, -1.0], vec![2.0, -1.0]]);
    let all = CvaeCounterfactual::new(CfMode::EncoderOnly);
    let got = all
        .counterfactual_condition(&c)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(got, vec![vec![-1.0, 1.0], vec![1.0, 1.0]]);
    assert!(q.flipping(&[2]).counterfactual_condition(&c).is_err());
}

/// `rebalance` returns exactly round(share·n) faces with the attribute, deterministic in its
/// seed, and refuses what the pool cannot give.
#[test]
fn rebalance_gives_exact_shares() {
    let pool = pool().head(300).unwrap();
    let men = pool
        .samples
        .iter()
        .filter(|s| s.attributes.get(Attr::Male))
        .count();
    for (share, n, want) in [(0.8, 100, 80), (0.25, 10, 3), (0.0, 50, 0), (1.0, 40, 40)] {
        let d = rebalance(&pool, Attr::Male, share, n, 1).unwrap();
        assert_eq!(d.len(), n);
        let k = d
            .samples
            .iter()
            .filter(|s| s.attributes.get(Attr::Male))
            .count();
        assert_eq!(k, want, "share {share} of {n}");
        // The tensors follow the samples.
        let col: f32 = d
            .binary
            .narrow(1, Attr::Male.index(), 1)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(col as usize, want);
        assert_eq!(
            attribute_share(&d, Attr::Male).unwrap(),
            want as f64 / n as f64
        );
    }
    let a = rebalance(&pool, Attr::Male, 0.5, 20, 1).unwrap();
    let b = rebalance(&pool, Attr::Male, 0.5, 20, 1).unwrap();
    let c = rebalance(&pool, Attr::Male, 0.5, 20, 2).unwrap();
    let ids = |d: &FaceData| d.samples.iter().map(|s| s.noise).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(ids(&a), ids(&c));
    // Impossible requests.
    assert!(matches!(
        rebalance(&pool, Attr::Male, 1.0, men + 1, 0),
        Err(Error::Usage(_))
    ));
    assert!(matches!(
        rebalance(&pool, Attr::Male, 0.0, 300 - men + 1, 0),
        Err(Error::Usage(_))
    ));
    assert!(rebalance(&pool, Attr::Male, 1.5, 10, 0).is_err());
    assert!(rebalance(&pool, Attr::Male, -0.1, 10, 0).is_err());
    assert!(rebalance(&pool, Attr::Male, 0.5, 0, 0).is_err());
}

/// A CVAE decoding under a fixed condition, as a [`LatentGenerator`] over a shared model.
struct Conditioned<'a>(&'a ConvVae, f32);

impl LatentGenerator for Conditioned<'_> {
    fn latent_dim(&self) -> usize {
        self.0.latent_dim()
    }
    fn image_size(&self) -> usize {
        self.0.image_size()
    }
    fn sample_latents(&self, n: usize, rng: &mut ppl_core::rng::Rng) -> ppl_core::Result<Tensor> {
        self.0.sample_latents(n, rng)
    }
    fn generate(&self, z: &Tensor) -> ppl_core::Result<Tensor> {
        let c = Tensor::full(self.1, (z.dim(0)?, 1), z.device())?;
        self.0.generate_with(z, Some(&c))
    }
}

/// The generation audit reads the protected share of a generator's prior draws: the CVAE
/// generating under Male = +1 gives ≥ 75% faces the probe reads as men, under −1 ≤ 10% (400
/// draws each; measured 83.5% and 0%), and parity with the training share (0.40) is rejected
/// both ways.
///
/// Not asserted, because it does not hold: plain VAEs trained on 80% and on 20% men do not
/// reproduce their training share. At this budget (192 steps) their reconstructions lose sex
/// (the probe reads them at chance); after 875 steps on 700 faces the reconstructions keep it
/// (probe 86–90%) but prior draws read as 30% and 31% men respectively (a probe fitted on the
/// model's own reconstructions: 39% and 55%) — the prior's mass falls where the decoder makes
/// ambiguous faces.
#[test]
fn generation_share_follows_the_condition() {
    let vae = &cvae().vae;
    let share = attribute_share(&pool().head(N_TRAIN).unwrap(), Attr::Male).unwrap();
    let men = generation_audit(&Conditioned(vae, 1.0), probe(), "Male", share, 400, 11).unwrap();
    let women = generation_audit(&Conditioned(vae, -1.0), probe(), "Male", share, 400, 12).unwrap();
    eprintln!("{men:?}\n{women:?}");
    assert_eq!((men.n, men.target), (400, share));
    assert!(men.share >= 0.75 && !men.covers_target(), "{men:?}");
    assert!(women.share <= 0.1 && !women.covers_target(), "{women:?}");
}

/// Per-group reconstruction accuracy: counts per group add up, the real images' accuracy is
/// the probe's own, and reconstructions keep Eyeglasses readable (≥ 75% per group; measured
/// 85–91%).
#[test]
fn reconstruction_accuracy_per_group() {
    let t = test_faces();
    let r = reconstruction_accuracy(
        &cvae().vae,
        t,
        &[Attr::Male],
        probe(),
        &[Attr::Eyeglasses],
        Attr::Male,
    )
    .unwrap();
    assert_eq!(r.len(), 1);
    let g = &r[0];
    let men = t
        .samples
        .iter()
        .filter(|s| s.attributes.get(Attr::Male))
        .count();
    assert_eq!(g.counts, [t.len() - men, men]);
    let p = probe()
        .attribute_probs(&t.images)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let mut hits = [0usize; 2];
    for (s, row) in t.samples.iter().zip(&p) {
        if (row[1] > 0.5) == s.attributes.get(Attr::Eyeglasses) {
            hits[usize::from(s.attributes.get(Attr::Male))] += 1;
        }
    }
    assert_eq!(
        g.original,
        [0, 1].map(|k| hits[k] as f64 / g.counts[k] as f64)
    );
    assert!(g.reconstructed.iter().all(|&a| a >= 0.75), "{g:?}");
    // A group with no faces is refused.
    let women: Vec<usize> = (0..t.len())
        .filter(|&i| !t.samples[i].attributes.get(Attr::Male))
        .collect();
    let only_women = t.select(&women).unwrap();
    assert!(reconstruction_accuracy(
        &cvae().vae,
        &only_women,
        &[Attr::Male],
        probe(),
        &[Attr::Eyeglasses],
        Attr::Male
    )
    .is_err());
}

/// Checkpoints restore the parameters and the progress; training resumes after them.
#[test]
fn checkpoint_round_trip() {
    let data = pool().head(64).unwrap();
    let cfg = VaeTrainConfig {
        epochs: 1,
        batch_size: 32,
        lr: 1e-2,
        seed: 0,
    };
    let mut a = ConvVae::new(VaeConfig::tiny(), &Device::Cpu, 0).unwrap();
    let dir = std::env::temp_dir().join(format!("ppl-cvae-ckpt-{}", std::process::id()));
    train(&mut a, &data.images, None, &cfg, Some(&dir), |_| {}).unwrap();
    let mut b = ConvVae::new(VaeConfig::tiny(), &Device::Cpu, 1).unwrap();
    b.load_checkpoint(&dir).unwrap();
    assert_eq!((b.epochs_done(), b.steps_taken()), (1, 2));
    let z = a
        .sample_latents(4, &mut ppl_core::rng::from_seed(0))
        .unwrap();
    let d = (a.generate(&z).unwrap() - b.generate(&z).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(d, 0.0);
    let more = VaeTrainConfig { epochs: 2, ..cfg };
    let s = train(&mut b, &data.images, None, &more, None, |_| {}).unwrap();
    assert_eq!(s.step_losses.len(), 2);
    assert_eq!(b.epochs_done(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad input is a typed error, never a panic.
#[test]
fn bad_inputs_give_typed_errors() {
    let dev = Device::Cpu;
    let t = test_faces().head(4).unwrap();
    let cvae = ConvVae::new(VaeConfig::tiny().with_cond_dim(1), &dev, 0).unwrap();
    let plain = ConvVae::new(VaeConfig::tiny(), &dev, 0).unwrap();
    let c = condition_tensor(&t, &[Attr::Male]).unwrap();
    let c2 = condition_tensor(&t, &[Attr::Male, Attr::Young]).unwrap();
    // Condition values are ±1.
    let v = c.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|x| *x == 1.0 || *x == -1.0));
    // Wrong image shape.
    let big = FaceData::generate(faces(), 1, 0, 2, 32, &dev).unwrap();
    let c_big = condition_tensor(&big, &[Attr::Male]).unwrap();
    assert!(matches!(
        cvae.encode(&big.images, Some(&c_big)),
        Err(Error::ShapeMismatch { .. })
    ));
    let flat = t.images.flatten_from(1).unwrap();
    assert!(matches!(
        plain.encode(&flat, None),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        train(
            &mut ConvVae::new(VaeConfig::tiny(), &dev, 0).unwrap(),
            &big.images,
            None,
            &train_cfg(),
            None,
            |_| {}
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    // Condition width mismatch, and a missing or unexpected condition.
    assert!(matches!(
        cvae.encode(&t.images, Some(&c2)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(cvae.encode(&t.images, None), Err(Error::Usage(_))));
    assert!(matches!(
        plain.encode(&t.images, Some(&c)),
        Err(Error::ShapeMismatch { .. })
    ));
    let z = cvae
        .sample_latents(4, &mut ppl_core::rng::from_seed(0))
        .unwrap();
    assert!(matches!(
        cvae.decode(&z, Some(&c2)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        cvae.decode(&z.narrow(1, 0, 3).unwrap(), Some(&c)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        held_out_elbo(&cvae, &t.images, Some(&c2), 2, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    // A CVAE is a LatentGenerator only with a default condition of its width.
    let mut cv = ConvVae::new(VaeConfig::tiny().with_cond_dim(1), &dev, 0).unwrap();
    assert!(matches!(cv.generate(&z), Err(Error::Usage(_))));
    assert!(cv.set_default_condition(&[1.0, -1.0]).is_err());
    cv.set_default_condition(&[1.0]).unwrap();
    let g = cv.generate(&z).unwrap();
    assert_eq!(g.dims(), [4, 3, S, S]);
    assert!(!g.track_op());
    let ones = Tensor::ones((4, 1), DType::F32, &dev).unwrap();
    let same = (g - cv.generate_with(&z, Some(&ones)).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(same, 0.0);
    // Counterfactual queries.
    assert!(CvaeCounterfactual::new(CfMode::Decoder)
        .with_scale(0.0)
        .is_err());
    assert!(CvaeCounterfactual::new(CfMode::Decoder)
        .with_scale(f64::NAN)
        .is_err());
    assert!(CvaeCounterfactual::new(CfMode::Decoder)
        .apply(&plain, &t.images, &c)
        .is_err());
    assert!(matches!(
        CvaeCounterfactual::new(CfMode::Decoder).apply(&cvae, &t.images, &c2),
        Err(Error::ShapeMismatch { .. })
    ));
    let cf = CvaeCounterfactual::new(CfMode::Decoder)
        .apply(&cvae, &t.images, &c)
        .unwrap();
    for img in [&cf.image, &cf.image_loc, &cf.reconstruction] {
        assert_eq!(img.dims(), [4, 3, S, S]);
    }
    assert!(counterfactual_audit(
        &cvae,
        faces(),
        &t,
        &[Attr::Male, Attr::Young],
        &CvaeCounterfactual::new(CfMode::Decoder),
        probe()
    )
    .is_err());
    assert!(
        generation_audit(&plain, probe(), "Smiling", 0.5, 10, 0).is_err(),
        "an attribute the probe does not score"
    );
    // Bad configurations.
    let bad = VaeConfig {
        image_size: 20,
        ..VaeConfig::tiny()
    };
    assert!(ConvVae::new(bad, &dev, 0).is_err());
    assert!(ConvVae::new(
        VaeConfig {
            encoder_channels: vec![],
            ..VaeConfig::tiny()
        },
        &dev,
        0
    )
    .is_err());
    assert!(train(
        &mut ConvVae::new(VaeConfig::tiny(), &dev, 0).unwrap(),
        &t.images,
        None,
        &VaeTrainConfig {
            lr: -1.0,
            ..train_cfg()
        },
        None,
        |_| {}
    )
    .is_err());
    assert!(LinearProbe::fit(&t.images, &c2, &["Male"], &ProbeConfig::default()).is_err());
    assert!(probe().attribute_probs(&big.images).is_err());
}
