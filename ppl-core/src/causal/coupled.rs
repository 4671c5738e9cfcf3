//! The distributions a world handler gives a site whose parents differ across worlds: one
//! noise for every world ([`WorldCoupled`]), and the law of an intervened site
//! ([`WorldSplit`]).
//!
//! Log-densities are partitioned by world: the factual world's slot (index 0 of every world
//! frame) holds the log-density of the factual value, exactly as in the un-intervened model; the
//! rest of the joint law across worlds sits in the slot where every world index is last. For a
//! latent discrete site that rest is `log P(other worlds | factual)` under shared noise; for a
//! continuous (invertible) mechanism it is 0, the other worlds being determined by the factual
//! one; for an observed site it is 0, the other worlds being a draw from their exact conditional
//! given the factual value.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::frames::{axis_of, filled, select, slot_mask};
use crate::dist::{mechanism_of, DistRef, Distribution, Support};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::runtime::{WorldFrame, WorldNoise};

/// What the factual world's value is.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Latent: all worlds come from one noise draw.
    Latent,
    /// Given (observed, replayed): only the factual world scores.
    Observed,
    /// Observed, scored by the joint law across worlds with the factual world pinned to the
    /// data, so that enumeration sums over the other worlds (exact discrete counterfactuals).
    Pinned(Tensor),
}

/// A site's distribution in every world at once, its worlds sharing one exogenous noise.
#[derive(Debug, Clone)]
pub(crate) struct WorldCoupled {
    inner: DistRef,
    frames: Vec<WorldFrame>,
    mode: Mode,
    /// The distribution has no structural form: worlds are drawn independently.
    fresh: bool,
}

/// `(axis, size)` of each frame in a batch of rank `batch_rank` (plus `event_dim` event dims).
fn world_axes(frames: &[WorldFrame], rank: usize, event_dim: usize) -> Vec<(usize, usize)> {
    let dims = vec![1; rank];
    frames
        .iter()
        .filter_map(|f| axis_of(&dims, f.dim, event_dim).map(|a| (a, f.size)))
        .collect()
}

impl WorldCoupled {
    pub(crate) fn new(inner: DistRef, frames: Vec<WorldFrame>, mode: Mode) -> Self {
        let fresh = inner.structural().is_none();
        WorldCoupled {
            inner,
            frames,
            mode,
            fresh,
        }
    }

    fn axes(&self, rank: usize, event_dim: usize) -> Vec<(usize, usize)> {
        world_axes(&self.frames, rank, event_dim)
    }

    /// 1 in the factual slot, of rank `rank` (`event_dim` trailing event dims).
    fn factual_mask(&self, rank: usize, event_dim: usize) -> Result<Tensor> {
        slot_mask(
            rank,
            &self.axes(rank, event_dim),
            |ix| ix.iter().all(|&i| i == 0),
            self.device(),
        )
    }

    /// The log-density of the factual world's value in the factual slot and 0 elsewhere,
    /// computed on the factual world alone (the inner law narrowed to it); `None` where the law
    /// cannot be narrowed or the value has dims the batch does not.
    fn factual_slot_log_prob(&self, value: &Tensor) -> Result<Option<Tensor>> {
        let batch = self.inner.batch_shape();
        let ev = self.inner.event_shape().len();
        let Some(lead_rank) = value.rank().checked_sub(ev) else {
            return Ok(None);
        };
        if lead_rank > batch.len() {
            return Ok(None);
        }
        let Some(shape) = crate::dist::broadcast_shapes(&value.dims()[..lead_rank], batch) else {
            return Ok(None);
        };
        let rank = shape.len();
        let axes = self.axes(rank, 0);
        if axes.is_empty() {
            return Ok(None);
        }
        let v = super::frames::pad_rank(value, rank + ev)?;
        let Some((d, v)) = factual_law(&self.inner, &v, &axes)? else {
            return Ok(None);
        };
        let lp = d.log_prob(&v)?;
        let zeros = filled(0.0, &shape, lp.dtype(), lp.device())?;
        let factual = self.factual_mask(rank, 0)?;
        Ok(Some(select(&factual, &lp, &zeros, &shape)?))
    }

    /// 1 in the slot where every world index is last.
    fn last_mask(&self, rank: usize) -> Result<Tensor> {
        let axes = self.axes(rank, 0);
        let sizes: Vec<usize> = axes.iter().map(|a| a.1).collect();
        slot_mask(
            rank,
            &axes,
            |ix| ix.iter().zip(&sizes).all(|(&i, &s)| i + 1 == s),
            self.device(),
        )
    }

    /// The batch shape with every world dim set to 1: the shape of the shared noise.
    fn noise_batch(&self, sample_shape: &[usize]) -> Vec<usize> {
        let batch = self.inner.batch_shape();
        let mut b = batch.to_vec();
        for (a, _) in self.axes(batch.len(), 0) {
            b[a] = 1;
        }
        let mut out = sample_shape.to_vec();
        out.extend(b);
        out
    }

    fn full_shape(&self, sample_shape: &[usize]) -> Vec<usize> {
        let mut s = sample_shape.to_vec();
        s.extend_from_slice(self.inner.batch_shape());
        s.extend_from_slice(self.inner.event_shape());
        s
    }

    /// All worlds' values from one draw of the noise.
    fn coupled_draw(&self, rng: &mut Rng, sample_shape: &[usize], reparam: bool) -> Result<Tensor> {
        if self.fresh {
            return if reparam {
                self.inner.rsample(rng, sample_shape)
            } else {
                self.inner.sample(rng, sample_shape)
            };
        }
        let mech = mechanism_of(&*self.inner)?;
        let u = mech.draw_noise(rng, &self.noise_batch(sample_shape))?;
        let v = mech.push(&u)?;
        let full = self.full_shape(sample_shape);
        let v = if v.dims() == full.as_slice() {
            v
        } else {
            v.broadcast_as(full.as_slice())?.contiguous()?
        };
        Ok(if reparam { v } else { v.detach() })
    }
}

/// The values of every world given the factual world's value `factual` (which need not carry
/// the world dims): the noise is abducted from it in the factual world's mechanism and pushed
/// through the others; the factual slot keeps `factual` exactly. Without a structural form the
/// other worlds are drawn afresh.
pub(crate) fn abduct_worlds(
    inner: &DistRef,
    frames: &[WorldFrame],
    factual: &Tensor,
    rng: &mut Rng,
) -> Result<(Tensor, WorldNoise)> {
    let event_dim = inner.event_shape().len();
    let mut full = inner.batch_shape().to_vec();
    full.extend_from_slice(inner.event_shape());
    if factual.rank() > full.len() {
        return Err(Error::shape(
            "the factual value has more dims than the site's batch and event shape",
            &full,
            factual.dims(),
        ));
    }
    let obs = factual
        .to_dtype(inner.dtype())?
        .broadcast_as(full.as_slice())
        .map_err(|_| {
            Error::shape(
                "the factual value does not broadcast to the site's shape across worlds",
                &full,
                factual.dims(),
            )
        })?;
    let axes = world_axes(frames, full.len(), event_dim);
    let factual_mask = slot_mask(
        full.len(),
        &axes,
        |ix| ix.iter().all(|&i| i == 0),
        inner.device(),
    )?;
    let (others, noise) = match inner.structural() {
        Some(mech) => {
            let u = match factual_law(inner, &obs, &axes)? {
                // The noise is abducted in the factual world alone where the law narrows to it
                // (half the draws and work in a twin world) ..
                Some((law, obs)) => match law.structural() {
                    Some(m) => Some(m.abduct(rng, &obs)?),
                    None => None,
                },
                None => None,
            };
            let u = match u {
                Some(u) => u,
                // .. else in every world, keeping the factual world's.
                None => {
                    let mut u = mech.abduct(rng, &obs)?;
                    for &(a, _) in &axes {
                        u = u.narrow(a, 0, 1)?;
                    }
                    u
                }
            };
            (mech.push(&u)?, WorldNoise::Abducted)
        }
        None => (inner.sample(rng, &[])?, WorldNoise::Fresh),
    };
    let others = others.to_dtype(obs.dtype())?;
    Ok((select(&factual_mask, &obs, &others, &full)?, noise))
}

/// `inner` and `obs` narrowed to the factual world (index 0 of every world axis), or `None`
/// where the law cannot be narrowed.
fn factual_law(
    inner: &DistRef,
    obs: &Tensor,
    axes: &[(usize, usize)],
) -> Result<Option<(DistRef, Tensor)>> {
    let batch = inner.batch_shape().to_vec();
    let (mut law, mut obs) = (inner.clone(), obs.clone());
    for &(a, size) in axes {
        if batch.get(a) == Some(&size) {
            match law.narrow_batch(a, 0, 1)? {
                Some(n) => law = n,
                None => return Ok(None),
            }
        }
        if obs.dims().get(a) == Some(&size) {
            obs = obs.narrow(a, 0, 1)?;
        }
    }
    Ok(Some((law, obs)))
}

impl Distribution for WorldCoupled {
    fn name(&self) -> &'static str {
        "WorldCoupled"
    }
    fn batch_shape(&self) -> &[usize] {
        self.inner.batch_shape()
    }
    fn event_shape(&self) -> &[usize] {
        self.inner.event_shape()
    }
    fn dtype(&self) -> DType {
        self.inner.dtype()
    }
    fn device(&self) -> &Device {
        self.inner.device()
    }
    fn support(&self) -> Support {
        self.inner.support()
    }
    fn structural(&self) -> Option<&dyn crate::dist::Mechanism> {
        None
    }
    fn sample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        match &self.mode {
            Mode::Pinned(obs) if sample_shape.is_empty() => {
                Ok(abduct_worlds(&self.inner, &self.frames, obs, rng)?.0)
            }
            _ => self.coupled_draw(rng, sample_shape, false),
        }
    }
    fn has_rsample(&self) -> bool {
        self.inner.has_rsample() && matches!(self.mode, Mode::Latent)
    }
    fn rsample(&self, rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        if !self.has_rsample() {
            return Err(Error::NotReparameterizable { dist: self.name() });
        }
        self.coupled_draw(rng, sample_shape, true)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let factual_only = match self.mode {
            Mode::Observed => true,
            Mode::Pinned(_) => self.fresh,
            Mode::Latent => false,
        };
        if factual_only {
            if let Some(lp) = self.factual_slot_log_prob(value)? {
                return Ok(lp);
            }
        }
        let lp = self.inner.log_prob(value)?;
        let shape = lp.dims().to_vec();
        let rank = shape.len();
        let zeros = filled(0.0, &shape, lp.dtype(), lp.device())?;
        let factual = self.factual_mask(rank, 0)?;
        let factual_only = || select(&factual, &lp, &zeros, &shape);
        if self.fresh {
            return match self.mode {
                Mode::Latent => Ok(lp.clone()),
                _ => factual_only(),
            };
        }
        if matches!(self.mode, Mode::Observed) {
            return factual_only();
        }
        let axes: Vec<usize> = self.axes(rank, 0).into_iter().map(|a| a.0).collect();
        let mech = mechanism_of(&*self.inner)?;
        let Some(mut joint) = mech.coupled_log_prob(value, &axes)? else {
            return factual_only();
        };
        let joint_shape = joint.dims().to_vec();
        if let Mode::Pinned(obs) = &self.mode {
            let event_dim = self.inner.event_shape().len();
            let full = self.full_shape(&[]);
            let mut v0 = value.broadcast_as(full.as_slice())?;
            let mut o = obs.to_dtype(value.dtype())?.broadcast_as(full.as_slice())?;
            for (a, _) in self.axes(full.len(), event_dim) {
                v0 = v0.narrow(a, 0, 1)?;
                o = o.narrow(a, 0, 1)?;
            }
            let mut agree = v0.eq(&o)?.to_dtype(DType::F32)?;
            for _ in 0..event_dim {
                agree = agree.min(agree.rank() - 1)?;
            }
            let neg_inf = filled(
                f64::NEG_INFINITY,
                &joint_shape,
                joint.dtype(),
                joint.device(),
            )?;
            joint = select(&agree.ne(0.0)?, &joint, &neg_inf, &joint_shape)?;
        }
        // The factual slot's log-density, with the world dims reduced like the joint's.
        let mut fl = factual_only()?;
        for &a in &axes {
            fl = fl.sum_keepdim(a)?;
        }
        let fl = fl.broadcast_as(joint_shape.as_slice())?;
        let finite = fl.ge(f64::MIN)?;
        let zeros_joint = filled(0.0, &joint_shape, joint.dtype(), joint.device())?;
        let rest = select(&finite, &joint.sub(&fl)?, &zeros_joint, &joint_shape)?;
        let last = self.last_mask(rank)?;
        let rest_full = select(&last, &rest, &zeros, &shape)?;
        select(&factual, &lp, &rest_full, &shape)
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        let inner = self.inner.expand(batch_shape)?;
        let mode = match &self.mode {
            Mode::Pinned(o) => Mode::Pinned(o.clone()),
            m => m.clone(),
        };
        Ok(Arc::new(WorldCoupled::new(
            inner,
            self.frames.clone(),
            mode,
        )))
    }
    fn has_enumerate_support(&self) -> bool {
        self.inner.has_enumerate_support()
    }
    fn enumerate_support(&self, expand: bool) -> Result<Tensor> {
        self.inner.enumerate_support(expand)
    }
}

/// The law of an intervened site across worlds: the log-density of the value it would have had
/// (in each world that existed before the intervention), counted once — the worlds the
/// intervention created leave the joint (Pearl's graph surgery, per world).
#[derive(Debug, Clone)]
pub(crate) struct WorldSplit {
    pre: DistRef,
    pre_value: Tensor,
    value: Tensor,
    batch: Vec<usize>,
    /// 1 where every world created by this intervention has index 0.
    keep: Option<Tensor>,
}

impl WorldSplit {
    /// `pre` scored `pre_value`; the interventions made `value`, creating `created` frames.
    pub(crate) fn new(
        pre: DistRef,
        pre_value: Tensor,
        value: Tensor,
        created: &[WorldFrame],
    ) -> Result<Self> {
        let event_dim = pre.event_shape().len();
        let dims = value.dims();
        // The value may be smaller than the pre-intervention law's batch (a broadcast
        // observation); the law's batch, with the new worlds, is the site's.
        let batch =
            crate::dist::broadcast_shapes(&dims[..dims.len() - event_dim], pre.batch_shape())
                .ok_or_else(|| {
                    Error::shape(
                        "an intervened site's value does not broadcast with its law",
                        pre.batch_shape(),
                        dims,
                    )
                })?;
        let axes = world_axes(created, batch.len(), 0);
        let keep = if axes.is_empty() {
            None
        } else {
            Some(slot_mask(
                batch.len(),
                &axes,
                |ix| ix.iter().all(|&i| i == 0),
                pre.device(),
            )?)
        };
        // Scored at the law's full shape: a broadcast observation scores every element.
        let mut full = pre.batch_shape().to_vec();
        full.extend_from_slice(pre.event_shape());
        let pre_value = match crate::dist::broadcast_shapes(pre_value.dims(), &full) {
            Some(s) if s != pre_value.dims() => pre_value.broadcast_as(s)?,
            _ => pre_value,
        };
        Ok(WorldSplit {
            pre,
            pre_value,
            value,
            batch,
            keep,
        })
    }
}

impl Distribution for WorldSplit {
    fn name(&self) -> &'static str {
        "WorldSplit"
    }
    fn batch_shape(&self) -> &[usize] {
        &self.batch
    }
    fn event_shape(&self) -> &[usize] {
        self.pre.event_shape()
    }
    fn dtype(&self) -> DType {
        self.pre.dtype()
    }
    fn device(&self) -> &Device {
        self.pre.device()
    }
    fn support(&self) -> Support {
        self.pre.support()
    }
    /// The intervened value: the site's value is set by its interventions, not drawn.
    fn sample(&self, _rng: &mut Rng, sample_shape: &[usize]) -> Result<Tensor> {
        if sample_shape.is_empty() {
            return Ok(self.value.clone());
        }
        let mut shape = sample_shape.to_vec();
        shape.extend_from_slice(self.value.dims());
        Ok(self.value.broadcast_as(shape)?.contiguous()?)
    }
    /// The log-density of the pre-intervention value in the worlds that existed before the
    /// intervention, placed where the new worlds' indices are 0 (`value` only fixes the shape).
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let lp = self.pre.log_prob(&self.pre_value)?;
        let ev = self.pre.event_shape().len();
        let lead = &value.dims()[..value.rank().saturating_sub(ev)];
        let shape = crate::dist::broadcast_shapes(lead, &self.batch)
            .ok_or_else(|| Error::shape("WorldSplit::log_prob", &self.batch, value.dims()))?;
        let lp = super::frames::pad_rank(&lp, shape.len())?.broadcast_as(shape.as_slice())?;
        match &self.keep {
            None => Ok(lp.contiguous()?),
            Some(k) => {
                let zeros = filled(0.0, &shape, lp.dtype(), lp.device())?;
                select(
                    &super::frames::pad_rank(k, shape.len())?,
                    &lp,
                    &zeros,
                    &shape,
                )
            }
        }
    }
    fn expand(&self, batch_shape: &[usize]) -> Result<DistRef> {
        Err(Error::Unsupported {
            what: format!("expanding the law of an intervened site to {batch_shape:?}"),
            why: "its value is fixed by the intervention".into(),
        })
    }
}
