//! What a guide is to the inference algorithms.

use crate::error::Result;

/// A guide: a model over the latent sites of another model (the variational family of SVI, the
/// proposal of importance sampling).
///
/// Any closure `FnMut() -> Result<R>` is a guide. Autoguides ([`AutoNormal`](super::AutoNormal),
/// [`AutoDelta`](super::AutoDelta)) build themselves from the model: the algorithms hand every
/// guide the (type-erased) model it guides, and a closure ignores it.
pub trait Guide {
    /// Runs the guide once; `model` is the model it guides.
    fn call(&mut self, model: &mut dyn FnMut() -> Result<()>) -> Result<()>;
}

impl<F, R> Guide for F
where
    F: FnMut() -> Result<R>,
{
    fn call(&mut self, _model: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self().map(|_| ())
    }
}

/// A model with its output discarded, as guides receive it.
pub(crate) fn erase<R>(model: &mut impl FnMut() -> Result<R>) -> impl FnMut() -> Result<()> + '_ {
    move || model().map(|_| ())
}
