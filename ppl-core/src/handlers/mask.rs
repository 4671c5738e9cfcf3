//! `mask`: switches log-densities off, wholly or by entry.

use super::named::run_with;
use crate::error::Result;
use crate::runtime::{Mask, Message, Messenger, SiteKind};

/// Combines a mask into every sample site's mask.
#[derive(Debug)]
pub struct MaskMessenger {
    mask: Mask,
}

impl MaskMessenger {
    /// Masks with `mask`.
    pub fn new(mask: impl Into<Mask>) -> Self {
        MaskMessenger { mask: mask.into() }
    }
}

impl Messenger for MaskMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if msg.kind == SiteKind::Sample {
            msg.mask = Some(match &msg.mask {
                Some(m) => m.and(&self.mask)?,
                None => self.mask.clone(),
            });
        }
        Ok(())
    }
}

/// Runs `f` with sample sites' log-densities kept only where `mask` is true (Pyro's `mask`):
/// `mask(false, ..)` removes them from the joint; a `u8` tensor masks entry by entry.
pub fn mask<R>(mask: impl Into<Mask>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    run_with(MaskMessenger::new(mask), f).0
}
