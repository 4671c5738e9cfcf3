//! Training an [`IntactVae`] by SVI: `TraceElbo` with the encoder guide, Adam, seeded
//! minibatches, a callback per step and epoch.

use std::cell::RefCell;
use std::time::Instant;

use candle_core::Tensor;
use ppl_core::handlers::{condition, seed};
use ppl_core::infer::{Svi, TraceElbo};
use ppl_core::optim::Adam;
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;

use super::config::IntactTrainConfig;
use super::data::IntactData;
use super::model::{intact_guide, intact_model, sites, IntactVae};

/// What [`train`] reports to its callback (losses are `−ELBO_β` per image, nats).
pub use crate::deepscm::TrainEvent as IntactTrainEvent;
/// What a call of [`train`] did.
pub use crate::deepscm::TrainSummary as IntactTrainSummary;

/// One minibatch: images, covariates, treatments.
type Batch = (Tensor, Tensor, Tensor);

/// Trains `vae` on `data` by SVI (`TraceElbo`, one particle, Adam) for `cfg.epochs` epochs.
/// The loss is `−E_q[log p(y | z, t)] + β·KL(q ‖ prior)` estimated from one draw of `z`, β
/// entering through the `scale` handler on the `z` site of [`intact_model`] and
/// [`intact_guide`]. Each epoch visits the faces in a permutation drawn from `cfg.seed` and the
/// epoch (the last partial batch is dropped when there is more than one batch); the ELBO's
/// draws are seeded from `cfg.seed` and the epoch too, so a run is reproducible. `on_event`
/// sees every step and epoch.
pub fn train(
    vae: &IntactVae,
    data: &IntactData,
    cfg: &IntactTrainConfig,
    mut on_event: impl FnMut(&IntactTrainEvent),
) -> Result<IntactTrainSummary> {
    cfg.validate()?;
    if data.is_empty() {
        return Err(Error::usage("intact_vae::train: the data set is empty"));
    }
    let n = vae.check_xt(&data.x, &data.t)?;
    vae.check_y(data.images(), n)?;
    let start = Instant::now();
    let bs = cfg.batch_size.min(n);
    let per_epoch = n / bs;
    let total_steps = per_epoch * cfg.epochs;
    let batch: RefCell<Option<Batch>> = RefCell::new(None);
    let current = || {
        batch
            .borrow()
            .clone()
            .ok_or_else(|| Error::usage("intact_vae::train: no minibatch loaded"))
    };
    let model = || {
        let (y, x, t) = current()?;
        condition([(sites::Y, &y)], || intact_model(vae, &x, &t))
    };
    let guide = || {
        let (y, x, t) = current()?;
        intact_guide(vae, &y, &x, &t)
    };
    let mut svi =
        Svi::new(model, guide, Adam::new(cfg.lr), TraceElbo::new()).with_store(vae.store().clone());
    let mut summary = IntactTrainSummary {
        step_losses: Vec::with_capacity(total_steps),
        epoch_losses: Vec::with_capacity(cfg.epochs),
        seconds: 0.0,
    };
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let mut perm: Vec<usize> = (0..n).collect();
        let mut r = rng::from_seed(cfg.seed);
        r.set_stream(epoch as u64);
        perm.shuffle(&mut r);
        let mut epoch_sum = 0.0;
        seed(
            cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
            || {
                for chunk in perm.chunks_exact(bs) {
                    let ids = Tensor::from_vec(
                        chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                        chunk.len(),
                        data.x.device(),
                    )?;
                    *batch.borrow_mut() = Some((
                        data.images().index_select(&ids, 0)?,
                        data.x.index_select(&ids, 0)?,
                        data.t.index_select(&ids, 0)?,
                    ));
                    let loss = svi.step()? / bs as f64;
                    summary.step_losses.push(loss);
                    epoch_sum += loss;
                    on_event(&IntactTrainEvent::Step {
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
        let mean_loss = epoch_sum / per_epoch.max(1) as f64;
        summary.epoch_losses.push(mean_loss);
        on_event(&IntactTrainEvent::Epoch {
            epoch,
            mean_loss,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}
