//! `Svi`: stochastic variational inference — fit a guide to a model's posterior by gradient
//! steps on the ELBO.

use std::io::IsTerminal;

use candle_core::Tensor;

use super::elbo::TraceElbo;
use super::guide::Guide;
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::params::ParamStore;

/// Stochastic variational inference (Pyro's `SVI`): each [`step`](Svi::step) runs the guide and
/// the model, differentiates the ELBO estimate, and lets the optimiser update every parameter
/// that received a gradient. Parameters live in a [`ParamStore`] (the thread's current one when
/// the `Svi` is made, or [`with_store`](Svi::with_store)); they are created lazily as the model
/// and guide first use them.
///
/// A non-finite loss or gradient stops with [`Error::NonFinite`] naming the site (or
/// parameter) at fault, before any parameter is touched: the store keeps the last finite values.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::seed, infer::{AutoNormal, Svi, TraceElbo},
///                optim::Adam, runtime::{observe, sample}};
/// use candle_core::{Device, Tensor};
///
/// // mu ~ N(0, 1), y ~ N(mu, 1), y = 2 observed: the posterior is N(1, 1/2).
/// let y = Tensor::new(2.0f64, &Device::Cpu)?;
/// let model = || -> ppl_core::Result<()> {
///     let mu = sample("mu", Normal::new(&Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?)?;
///     observe("y", Normal::new(&mu, 1.0)?, &y)?;
///     Ok(())
/// };
/// let elbo = TraceElbo::new().num_particles(16);
/// let mut svi = Svi::new(model, AutoNormal::new(), Adam::new(0.05), elbo);
/// seed(0, || svi.run(1000))?;
/// let loc = svi.store().scope(|| svi.guide().loc("mu"))?.to_scalar::<f64>()?;
/// assert!((loc - 1.0).abs() < 0.1, "{loc}");
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub struct Svi<M, G, O> {
    model: M,
    guide: G,
    optim: O,
    loss: TraceElbo,
    store: ParamStore,
    steps: usize,
}

impl<M, R, G, O> Svi<M, G, O>
where
    M: FnMut() -> Result<R>,
    G: Guide,
    O: Optimizer,
{
    /// SVI of `model` with `guide`, stepping with `optim` on `loss`, in the current store.
    pub fn new(model: M, guide: G, optim: O, loss: TraceElbo) -> Self {
        Svi {
            model,
            guide,
            optim,
            loss,
            store: ParamStore::current(),
            steps: 0,
        }
    }

    /// Keep the parameters in `store` instead of the thread's current store.
    pub fn with_store(mut self, store: ParamStore) -> Self {
        self.store = store;
        self
    }

    /// The parameter store.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The guide (e.g. to read an autoguide's locations; read parameters inside
    /// `svi.store().scope(..)`).
    pub fn guide(&self) -> &G {
        &self.guide
    }

    /// The optimiser (e.g. to save its state with a checkpoint).
    pub fn optim(&mut self) -> &mut O {
        &mut self.optim
    }

    /// How many steps have been taken.
    pub fn steps_taken(&self) -> usize {
        self.steps
    }

    /// One gradient step; returns the loss (−ELBO estimate) before the step.
    pub fn step(&mut self) -> Result<f64> {
        let Svi {
            model,
            guide,
            optim,
            loss,
            store,
            ..
        } = self;
        let l = store.scope(|| {
            let est = loss.estimate(&mut *model, &mut *guide)?;
            let grads = est.surrogate.backward()?;
            check_gradients(store, &grads)?;
            optim.step(store, &grads)?;
            Ok::<_, Error>(est.loss)
        })?;
        self.steps += 1;
        Ok(l)
    }

    /// The loss (−ELBO estimate) without taking a step.
    pub fn evaluate_loss(&mut self) -> Result<f64> {
        let Svi {
            model,
            guide,
            loss,
            store,
            ..
        } = self;
        store.scope(|| loss.loss(&mut *model, &mut *guide))
    }

    /// `n` steps, with a progress bar showing the running loss when standard error is a
    /// terminal; returns every step's loss.
    pub fn run(&mut self, n: usize) -> Result<Vec<f64>> {
        let bar = progress_bar(n as u64, "svi");
        let mut losses = Vec::with_capacity(n);
        for i in 0..n {
            let l = self.step()?;
            losses.push(l);
            if let Some(b) = &bar {
                b.inc(1);
                if i % 10 == 0 || i + 1 == n {
                    b.set_message(format!("loss {l:.4}"));
                }
            }
        }
        if let Some(b) = bar {
            b.finish();
        }
        Ok(losses)
    }
}

/// A progress bar on standard error, or `None` when it is not a terminal.
pub(crate) fn progress_bar(len: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}] {{msg}}"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// An [`Error::NonFinite`] naming the first parameter whose gradient has a NaN or an infinity.
/// One reduction over all gradients (a single host read) in the common, finite case.
fn check_gradients(store: &ParamStore, grads: &candle_core::backprop::GradStore) -> Result<()> {
    let entries = store.entries();
    let mut sums: Vec<Tensor> = Vec::with_capacity(entries.len());
    for (_, e) in &entries {
        if let Some(g) = grads.get(e.var.as_tensor()) {
            // f32 sums stay on the gradients' device (f64 is not available everywhere); an
            // overflow to infinity only sends us to the exact per-parameter check below.
            sums.push(g.sum_all()?.to_dtype(candle_core::DType::F32)?.reshape(1)?);
        }
    }
    if sums.is_empty() {
        return Ok(());
    }
    let total = Tensor::cat(&sums, 0)?.sum_all()?.to_scalar::<f32>()?;
    if total.is_finite() {
        return Ok(());
    }
    for (name, e) in &entries {
        if let Some(g) = grads.get(e.var.as_tensor()) {
            let s = g
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
            if !s.is_finite() {
                return Err(Error::NonFinite {
                    site: name.clone(),
                    what: format!(
                        "the gradient of this parameter is not finite (sum {s}); the step was \
                         not taken, parameters keep their last finite values"
                    ),
                });
            }
        }
    }
    Ok(())
}
