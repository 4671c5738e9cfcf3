//! Concatenating mechanism inputs that carry different world dims, shared by the deep SCMs.

use candle_core::{Tensor, D};
use ppl_core::{Error, Result};

/// Concatenates along the last dim after broadcasting the leading dims of every part (inputs
/// downstream of an intervention carry world dims, others do not). `what` names the caller in
/// the error for clashing leading dims.
pub(crate) fn broadcast_cat(parts: &[&Tensor], what: &str) -> Result<Tensor> {
    let mut lead: Vec<usize> = Vec::new();
    for p in parts {
        let d = p.dims();
        let l = &d[..d.len().saturating_sub(1)];
        lead = ppl_core::dist::broadcast_shapes(&lead, l).ok_or_else(|| {
            Error::shape(
                format!("{what}: inputs with clashing leading dims"),
                &lead,
                l,
            )
        })?;
    }
    let expanded = parts
        .iter()
        .map(|p| {
            let mut s = lead.clone();
            s.push(*p.dims().last().unwrap_or(&1));
            Ok(p.broadcast_as(s)?.contiguous()?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&expanded, D::Minus1)?)
}
