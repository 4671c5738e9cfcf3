//! B4 `deepscm_morpho_step`: one SVI step of a DeepSCM Morpho model with a conv encoder and
//! decoder (batch 64), and counterfactual image generation under `do(t := t + 1)`.

use ppl::prelude::*;
use ppl::workloads::b4::{self, Data, Morpho, B};

use crate::report::{timed, Json, Record};
use crate::Opts;

const BENCH: &str = "B4_deepscm_morpho_step";
const TOL: f64 = 1e-5;

fn mean(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()?)
}

/// Trains fresh networks for `warmup + reps` steps with validation `validate`, emits the
/// `svi_step` line and returns the trained networks and whether every check passed.
fn train(
    d: &Data,
    validate: bool,
    warmup: usize,
    reps: usize,
    checksum: &Json,
    data_ok: bool,
) -> Result<(Morpho, bool)> {
    ppl::dist::set_validation(validate);
    let out = train_inner(d, validate, warmup, reps, checksum, data_ok);
    ppl::dist::set_validation(true);
    out
}

fn train_inner(
    d: &Data,
    validate: bool,
    warmup: usize,
    reps: usize,
    checksum: &Json,
    data_ok: bool,
) -> Result<(Morpho, bool)> {
    ppl::rng::set_seed(0);
    let store = ParamStore::new();
    let m = Morpho::new(&store, &Device::Cpu)?;
    let n_params = b4::n_params(&store);
    let mut svi = Svi::new(
        || b4::model(&m, Some(&d.x), Some(&d.t), Some(&d.i), B),
        || b4::guide(&m, &d.x, &d.t, &d.i),
        Adam::new(1e-3),
        TraceElbo::new(),
    )
    .with_store(store);
    let mut losses = Vec::with_capacity(warmup + reps);
    let (times, _) = timed(warmup, reps, || {
        let l = svi.step()?;
        losses.push(l);
        Ok(())
    })?;
    drop(svi);
    // The ELBO at the trained parameters: TraceElbo's against the closed form, same z draw.
    let model = || b4::model(&m, Some(&d.x), Some(&d.t), Some(&d.i), B);
    let loss = seed(123, || {
        TraceElbo::new().loss(model, &mut || b4::guide(&m, &d.x, &d.t, &d.i))
    })?;
    let (z, _) = seed(123, || trace(|| b4::guide(&m, &d.x, &d.t, &d.i)))?;
    let hand = b4::neg_elbo_by_hand(&m, d, &z)?;
    let rel = ((loss - hand) / hand).abs();
    let finite = losses.iter().all(|l| l.is_finite());
    let verified = data_ok && rel < TOL && finite && n_params == b4::N_PARAMS;
    let median = crate::report::summarise(&times).median;
    let ok = Record::new(
        BENCH,
        if validate {
            "svi_step"
        } else {
            "svi_step,novalidate"
        },
        &times,
        "svi_step",
        1,
        hand / B as f64,
        loss / B as f64,
        TOL,
        verified,
    )
    .field("median_ms", median * 1e3)
    .field("batch", B)
    .field("n_params", n_params)
    .field("elbo_rel_err", rel)
    .field("first_loss_per_image", losses[0] / B as f64)
    .field("last_loss_per_image", losses[losses.len() - 1] / B as f64)
    .field("validation", validate)
    .field("data_checksum", checksum.clone())
    .emit();
    Ok((m, ok))
}

pub fn run(opts: &Opts) -> Result<bool> {
    let (reps, warmup) = (opts.reps.unwrap_or(50), opts.warmup.unwrap_or(5));
    let (xh, th, ih) = b4::data_host();
    let c = b4::checksum(&xh, &th, &ih);
    let data_ok = b4::checksum_matches(c);
    let checksum = Json::Obj(vec![
        ("pixels_on".into(), c.0.into()),
        ("sum_t".into(), c.1.into()),
        ("sum_i".into(), c.2.into()),
    ]);
    let d = b4::data(&Device::Cpu)?;

    let mut ok = true;
    let mut trained = None;
    for validate in [true, false] {
        let (m, passed) = train(&d, validate, warmup, reps, &checksum, data_ok)?;
        ok &= passed;
        trained = Some(m);
    }
    // Counterfactuals with validation on, from the parameters of the last training run.
    let m = trained.expect("two training runs");
    ppl::rng::set_seed(0);
    let (times_h, hand) = timed(warmup, reps, || b4::cf_by_hand(&m, &d))?;
    let (times_c, tw) = timed(warmup, reps, || b4::cf_twin_world(&m, &d))?;
    let (err_img, err_i, err_f, t_exact) = b4::cf_errors(&m, &d, &tw, &hand)?;
    let verified = data_ok && err_img < TOL && err_i < TOL && err_f < TOL && t_exact;
    let per_s = |times: &[f64]| B as f64 / crate::report::summarise(times).median;
    ok &= Record::new(
        BENCH,
        "cf_generate:twin_world",
        &times_c,
        "image",
        B,
        mean(&tw.images)?,
        mean(&hand.images)?,
        TOL,
        verified,
    )
    .field("images_per_s", per_s(&times_c))
    .field("max_abs_err_img_vs_by_hand", err_img)
    .field("max_abs_err_i_cf", err_i)
    .field("factual_img_err", err_f)
    .field("t_cf_exact", t_exact)
    .field("batch", B)
    .field("data_checksum", checksum.clone())
    .emit();
    let finite = hand
        .images
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .all(|v| v.is_finite());
    ok &= Record::new(
        BENCH,
        "cf_generate:by_hand",
        &times_h,
        "image",
        B,
        mean(&hand.images)?,
        mean(&hand.images)?,
        TOL,
        data_ok && finite,
    )
    .system("candle")
    .field("images_per_s", per_s(&times_h))
    .field("batch", B)
    .field("data_checksum", checksum)
    .emit();
    Ok(ok)
}
