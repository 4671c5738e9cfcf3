//! The message that every primitive sends through the handler stack.

use std::fmt;
use std::sync::Arc;

use candle_core::Tensor;

use crate::dist::DistRef;
use crate::error::{Error, Result};
use crate::params::Constraint;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// A random variable (`sample`, `observe`, `factor`).
    Sample,
    /// A learnable parameter (`param`).
    Param,
    /// A named deterministic value (`deterministic`).
    Deterministic,
    /// The indices a subsampled plate draws; replaying it makes a model use a guide's minibatch.
    Subsample,
}

/// One plate (conditionally independent dimension) active at a site.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateFrame {
    /// The plate's name.
    pub name: Arc<str>,
    /// The batch dim it owns, counted from the right of the batch shape (-1 is the rightmost).
    pub dim: isize,
    /// The full size of the plate.
    pub size: usize,
    /// How many of its members this run visits (== `size` unless subsampling).
    pub subsample_size: usize,
}

/// A counterfactual world frame: a batch dim whose index says which world a value belongs to
/// (index 0 is the factual world). Worlds take dims to the left of every plate.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldFrame {
    /// The frame's name: `"twin"` for a twin-world query, the intervened site's name in a
    /// multi-world query.
    pub name: Arc<str>,
    /// The batch dim it owns, counted from the right of the batch shape.
    pub dim: isize,
    /// How many worlds it indexes (2: factual and intervened).
    pub size: usize,
}

/// How a site's values in different worlds were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorldNoise {
    /// No world dim: the value is shared by every world.
    #[default]
    Shared,
    /// A latent site: one draw of its exogenous noise, pushed through each world's mechanism.
    Coupled,
    /// The factual value was given (observed, replayed, substituted): its noise was abducted
    /// from it — exactly for invertible mechanisms, as a draw from the posterior of the noise
    /// for many-to-one ones (Bernoulli, Categorical) — and pushed through the other worlds.
    Abducted,
    /// The factual value was given and the site is scored by its joint law across worlds, so
    /// that exact enumeration can sum over the other worlds' values.
    Pinned,
    /// The distribution has no structural form: the non-factual worlds were drawn afresh,
    /// independently of the factual one.
    Fresh,
}

/// Which counterfactual worlds a site's value carries, and how they were made.
#[derive(Debug, Clone, Default)]
pub struct SiteWorlds {
    /// The world frames of the site's value (empty when it is shared by every world).
    pub frames: Vec<WorldFrame>,
    /// The frames whose index 1 holds this site's intervened value (interventions at the site).
    pub split: Vec<Arc<str>>,
    /// How the values in the different worlds relate.
    pub noise: WorldNoise,
    /// The site's own distribution, with the world dims in its batch shape (before the world
    /// handler coupled the worlds).
    pub dist: Option<DistRef>,
}

impl SiteWorlds {
    /// Whether the value carries any world dim.
    pub fn is_split(&self) -> bool {
        !self.frames.is_empty()
    }
}

/// How a site's log-density is switched off: everywhere, or where a mask tensor is zero.
#[derive(Debug, Clone)]
pub enum Mask {
    /// One switch for the whole site.
    Bool(bool),
    /// A `u8` tensor that broadcasts to the site's log-density shape (1 keeps, 0 drops).
    Tensor(Tensor),
}

impl From<bool> for Mask {
    fn from(b: bool) -> Self {
        Mask::Bool(b)
    }
}

impl From<Tensor> for Mask {
    fn from(t: Tensor) -> Self {
        Mask::Tensor(t)
    }
}

impl From<&Tensor> for Mask {
    fn from(t: &Tensor) -> Self {
        Mask::Tensor(t.clone())
    }
}

impl Mask {
    /// Both masks at once.
    pub fn and(&self, other: &Mask) -> Result<Mask> {
        Ok(match (self, other) {
            (Mask::Bool(false), _) | (_, Mask::Bool(false)) => Mask::Bool(false),
            (Mask::Bool(true), m) | (m, Mask::Bool(true)) => m.clone(),
            (Mask::Tensor(a), Mask::Tensor(b)) => {
                let a = a.to_dtype(candle_core::DType::U8)?;
                let b = b.to_dtype(candle_core::DType::U8)?;
                Mask::Tensor(a.broadcast_mul(&b)?)
            }
        })
    }

    /// `log_prob` with the masked-out entries set to zero (not multiplied: `-inf · 0` is NaN).
    pub fn apply(&self, log_prob: &Tensor) -> Result<Tensor> {
        match self {
            Mask::Bool(true) => Ok(log_prob.clone()),
            Mask::Bool(false) => Ok(log_prob.zeros_like()?),
            Mask::Tensor(m) => {
                let m = m
                    .to_dtype(candle_core::DType::U8)?
                    .broadcast_as(log_prob.shape())?;
                Ok(m.where_cond(log_prob, &log_prob.zeros_like()?)?)
            }
        }
    }
}

/// Per-site settings for inference algorithms (Pyro's `infer` dict).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct InferConfig {
    /// Enumerate this discrete latent site exactly instead of sampling it.
    pub enumerate: Option<Enumerate>,
    /// An auxiliary site of a guide, not matched against the model.
    pub is_auxiliary: bool,
}

/// How a discrete site is enumerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enumerate {
    /// All values at once along a new batch dim.
    Parallel,
    /// One value per re-run of the model.
    Sequential,
}

/// A function of a site's factual value, as an intervention.
pub type InterventionFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// Builds a parameter's initial value.
pub type ParamInit = Box<dyn FnOnce() -> Result<Tensor>>;

/// The value an intervention (`do`) gives a site: a constant, a tensor, or a function of the
/// value the site would have had (`x -> x + 1`).
#[derive(Clone)]
pub enum Intervention {
    /// A tensor, broadcast to the site's shape.
    Value(Tensor),
    /// A number, filled into the site's shape and dtype.
    Scalar(f64),
    /// A function of the factual value.
    Fn(InterventionFn),
}

impl fmt::Debug for Intervention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Intervention::Value(t) => write!(f, "Value({:?})", t.shape()),
            Intervention::Scalar(x) => write!(f, "Scalar({x})"),
            Intervention::Fn(_) => write!(f, "Fn(..)"),
        }
    }
}

impl From<Tensor> for Intervention {
    fn from(t: Tensor) -> Self {
        Intervention::Value(t)
    }
}

impl From<&Tensor> for Intervention {
    fn from(t: &Tensor) -> Self {
        Intervention::Value(t.clone())
    }
}

impl From<f64> for Intervention {
    fn from(x: f64) -> Self {
        Intervention::Scalar(x)
    }
}

impl Intervention {
    /// An intervention that maps the factual value through `f`.
    pub fn func(f: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        Intervention::Fn(Arc::new(f))
    }

    /// The intervened value for a site whose factual value is `factual`: same dtype, device and
    /// shape (a tensor may broadcast up to it).
    pub fn apply(&self, factual: &Tensor, site: &str) -> Result<Tensor> {
        let out = match self {
            Intervention::Scalar(x) => (factual.ones_like()? * *x)?,
            Intervention::Value(t) => {
                let t = t.to_dtype(factual.dtype())?.to_device(factual.device())?;
                if t.dims() == factual.dims() {
                    t
                } else {
                    t.broadcast_as(factual.shape())
                        .map_err(|_| {
                            Error::value(
                                site,
                                format!(
                                    "intervention value of shape {:?} does not broadcast to the site's shape {:?}",
                                    t.dims(),
                                    factual.dims()
                                ),
                            )
                        })?
                        .contiguous()?
                }
            }
            Intervention::Fn(f) => {
                let v = f(factual).map_err(|e| e.at_site(site))?;
                if v.dims() != factual.dims() {
                    return Err(Error::value(
                        site,
                        format!(
                            "intervention function returned shape {:?}, the site has shape {:?}",
                            v.dims(),
                            factual.dims()
                        ),
                    ));
                }
                v
            }
        };
        Ok(out)
    }
}

/// How a `param` site is created the first time it is seen.
pub struct ParamSpec {
    /// Builds the initial (constrained) value.
    pub init: Option<ParamInit>,
    /// The set the parameter lives in.
    pub constraint: Constraint,
}

impl fmt::Debug for ParamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamSpec")
            .field("constraint", &self.constraint)
            .finish_non_exhaustive()
    }
}

/// A primitive's request, passed through every handler on the stack (Pyro's `msg` dict, typed).
#[derive(Debug)]
pub struct Message {
    /// What the message is about.
    pub kind: SiteKind,
    /// The site's full address (scopes included).
    pub name: String,
    /// The distribution of a sample site.
    pub dist: Option<DistRef>,
    /// The value, once a handler or the default behaviour has set it.
    pub value: Option<Tensor>,
    /// Whether the value is data (conditioned or observed).
    pub observed: bool,
    /// An intervention waiting to be applied once the factual value is known (the
    /// composition of every `do_` that reached the site).
    pub intervention: Option<Intervention>,
    /// Each `do_`'s intervention at this site, innermost first (world handlers give each its
    /// own world).
    pub interventions: Vec<Intervention>,
    /// Whether an intervention replaced the value (its log-density then leaves the joint).
    pub intervened: bool,
    /// The value the site would have had without the intervention.
    pub factual_value: Option<Tensor>,
    /// The multiplier of the site's log-density (plates subsampling, `scale`).
    pub scale: f64,
    /// Which entries of the site's log-density count.
    pub mask: Option<Mask>,
    /// The plates active at the site, innermost first.
    pub plates: Vec<PlateFrame>,
    /// Settings for inference algorithms.
    pub infer: InferConfig,
    /// Set by a handler to hide the message from the handlers outside it.
    pub stop: bool,
    /// How a param site is created.
    pub param: Option<ParamSpec>,
    /// The counterfactual worlds of the site (set by the world handlers).
    pub worlds: SiteWorlds,
}

impl Message {
    /// A message of `kind` for the site `name`, with no value yet.
    pub fn new(kind: SiteKind, name: String) -> Self {
        Message {
            kind,
            name,
            dist: None,
            value: None,
            observed: false,
            intervention: None,
            interventions: Vec::new(),
            intervened: false,
            factual_value: None,
            scale: 1.0,
            mask: None,
            plates: Vec::new(),
            infer: InferConfig::default(),
            stop: false,
            param: None,
            worlds: SiteWorlds::default(),
        }
    }

    /// The plate and world frames at this site as a table, for shape errors.
    pub fn frame_table(&self) -> String {
        frame_table_with_worlds(&self.plates, &self.worlds.frames)
    }
}

/// The frames `plates` as a readable table (dim, size, name), for shape errors.
pub fn frame_table(plates: &[PlateFrame]) -> String {
    frame_table_with_worlds(plates, &[])
}

/// The plate and world frames as one readable table (dim, size, kind, name), for shape errors.
pub fn frame_table_with_worlds(plates: &[PlateFrame], worlds: &[WorldFrame]) -> String {
    if plates.is_empty() && worlds.is_empty() {
        return "  frames: none (no plate or world is active at this site)".into();
    }
    let mut rows: Vec<(isize, String, &str, &str)> = plates
        .iter()
        .map(|f| {
            let size = if f.subsample_size == f.size {
                format!("{}", f.size)
            } else {
                format!("{}/{}", f.subsample_size, f.size)
            };
            (f.dim, size, "plate", &*f.name)
        })
        .collect();
    rows.extend(
        worlds
            .iter()
            .map(|w| (w.dim, format!("{}", w.size), "world", &*w.name)),
    );
    rows.sort_by_key(|r| r.0);
    let mut s = String::from("  frames:\n    dim   size  kind   name");
    for (dim, size, kind, name) in rows {
        s.push_str(&format!("\n    {dim:>3}  {size:>5}  {kind:<5}  {name}"));
    }
    s
}
