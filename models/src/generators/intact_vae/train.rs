//! Training an [`IntactVae`] by SVI: `TraceElbo` with the encoder guide, Adam, seeded
//! minibatches, a callback per step and epoch.

use candle_core::Tensor;
use ppl_core::handlers::condition;
use ppl_core::optim::Adam;
use ppl_core::params::ParamStore;
use ppl_core::{Error, Result};

use super::config::IntactTrainConfig;
use super::data::IntactData;
use super::model::{intact_guide, intact_model, sites, IntactVae};
use crate::training::{epoch_chunks, select_rows, svi_epochs, EpochPlan, Progress, Trainable};

/// What [`train`] reports to its callback (losses are `−ELBO_β` per image, nats).
pub use crate::training::TrainEvent as IntactTrainEvent;
/// What a call of [`train`] did.
pub use crate::training::TrainSummary as IntactTrainSummary;

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
    let bs = cfg.batch_size.min(n);
    let plan = EpochPlan {
        epochs: cfg.epochs,
        per_epoch: n / bs,
        seed: cfg.seed,
        checkpoint: None,
        what: "intact_vae::train",
    };
    svi_epochs(
        &mut Run {
            vae,
            progress: Progress::default(),
        },
        Adam::new(cfg.lr),
        &plan,
        |epoch| {
            Ok(epoch_chunks(n, bs, cfg.seed, epoch)
                .into_iter()
                .map(|chunk| {
                    let batch = (
                        select_rows(data.images(), &chunk)?,
                        select_rows(&data.x, &chunk)?,
                        select_rows(&data.t, &chunk)?,
                    );
                    Ok((batch, bs))
                }))
        },
        |run, (y, x, t): &Batch| condition([(sites::Y, y)], || intact_model(run.vae, x, t)),
        |run, (y, x, t)| intact_guide(run.vae, y, x, t),
        &mut on_event,
    )
}

/// A run of [`train`]: the model trains from scratch each call, so its progress lives here.
struct Run<'a> {
    vae: &'a IntactVae,
    progress: Progress,
}

impl Trainable for Run<'_> {
    fn store(&self) -> &ParamStore {
        self.vae.store()
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }

    fn progress_mut(&mut self) -> &mut Progress {
        &mut self.progress
    }
}
