//! Training a [`DeepScm`] by SVI: `TraceElbo` with the encoder guide, Adam, seeded minibatches.

use std::path::PathBuf;

use candle_core::Tensor;
use ppl_core::handlers::condition;
use ppl_core::optim::Adam;
use ppl_core::{Error, Result};

use super::config::TrainConfig;
use super::model::{encoder_guide, morpho_scm, sites, DeepScm};
use crate::data::batches::BatchOptions;
use crate::data::morpho::MorphoGlyphs;
use crate::training::{svi_epochs, EpochPlan};

pub use crate::training::{TrainEvent, TrainSummary};

/// Where [`train`] writes a checkpoint after every epoch (see
/// [`Trainable::save_checkpoint`](crate::training::Trainable::save_checkpoint)); `None` writes none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpointing {
    /// The checkpoint folder.
    pub dir: Option<PathBuf>,
}

/// The Adam of a training run: the networks at `cfg.lr`, the attribute flows at `cfg.flow_lr`.
fn optimiser(cfg: &TrainConfig) -> Adam {
    Adam::new(cfg.lr)
        .lr_for_prefix("thickness.", cfg.flow_lr)
        .lr_for_prefix("intensity.", cfg.flow_lr)
}

/// Trains `scm` on `data` by SVI (`TraceElbo`, one particle; Adam) until `cfg.epochs` epochs
/// are done in all: a model restored by [`Trainable::load_checkpoint`](crate::training::Trainable::load_checkpoint) resumes after its last
/// saved epoch, and one already trained that far takes no step. Each epoch walks the glyphs in a
/// permutation fixed by `cfg.seed` and the epoch; the ELBO's draws are seeded by `cfg.seed`
/// and the epoch too, so a resumed run repeats an uninterrupted one.
///
/// The model is [`morpho_scm`] conditioned on the batch's image (grey levels / 255), thickness
/// and intensity; the guide is [`encoder_guide`]. `on_event` sees every step and epoch (for a
/// progress bar and the training curve). A non-finite loss stops with
/// [`Error::NonFinite`] naming the site, parameters and checkpoint left at their last good
/// values.
pub fn train(
    scm: &mut DeepScm,
    data: &MorphoGlyphs,
    cfg: &TrainConfig,
    checkpoint: &Checkpointing,
    mut on_event: impl FnMut(&TrainEvent),
) -> Result<TrainSummary> {
    cfg.validate()?;
    if data.is_empty() {
        return Err(Error::usage("train: the data set is empty"));
    }
    let dataset = data.to_dataset()?;
    let opts = BatchOptions {
        batch_size: cfg.batch_size,
        shuffle: true,
        drop_last: data.len() > cfg.batch_size,
        seed: cfg.seed,
        device: scm.device().clone(),
    };
    let plan = EpochPlan {
        epochs: cfg.epochs,
        per_epoch: dataset.batches(&opts, 0)?.len(),
        seed: cfg.seed,
        checkpoint: checkpoint.dir.as_deref(),
        what: "train",
    };
    svi_epochs(
        scm,
        optimiser(cfg),
        &plan,
        |epoch| {
            Ok(dataset.batches(&opts, epoch as u64)?.map(|b| {
                let b = b?;
                let x = (b.images.clone() / 255.0)?.clamp(0f32, 1f32)?;
                let t = b.column("thickness")?.unsqueeze(1)?;
                let i = b.column("intensity")?.unsqueeze(1)?;
                Ok(((x, t, i), b.len()))
            }))
        },
        |scm, (x, t, i): &(Tensor, Tensor, Tensor)| {
            let n = x.dim(0)?;
            condition(
                [
                    (sites::IMAGE, x),
                    (sites::THICKNESS, t),
                    (sites::INTENSITY, i),
                ],
                || morpho_scm(scm, n),
            )
        },
        |scm, (x, t, i)| encoder_guide(scm, x, t, i),
        &mut on_event,
    )
}
