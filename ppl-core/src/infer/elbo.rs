//! `TraceElbo`: the evidence lower bound estimated from traces of a guide and a model.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::guide::{erase, Guide};
use super::util::scalar;
use crate::error::{Error, Result};
use crate::handlers::{replay, trace, Site, Trace};
use crate::runtime::Plate;

/// The name of the plate that vectorised particles run in.
pub const PARTICLES_PLATE: &str = "num_particles_vectorized";

/// The ELBO `E_q[log p(x, z) − log q(z)]`, estimated by Monte Carlo from traces (Pyro's
/// `Trace_ELBO`).
///
/// Gradients are reparameterised where the guide site drew with `rsample`; a guide site that
/// cannot (a discrete site) adds the score-function term `log q(z) · (elbo − b)` with `b` a
/// running mean of the ELBO per site (a baseline: it lowers the variance and not the mean).
/// Several particles are averaged, one run each, or all in one run of a particle plate
/// ([`vectorize_particles`](Self::vectorize_particles)) if the model broadcasts.
#[derive(Debug, Clone)]
pub struct TraceElbo {
    num_particles: usize,
    max_plate_nesting: Option<usize>,
    baseline_beta: f64,
    baselines: HashMap<String, f64>,
}

impl Default for TraceElbo {
    fn default() -> Self {
        TraceElbo {
            num_particles: 1,
            max_plate_nesting: None,
            baseline_beta: 0.9,
            baselines: HashMap::new(),
        }
    }
}

/// One evaluation of the ELBO: the loss to report and the surrogate to differentiate.
#[derive(Debug, Clone)]
pub struct ElboEstimate {
    /// `−ELBO`, averaged over particles (what training reports).
    pub loss: f64,
    /// A 0-dim tensor whose gradient is the gradient estimate of `−ELBO`.
    pub surrogate: Tensor,
}

impl TraceElbo {
    /// One particle, sequential.
    pub fn new() -> Self {
        Self::default()
    }

    /// Average over `n` particles.
    pub fn num_particles(mut self, n: usize) -> Self {
        self.num_particles = n.max(1);
        self
    }

    /// Run all particles at once in a plate to the left of the model's plates; the model and
    /// guide must broadcast over it. `max_plate_nesting` is how many plate dims the model uses.
    pub fn vectorize_particles(mut self, max_plate_nesting: usize) -> Self {
        self.max_plate_nesting = Some(max_plate_nesting);
        self
    }

    /// The decay of the score-function baselines' running mean (default 0.9).
    pub fn baseline_beta(mut self, beta: f64) -> Self {
        self.baseline_beta = beta.clamp(0.0, 1.0);
        self
    }

    /// The loss `−ELBO` without gradients' bookkeeping concerns (Pyro's `loss`).
    pub fn loss<R>(
        &mut self,
        model: impl FnMut() -> Result<R>,
        guide: &mut impl Guide,
    ) -> Result<f64> {
        Ok(self.estimate(model, guide)?.loss)
    }

    /// The loss and a differentiable surrogate of it (Pyro's `differentiable_loss`). A
    /// non-finite loss is an [`Error::NonFinite`] naming the site whose log-density is at fault.
    pub fn estimate<R>(
        &mut self,
        mut model: impl FnMut() -> Result<R>,
        guide: &mut impl Guide,
    ) -> Result<ElboEstimate> {
        match self.max_plate_nesting {
            Some(nesting) if self.num_particles > 1 => {
                let dim = -(nesting as isize) - 1;
                let p = self.num_particles;
                let (mtr, gtr) = Plate::new(PARTICLES_PLATE, p)
                    .dim(dim)
                    .run(|_| particle_traces(&mut model, guide))?;
                self.particle_estimate(&mtr, &gtr, Some(dim), p)
            }
            _ => {
                let mut loss = 0.0;
                let mut surrogates = Vec::with_capacity(self.num_particles);
                for _ in 0..self.num_particles {
                    let (mtr, gtr) = particle_traces(&mut model, guide)?;
                    let e = self.particle_estimate(&mtr, &gtr, None, 1)?;
                    loss += e.loss;
                    surrogates.push(e.surrogate);
                }
                let n = self.num_particles as f64;
                let surrogate = if surrogates.len() == 1 {
                    surrogates.pop().expect("one particle")
                } else {
                    (Tensor::stack(&surrogates, 0)?.sum_all()? / n)?
                };
                Ok(ElboEstimate {
                    loss: loss / n,
                    surrogate,
                })
            }
        }
    }

    /// The estimate from one pair of traces; with a particle plate at `dim`, each site's
    /// log-density is reduced to one value per particle first.
    fn particle_estimate(
        &mut self,
        mtr: &Trace,
        gtr: &Trace,
        dim: Option<isize>,
        p: usize,
    ) -> Result<ElboEstimate> {
        let elbo = match (sum_sites(mtr, dim, p)?, sum_sites(gtr, dim, p)?) {
            (Some(lp), Some(lq)) => (&lp - lq.to_dtype(lp.dtype())?)?,
            (Some(lp), None) => lp,
            (None, Some(lq)) => lq.neg()?,
            (None, None) => {
                return Err(Error::usage(
                    "neither the model nor the guide has a sample site",
                ))
            }
        }; // shape (p,)
        let values = elbo.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let mean = values.iter().sum::<f64>() / p as f64;
        if !mean.is_finite() {
            let site = first_non_finite(mtr)
                .or_else(|| first_non_finite(gtr))
                .unwrap_or_else(|| "<elbo>".into());
            return Err(Error::NonFinite {
                site,
                what: format!(
                    "the ELBO is {mean}: this site's log-density is not finite (parameters keep \
                     their last finite values)"
                ),
            });
        }
        let mut surrogate = elbo.clone();
        for site in gtr
            .iter()
            .filter(|s| s.is_latent() && !drew_with_rsample(s))
        {
            let lq = per_particle(&site.scaled_log_prob()?, site, dim, p)?;
            let b = self.baselines.entry(site.name.clone()).or_insert(mean);
            let centred: Vec<f64> = values.iter().map(|v| v - *b).collect();
            *b = self.baseline_beta * *b + (1.0 - self.baseline_beta) * mean;
            let centred = Tensor::from_vec(centred, p, elbo.device())?.to_dtype(elbo.dtype())?;
            surrogate = (surrogate + (lq.to_dtype(elbo.dtype())? * centred)?)?;
        }
        Ok(ElboEstimate {
            loss: -mean,
            surrogate: (surrogate.sum_all()? / -(p as f64))?,
        })
    }
}

/// The guide's trace, then the model's trace replaying the guide's latents.
fn particle_traces<R>(
    model: &mut impl FnMut() -> Result<R>,
    guide: &mut impl Guide,
) -> Result<(Trace, Trace)> {
    let (_, gtr) = trace(|| guide.call(&mut erase(model)))?;
    let (_, mtr) = trace(|| replay(&gtr, &mut *model))?;
    Ok((mtr, gtr))
}

/// Whether the site's value carries the pathwise gradient (it was drawn with `rsample`).
fn drew_with_rsample(site: &Site) -> bool {
    site.dist.as_ref().is_some_and(|d| d.has_rsample())
}

/// Σ of the scoring sites' scaled log-densities, per particle: shape `(p,)` (`None` if no site
/// scores).
fn sum_sites(tr: &Trace, dim: Option<isize>, p: usize) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for s in tr.iter().filter(|s| s.scores()) {
        let lp = per_particle(&s.scaled_log_prob()?, s, dim, p)?;
        total = Some(match total {
            None => lp,
            Some(t) => (&t + lp.to_dtype(t.dtype())?)?,
        });
    }
    Ok(total)
}

/// Reduces a site's log-density to shape `(p,)`: summed over every dim but the particle dim.
fn per_particle(lp: &Tensor, site: &Site, dim: Option<isize>, p: usize) -> Result<Tensor> {
    let Some(dim) = dim else {
        return Ok(lp.sum_all()?.reshape(1)?);
    };
    let rank = lp.rank() as isize;
    let pos = rank + dim;
    if pos < 0 || lp.dim(pos as usize)? != p {
        return Err(Error::SiteShape {
            site: site.name.clone(),
            reason: format!(
                "with vectorised particles the log-density (shape {:?}) needs the particle dim \
                 {dim} of size {p}; is max_plate_nesting right?",
                lp.dims()
            ),
            frames: crate::runtime::frame_table(&site.plates),
        });
    }
    let pos = pos as usize;
    let moved = lp.transpose(0, pos)?.contiguous()?;
    Ok(moved.reshape((p, ()))?.sum(1)?)
}

fn first_non_finite(tr: &Trace) -> Option<String> {
    tr.iter().filter(|s| s.scores()).find_map(|s| {
        let v = s.scaled_log_prob().and_then(|lp| scalar(&lp)).ok()?;
        (!v.is_finite()).then(|| s.name.clone())
    })
}
