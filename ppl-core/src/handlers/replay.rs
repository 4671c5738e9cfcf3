//! `replay`: reuses the values of a recorded trace.

use super::named::{run_with, Reached};
use super::trace::Trace;
use crate::error::Result;
use crate::runtime::{Message, Messenger, SiteKind};

/// Gives latent sample sites (and subsample indices) the values they have in a trace.
#[derive(Debug)]
pub struct ReplayMessenger {
    trace: Trace,
    reached: Reached,
}

impl ReplayMessenger {
    /// Replays `trace`.
    pub fn new(trace: Trace) -> Self {
        ReplayMessenger {
            trace,
            reached: Reached::default(),
        }
    }

    /// An `UnknownSite` error if some latent sites of the trace were never reached.
    pub fn check(&self) -> Result<()> {
        let replayable = self
            .trace
            .iter()
            .filter(|s| replayable(s) && !s.infer.is_auxiliary)
            .map(|s| &s.name);
        self.reached.check("replay", replayable)
    }
}

fn replayable(s: &super::trace::Site) -> bool {
    s.is_latent() || s.kind == SiteKind::Subsample
}

impl Messenger for ReplayMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if !matches!(msg.kind, SiteKind::Sample | SiteKind::Subsample) {
            return Ok(());
        }
        let site = self.trace.get(&msg.name).filter(|s| replayable(s));
        self.reached.visit(&msg.name, site.is_some())?;
        if let (Some(site), false) = (site, msg.observed) {
            msg.value = Some(site.value.clone());
        }
        Ok(())
    }
}

/// Runs `f` with every latent sample site taking its value from `trace` (Pyro's `replay`):
/// re-running a model under the trace of itself reproduces its values and log-joint. A latent
/// site of the trace that the run never reaches is an [`UnknownSite`](crate::Error::UnknownSite)
/// error.
pub fn replay<R>(trace: &Trace, f: impl FnOnce() -> Result<R>) -> Result<R> {
    // The stack holds `'static` handlers, so the messenger owns a copy; sites share their
    // tensors and distributions, so the copy is shallow.
    let (out, m) = run_with(ReplayMessenger::new(trace.clone()), f);
    let out = out?;
    m.check()?;
    Ok(out)
}
