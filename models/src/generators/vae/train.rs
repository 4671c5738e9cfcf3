//! Training a [`ConvVae`] by SVI (`TraceElbo`, Adam, seeded minibatches) and its held-out ELBO.

use std::path::Path;

use candle_core::{DType, Tensor};
use ppl_core::handlers::{condition, seed, trace, Trace};
use ppl_core::optim::Adam;
use ppl_core::{Error, Result};

use super::config::VaeTrainConfig;
use super::model::{sites, vae_guide, vae_model, ConvVae};
use crate::training::{epoch_chunks, select_rows, svi_epochs, EpochPlan};

/// What [`train`] reports to its callback (losses are `−ELBO` per image, in nats).
pub use crate::training::TrainEvent as VaeTrainEvent;
/// What a call of [`train`] did (losses per image).
pub use crate::training::TrainSummary as VaeTrainSummary;

/// A minibatch: images and their conditions.
type Batch = (Tensor, Option<Tensor>);

fn check_data(vae: &ConvVae, images: &Tensor, c: Option<&Tensor>, what: &str) -> Result<usize> {
    let n = vae.check_images(images, what)?;
    vae.check_condition(c, n, what)?;
    Ok(n)
}

/// Trains `vae` on `images` (`[n, 3, s, s]` in `[0, 1]`) with `conditions` (`[n, m]`, `None`
/// for the plain VAE) by SVI: `TraceElbo` with one particle, Adam at `cfg.lr`, until
/// `cfg.epochs` epochs are done in all (a model restored from a checkpoint resumes after its
/// saved epoch). Each epoch visits the images in a permutation drawn from `cfg.seed` and the
/// epoch; the last partial batch is dropped when there is more than one batch. `on_event`
/// sees every step and epoch; `checkpoint`, if given, is written after every epoch.
pub fn train(
    vae: &mut ConvVae,
    images: &Tensor,
    conditions: Option<&Tensor>,
    cfg: &VaeTrainConfig,
    checkpoint: Option<&Path>,
    mut on_event: impl FnMut(&VaeTrainEvent),
) -> Result<VaeTrainSummary> {
    cfg.validate()?;
    let n = check_data(vae, images, conditions, "vae::train")?;
    let dev = vae.device().clone();
    let images = images.to_dtype(DType::F32)?.to_device(&dev)?;
    let conditions = vae.check_condition(conditions, n, "vae::train")?;
    let bs = cfg.batch_size.min(n);
    let plan = EpochPlan {
        epochs: cfg.epochs,
        per_epoch: n / bs,
        seed: cfg.seed,
        checkpoint,
        what: "vae::train",
    };
    svi_epochs(
        vae,
        Adam::new(cfg.lr),
        &plan,
        |epoch| {
            Ok(epoch_chunks(n, bs, cfg.seed, epoch)
                .into_iter()
                .map(|chunk| {
                    let c = conditions
                        .as_ref()
                        .map(|c| select_rows(c, &chunk))
                        .transpose()?;
                    Ok(((select_rows(&images, &chunk)?, c), bs))
                }))
        },
        |vae, (x, c): &Batch| {
            let m = x.dim(0)?;
            condition([(sites::IMAGE, x)], || vae_model(vae, c.as_ref(), m))
        },
        |vae, (x, c)| vae_guide(vae, x, c.as_ref()),
        &mut on_event,
    )
}

/// The ELBO of a data set under a [`ConvVae`], per image (nats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaeElbo {
    /// `E_q[log p(x | z, c)] − KL(q(z | x, c) ‖ p(z))`, one draw of `z` per image.
    pub elbo: f64,
    /// The reconstruction term `log p(x | z, c)`.
    pub image_log_lik: f64,
    /// The single-draw KL estimate `log q(z | x, c) − log p(z)`.
    pub kl: f64,
}

fn total(tr: &Trace, name: &str) -> Result<f64> {
    let lp = tr.site(name)?.log_prob()?;
    Ok(lp.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
}

/// The ELBO per image of `images` with `conditions` (as for [`train`]), in batches of
/// `batch_size`, the guide's draws seeded by `seed_value`: a held-out score of the fit.
pub fn held_out_elbo(
    vae: &ConvVae,
    images: &Tensor,
    conditions: Option<&Tensor>,
    batch_size: usize,
    seed_value: u64,
) -> Result<VaeElbo> {
    let n = check_data(vae, images, conditions, "held_out_elbo")?;
    if batch_size == 0 {
        return Err(Error::usage("held_out_elbo: batch_size must be positive"));
    }
    let dev = vae.device().clone();
    let images = images.to_dtype(DType::F32)?.to_device(&dev)?;
    let conditions = vae.check_condition(conditions, n, "held_out_elbo")?;
    let mut sums = [0.0f64; 2];
    seed(seed_value, || {
        let mut start = 0;
        while start < n {
            let b = batch_size.min(n - start);
            let x = images.narrow(0, start, b)?;
            let c = conditions
                .as_ref()
                .map(|c| c.narrow(0, start, b))
                .transpose()?;
            let (z, gtr) = trace(|| vae_guide(vae, &x, c.as_ref()))?;
            let z = z.detach();
            let (_, mtr) = trace(|| {
                condition([(sites::IMAGE, &x), (sites::Z, &z)], || {
                    vae_model(vae, c.as_ref(), b)
                })
            })?;
            sums[0] += total(&mtr, sites::IMAGE)?;
            sums[1] += total(&gtr, sites::Z)? - total(&mtr, sites::Z)?;
            start += b;
        }
        Ok(())
    })?;
    let [x, kl] = sums.map(|s| s / n as f64);
    Ok(VaeElbo {
        elbo: x - kl,
        image_log_lik: x,
        kl,
    })
}
