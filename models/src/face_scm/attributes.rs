//! The attribute part of the face SCM alone: its log-likelihood and a cheap maximum-likelihood
//! fit of the tables, without images (the attribute mechanisms share no parameter with the
//! image mechanism, so this is the same optimum that SVI reaches for them).

use candle_core::{DType, Tensor};
use ppl_core::dist::Distribution;
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::{Error, Result};

use super::model::{sites, FaceScm};
use crate::data::cartoon::{Attr, NUM_ATTRS};

/// `Σ log p(attributes)` over faces under the model's attribute mechanisms: `binary` `[n, 9]`
/// (0/1, [`Attr::ALL`] order) and `colours` `[n, 3]` (eye, skin, hair indices); a 0-dim
/// tensor with gradients to the tables.
pub fn attribute_log_prob(scm: &FaceScm, binary: &Tensor, colours: &Tensor) -> Result<Tensor> {
    let n = binary.dim(0)?;
    if binary.dims() != [n, NUM_ATTRS] || colours.dims() != [n, 3] {
        return Err(Error::shape(
            "attribute_log_prob: binary [n, 9] and colours [n, 3]",
            &[n, NUM_ATTRS],
            binary.dims(),
        ));
    }
    let binary = binary.to_dtype(DType::F32)?;
    let cols: Vec<Tensor> = (0..NUM_ATTRS)
        .map(|i| Ok(binary.narrow(1, i, 1)?.squeeze(1)?))
        .collect::<Result<_>>()?;
    let mut total = Tensor::zeros((), DType::F32, scm.device())?;
    for a in Attr::ALL {
        let parents: Vec<Tensor> = a
            .parents()
            .iter()
            .map(|p| cols[p.index()].clone())
            .collect();
        let lp = scm.attr_dist(a, &parents, n)?.log_prob(&cols[a.index()])?;
        total = (total + lp.sum_all()?)?;
    }
    for k in 0..sites::COLOURS.len() {
        let c = colours.narrow(1, k, 1)?.squeeze(1)?.to_dtype(DType::F32)?;
        let lp = scm.colour_dist(k, n)?.log_prob(&c)?;
        total = (total + lp.sum_all()?)?;
    }
    Ok(total)
}

/// Fits the attribute tables and colour probabilities to `binary` and `colours` by `steps`
/// full-batch Adam steps at `lr` on the mean negative log-likelihood; returns the loss per face
/// before every step. The image mechanism and the encoder are untouched.
pub fn fit_attributes(
    scm: &FaceScm,
    binary: &Tensor,
    colours: &Tensor,
    steps: usize,
    lr: f64,
) -> Result<Vec<f64>> {
    let n = binary.dim(0)?;
    if n == 0 || !(lr.is_finite() && lr > 0.0) {
        return Err(Error::usage(
            "fit_attributes needs faces and a positive learning rate",
        ));
    }
    // Only the attribute parameters get gradients, so Adam moves nothing else.
    let mut optim = Adam::new(lr);
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = (attribute_log_prob(scm, binary, colours)? * (-1.0 / n as f64))?;
        losses.push(loss.to_dtype(DType::F64)?.to_scalar::<f64>()?);
        let grads = loss.backward()?;
        optim.step(scm.store(), &grads)?;
    }
    Ok(losses)
}
