//! The SVI epoch loop every generative model here trains with (the two deep SCMs, the conv VAE,
//! the β-intact-VAE): Adam carried across epochs and checkpoints, seeded minibatches, a seeded
//! ELBO per epoch so that a resumed run repeats an uninterrupted one, and one event type for
//! progress bars and training curves.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::Tensor;
use ppl_core::handlers::seed;
use ppl_core::infer::{Svi, TraceElbo};
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::params::ParamStore;
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;

/// What a training run reports to its callback. Losses are the trainer's: `−ELBO` per image
/// (nats) for the SVI models, the weighted mean cross-entropy for the attribute classifier.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// After every SVI step.
    Step {
        /// The epoch (0-based, counted over every call of `train`).
        epoch: usize,
        /// The step (0-based, counted over every call of `train`).
        step: usize,
        /// The steps this call of `train` will take in all.
        total_steps: usize,
        /// The minibatch's loss, before the step.
        loss: f64,
    },
    /// After every epoch (and its checkpoint, if one is written).
    Epoch {
        /// The epoch just finished (0-based).
        epoch: usize,
        /// The mean per-image loss over the epoch's steps.
        mean_loss: f64,
        /// Seconds since this call of `train` began.
        seconds: f64,
    },
}

/// What a call of `train` did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainSummary {
    /// Per-image loss of every step taken by this call.
    pub step_losses: Vec<f64>,
    /// Mean per-image loss of every epoch finished by this call.
    pub epoch_losses: Vec<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// How far a model has trained: Adam's state, epochs and steps done. Read it through
/// [`Trainable`]'s methods.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub(crate) optim_state: BTreeMap<String, Tensor>,
    pub(crate) epochs: usize,
    pub(crate) steps: usize,
}

impl Progress {
    /// Writes `store` and this progress to `dir` (created if needed): `params.safetensors`,
    /// `optim.safetensors` (Adam's state) and `progress.txt` (epochs and steps done), each file
    /// atomically.
    pub(crate) fn save(&self, dir: &Path, store: &ParamStore) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        store.save(dir.join("params.safetensors"))?;
        let mut optim = Adam::new(1e-3);
        optim.load_state(&self.optim_state)?;
        optim.save_state(&dir.join("optim.safetensors"))?;
        crate::data::image::write_atomic(
            dir.join("progress.txt"),
            format!("epochs {} steps {}\n", self.epochs, self.steps).as_bytes(),
        )
    }

    /// Reads a checkpoint written by [`save`](Self::save): the parameters are loaded into
    /// `store` in place, and the progress is returned.
    pub(crate) fn load(dir: &Path, store: &ParamStore) -> Result<Progress> {
        let progress = dir.join("progress.txt");
        let text = std::fs::read_to_string(&progress).map_err(|e| Error::io(&progress, e))?;
        let nums: Vec<usize> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [epochs, steps] = nums[..] else {
            return Err(Error::parse(
                &progress,
                1,
                format!("expected `epochs <e> steps <s>`, got `{}`", text.trim()),
            ));
        };
        let mut optim = Adam::new(1e-3);
        optim.load_state_file(&dir.join("optim.safetensors"))?;
        store.load(dir.join("params.safetensors"))?;
        Ok(Progress {
            optim_state: optim.state_tensors()?,
            epochs,
            steps,
        })
    }
}

/// A model trained by SVI epochs here (`DeepScm`, `FaceScm`, `ConvVae`): its parameters, how
/// far it has trained, and checkpoints from which its `train` resumes. Bring the trait into
/// scope (`use models::training::Trainable;`) to call these methods.
pub trait Trainable {
    /// The parameters.
    fn store(&self) -> &ParamStore;

    /// How far the model has trained.
    fn progress(&self) -> &Progress;

    /// The same, to record an epoch or restore a checkpoint.
    #[doc(hidden)]
    fn progress_mut(&mut self) -> &mut Progress;

    /// Steps taken so far, over every call of `train`.
    fn steps_taken(&self) -> usize {
        self.progress().steps
    }

    /// Epochs completed so far; `train` continues from here.
    fn epochs_done(&self) -> usize {
        self.progress().epochs
    }

    /// Writes a checkpoint to `dir` (created if needed): the parameters
    /// (`params.safetensors`), Adam's state (`optim.safetensors`) and the progress
    /// (`progress.txt`: epochs and steps done), each file atomically.
    fn save_checkpoint(&self, dir: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        self.progress().save(dir.as_ref(), self.store())
    }

    /// Reads a checkpoint written by [`save_checkpoint`](Self::save_checkpoint) (or by
    /// `train`) of a model of the same configuration: the parameters are overwritten in place,
    /// and training resumes after the saved epoch.
    fn load_checkpoint(&mut self, dir: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let progress = Progress::load(dir.as_ref(), self.store())?;
        *self.progress_mut() = progress;
        Ok(())
    }
}

/// The settings of one [`svi_epochs`] run.
pub(crate) struct EpochPlan<'a> {
    /// Train until this many epochs are done in all.
    pub epochs: usize,
    /// Minibatches per epoch (for the events' `total_steps`).
    pub per_epoch: usize,
    /// Seeds the ELBO's draws, with the epoch.
    pub seed: u64,
    /// Written after every epoch when given.
    pub checkpoint: Option<&'a Path>,
    /// Names the caller in errors.
    pub what: &'static str,
}

/// Rows `idx` of `t` (along dim 0).
pub(crate) fn select_rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    let ids = Tensor::from_vec(
        idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        idx.len(),
        t.device(),
    )?;
    Ok(t.index_select(&ids, 0)?)
}

/// The minibatches of epoch `epoch` over `n` examples: a permutation drawn from `seed` and the
/// epoch, cut into `bs`-sized chunks, the last partial chunk dropped.
pub(crate) fn epoch_chunks(n: usize, bs: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut r = rng::from_seed(seed);
    r.set_stream(epoch as u64);
    perm.shuffle(&mut r);
    perm.chunks_exact(bs.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Trains `target` by SVI (`TraceElbo`, one particle) with `optim` from its recorded progress
/// until `plan.epochs` epochs are done: Adam's state is restored from and saved to the
/// progress, each epoch's minibatches come from `batches(epoch)` as `(batch, size)` and the
/// ELBO's draws run under `seed(plan.seed · 1000003 + epoch)`. `model` and `guide` read the
/// current batch. After each epoch the progress is recorded and the checkpoint written.
pub(crate) fn svi_epochs<T, B, I>(
    target: &mut T,
    mut optim: Adam,
    plan: &EpochPlan<'_>,
    mut batches: impl FnMut(usize) -> Result<I>,
    model: impl Fn(&T, &B) -> Result<Tensor>,
    guide: impl Fn(&T, &B) -> Result<Tensor>,
    mut on_event: impl FnMut(&TrainEvent),
) -> Result<TrainSummary>
where
    T: Trainable,
    B: Clone,
    I: Iterator<Item = Result<(B, usize)>>,
{
    let start = Instant::now();
    let first_epoch = target.progress().epochs;
    let total_steps = plan.per_epoch * plan.epochs.saturating_sub(first_epoch);
    if !target.progress().optim_state.is_empty() {
        optim.load_state(&target.progress().optim_state)?;
    }
    let mut summary = TrainSummary {
        step_losses: Vec::with_capacity(total_steps),
        epoch_losses: Vec::new(),
        seconds: 0.0,
    };
    let mut step = target.progress().steps;
    for epoch in first_epoch..plan.epochs {
        let batch: RefCell<Option<B>> = RefCell::new(None);
        let t: &T = target;
        let current = || {
            batch
                .borrow()
                .clone()
                .ok_or_else(|| Error::usage(format!("{}: no minibatch loaded", plan.what)))
        };
        let m = || model(t, &current()?);
        let g = || guide(t, &current()?);
        let mut svi = Svi::new(m, g, optim, TraceElbo::new()).with_store(t.store().clone());
        let (mut epoch_sum, mut epoch_n) = (0.0, 0usize);
        seed(
            plan.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
            || {
                for b in batches(epoch)? {
                    let (b, n) = b?;
                    *batch.borrow_mut() = Some(b);
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
        let optim_state = svi.optim().state_tensors()?;
        // Adam (with its per-prefix rates) moves on to the next epoch's SVI; the placeholder
        // left behind is dropped with it.
        optim = std::mem::replace(svi.optim(), Adam::new(1e-3));
        drop(svi);
        *target.progress_mut() = Progress {
            optim_state,
            epochs: epoch + 1,
            steps: step,
        };
        if let Some(dir) = plan.checkpoint {
            target.progress().save(dir, target.store())?;
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
