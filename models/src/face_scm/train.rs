//! Training a [`FaceScm`] by SVI: `TraceElbo` with the encoder guide, Adam, seeded minibatches.

use std::path::Path;

use candle_core::Tensor;
use ppl_core::handlers::condition;
use ppl_core::optim::Adam;
use ppl_core::{Error, Result};

use super::config::FaceTrainConfig;
use super::data::FaceData;
use super::model::{attribute_features, face_guide, face_scm, sites, FaceScm};
use crate::data::cartoon::Attr;
use crate::training::{epoch_chunks, svi_epochs, EpochPlan};

/// What [`train`] reports to its callback: the Morpho DeepSCM's events (losses per face).
pub use crate::training::TrainEvent as FaceTrainEvent;
/// What a call of [`train`] did: the Morpho DeepSCM's summary (losses per face).
pub use crate::training::TrainSummary as FaceTrainSummary;

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
    let n = data.len();
    let bs = cfg.batch_size.min(n);
    let plan = EpochPlan {
        epochs: cfg.epochs,
        per_epoch: n / bs,
        seed: cfg.seed,
        checkpoint,
        what: "train",
    };
    let optim = Adam::new(cfg.lr)
        .lr_for_prefix("cpd.", cfg.cpd_lr)
        .lr_for_prefix("colour.", cfg.cpd_lr);
    svi_epochs(
        scm,
        optim,
        &plan,
        |epoch| {
            Ok(epoch_chunks(n, bs, cfg.seed, epoch)
                .into_iter()
                .map(|chunk| {
                    let b = data.select(&chunk)?;
                    let feats = attribute_features(&b.binary_columns()?, &b.colour_columns()?)?;
                    Ok(((observations(&b)?, feats), bs))
                }))
        },
        |scm, (obs, _): &Batch| {
            let m = obs[0].1.dim(0)?;
            condition(obs.iter().map(|(k, v)| (*k, v)), || face_scm(scm, m))
        },
        |scm, (obs, feats)| {
            let x = &obs
                .last()
                .ok_or_else(|| Error::usage("train: empty batch"))?
                .1;
            face_guide(scm, x, feats)
        },
        &mut on_event,
    )
}
