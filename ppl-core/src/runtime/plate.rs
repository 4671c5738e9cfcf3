//! Vectorised plates: conditionally independent batch dims.
//!
//! A plate owns one batch dim, counted from the right (`-1` is the rightmost batch dim), given or
//! allocated automatically (the rightmost free one). Inside it every sample site's distribution
//! is broadcast so that dim has the plate's size, and, when the plate is subsampled, its
//! log-density is scaled by `size / subsample_size` — Pyro's `plate` semantics.

use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::message::{Message, PlateFrame, SiteKind};
use super::stack::{self, HandlerGuard, Messenger};
use crate::dist::broadcast_shapes;
use crate::error::{Error, Result};

thread_local! {
    /// Which batch dims are taken, by `-dim - 1`, and by whom.
    static DIMS: RefCell<Vec<Option<Arc<str>>>> = const { RefCell::new(Vec::new()) };
}

/// Reserves batch dim `dim` (negative) for `owner`, or the rightmost free one when `None`.
pub fn allocate_dim(owner: &Arc<str>, dim: Option<isize>) -> Result<isize> {
    DIMS.with(|d| {
        let mut d = d.borrow_mut();
        let idx = match dim {
            Some(dim) => {
                if dim >= 0 {
                    return Err(Error::Plate {
                        name: owner.to_string(),
                        reason: format!(
                            "dim must be negative (counted from the right of the batch shape), got {dim}"
                        ),
                    });
                }
                let idx = (-dim - 1) as usize;
                if let Some(Some(other)) = d.get(idx) {
                    return Err(Error::Plate {
                        name: owner.to_string(),
                        reason: format!("dim {dim} is already taken by `{other}`"),
                    });
                }
                idx
            }
            None => d.iter().position(|x| x.is_none()).unwrap_or(d.len()),
        };
        if d.len() <= idx {
            d.resize(idx + 1, None);
        }
        d[idx] = Some(owner.clone());
        Ok(-(idx as isize) - 1)
    })
}

/// Frees a batch dim reserved by [`allocate_dim`].
pub fn free_dim(dim: isize) {
    DIMS.with(|d| {
        let mut d = d.borrow_mut();
        let idx = (-dim - 1) as usize;
        if idx < d.len() {
            d[idx] = None;
        }
        while matches!(d.last(), Some(None)) {
            d.pop();
        }
    })
}

/// A plate to be entered: `Plate::new("data", n).subsample_size(m).dim(-2)`.
#[derive(Debug, Clone)]
pub struct Plate {
    name: Arc<str>,
    size: usize,
    subsample_size: Option<usize>,
    subsample: Option<Tensor>,
    dim: Option<isize>,
    device: Device,
    announce: bool,
}

impl Plate {
    /// A plate of `size` conditionally independent members.
    pub fn new(name: impl AsRef<str>, size: usize) -> Self {
        Plate {
            name: Arc::from(name.as_ref()),
            size,
            subsample_size: None,
            subsample: None,
            dim: None,
            device: Device::Cpu,
            announce: true,
        }
    }

    /// Visit a random subset of `m` members per run (drawn from the seeded generator), scaling
    /// log-densities by `size / m`.
    pub fn subsample_size(mut self, m: usize) -> Self {
        self.subsample_size = Some(m);
        self
    }

    /// Visit exactly these members (a 1-d integer tensor of indices).
    pub fn subsample(mut self, indices: Tensor) -> Self {
        self.subsample = Some(indices);
        self
    }

    /// Own this batch dim (negative, counted from the right) instead of an automatic one.
    pub fn dim(mut self, dim: isize) -> Self {
        self.dim = Some(dim);
        self
    }

    /// The device the plate's index tensor is made on (default: CPU).
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// Do not send the subsample indices as a site: for code that re-enters a plate whose
    /// indices it already announced this run (autoguides), where a second site would clash.
    pub(crate) fn silent(mut self) -> Self {
        self.announce = false;
        self
    }

    /// Enters the plate until the returned guard is dropped.
    pub fn enter(self) -> Result<PlateGuard> {
        if self.size == 0 {
            return Err(Error::Plate {
                name: self.name.to_string(),
                reason: "size must be at least 1".into(),
            });
        }
        let indices = self.draw_subsample()?;
        let subsample_size = indices
            .as_ref()
            .map(|t| t.elem_count())
            .unwrap_or(self.size);
        let dim = allocate_dim(&self.name, self.dim)?;
        let frame = PlateFrame {
            name: self.name.clone(),
            dim,
            size: self.size,
            subsample_size,
        };
        let (_, guard) = stack::enter(PlateMessenger {
            frame: frame.clone(),
        });
        let cell = OnceCell::new();
        if let Some(ix) = indices {
            let _ = cell.set(ix);
        }
        Ok(PlateGuard {
            frame,
            indices: cell,
            device: self.device,
            _handler: guard,
        })
    }

    /// Runs `f` inside the plate.
    pub fn run<R>(self, f: impl FnOnce(&PlateGuard) -> Result<R>) -> Result<R> {
        let g = self.enter()?;
        f(&g)
    }

    /// The subsample indices of this run, sent as a `Subsample` site so that `replay` can make a
    /// model reuse a guide's minibatch; `None` when the plate is not subsampled.
    fn draw_subsample(&self) -> Result<Option<Tensor>> {
        let m = match (&self.subsample, self.subsample_size) {
            (Some(ix), _) => {
                if ix.rank() != 1 || ix.elem_count() == 0 || ix.elem_count() > self.size {
                    return Err(Error::Plate {
                        name: self.name.to_string(),
                        reason: format!(
                            "subsample indices must be a non-empty 1-d tensor of at most {} entries, got shape {:?}",
                            self.size,
                            ix.dims()
                        ),
                    });
                }
                Some(ix.clone())
            }
            (None, Some(m)) if m > self.size || m == 0 => {
                return Err(Error::Plate {
                    name: self.name.to_string(),
                    reason: format!("subsample_size {m} must be in 1..={}", self.size),
                })
            }
            (None, Some(m)) if m < self.size => {
                let ix = crate::rng::with_rng(|rng| partial_shuffle(rng, self.size, m));
                Some(Tensor::from_vec(ix, m, &self.device)?)
            }
            _ => None,
        };
        let Some(ix) = m else { return Ok(None) };
        if stack::depth() == 0 || !self.announce {
            return Ok(Some(ix));
        }
        let mut msg = Message::new(SiteKind::Subsample, self.name.to_string());
        msg.value = Some(ix);
        stack::apply_stack(&mut msg)?;
        Ok(msg.value)
    }
}

/// The first `m` entries of a seeded Fisher–Yates shuffle of `0..n`.
fn partial_shuffle(rng: &mut crate::rng::Rng, n: usize, m: usize) -> Vec<u32> {
    use rand::Rng as _;
    let mut v: Vec<u32> = (0..n as u32).collect();
    for i in 0..m {
        let j = rng.random_range(i..n);
        v.swap(i, j);
    }
    v.truncate(m);
    v
}

/// An entered plate; dropping it leaves the plate.
pub struct PlateGuard {
    frame: PlateFrame,
    indices: OnceCell<Tensor>,
    device: Device,
    _handler: HandlerGuard,
}

impl PlateGuard {
    /// The members visited in this run (`0..size` unless subsampled), as `u32` indices.
    pub fn indices(&self) -> Result<&Tensor> {
        if let Some(t) = self.indices.get() {
            return Ok(t);
        }
        let t = Tensor::arange(0u32, self.frame.size as u32, &self.device)?;
        Ok(self.indices.get_or_init(|| t))
    }

    /// The batch dim the plate owns (negative).
    pub fn dim(&self) -> isize {
        self.frame.dim
    }

    /// The full size.
    pub fn size(&self) -> usize {
        self.frame.size
    }

    /// How many members this run visits.
    pub fn subsample_size(&self) -> usize {
        self.frame.subsample_size
    }

    /// The frame as sites record it.
    pub fn frame(&self) -> &PlateFrame {
        &self.frame
    }
}

impl Drop for PlateGuard {
    fn drop(&mut self) {
        free_dim(self.frame.dim);
    }
}

/// Runs `f` inside a plate named `name` of `size` members.
pub fn plate<R>(
    name: impl AsRef<str>,
    size: usize,
    f: impl FnOnce(&PlateGuard) -> Result<R>,
) -> Result<R> {
    Plate::new(name, size).run(f)
}

struct PlateMessenger {
    frame: PlateFrame,
}

impl Messenger for PlateMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if msg.kind == SiteKind::Sample {
            msg.plates.push(self.frame.clone());
            if self.frame.subsample_size != self.frame.size {
                msg.scale *= self.frame.size as f64 / self.frame.subsample_size as f64;
            }
        }
        Ok(())
    }
}

/// Expands a sample site's distribution so each plate's dim has the plate's size, and checks
/// that an observed value fits; errors name the site and print the frame table.
pub(crate) fn broadcast_to_plates(msg: &mut Message) -> Result<()> {
    if msg.kind != SiteKind::Sample || msg.plates.is_empty() {
        return Ok(());
    }
    let Some(dist) = msg.dist.as_ref() else {
        return Ok(());
    };
    let batch = dist.batch_shape();
    let need = msg
        .plates
        .iter()
        .map(|f| (-f.dim) as usize)
        .max()
        .unwrap_or(0)
        .max(batch.len());
    let mut target = vec![1; need - batch.len()];
    target.extend_from_slice(batch);
    for f in &msg.plates {
        let pos = need - (-f.dim) as usize;
        match target[pos] {
            1 => target[pos] = f.subsample_size,
            s if s == f.subsample_size => {}
            s => {
                return Err(Error::SiteShape {
                    site: msg.name.clone(),
                    reason: format!(
                        "the distribution's batch shape {:?} has size {s} at dim {}, where plate `{}` needs {}",
                        batch, f.dim, f.name, f.subsample_size
                    ),
                    frames: msg.frame_table(),
                });
            }
        }
    }
    if target != batch {
        msg.dist = Some(dist.expand(&target).map_err(|e| Error::SiteShape {
            site: msg.name.clone(),
            reason: format!("cannot expand batch shape {batch:?} to {target:?}: {e}"),
            frames: msg.frame_table(),
        })?);
    }
    Ok(())
}

/// Checks that a value given for a sample site fits its distribution's batch and event shapes.
pub(crate) fn check_value_shape(msg: &Message, value: &Tensor) -> Result<()> {
    let Some(dist) = msg.dist.as_ref() else {
        return Ok(());
    };
    let mut full = dist.batch_shape().to_vec();
    full.extend_from_slice(dist.event_shape());
    let ev = dist.event_shape();
    let vd = value.dims();
    let event_ok = vd.len() >= ev.len() && &vd[vd.len() - ev.len()..] == ev;
    if !event_ok || broadcast_shapes(vd, &full).is_none() {
        return Err(Error::SiteShape {
            site: msg.name.clone(),
            reason: format!(
                "value of shape {vd:?} does not fit the distribution {} with batch shape {:?} and event shape {:?}",
                dist.name(),
                dist.batch_shape(),
                ev
            ),
            frames: msg.frame_table(),
        });
    }
    Ok(())
}
