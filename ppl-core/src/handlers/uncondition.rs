//! `uncondition`: turns observed sample sites back into draws.

use super::named::run_with;
use crate::error::Result;
use crate::runtime::{Message, Messenger, SiteKind};

/// Makes every observed sample site latent again: its value is drawn from its distribution
/// instead of taken from the data (Pyro's `uncondition`). Factor sites stay as they are.
#[derive(Debug, Default)]
pub struct UnconditionMessenger;

impl Messenger for UnconditionMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        let is_factor = msg.dist.as_ref().is_some_and(|d| d.name() == "Unit");
        if msg.kind == SiteKind::Sample && msg.observed && !is_factor {
            msg.observed = false;
            msg.value = None;
        }
        Ok(())
    }
}

/// Runs `f` with observed sites drawn from their distributions, as a posterior predictive
/// needs: data given by `observe` or an inner `condition` is ignored.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::{condition, trace, uncondition}, runtime::sample};
/// use candle_core::{Device, Tensor};
/// let y = Tensor::new(100.0f32, &Device::Cpu)?;
/// let model = || sample("y", Normal::new(0.0, 1.0)?);
/// let (v, tr) = trace(|| uncondition(|| condition([("y", &y)], model)))?;
/// assert!(!tr.site("y")?.observed);
/// assert!(v.to_scalar::<f32>()?.abs() < 10.0);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn uncondition<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    run_with(UnconditionMessenger, f).0
}
