//! Importance sampling: weighted samples of the posterior and the log evidence.

use candle_core::Tensor;

use super::guide::{erase, Guide};
use super::util::{log_sum_exp, scalar};
use crate::error::{Error, Result};
use crate::handlers::{replay, trace, Trace};

/// Importance sampling with the prior or a guide as the proposal.
///
/// With the prior as proposal, the log weight of a run is the log-density of its observations
/// (and factors); with a guide `q`, it is `log p(x, z) − log q(z)` for `z` drawn from `q`.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::{condition, seed}, infer::Importance, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// let y = Tensor::new(1.0f64, &Device::Cpu)?;
/// let model = || {
///     let mu = sample("mu", Normal::new(&Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?)?;
///     sample("y", Normal::new(&mu, 1.0)?)
/// };
/// let post = seed(0, || Importance::new(4000).run(|| condition([("y", &y)], model)))?;
/// // p(y) = N(1; 0, 2), and E[mu | y] = 0.5.
/// let exact = -0.25 - 0.5 * (4.0 * std::f64::consts::PI).ln();
/// assert!((post.log_evidence() - exact).abs() < 0.05);
/// assert!((post.mean("mu")?[0] - 0.5).abs() < 0.05);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Importance {
    num_samples: usize,
}

impl Importance {
    /// `num_samples` weighted runs.
    pub fn new(num_samples: usize) -> Self {
        Importance {
            num_samples: num_samples.max(1),
        }
    }

    /// Samples with the prior as proposal.
    pub fn run<R>(&self, mut model: impl FnMut() -> Result<R>) -> Result<ImportanceResults> {
        let mut out = ImportanceResults::with_capacity(self.num_samples);
        for _ in 0..self.num_samples {
            let (_, tr) = trace(&mut model)?;
            let lw = if tr.iter().any(|s| s.scores() && s.observed) {
                scalar(&tr.log_prob_sum_where(|s| s.observed)?)?
            } else {
                0.0
            };
            out.push(tr, lw)?;
        }
        Ok(out)
    }

    /// Samples with `guide` as proposal: each run draws the latents from the guide and replays
    /// the model on them.
    pub fn run_with_guide<R>(
        &self,
        mut model: impl FnMut() -> Result<R>,
        guide: &mut impl Guide,
    ) -> Result<ImportanceResults> {
        let mut out = ImportanceResults::with_capacity(self.num_samples);
        for _ in 0..self.num_samples {
            let (_, gtr) = trace(|| guide.call(&mut erase(&mut model)))?;
            let (_, mtr) = trace(|| replay(&gtr, &mut model))?;
            let lq = if gtr.iter().any(|s| s.scores()) {
                scalar(&gtr.log_prob_sum()?)?
            } else {
                0.0
            };
            let lp = scalar(&mtr.log_prob_sum()?)?;
            out.push(mtr, lp - lq)?;
        }
        Ok(out)
    }
}

/// Weighted model traces from [`Importance`].
#[derive(Debug, Clone, Default)]
pub struct ImportanceResults {
    traces: Vec<Trace>,
    log_weights: Vec<f64>,
}

impl ImportanceResults {
    fn with_capacity(n: usize) -> Self {
        ImportanceResults {
            traces: Vec::with_capacity(n),
            log_weights: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, tr: Trace, lw: f64) -> Result<()> {
        if lw.is_nan() || lw == f64::INFINITY {
            let site = tr
                .iter()
                .filter(|s| s.scores())
                .find(|s| {
                    s.scaled_log_prob()
                        .and_then(|lp| scalar(&lp))
                        .map_or(true, |v| v.is_nan() || v == f64::INFINITY)
                })
                .map_or_else(|| "<model>".to_string(), |s| s.name.clone());
            return Err(Error::NonFinite {
                site,
                what: format!("importance log weight {lw}"),
            });
        }
        self.traces.push(tr);
        self.log_weights.push(lw);
        Ok(())
    }

    /// The model traces, one per sample.
    pub fn traces(&self) -> &[Trace] {
        &self.traces
    }

    /// The unnormalised log weights.
    pub fn log_weights(&self) -> &[f64] {
        &self.log_weights
    }

    /// The weights normalised to sum to one.
    pub fn normalized_weights(&self) -> Vec<f64> {
        let z = log_sum_exp(&self.log_weights);
        self.log_weights.iter().map(|lw| (lw - z).exp()).collect()
    }

    /// The effective sample size `1 / Σ w̄²` (between 1 and the number of samples).
    pub fn effective_sample_size(&self) -> f64 {
        1.0 / self.normalized_weights().iter().map(|w| w * w).sum::<f64>()
    }

    /// The estimate of the log evidence `log p(data)`: `log mean exp(log w)`.
    pub fn log_evidence(&self) -> f64 {
        log_sum_exp(&self.log_weights) - (self.log_weights.len() as f64).ln()
    }

    /// The self-normalised estimate of `E[f]` under the posterior.
    pub fn expectation(&self, mut f: impl FnMut(&Trace) -> Result<f64>) -> Result<f64> {
        let mut total = 0.0;
        for (tr, w) in self.traces.iter().zip(self.normalized_weights()) {
            if w > 0.0 {
                total += w * f(tr)?;
            }
        }
        Ok(total)
    }

    /// The self-normalised posterior mean of site `name`, element by element (flattened).
    pub fn mean(&self, name: &str) -> Result<Vec<f64>> {
        let mut acc: Option<Vec<f64>> = None;
        for (tr, w) in self.traces.iter().zip(self.normalized_weights()) {
            let v = super::util::to_f64s(tr.value(name)?)?;
            let acc = acc.get_or_insert_with(|| vec![0.0; v.len()]);
            if acc.len() != v.len() {
                return Err(Error::shape(
                    format!("values of site `{name}` across importance samples"),
                    &[acc.len()],
                    &[v.len()],
                ));
            }
            for (a, x) in acc.iter_mut().zip(v) {
                *a += w * x;
            }
        }
        acc.ok_or_else(|| Error::usage("no importance samples"))
    }

    /// The values of site `name`, stacked along a new leading dim, with the normalised weights.
    pub fn marginal(&self, name: &str) -> Result<(Tensor, Vec<f64>)> {
        let values: Vec<Tensor> = self
            .traces
            .iter()
            .map(|tr| tr.value(name).cloned())
            .collect::<Result<_>>()?;
        Ok((Tensor::stack(&values, 0)?, self.normalized_weights()))
    }
}
