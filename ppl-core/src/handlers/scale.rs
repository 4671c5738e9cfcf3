//! `scale`: multiplies log-densities.

use super::named::run_with;
use crate::error::{Error, Result};
use crate::runtime::{Message, Messenger, SiteKind};

/// Multiplies the log-density of every sample site by a positive factor.
#[derive(Debug)]
pub struct ScaleMessenger {
    factor: f64,
}

impl ScaleMessenger {
    /// Scales by `factor` (> 0 and finite).
    pub fn new(factor: f64) -> Result<Self> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(Error::param(
                "scale handler",
                "factor",
                format!("must be positive and finite, got {factor}"),
            ));
        }
        Ok(ScaleMessenger { factor })
    }
}

impl Messenger for ScaleMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if msg.kind == SiteKind::Sample {
            msg.scale *= self.factor;
        }
        Ok(())
    }
}

/// Runs `f` with every sample site's log-density multiplied by `factor` (Pyro's `scale`, e.g.
/// for minibatch rescaling or annealing).
pub fn scale<R>(factor: f64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    run_with(ScaleMessenger::new(factor)?, f).0
}
