//! The GAN game: the non-saturating losses of Goodfellow et al. (2014) with Adam, as in
//! Radford et al. (2016).

use std::time::Instant;

use candle_core::Tensor;
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::special::softplus;
use ppl_core::{rng, Error, Result};
use rand::seq::SliceRandom;

use super::{Dcgan, DcganTrainConfig, DISC};
use crate::face_scm::FaceData;
use crate::generators::LatentGenerator;

/// What [`Dcgan::train`] reports to its callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DcganEvent {
    /// After every step (one discriminator update, then one generator update).
    Step {
        /// The epoch (0-based).
        epoch: usize,
        /// The step (0-based, counted over this call).
        step: usize,
        /// The steps this call will take in all.
        total_steps: usize,
        /// The discriminator's loss before its update, `−mean log D(x) − mean log(1 − D(G(z)))`.
        d_loss: f64,
        /// The generator's non-saturating loss, `−mean log D(G(z))` (after the discriminator's
        /// update).
        g_loss: f64,
        /// `mean D(x)` on the real batch (before the discriminator's update).
        d_real: f64,
        /// `mean D(G(z))` on the fake batch (before the discriminator's update).
        d_fake: f64,
    },
    /// After every epoch.
    Epoch {
        /// The epoch just finished (0-based).
        epoch: usize,
        /// The mean discriminator loss over the epoch's steps.
        d_loss: f64,
        /// The mean generator loss over the epoch's steps.
        g_loss: f64,
        /// Seconds since this call began.
        seconds: f64,
    },
}

/// What a call of [`Dcgan::train`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct DcganSummary {
    /// The discriminator's loss at every step.
    pub d_losses: Vec<f64>,
    /// The generator's loss at every step.
    pub g_losses: Vec<f64>,
    /// `mean D(x)` at every step.
    pub d_real: Vec<f64>,
    /// `mean D(G(z))` at every step.
    pub d_fake: Vec<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

impl Dcgan {
    /// Trains both networks on `data`'s images (at the configuration's size) for `cfg.epochs`
    /// epochs: each epoch visits the images in a permutation drawn from `cfg.seed` and the epoch,
    /// in batches of `cfg.batch_size` (the last partial batch dropped); each step draws a batch
    /// of `z` from the prior, updates the discriminator on `softplus(−D(x)) + softplus(D(G(z)))`
    /// (real and fake batches normalised separately, as in the reference implementation), then
    /// the generator on `softplus(−D(G(z)))` through the updated discriminator. Each call starts
    /// new Adam states. `on_event` sees every step and epoch.
    pub fn train(
        &mut self,
        data: &FaceData,
        cfg: &DcganTrainConfig,
        mut on_event: impl FnMut(&DcganEvent),
    ) -> Result<DcganSummary> {
        cfg.validate()?;
        self.check_images("Dcgan::train", &data.images)?;
        let n = data.len();
        if n < cfg.batch_size {
            return Err(Error::usage(format!(
                "Dcgan::train: {n} images cannot fill one batch of {}",
                cfg.batch_size
            )));
        }
        let images = data.images.to_device(&self.device)?;
        let bs = cfg.batch_size;
        let per_epoch = n / bs;
        let total_steps = per_epoch * cfg.epochs;
        let disc_params: Vec<Tensor> = self
            .store
            .entries()
            .into_iter()
            .filter(|(name, _)| name.starts_with(&format!("{DISC}.")))
            .map(|(_, e)| e.var.as_tensor().clone())
            .collect();
        let adam = || Adam::new(cfg.lr).betas(cfg.beta1, cfg.beta2);
        let (mut opt_d, mut opt_g) = (adam(), adam());
        let start = Instant::now();
        let mut summary = DcganSummary {
            d_losses: Vec::with_capacity(total_steps),
            g_losses: Vec::with_capacity(total_steps),
            d_real: Vec::with_capacity(total_steps),
            d_fake: Vec::with_capacity(total_steps),
            seconds: 0.0,
        };
        let mut z_rng = rng::from_seed(cfg.seed);
        z_rng.set_stream(u64::MAX);
        let mut step = 0;
        for epoch in 0..cfg.epochs {
            let mut perm: Vec<usize> = (0..n).collect();
            let mut r = rng::from_seed(cfg.seed);
            r.set_stream(epoch as u64);
            perm.shuffle(&mut r);
            let (mut d_sum, mut g_sum) = (0.0, 0.0);
            for chunk in perm.chunks_exact(bs) {
                let ids = Tensor::from_vec(
                    chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    bs,
                    &self.device,
                )?;
                let real = images.index_select(&ids, 0)?;
                let z = self.sample_latents(bs, &mut z_rng)?;
                let fake = self.generator.forward(&z, true)?;

                let real_logits = self.discriminator.forward(&real, true)?;
                let fake_logits = self.discriminator.forward(&fake.detach(), true)?;
                let d_loss = (softplus(&real_logits.neg()?)?.mean_all()?
                    + softplus(&fake_logits)?.mean_all()?)?;
                let d_real = scalar(&candle_nn::ops::sigmoid(&real_logits)?.mean_all()?)?;
                let d_fake = scalar(&candle_nn::ops::sigmoid(&fake_logits)?.mean_all()?)?;
                opt_d.step(&self.store, &d_loss.backward()?)?;

                let g_loss =
                    softplus(&self.discriminator.forward(&fake, true)?.neg()?)?.mean_all()?;
                let mut grads = g_loss.backward()?;
                for p in &disc_params {
                    grads.remove(p);
                }
                opt_g.step(&self.store, &grads)?;

                let (d_loss, g_loss) = (scalar(&d_loss)?, scalar(&g_loss)?);
                if !(d_loss.is_finite() && g_loss.is_finite()) {
                    return Err(Error::NonFinite {
                        site: "Dcgan::train".into(),
                        what: format!("step {step}: D loss {d_loss}, G loss {g_loss}"),
                    });
                }
                summary.d_losses.push(d_loss);
                summary.g_losses.push(g_loss);
                summary.d_real.push(d_real);
                summary.d_fake.push(d_fake);
                d_sum += d_loss;
                g_sum += g_loss;
                on_event(&DcganEvent::Step {
                    epoch,
                    step,
                    total_steps,
                    d_loss,
                    g_loss,
                    d_real,
                    d_fake,
                });
                step += 1;
            }
            on_event(&DcganEvent::Epoch {
                epoch,
                d_loss: d_sum / per_epoch as f64,
                g_loss: g_sum / per_epoch as f64,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        summary.seconds = start.elapsed().as_secs_f64();
        Ok(summary)
    }
}
