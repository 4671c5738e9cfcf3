//! World frames: which batch dims index counterfactual worlds, and reading worlds out of values.
//!
//! **Dim scheme.** Worlds are batch dims like plates, counted from the right of the batch shape,
//! and placed to the left of every plate: they take dims leftwards from a first dim,
//! [`DEFAULT_FIRST_WORLD_DIM`] (`-5`, as ChiRho's) unless the world handler is given another.
//! Each world dim is reserved in the same table that plates allocate from, so a plate can never
//! silently take it; a plate found at or to the left of a world dim at some site is an error
//! that prints the frame table. With one plate at `-1`, a twin-world value has shape
//! `(2, 1, 1, 1, N)`, exactly as in ChiRho.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::handlers::Site;
use crate::runtime::WorldFrame;

/// The frame of a twin-world query (ChiRho's `__fresh_split__`).
pub const TWIN: &str = "twin";
/// The index of the factual world in every world frame.
pub const FACTUAL: usize = 0;
/// The index of the intervened world in a world frame.
pub const COUNTERFACTUAL: usize = 1;
/// The dim the first world frame takes unless the handler is given another (ChiRho's default).
pub const DEFAULT_FIRST_WORLD_DIM: isize = -5;

thread_local! {
    /// The world frames of the world handler now running on this thread.
    static ACTIVE: RefCell<Vec<WorldFrame>> = const { RefCell::new(Vec::new()) };
    /// Whether a world handler is running on this thread.
    static DEPTH: RefCell<usize> = const { RefCell::new(0) };
}

/// The world frames of the world handler now running on this thread (empty outside one).
pub fn active_frames() -> Vec<WorldFrame> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Marks a world handler as running; errors if one already is (world handlers do not nest).
pub(crate) fn enter_world_handler() -> Result<()> {
    DEPTH.with(|d| {
        let mut d = d.borrow_mut();
        if *d > 0 {
            return Err(Error::usage(
                "a world handler (twin_world or multi_world) is already running on this thread; \
                 world handlers do not nest: put every do_ under one of them",
            ));
        }
        *d += 1;
        Ok(())
    })
}

/// Marks the world handler as finished and frees its frames' dims.
pub(crate) fn exit_world_handler() {
    let frames = ACTIVE.with(|a| std::mem::take(&mut *a.borrow_mut()));
    for f in frames {
        crate::runtime::free_dim(f.dim);
    }
    DEPTH.with(|d| *d.borrow_mut() = 0);
}

/// A new world frame of `size` named `name`, on the first free dim at or left of `first_dim`.
pub(crate) fn new_frame(name: &str, size: usize, first_dim: isize) -> Result<WorldFrame> {
    let name: Arc<str> = Arc::from(name);
    let owner: Arc<str> = Arc::from(format!("world `{name}`"));
    let mut dim = first_dim;
    loop {
        match crate::runtime::allocate_dim(&owner, Some(dim)) {
            Ok(d) => {
                let frame = WorldFrame { name, dim: d, size };
                ACTIVE.with(|a| a.borrow_mut().push(frame.clone()));
                return Ok(frame);
            }
            Err(_) if dim > -64 => dim -= 1,
            Err(e) => return Err(e),
        }
    }
}

/// The position of batch dim `dim` in a tensor of shape `dims` whose rightmost `event_dim` dims
/// are event dims; `None` when the tensor is too short to have it.
pub(crate) fn axis_of(dims: &[usize], dim: isize, event_dim: usize) -> Option<usize> {
    let batch_rank = dims.len().checked_sub(event_dim)? as isize;
    let pos = batch_rank + dim;
    (pos >= 0).then_some(pos as usize)
}

/// The frames of `frames` that a tensor of shape `dims` carries (size equal to the frame's).
pub(crate) fn carried(frames: &[WorldFrame], dims: &[usize], event_dim: usize) -> Vec<WorldFrame> {
    frames
        .iter()
        .filter(|f| {
            axis_of(dims, f.dim, event_dim).is_some_and(|a| dims[a] == f.size && f.size > 1)
        })
        .cloned()
        .collect()
}

/// `t` with size-1 dims prepended up to rank `rank`.
pub(crate) fn pad_rank(t: &Tensor, rank: usize) -> Result<Tensor> {
    if t.rank() >= rank {
        return Ok(t.clone());
    }
    // Leading unit dims as a view: a reshape would copy a broadcast (non-contiguous) tensor.
    let mut t = t.clone();
    while t.rank() < rank {
        t = t.unsqueeze(0)?;
    }
    Ok(t)
}

/// A `u8` mask of rank `rank`, of size 1 except at the given `(axis, size)` pairs, holding 1
/// where `keep(world indices)` holds (the indices in the order of `axes`).
pub(crate) fn slot_mask(
    rank: usize,
    axes: &[(usize, usize)],
    keep: impl Fn(&[usize]) -> bool,
    device: &Device,
) -> Result<Tensor> {
    let mut shape = vec![1; rank];
    for &(a, s) in axes {
        shape[a] = s;
    }
    let n: usize = shape.iter().product();
    let mut sorted: Vec<(usize, usize, usize)> = axes
        .iter()
        .enumerate()
        .map(|(k, &(a, s))| (a, s, k))
        .collect();
    sorted.sort();
    let mut data = Vec::with_capacity(n);
    let mut idx = vec![0; axes.len()];
    for flat in 0..n {
        // Decode `flat` over the world axes, the rightmost varying fastest.
        let mut rest = flat;
        for &(_, s, k) in sorted.iter().rev() {
            idx[k] = rest % s;
            rest /= s;
        }
        data.push(u8::from(keep(&idx)));
    }
    Ok(Tensor::from_vec(data, shape, device)?)
}

/// `mask ? a : b`, everything broadcast to `shape`.
pub(crate) fn select(mask: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if let Some(t) = crate::kernels::fused::select(mask, a, b, shape)? {
        return Ok(t);
    }
    let m = mask.broadcast_as(shape)?;
    let a = if a.dims() == shape {
        a.clone()
    } else {
        a.broadcast_as(shape)?.contiguous()?
    };
    let b = if b.dims() == shape {
        b.clone()
    } else {
        b.broadcast_as(shape)?.contiguous()?
    };
    Ok(m.where_cond(&a, &b)?)
}

/// A tensor of `shape` filled with `x`.
pub(crate) fn filled(x: f64, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    let t = match dtype {
        DType::F64 => Tensor::new(x, device)?,
        DType::F32 => Tensor::new(x as f32, device)?,
        other => Tensor::new(x, device)?.to_dtype(other)?,
    };
    Ok(t.broadcast_as(shape)?)
}

fn find<'a>(frames: &'a [WorldFrame], name: &str) -> Result<&'a WorldFrame> {
    frames.iter().find(|f| &*f.name == name).ok_or_else(|| {
        let known: Vec<String> = frames.iter().map(|f| f.name.to_string()).collect();
        Error::usage(format!(
            "no world frame `{name}` is active; frames: {known:?} (twin_world has one frame, \
             `{TWIN}`; multi_world one per intervened site, named after it)"
        ))
    })
}

/// Reads worlds out of `value` using the frames in `frames`: each `(frame, index)` narrows that
/// frame's dim to `index`, keeping the dim (size 1) so the result broadcasts with other values.
/// A value that does not carry a frame is shared by its worlds and is returned as it is. The
/// rightmost `event_dim` dims of `value` are event dims.
pub fn gather_in(
    frames: &[WorldFrame],
    value: &Tensor,
    index: &[(&str, usize)],
    event_dim: usize,
) -> Result<Tensor> {
    let mut v = value.clone();
    for &(name, i) in index {
        let f = find(frames, name)?;
        if i >= f.size {
            return Err(Error::usage(format!(
                "world index {i} is out of range for frame `{name}` of size {}",
                f.size
            )));
        }
        if let Some(a) = axis_of(v.dims(), f.dim, event_dim) {
            if v.dims()[a] == f.size {
                v = v.narrow(a, i, 1)?;
            }
        }
    }
    Ok(v)
}

/// Reads worlds out of a value inside the running world handler (ChiRho's `gather`): each
/// `(frame, index)` narrows that frame's dim to `index`, keeping it as a size-1 dim.
///
/// ```
/// use ppl_core::causal::{gather, twin_world, COUNTERFACTUAL, TWIN};
/// use ppl_core::{dist::Normal, handlers::do_, runtime::sample};
/// use candle_core::{Device, Tensor};
///
/// let cf = twin_world(|| {
///     do_([("x", 3.0)], || {
///         let x = sample("x", Normal::new(Tensor::new(0.0f64, &Device::Cpu)?, 1.0)?)?;
///         gather(&x, &[(TWIN, COUNTERFACTUAL)])
///     })
/// })?;
/// assert_eq!(cf.flatten_all()?.to_vec1::<f64>()?, vec![3.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn gather(value: &Tensor, index: &[(&str, usize)]) -> Result<Tensor> {
    gather_in(&active_frames(), value, index, 0)
}

/// [`gather`] for a value whose rightmost `event_dim` dims are event dims.
pub fn gather_event(value: &Tensor, index: &[(&str, usize)], event_dim: usize) -> Result<Tensor> {
    gather_in(&active_frames(), value, index, event_dim)
}

/// Strips the world dims of `value` (each must have been narrowed to size 1) and then its
/// leading size-1 batch dims, which carry nothing.
fn strip(frames: &[WorldFrame], value: &Tensor, event_dim: usize) -> Result<Tensor> {
    let dims = value.dims();
    for f in frames {
        if let Some(a) = axis_of(dims, f.dim, event_dim) {
            if dims[a] != 1 {
                return Err(Error::usage(format!(
                    "the value (shape {dims:?}) carries world frame `{}` at dim {} with size {}: \
                     index it too",
                    f.name, f.dim, dims[a]
                )));
            }
        }
    }
    let batch_rank = dims.len() - event_dim;
    let lead = dims[..batch_rank].iter().take_while(|&&d| d == 1).count();
    if lead == 0 {
        return Ok(value.clone());
    }
    Ok(value.reshape(&dims[lead..])?)
}

/// One world of a value, without world dims: [`gather_in`], then the world dims and the leading
/// size-1 batch dims dropped (a twin-world value of shape `(2, 1, 1, 1, N)` gives `(N)`). Every
/// frame the value carries must be indexed.
pub fn world_in(
    frames: &[WorldFrame],
    value: &Tensor,
    index: &[(&str, usize)],
    event_dim: usize,
) -> Result<Tensor> {
    let v = gather_in(frames, value, index, event_dim)?;
    strip(frames, &v, event_dim)
}

/// One world of a value inside the running world handler, without world dims ([`world_in`]).
pub fn world(value: &Tensor, index: &[(&str, usize)]) -> Result<Tensor> {
    world_in(&active_frames(), value, index, 0)
}

/// The value of a recorded site in one world (`&[(TWIN, 1)]`, or one index per multi-world
/// frame), without world dims. A site shared by every world gives its value.
pub fn site_world(site: &Site, index: &[(&str, usize)]) -> Result<Tensor> {
    let event_dim = site.dist.as_ref().map_or(0, |d| d.event_shape().len());
    let index: Vec<(&str, usize)> = index
        .iter()
        .copied()
        .filter(|(n, _)| site.worlds.frames.iter().any(|f| &*f.name == *n))
        .collect();
    world_in(&site.worlds.frames, &site.value, &index, event_dim).map_err(|e| e.at_site(&site.name))
}

/// Stacks one value per world along the frame `frame` of the running world handler (ChiRho's
/// `scatter_n`): `values[i]` becomes world `i`. The values broadcast together.
pub fn scatter(values: &[Tensor], frame: &str) -> Result<Tensor> {
    scatter_in(&active_frames(), values, frame, 0)
}

/// [`scatter`] with explicit frames and event dims.
pub fn scatter_in(
    frames: &[WorldFrame],
    values: &[Tensor],
    frame: &str,
    event_dim: usize,
) -> Result<Tensor> {
    let f = find(frames, frame)?;
    if values.len() != f.size {
        return Err(Error::usage(format!(
            "scatter into frame `{frame}` of size {} needs {} values, got {}",
            f.size,
            f.size,
            values.len()
        )));
    }
    let mut shape: Vec<usize> = Vec::new();
    for v in values {
        shape = crate::dist::broadcast_shapes(&shape, v.dims()).ok_or_else(|| {
            Error::shape("scatter: values that do not broadcast", &shape, v.dims())
        })?;
    }
    let rank = shape.len().max((-f.dim) as usize + event_dim);
    let mut full = vec![1; rank - shape.len()];
    full.extend_from_slice(&shape);
    let axis = axis_of(&full, f.dim, event_dim).expect("rank covers the frame");
    let parts = values
        .iter()
        .map(|v| {
            Ok(pad_rank(v, rank)?
                .broadcast_as(full.as_slice())?
                .contiguous()?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, axis)?)
}

/// The factual and intervened values of a site in a twin-world trace, without world dims.
pub fn twin_values(site: &Site) -> Result<(Tensor, Tensor)> {
    Ok((
        site_world(site, &[(TWIN, FACTUAL)])?,
        site_world(site, &[(TWIN, COUNTERFACTUAL)])?,
    ))
}
