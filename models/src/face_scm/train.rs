//! Training a [`FaceScm`] by SVI: `TraceElbo` with the encoder guide, Adam, seeded minibatches.

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use candle_core::Tensor;
use ppl_core::handlers::{condition, seed};
use ppl_core::infer::{Svi, TraceElbo};
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;

use super::config::FaceTrainConfig;
use super::data::FaceData;
use super::model::{attribute_features, face_guide, face_scm, sites, FaceScm};
use crate::data::cartoon::Attr;

/// What [`train`] reports to its callback: the Morpho DeepSCM's events (losses per face).
pub use crate::deepscm::TrainEvent as FaceTrainEvent;
/// What a call of [`train`] did: the Morpho DeepSCM's summary (losses per face).
pub use crate::deepscm::TrainSummary as FaceTrainSummary;

/// A minibatch's observations and its attribute features.
type Batch = (Vec<(&'static str, Tensor)>, Tensor);

/// The observed sites of a batch: every attribute and the image.
pub(crate) fn observations(data: &FaceData) -> Result<Vec<(&'static str, Tensor)>> {
    let mut obs: Vec<(&'static str, Tensor)> = Attr::ALL
        .iter()
        .map(|a| a.name())
        .zip(data.binary_columns()?)
        .collect();
    obs.extend(sites::COLOURS.iter().copied().zip(data.colour_columns()?));
    obs.push((sites::IMAGE, data.images.clone()));
    Ok(obs)
}

/// Trains `scm` on `data` by SVI (`TraceElbo`, one particle; Adam, the attribute tables at
/// `cfg.cpd_lr`) until `cfg.epochs` epochs are done in all; a model restored from a
/// checkpoint resumes after its saved epoch. Each epoch visits the faces in a permutation
/// drawn from `cfg.seed` and the epoch (the last partial batch is dropped when there is more
/// than one batch). `on_event` sees every step and epoch; `checkpoint`, if given, is written
/// after every epoch.
pub fn train(
    scm: &mut FaceScm,
    data: &FaceData,
    cfg: &FaceTrainConfig,
    checkpoint: Option<&Path>,
    mut on_event: impl FnMut(&FaceTrainEvent),
) -> Result<FaceTrainSummary> {
    cfg.validate()?;
    if data.is_empty() {
        return Err(Error::usage("train: the data set is empty"));
    }
    if data.images.dim(2)? != scm.config().image_size {
        return Err(Error::shape(
            "train: images at the model's size",
            &[
                data.len(),
                3,
                scm.config().image_size,
                scm.config().image_size,
            ],
            data.images.dims(),
        ));
    }
    let start = Instant::now();
    let n = data.len();
    let bs = cfg.batch_size.min(n);
    let per_epoch = n / bs;
    let first_epoch = scm.epochs_done();
    let total_steps = per_epoch * cfg.epochs.saturating_sub(first_epoch);
    let mut optim = Adam::new(cfg.lr)
        .lr_for_prefix("cpd.", cfg.cpd_lr)
        .lr_for_prefix("colour.", cfg.cpd_lr);
    if !scm.optim_state().is_empty() {
        optim.load_state(scm.optim_state())?;
    }
    let mut summary = FaceTrainSummary {
        step_losses: Vec::with_capacity(total_steps),
        epoch_losses: Vec::new(),
        seconds: 0.0,
    };
    let mut step = scm.steps_taken();
    for epoch in first_epoch..cfg.epochs {
        let batch: RefCell<Option<Batch>> = RefCell::new(None);
        let model_scm: &FaceScm = scm;
        let current = || {
            batch
                .borrow()
                .clone()
                .ok_or_else(|| Error::usage("train: no minibatch loaded"))
        };
        let model = || {
            let (obs, _) = current()?;
            let m = obs[0].1.dim(0)?;
            condition(obs.iter().map(|(k, v)| (*k, v)), || face_scm(model_scm, m))
        };
        let guide = || {
            let (obs, feats) = current()?;
            let x = &obs
                .last()
                .ok_or_else(|| Error::usage("train: empty batch"))?
                .1;
            face_guide(model_scm, x, &feats)
        };
        let mut svi =
            Svi::new(model, guide, optim, TraceElbo::new()).with_store(model_scm.store().clone());
        let mut perm: Vec<usize> = (0..n).collect();
        let mut r = rng::from_seed(cfg.seed);
        r.set_stream(epoch as u64);
        perm.shuffle(&mut r);
        let mut epoch_sum = 0.0;
        seed(
            cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
            || {
                for chunk in perm.chunks_exact(bs) {
                    let b = data.select(chunk)?;
                    let feats = attribute_features(&b.binary_columns()?, &b.colour_columns()?)?;
                    *batch.borrow_mut() = Some((observations(&b)?, feats));
                    let loss = svi.step()? / bs as f64;
                    summary.step_losses.push(loss);
                    epoch_sum += loss;
                    on_event(&FaceTrainEvent::Step {
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
        scm.record_progress(state, epoch + 1, step);
        if let Some(dir) = checkpoint {
            scm.save_checkpoint(dir)?;
        }
        let mean_loss = epoch_sum / per_epoch.max(1) as f64;
        summary.epoch_losses.push(mean_loss);
        on_event(&FaceTrainEvent::Epoch {
            epoch,
            mean_loss,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}
