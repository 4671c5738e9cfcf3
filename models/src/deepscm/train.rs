//! Training a [`DeepScm`] by SVI: `TraceElbo` with the encoder guide, Adam, seeded minibatches.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Tensor;
use ppl_core::handlers::{condition, seed};
use ppl_core::infer::{Svi, TraceElbo};
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::{Error, Result};

use super::config::TrainConfig;
use super::model::{encoder_guide, morpho_scm, sites, DeepScm};
use crate::data::batches::BatchOptions;
use crate::data::morpho::MorphoGlyphs;

/// What [`train`] reports to its callback.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// After every SVI step.
    Step {
        /// The epoch (0-based, counted over every call of [`train`]).
        epoch: usize,
        /// The step (0-based, counted over every call of [`train`]).
        step: usize,
        /// The steps this call of [`train`] will take in all.
        total_steps: usize,
        /// `−ELBO` of the minibatch per image (nats), before the step.
        loss: f64,
    },
    /// After every epoch (and its checkpoint, if one is written).
    Epoch {
        /// The epoch just finished (0-based).
        epoch: usize,
        /// The mean per-image loss over the epoch's steps.
        mean_loss: f64,
        /// Seconds since this call of [`train`] began.
        seconds: f64,
    },
}

/// What a call of [`train`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Per-image loss of every step taken by this call.
    pub step_losses: Vec<f64>,
    /// Mean per-image loss of every epoch finished by this call.
    pub epoch_losses: Vec<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Where [`train`] writes a checkpoint after every epoch (see
/// [`DeepScm::save_checkpoint`]); `None` writes none.
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
/// are done in all: a model restored by [`DeepScm::load_checkpoint`] resumes after its last
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
    let start = Instant::now();
    let dataset = data.to_dataset()?;
    let opts = BatchOptions {
        batch_size: cfg.batch_size,
        shuffle: true,
        drop_last: data.len() > cfg.batch_size,
        seed: cfg.seed,
        device: scm.device().clone(),
    };
    let first_epoch = scm.epochs_done();
    let per_epoch = dataset.batches(&opts, 0)?.len();
    let total_steps = per_epoch * cfg.epochs.saturating_sub(first_epoch);
    let mut optim = optimiser(cfg);
    if !scm.optim_state().is_empty() {
        optim.load_state(scm.optim_state())?;
    }
    let mut summary = TrainSummary {
        step_losses: Vec::with_capacity(total_steps),
        epoch_losses: Vec::new(),
        seconds: 0.0,
    };
    let mut step = scm.steps_taken();
    for epoch in first_epoch..cfg.epochs {
        let batch: RefCell<Option<(Tensor, Tensor, Tensor)>> = RefCell::new(None);
        let model_scm: &DeepScm = scm;
        let current = || {
            batch
                .borrow()
                .clone()
                .ok_or_else(|| Error::usage("train: no minibatch loaded"))
        };
        let model = || {
            let (x, t, i) = current()?;
            let n = x.dim(0)?;
            condition(
                [
                    (sites::IMAGE, &x),
                    (sites::THICKNESS, &t),
                    (sites::INTENSITY, &i),
                ],
                || morpho_scm(model_scm, n),
            )
        };
        let guide = || {
            let (x, t, i) = current()?;
            encoder_guide(model_scm, &x, &t, &i)
        };
        let mut svi =
            Svi::new(model, guide, optim, TraceElbo::new()).with_store(model_scm.store().clone());
        let mut epoch_sum = 0.0;
        let mut epoch_n = 0usize;
        seed(
            cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
            || {
                for b in dataset.batches(&opts, epoch as u64)? {
                    let b = b?;
                    let n = b.len();
                    let x = (b.images.clone() / 255.0)?.clamp(0f32, 1f32)?;
                    let t = b.column("thickness")?.unsqueeze(1)?;
                    let i = b.column("intensity")?.unsqueeze(1)?;
                    *batch.borrow_mut() = Some((x, t, i));
                    let loss = svi.step()? / n as f64;
                    summary.step_losses.push(loss);
                    epoch_sum += loss;
                    epoch_n += 1;
                    on_event(&TrainEvent::Step {
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
        if let Some(dir) = &checkpoint.dir {
            scm.save_checkpoint(dir)?;
        }
        let mean_loss = epoch_sum / epoch_n.max(1) as f64;
        summary.epoch_losses.push(mean_loss);
        on_event(&TrainEvent::Epoch {
            epoch,
            mean_loss,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}
