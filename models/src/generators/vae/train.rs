//! Training a [`ConvVae`] by SVI (`TraceElbo`, Adam, seeded minibatches) and its held-out ELBO.

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Tensor};
use ppl_core::handlers::{condition, seed, trace, Trace};
use ppl_core::infer::{Svi, TraceElbo};
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;

use super::config::VaeTrainConfig;
use super::model::{sites, vae_guide, vae_model, ConvVae};

/// What [`train`] reports to its callback (losses are `−ELBO` per image, in nats).
pub use crate::deepscm::TrainEvent as VaeTrainEvent;
/// What a call of [`train`] did (losses per image).
pub use crate::deepscm::TrainSummary as VaeTrainSummary;

/// A minibatch: images and their conditions.
type Batch = (Tensor, Option<Tensor>);

fn check_data(vae: &ConvVae, images: &Tensor, c: Option<&Tensor>, what: &str) -> Result<usize> {
    let s = vae.config().image_size;
    let d = images.dims();
    if d.len() != 4 || d[1..] != [3, s, s] {
        return Err(Error::shape(
            format!("{what}: images [n, 3, s, s] at the model's size"),
            &[d.first().copied().unwrap_or(0), 3, s, s],
            d,
        ));
    }
    if d[0] == 0 {
        return Err(Error::usage(format!("{what}: the data set is empty")));
    }
    vae.check_condition(c, d[0], what)?;
    Ok(d[0])
}

fn rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    let ids = Tensor::from_vec(
        idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        idx.len(),
        t.device(),
    )?;
    Ok(t.index_select(&ids, 0)?)
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
    let start = Instant::now();
    let bs = cfg.batch_size.min(n);
    let per_epoch = n / bs;
    let first_epoch = vae.epochs_done();
    let total_steps = per_epoch * cfg.epochs.saturating_sub(first_epoch);
    let mut optim = Adam::new(cfg.lr);
    if !vae.optim_state().is_empty() {
        optim.load_state(vae.optim_state())?;
    }
    let mut summary = VaeTrainSummary {
        step_losses: Vec::with_capacity(total_steps),
        epoch_losses: Vec::new(),
        seconds: 0.0,
    };
    let mut step = vae.steps_taken();
    for epoch in first_epoch..cfg.epochs {
        let batch: RefCell<Option<Batch>> = RefCell::new(None);
        let model_vae: &ConvVae = vae;
        let current = || {
            batch
                .borrow()
                .clone()
                .ok_or_else(|| Error::usage("vae::train: no minibatch loaded"))
        };
        let model = || {
            let (x, c) = current()?;
            let m = x.dim(0)?;
            condition([(sites::IMAGE, &x)], || vae_model(model_vae, c.as_ref(), m))
        };
        let guide = || {
            let (x, c) = current()?;
            vae_guide(model_vae, &x, c.as_ref())
        };
        let mut svi =
            Svi::new(model, guide, optim, TraceElbo::new()).with_store(model_vae.store().clone());
        let mut perm: Vec<usize> = (0..n).collect();
        let mut r = rng::from_seed(cfg.seed);
        r.set_stream(epoch as u64);
        perm.shuffle(&mut r);
        let mut epoch_sum = 0.0;
        seed(
            cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
            || {
                for chunk in perm.chunks_exact(bs) {
                    let c = conditions.as_ref().map(|c| rows(c, chunk)).transpose()?;
                    *batch.borrow_mut() = Some((rows(&images, chunk)?, c));
                    let loss = svi.step()? / bs as f64;
                    summary.step_losses.push(loss);
                    epoch_sum += loss;
                    on_event(&VaeTrainEvent::Step {
                        epoch,
                        step,
                        total_steps,
                        loss,
                    });
                    step += 1;
                }
                Ok(())
            },
        )?;
        let state = svi.optim().state_tensors()?;
        optim = std::mem::replace(svi.optim(), Adam::new(cfg.lr));
        drop(svi);
        vae.record_progress(state, epoch + 1, step);
        if let Some(dir) = checkpoint {
            vae.save_checkpoint(dir)?;
        }
        let mean_loss = epoch_sum / per_epoch.max(1) as f64;
        summary.epoch_losses.push(mean_loss);
        on_event(&VaeTrainEvent::Epoch {
            epoch,
            mean_loss,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
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
