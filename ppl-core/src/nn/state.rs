//! Parameters with computed initial values, and in-place writes into stored tensors.

use candle_core::{Shape, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::error::{Error, Result};

/// Writes `value` into the storage of `target` (a tensor returned by the store, sharing its
/// variable's storage), so that every holder of the parameter sees the new value. The value is
/// detached: the write is not part of any gradient.
pub(crate) fn assign(target: &Tensor, value: &Tensor) -> Result<()> {
    if target.dims() != value.dims() {
        return Err(Error::shape(
            "writing into a stored tensor",
            target.dims(),
            value.dims(),
        ));
    }
    let value = value
        .detach()
        .to_dtype(target.dtype())?
        .to_device(target.device())?
        .contiguous()?;
    if target.rank() == 0 {
        // slice_set needs a dim: a reshape of a contiguous tensor shares its storage.
        target.reshape(1)?.slice_set(&value.reshape(1)?, 0, 0)?;
    } else {
        target.slice_set(&value, 0, 0)?;
    }
    Ok(())
}

/// The stored tensor `name` under `vb`'s prefix, created from `value()` when the store does not
/// hold it yet (a module built twice shares its state; a loaded checkpoint wins over `value`).
pub(crate) fn param_from(
    vb: &VarBuilder,
    name: &str,
    shape: impl Into<Shape>,
    value: impl FnOnce() -> Result<Tensor>,
) -> Result<Tensor> {
    let shape: Shape = shape.into();
    let fresh = !vb.contains_tensor(name);
    let t = vb.get_with_hints(shape, name, Init::Const(0.0))?;
    if fresh {
        assign(&t, &value()?)?;
    }
    Ok(t)
}
