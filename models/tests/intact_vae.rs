//! β-intact-VAE tests. Run: `cargo test -p models --test intact_vae` (about 30 s).
//! The β × KL-target comparison is ignored by default:
//! `cargo test -p models --test intact_vae -- --ignored --nocapture`.

use candle_core::{DType, Device, Tensor};
use models::data::cartoon::CartoonFaces;
use models::generators::intact_vae::*;
use ppl_core::handlers::{condition, replay, seed, trace};
use ppl_core::infer::TraceElbo;
use ppl_core::Error;

fn tiny(beta: f64) -> IntactConfig {
    IntactConfig {
        latent_dim: 3,
        encoder_channels: [4, 8],
        encoder_hidden: 8,
        decoder_channels: [8, 4],
        prior_hidden: 8,
        beta,
        ..IntactConfig::default()
    }
}

fn sum(t: &Tensor) -> f64 {
    t.sum_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

#[test]
fn extrapolation_formula_is_exact() -> ppl_core::Result<()> {
    let t = Tensor::new(&[0f32, 1.0, 0.0, 1.0], &Device::Cpu)?;
    for (s, want) in [
        (0.0, [0.0, 1.0, 0.0, 1.0]),
        (1.0, [1.0, 0.0, 1.0, 0.0]),
        (2.0, [2.0, -1.0, 2.0, -1.0]),
        (0.5, [0.5, 0.5, 0.5, 0.5]),
        (3.5, [3.5, -2.5, 3.5, -2.5]),
    ] {
        assert_eq!(
            extrapolate_treatment(&t, s)?.to_vec1::<f32>()?,
            want,
            "s = {s}"
        );
    }
    assert!(extrapolate_treatment(&t, f64::NAN).is_err());
    Ok(())
}

/// One trace pair: the z site's log-densities enter the ELBO times β in model and guide, and
/// `TraceElbo`'s loss is `−(log p(y|z,t) + β log p(z|x) − β log q(z|y,x,t))` exactly.
#[test]
fn beta_scales_the_z_site_in_the_elbo() -> ppl_core::Result<()> {
    let dev = Device::Cpu;
    let faces = limited_overlap_faces(0.1)?;
    for (beta, target) in [
        (0.25, KlTarget::LearnedPrior),
        (3.0, KlTarget::StandardNormal),
    ] {
        let cfg = IntactConfig {
            kl_target: target,
            ..tiny(beta)
        };
        let data = IntactData::generate(&faces, 3, 0, 5, &cfg, &dev)?;
        let vae = IntactVae::new(cfg, &dev, 1)?;
        let (y, x, t) = (data.images(), &data.x, &data.t);
        let model = || condition([(sites::Y, y)], || intact_model(&vae, x, t));
        let mut guide = || intact_guide(&vae, y, x, t);
        let (gtr, mtr) = seed(11, || {
            let (_, gtr) = trace(guide)?;
            let (_, mtr) = trace(|| replay(&gtr, model))?;
            Ok((gtr, mtr))
        })?;
        let (mz, gz, my) = (
            mtr.site(sites::Z)?,
            gtr.site(sites::Z)?,
            mtr.site(sites::Y)?,
        );
        assert_eq!((mz.scale, gz.scale, my.scale), (beta, beta, 1.0));
        let (lp_z, lq_z, lp_y) = (
            sum(mz.log_prob()?),
            sum(gz.log_prob()?),
            sum(my.log_prob()?),
        );
        assert!((sum(&mz.scaled_log_prob()?) - beta * lp_z).abs() < 1e-3 * lp_z.abs().max(1.0));
        let want = -(lp_y + beta * (lp_z - lq_z));
        let loss = seed(11, || TraceElbo::new().loss(model, &mut guide))?;
        assert!(
            (loss - want).abs() < 1e-4 * want.abs().max(1.0),
            "β = {beta}: loss {loss} vs {want}"
        );
        // The same trace at β = 1 differs by exactly (β − 1)(lp_z − lq_z).
        let vae1 = IntactVae::new(
            IntactConfig {
                kl_target: target,
                ..tiny(1.0)
            },
            &dev,
            1,
        )?;
        let model1 = || condition([(sites::Y, y)], || intact_model(&vae1, x, t));
        let mut guide1 = || intact_guide(&vae1, y, x, t);
        let loss1 = seed(11, || TraceElbo::new().loss(model1, &mut guide1))?;
        let gap = (loss - loss1) - (1.0 - beta) * (lp_z - lq_z);
        assert!(gap.abs() < 1e-3 * want.abs().max(1.0), "gap {gap}");
    }
    Ok(())
}

fn youngest_flipped(x: &Tensor) -> ppl_core::Result<Tensor> {
    // Column 0 is Young: 1 − Young, Male kept.
    let young = x.narrow(1, 0, 1)?.affine(-1.0, 1.0)?;
    Ok(Tensor::cat(&[&young, &x.narrow(1, 1, 1)?], 1)?)
}

/// A short run under limited overlap (0.1): the counterfactual beats the factual-image
/// baseline on the treatment's pixels, and the learned prior tells the covariate groups apart.
#[test]
fn short_training_under_limited_overlap() -> ppl_core::Result<()> {
    let dev = Device::Cpu;
    let faces: CartoonFaces = limited_overlap_faces(0.1)?;
    let cfg = IntactConfig {
        beta: 0.1,
        ..IntactConfig::default()
    };
    let train_set = IntactData::generate(&faces, 1, 0, 1024, &cfg, &dev)?;
    let test_set = IntactData::generate(&faces, 1, 1_000_000, 256, &cfg, &dev)?;
    let vae = IntactVae::new(cfg, &dev, 0)?;
    let gain0 = prior_gain(&vae, &test_set)?;
    let mut steps = 0;
    let summary = train(
        &vae,
        &train_set,
        &IntactTrainConfig {
            epochs: 12,
            batch_size: 64,
            lr: 5e-3,
            seed: 0,
        },
        |e| {
            if let IntactTrainEvent::Step { .. } = e {
                steps += 1
            }
        },
    )?;
    assert_eq!(steps, 12 * 16);
    assert!(summary.epoch_losses.last() < summary.epoch_losses.first());
    let e = evaluate(&vae, &test_set, &faces)?;
    println!("{e:#?}");
    assert!(e.n_rare > 10 && e.n_rare < 60, "rare units {}", e.n_rare);
    // On the treatment's pixels the factual image is wrong by the whole change; the model's
    // change added to it must recover at least 15% of that (measured: 26%). Over the whole image it does not beat
    // the factual image after so short a run (reconstruction error dominates; see the report).
    assert!(
        e.residual_region.all < 0.85 * e.factual_region.all,
        "region MAE {} vs factual {}",
        e.residual_region.all,
        e.factual_region.all
    );
    assert!(e.residual_region.rare < e.factual_region.rare);
    // The learned prior has learned the covariates: the posterior means are likelier under
    // their own group's prior than under the group with Young flipped (measured: −0.33 nats
    // per unit at initialisation, +0.14 after this run).
    let gain = prior_gain(&vae, &test_set)?;
    println!("prior log-density gain of the own group: {gain0:.3} → {gain:.3} nats");
    assert!(gain > 0.0 && gain > gain0 + 0.25, "gain {gain0} → {gain}");
    Ok(())
}

/// Mean over units of `log p(μ_q | x) − log p(μ_q | x with Young flipped)`.
fn prior_gain(vae: &IntactVae, d: &IntactData) -> ppl_core::Result<f64> {
    use ppl_core::dist::Distribution;
    let mu = abduct(vae, d.images(), &d.x, &d.t)?;
    let own = vae.prior(&d.x)?;
    let other = vae.prior(&youngest_flipped(&d.x)?)?;
    Ok(sum(&(own.log_prob(&mu)? - other.log_prob(&mu)?)?) / d.len() as f64)
}

fn shape<T>(r: ppl_core::Result<T>) -> bool {
    matches!(r, Err(Error::ShapeMismatch { .. }))
}

fn bad<T>(r: ppl_core::Result<T>) -> bool {
    matches!(r, Err(Error::InvalidParameter { .. }))
}

#[test]
fn shape_mismatches_are_typed_errors() -> ppl_core::Result<()> {
    let dev = Device::Cpu;
    let vae = IntactVae::new(tiny(1.0), &dev, 0)?;
    let y = Tensor::zeros((4, 3, 16, 16), DType::F32, &dev)?;
    let x = Tensor::zeros((4, 2), DType::F32, &dev)?;
    let t = Tensor::zeros(4, DType::F32, &dev)?;
    assert!(shape(vae.encode(
        &y,
        &Tensor::zeros((4, 3), DType::F32, &dev)?,
        &t
    )));
    assert!(shape(vae.encode(
        &y,
        &x,
        &Tensor::zeros(5, DType::F32, &dev)?
    )));
    assert!(shape(vae.encode(
        &Tensor::zeros((4, 3, 32, 32), DType::F32, &dev)?,
        &x,
        &t
    )));
    assert!(shape(
        vae.decode(&Tensor::zeros((4, 5), DType::F32, &dev)?, &t)
    ));
    assert!(shape(counterfactual(
        &vae,
        &y,
        &x,
        &Tensor::zeros(3, DType::F32, &dev)?,
        1.0
    )));
    assert!(shape(intact_model(
        &vae,
        &Tensor::zeros((4, 1), DType::F32, &dev)?,
        &t
    )));
    // Bad configurations and arguments.
    assert!(bad(IntactVae::new(tiny(0.0), &dev, 0)));
    assert!(bad(IntactVae::new(
        IntactConfig {
            image_size: 20,
            ..tiny(1.0)
        },
        &dev,
        0
    )));
    assert!(bad(limited_overlap_faces(1.5)));
    let faces = limited_overlap_faces(0.2)?;
    assert_eq!(
        faces
            .config()
            .cpds
            .table(models::data::cartoon::Attr::Eyeglasses),
        &[0.8, 0.2]
    );
    Ok(())
}

/// β grid × both KL targets at 16×16, longer runs (about 10 minutes on 2 CPU cores):
/// `cargo test -p models --test intact_vae -- --ignored --nocapture`.
#[test]
#[ignore]
fn beta_and_kl_target_comparison() -> ppl_core::Result<()> {
    let dev = Device::Cpu;
    let faces = limited_overlap_faces(0.1)?;
    let base = IntactConfig::default();
    let train_set = IntactData::generate(&faces, 1, 0, 2048, &base, &dev)?;
    let test_set = IntactData::generate(&faces, 1, 1_000_000, 512, &base, &dev)?;
    println!("target         beta  | whole image: decoded residual factual | treatment pixels: decoded residual factual (rare units: residual factual)");
    for target in [KlTarget::LearnedPrior, KlTarget::StandardNormal] {
        for beta in [0.03, 0.1, 0.3, 1.0, 3.0] {
            let cfg = IntactConfig {
                beta,
                kl_target: target,
                ..base.clone()
            };
            let vae = IntactVae::new(cfg, &dev, 0)?;
            train(
                &vae,
                &train_set,
                &IntactTrainConfig {
                    epochs: 20,
                    batch_size: 64,
                    lr: 5e-3,
                    seed: 0,
                },
                |_| {},
            )?;
            let e = evaluate(&vae, &test_set, &faces)?;
            println!(
                "{:<14} {beta:<5} | {:.4} {:.4} {:.4} | {:.4} {:.4} {:.4} ({:.4} {:.4})",
                format!("{target:?}"),
                e.decoded.all,
                e.residual.all,
                e.factual.all,
                e.decoded_region.all,
                e.residual_region.all,
                e.factual_region.all,
                e.residual_region.rare,
                e.factual_region.rare
            );
        }
    }
    Ok(())
}
