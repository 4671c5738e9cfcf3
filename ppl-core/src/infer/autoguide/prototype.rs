//! The prototype trace an autoguide builds itself from, and the machinery every autoguide shares:
//! one parameterised distribution per latent site of the model, inside the site's plates, with
//! parameters of the plates' full sizes indexed by the run's minibatch.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};

use crate::dist::DistRef;
use crate::error::{Error, Result};
use crate::handlers::{block, trace, Hide};
use crate::infer::elbo::PARTICLES_PLATE;
use crate::runtime::{sample, Plate, PlateFrame, PlateGuard, SiteKind};
use crate::transforms::{biject_to, TransformRef};

/// Where the unconstrained locations of an autoguide start.
#[derive(Debug, Clone, Default)]
pub enum InitLoc {
    /// Zero in the unconstrained space (Pyro's `init_to_feasible`): the median of the support's
    /// bijection, e.g. 1 for a positive site.
    #[default]
    Feasible,
    /// These constrained values (full plate sizes), by site name; other sites start feasible.
    Values(HashMap<String, Tensor>),
}

/// A latent site of the model, as an autoguide sees it.
#[derive(Debug, Clone)]
pub struct ProtoSite {
    /// The site's address.
    pub name: String,
    /// The value's shape with every plate at its full size (the parameters' shape).
    pub shape: Vec<usize>,
    /// How many rightmost dims are the event.
    pub event_dim: usize,
    /// The bijection from the reals onto the site's support (`None`: the reals).
    pub transform: Option<TransformRef>,
    /// The site's plates, outermost first.
    pub plates: Vec<PlateFrame>,
    /// The value's dtype.
    pub dtype: DType,
    /// The value's device.
    pub device: Device,
}

impl ProtoSite {
    /// The initial unconstrained location.
    pub(crate) fn init_loc(&self, init: &InitLoc) -> Result<Tensor> {
        if let InitLoc::Values(values) = init {
            if let Some(v) = values.get(&self.name) {
                if v.dims() != self.shape.as_slice() {
                    return Err(Error::shape(
                        format!("initial value of site `{}`", self.name),
                        &self.shape,
                        v.dims(),
                    ));
                }
                let v = v.to_dtype(self.dtype)?.to_device(&self.device)?;
                return match &self.transform {
                    Some(t) => t.inverse(&v).map_err(|e| e.at_site(&self.name)),
                    None => Ok(v),
                };
            }
        }
        Ok(Tensor::zeros(
            self.shape.as_slice(),
            self.dtype,
            &self.device,
        )?)
    }

    /// The axis of `frame`'s dim in the value.
    fn axis(&self, frame: &PlateFrame) -> usize {
        let batch_rank = self.shape.len() - self.event_dim;
        (batch_rank as isize + frame.dim) as usize
    }
}

/// The latent sites of a model, read off one blocked run of it.
#[derive(Debug, Clone)]
pub(crate) struct Prototype {
    pub(crate) sites: Vec<ProtoSite>,
    /// Every plate the latent sites use, by name.
    plates: BTreeMap<String, PlateFrame>,
}

impl Prototype {
    /// Runs `model` once, hidden from every outer handler, and describes its latent sites.
    pub(crate) fn build(model: &mut dyn FnMut() -> Result<()>, guide: &str) -> Result<Self> {
        let (_, tr) = block(Hide::All, || trace(&mut *model))?;
        let mut sites = Vec::new();
        let mut plates = BTreeMap::new();
        for s in tr
            .iter()
            .filter(|s| s.is_latent() && s.kind == SiteKind::Sample)
        {
            let dist = s
                .dist
                .as_ref()
                .ok_or_else(|| Error::usage(format!("site `{}` has no distribution", s.name)))?;
            let support = dist.support();
            if support.is_discrete() {
                return Err(Error::Unsupported {
                    what: format!(
                        "{guide} for discrete latent site `{}` ({})",
                        s.name,
                        dist.name()
                    ),
                    why: "autoguides model continuous sites; enumerate the site, or write a guide"
                        .into(),
                });
            }
            let transform = biject_to(support).map_err(|e| e.at_site(&s.name))?;
            let mut shape = s.value.dims().to_vec();
            let event_dim = dist.event_shape().len();
            // Particles are a plate of the ELBO, not of the model: drop their dim.
            let mut frames: Vec<PlateFrame> = Vec::new();
            let mut particle_axis = None;
            let batch_rank = shape.len() - event_dim;
            for f in s.plates.iter().rev() {
                let axis = (batch_rank as isize + f.dim) as usize;
                if &*f.name == PARTICLES_PLATE {
                    particle_axis = Some(axis);
                } else {
                    shape[axis] = f.size;
                    frames.push(f.clone());
                }
            }
            if let Some(axis) = particle_axis {
                shape.remove(axis);
                // Dims left of the particle dim were broadcast for particles only.
                shape.drain(..axis);
            }
            for f in &frames {
                plates.insert(f.name.to_string(), f.clone());
            }
            sites.push(ProtoSite {
                name: s.name.clone(),
                shape,
                event_dim,
                transform,
                plates: frames,
                dtype: s.value.dtype(),
                device: s.value.device().clone(),
            });
        }
        if sites.is_empty() {
            return Err(Error::usage(format!(
                "{guide}: the model has no latent sample site to guide"
            )));
        }
        Ok(Prototype { sites, plates })
    }

    /// Runs one guide pass: draws each subsampled plate's minibatch once (announcing it, so the
    /// model replays it), then samples every site from `site_dist(site, index)`, where `index`
    /// cuts a full-size parameter down to this run's minibatch.
    pub(crate) fn run(
        &self,
        mut site_dist: impl FnMut(&ProtoSite, &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<DistRef>,
    ) -> Result<()> {
        let mut minibatch: HashMap<String, Tensor> = HashMap::new();
        for (name, f) in &self.plates {
            if f.subsample_size < f.size {
                let g = Plate::new(name, f.size)
                    .subsample_size(f.subsample_size)
                    .dim(f.dim)
                    .enter()?;
                minibatch.insert(name.clone(), g.indices()?.clone());
            }
        }
        for site in &self.sites {
            let mut guards: Vec<PlateGuard> = Vec::with_capacity(site.plates.len());
            for f in &site.plates {
                let mut p = Plate::new(&*f.name, f.size).dim(f.dim);
                if let Some(ix) = minibatch.get(&*f.name) {
                    p = p.subsample(ix.clone()).silent();
                }
                guards.push(p.enter()?);
            }
            let index = |t: &Tensor| -> Result<Tensor> {
                let mut t = t.clone();
                for f in &site.plates {
                    if let Some(ix) = minibatch.get(&*f.name) {
                        t = t.index_select(&ix.to_device(t.device())?, site.axis(f))?;
                    }
                }
                Ok(t)
            };
            let dist = site_dist(site, &index)?;
            sample(site.name.clone(), dist)?;
            drop(guards);
        }
        Ok(())
    }
}
