//! `twin_world` and `multi_world`: the world handlers that turn interventions into
//! counterfactual worlds sharing exogenous noise.

use std::sync::Arc;

use candle_core::Tensor;

use super::coupled::{abduct_worlds, Mode, WorldCoupled, WorldSplit};
use super::frames::{
    axis_of, carried, enter_world_handler, exit_world_handler, filled, new_frame, pad_rank, select,
    slot_mask, DEFAULT_FIRST_WORLD_DIM, TWIN,
};
use crate::error::{Error, Result};
use crate::runtime::{
    self, frame_table_with_worlds, Intervention, Message, Messenger, SiteKind, WorldFrame,
    WorldNoise,
};

/// Which world handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One frame for every intervention: factual and counterfactual.
    Twin,
    /// One frame per intervention.
    Multi,
}

/// A world handler to be run: [`twin_world`] and [`multi_world`] with their defaults, or
/// configured (`Worlds::twin().first_dim(-3).run(..)`).
#[derive(Debug, Clone)]
pub struct Worlds {
    kind: Kind,
    first_dim: isize,
    enumerable: bool,
}

impl Worlds {
    /// A twin-world handler: every intervention splits into one size-2 frame named
    /// [`TWIN`](super::TWIN) (0 factual, 1 counterfactual).
    pub fn twin() -> Self {
        Worlds {
            kind: Kind::Twin,
            first_dim: DEFAULT_FIRST_WORLD_DIM,
            enumerable: false,
        }
    }

    /// A multi-world handler: every intervention gets its own size-2 frame, named after the
    /// intervened site (`x`, then `x#2` for a second intervention on `x`).
    pub fn multi() -> Self {
        Worlds {
            kind: Kind::Multi,
            ..Self::twin()
        }
    }

    /// The dim the first world frame takes (negative, left of every plate; default
    /// [`DEFAULT_FIRST_WORLD_DIM`](super::DEFAULT_FIRST_WORLD_DIM)); further frames take the
    /// next free dims to its left.
    pub fn first_dim(mut self, dim: isize) -> Self {
        self.first_dim = dim;
        self
    }

    /// Score observed discrete sites downstream of an intervention by their joint law across
    /// worlds, with the factual world pinned to the data, instead of drawing the other worlds
    /// from the abduction posterior: [`infer::enumerate`](crate::infer::enumerate) then sums over
    /// them and discrete counterfactuals come out exact. Such sites are latent in the trace
    /// (their factual world equals the data, and their log-density includes its likelihood), so
    /// use this for enumeration only: importance sampling with the prior as proposal counts only
    /// observed sites.
    pub fn enumerable(mut self, on: bool) -> Self {
        self.enumerable = on;
        self
    }

    /// Runs `f` under the handler. World handlers do not nest.
    pub fn run<R>(self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        if self.first_dim >= 0 {
            return Err(Error::usage(format!(
                "the first world dim must be negative (counted from the right of the batch \
                 shape), got {}",
                self.first_dim
            )));
        }
        enter_world_handler()?;
        let _exit = ExitGuard;
        let (_m, guard) = runtime::enter(WorldMessenger {
            cfg: self,
            frames: Vec::new(),
        });
        let out = f();
        drop(guard);
        out
    }
}

/// Frees the handler's world dims when the run ends, also on error or panic.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        exit_world_handler();
    }
}

/// Runs `f` in twin worlds (ChiRho's `TwinWorldCounterfactual`): the first intervened site
/// splits into a size-2 world frame [`TWIN`](super::TWIN) to the left of every plate (0
/// factual, 1 counterfactual), and every value downstream carries it.
///
/// - An intervened site keeps its factual value in world 0 (its log-density stays in the
///   joint) and takes the intervention in world 1; later interventions apply in world 1 too.
/// - A latent site downstream draws its exogenous noise once and pushes it through each world's
///   mechanism ([`Mechanism`](crate::dist::Mechanism)).
/// - An observed site downstream (conditioned in the factual world) abducts its noise from the
///   data and pushes it through the counterfactual mechanism; its factual world equals the data.
/// - A site whose distribution has no structural form is drawn afresh in the counterfactual
///   world; its trace entry says so ([`WorldNoise::Fresh`]).
///
/// Sites record their world frames and how their worlds were made in
/// [`Site::worlds`](crate::handlers::Site::worlds); [`log_prob_by_world`](super::log_prob_by_world)
/// splits a trace's log-density into its factual and counterfactual parts.
///
/// ```
/// use ppl_core::causal::{twin_world, world, TWIN};
/// use ppl_core::{dist::Normal, handlers::{condition, do_}, runtime::{plate, sample, Intervention}};
/// use candle_core::{Device, Tensor};
///
/// // x ~ N(0, 1); y = 2x + u_y.  Observe (x, y) = (1, 2.5), ask for y had x been x + 1.
/// let scm = || plate("units", 1, |_| {
///     let x = sample("x", Normal::new(Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?)?;
///     sample("y", Normal::new((&x * 2.0)?, 1.0)?)
/// });
/// let data = [("x", Tensor::new(&[1.0f64], &Device::Cpu)?), ("y", Tensor::new(&[2.5f64], &Device::Cpu)?)];
/// let y_cf = twin_world(|| {
///     let y = do_([("x", Intervention::func(|x| Ok((x + 1.0)?)))], || condition(data.clone(), scm))?;
///     assert_eq!(y.dims(), &[2, 1, 1, 1, 1]);
///     world(&y, &[(TWIN, 1)])
/// })?;
/// assert!((y_cf.flatten_all()?.to_vec1::<f64>()?[0] - 4.5).abs() < 1e-12);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn twin_world<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    Worlds::twin().run(f)
}

/// Runs `f` in multiple worlds (ChiRho's `MultiWorldCounterfactual`): every intervention
/// gets its own size-2 world frame, named after the intervened site, so nested and composed
/// queries (natural direct effects, `Y_{x', W_x}`) can be asked. A value carries only the
/// frames of the interventions upstream of it, so worlds that nothing downstream reads are never
/// computed. Otherwise as [`twin_world`].
pub fn multi_world<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    Worlds::multi().run(f)
}

/// The messenger behind [`twin_world`] and [`multi_world`].
struct WorldMessenger {
    cfg: Worlds,
    frames: Vec<WorldFrame>,
}

fn is_factor(msg: &Message) -> bool {
    msg.dist.as_ref().is_some_and(|d| d.name() == "Unit")
}

fn site_shape_error(msg: &Message, frames: &[WorldFrame], reason: String) -> Error {
    Error::SiteShape {
        site: msg.name.clone(),
        reason,
        frames: frame_table_with_worlds(&msg.plates, frames),
    }
}

impl WorldMessenger {
    /// Worlds must lie left of every plate.
    fn check_plates(&self, msg: &Message) -> Result<()> {
        let Some(rightmost) = self.frames.iter().map(|f| f.dim).max() else {
            return Ok(());
        };
        if let Some(p) = msg.plates.iter().find(|p| p.dim <= rightmost) {
            return Err(site_shape_error(
                msg,
                &self.frames,
                format!(
                    "plate `{}` at dim {} lies at or left of a world dim ({rightmost}); worlds \
                     must lie left of every plate: give the world handler a first dim further \
                     left (Worlds::first_dim)",
                    p.name, p.dim
                ),
            ));
        }
        Ok(())
    }

    /// The world frames a distribution's batch shape carries.
    fn frames_of_batch(&self, batch: &[usize], msg: &Message) -> Result<Vec<WorldFrame>> {
        let mut out = Vec::new();
        for f in &self.frames {
            let Some(a) = axis_of(batch, f.dim, 0) else {
                continue;
            };
            match batch[a] {
                1 => {}
                s if s == f.size => out.push(f.clone()),
                s => {
                    return Err(site_shape_error(
                        msg,
                        &self.frames,
                        format!(
                            "the distribution's batch shape {batch:?} has size {s} at dim {}, \
                             which world frame `{}` (size {}) owns",
                            f.dim, f.name, f.size
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Gives a sample site whose parents differ across worlds the coupled law of its worlds.
    fn couple(&self, msg: &mut Message, in_process: bool) -> Result<()> {
        let Some(dist) = msg.dist.clone() else {
            return Ok(());
        };
        let frames = self.frames_of_batch(dist.batch_shape(), msg)?;
        if frames.is_empty() {
            return Ok(());
        }
        let has_mech = dist.structural().is_some();
        let mode = if msg.observed && msg.value.is_some() {
            let pinnable =
                in_process && self.cfg.enumerable && has_mech && dist.has_enumerate_support();
            if pinnable {
                let obs = msg.value.take().expect("checked above");
                msg.observed = false;
                msg.worlds.noise = WorldNoise::Pinned;
                Mode::Pinned(obs)
            } else {
                Mode::Observed
            }
        } else {
            msg.worlds.noise = if has_mech {
                WorldNoise::Coupled
            } else {
                WorldNoise::Fresh
            };
            Mode::Latent
        };
        msg.worlds.frames = frames.clone();
        msg.worlds.dist = Some(dist.clone());
        msg.dist = Some(Arc::new(WorldCoupled::new(dist, frames, mode)));
        Ok(())
    }

    fn twin_frame(&mut self) -> Result<WorldFrame> {
        if let Some(f) = self.frames.iter().find(|f| &*f.name == TWIN) {
            return Ok(f.clone());
        }
        let f = new_frame(TWIN, 2, self.cfg.first_dim)?;
        self.frames.push(f.clone());
        Ok(f)
    }

    fn multi_frame(&mut self, site: &str) -> Result<WorldFrame> {
        let mut name = site.to_string();
        let mut k = 1;
        while self.frames.iter().any(|f| *f.name == *name) {
            k += 1;
            name = format!("{site}#{k}");
        }
        let f = new_frame(&name, 2, self.cfg.first_dim)?;
        self.frames.push(f.clone());
        Ok(f)
    }

    /// Applies the site's interventions, each into its world: returns the value across worlds
    /// and the frames this site introduced.
    fn split(
        &mut self,
        pre: &Tensor,
        event_dim: usize,
        msg: &Message,
    ) -> Result<(Tensor, Vec<WorldFrame>)> {
        let mut v = pre.clone();
        let mut created = Vec::new();
        for act in &msg.interventions {
            let frame = match self.cfg.kind {
                Kind::Twin => self.twin_frame()?,
                Kind::Multi => self.multi_frame(&msg.name)?,
            };
            let rank = v.rank().max((-frame.dim) as usize + event_dim);
            v = pad_rank(&v, rank)?;
            let ax = axis_of(v.dims(), frame.dim, event_dim).expect("rank covers the frame");
            let acted = self.act(act, &v, msg)?;
            if v.dims()[ax] == frame.size {
                let mask = slot_mask(rank, &[(ax, frame.size)], |ix| ix[0] == 1, v.device())?;
                v = select(&mask, &acted, &v, v.dims())?;
            } else {
                v = Tensor::cat(&[&v, &acted], ax)?;
                created.push(frame);
            }
        }
        Ok((v, created))
    }

    /// The value an intervention gives a site whose value (across the worlds so far) is `v`.
    fn act(&self, act: &Intervention, v: &Tensor, msg: &Message) -> Result<Tensor> {
        let shape = v.dims().to_vec();
        let out = match act {
            Intervention::Scalar(x) => filled(*x, &shape, v.dtype(), v.device())?,
            Intervention::Value(t) => t.to_dtype(v.dtype())?.to_device(v.device())?,
            Intervention::Fn(f) => f(v).map_err(|e| e.at_site(&msg.name))?,
        };
        if out.dims() == shape.as_slice() {
            return Ok(out.to_dtype(v.dtype())?);
        }
        let fits = crate::dist::broadcast_shapes(out.dims(), &shape).as_deref() == Some(&shape[..]);
        if !fits {
            return Err(site_shape_error(
                msg,
                &self.frames,
                format!(
                    "the intervention's value of shape {:?} does not broadcast to the site's \
                     shape across worlds {shape:?}",
                    out.dims()
                ),
            ));
        }
        Ok(out.to_dtype(v.dtype())?.broadcast_as(shape)?.contiguous()?)
    }
}

impl Messenger for WorldMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if !matches!(msg.kind, SiteKind::Sample | SiteKind::Deterministic) {
            return Ok(());
        }
        if !msg.interventions.is_empty() {
            // This handler puts each intervention into its world in `postprocess`.
            msg.intervention = None;
        }
        if msg.kind != SiteKind::Sample || msg.dist.is_none() || is_factor(msg) {
            return Ok(());
        }
        if self.frames.is_empty() {
            return Ok(());
        }
        runtime::broadcast_to_plates(msg)?;
        self.check_plates(msg)?;
        self.couple(msg, true)
    }

    fn postprocess(&mut self, msg: &mut Message) -> Result<()> {
        if !matches!(msg.kind, SiteKind::Sample | SiteKind::Deterministic) {
            return Ok(());
        }
        let Some(mut value) = msg.value.clone() else {
            return Ok(());
        };
        if msg.intervened {
            // A `do_` outside this handler: the runtime already applied the composed
            // intervention to the whole value; start again from the value before it.
            if let Some(f) = msg.factual_value.take() {
                value = f;
            }
            msg.intervened = false;
        }
        let is_sample = msg.kind == SiteKind::Sample && msg.dist.is_some() && !is_factor(msg);
        if is_sample && msg.worlds.dist.is_none() && !self.frames.is_empty() {
            // The site became a sample site, or its worlds appeared, after `process`.
            self.check_plates(msg)?;
            self.couple(msg, false)?;
        }
        let event_dim = msg.dist.as_ref().map_or(0, |d| d.event_shape().len());
        if let (true, Some(inner)) = (is_sample, msg.worlds.dist.clone()) {
            let law = msg.worlds.frames.clone();
            let have = carried(&law, value.dims(), event_dim);
            if have.len() < law.len() && msg.worlds.noise != WorldNoise::Pinned {
                // A value given for the factual world only (data, a replayed or guide value):
                // abduct the other worlds from it.
                let (v, noise) =
                    crate::rng::with_rng(|rng| abduct_worlds(&inner, &law, &value, rng))
                        .map_err(|e| e.at_site(&msg.name))?;
                value = v;
                msg.worlds.noise = noise;
                if !msg.observed {
                    msg.dist = Some(Arc::new(WorldCoupled::new(inner, law, Mode::Observed)));
                }
            }
        }
        if !msg.interventions.is_empty() {
            if is_sample {
                // A replayed value of an intervened site carries worlds its own law does not
                // have: its factual slot is the value before the intervention.
                let law = msg.worlds.frames.clone();
                for f in self.frames.iter().filter(|f| !law.contains(f)) {
                    if let Some(a) = axis_of(value.dims(), f.dim, event_dim) {
                        if value.dims()[a] == f.size {
                            value = value.narrow(a, 0, 1)?;
                        }
                    }
                }
            }
            let (v, created) = self.split(&value, event_dim, msg)?;
            if is_sample {
                let pre = msg.dist.clone().expect("sample site with a distribution");
                msg.dist = Some(Arc::new(WorldSplit::new(
                    pre,
                    value.clone(),
                    v.clone(),
                    &created,
                )?));
            }
            msg.worlds.split = created.iter().map(|f| f.name.clone()).collect();
            msg.factual_value = Some(value);
            value = v;
        }
        msg.worlds.frames = carried(&self.frames, value.dims(), event_dim);
        msg.value = Some(value);
        Ok(())
    }
}
