//! The optimiser update with candle tensor ops, for devices and dtypes the fused CPU kernel does
//! not cover. The new value is written into the variable in place ([`Var::set`]), so tensors
//! sharing its storage see it; the state tensors are replaced (they are the optimiser's own).

use candle_core::{Tensor, Var};

use crate::error::Result;
use crate::kernels::adam::Update;

/// Applies `update` to `var` with gradient `grad` (same shape and dtype), replacing `bufs`
/// (`update.buffers()` tensors shaped like `var`) by the new state.
pub(crate) fn step(
    var: &Var,
    grad: &Tensor,
    bufs: &mut Vec<Tensor>,
    update: &Update,
) -> Result<()> {
    // Detached, so that neither the new value nor the carried state records a graph.
    let p = var.as_tensor().detach();
    let mut g = grad.detach();
    let new_p = match *update {
        Update::Adam {
            b1,
            b2,
            eps,
            weight_decay,
            clip,
            step_size,
            v_scale,
        } => {
            if let Some(c) = clip {
                g = g.clamp(-c, c)?;
            }
            if weight_decay != 0.0 {
                g = (g + p.affine(weight_decay, 0.0)?)?;
            }
            let m = (bufs[0].affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
            let v = (bufs[1].affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
            let ratio = (&m / v.sqrt()?.affine(v_scale, eps)?)?;
            let new_p = (&p - ratio.affine(step_size, 0.0)?)?;
            *bufs = vec![m, v];
            new_p
        }
        Update::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            first,
        } => {
            let mut d = if weight_decay != 0.0 {
                (g + p.affine(weight_decay, 0.0)?)?
            } else {
                g
            };
            if momentum != 0.0 {
                let buf = if first {
                    d.clone()
                } else {
                    (bufs[0].affine(momentum, 0.0)? + d.affine(1.0 - dampening, 0.0)?)?
                };
                d = if nesterov {
                    (d + buf.affine(momentum, 0.0)?)?
                } else {
                    buf.clone()
                };
                *bufs = vec![buf];
            }
            (&p - d.affine(lr, 0.0)?)?
        }
    };
    var.set(&new_p)?;
    Ok(())
}
