//! `scope`: prefixes site names, so sub-models do not collide.

use super::named::run_with;
use crate::error::Result;
use crate::runtime::{Message, Messenger};

/// Prefixes every site name with `prefix/`.
#[derive(Debug)]
pub struct ScopeMessenger {
    prefix: String,
}

impl ScopeMessenger {
    /// Prefixes with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        ScopeMessenger {
            prefix: prefix.into(),
        }
    }
}

impl Messenger for ScopeMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        msg.name = format!("{}/{}", self.prefix, msg.name);
        Ok(())
    }
}

/// Runs `f` with its site names prefixed by `prefix/` (`encoder/z`); nested scopes compose
/// outermost first (`outer/inner/z`). `#[model]` scopes a called sub-model under its name.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::{scope, trace}, runtime::sample};
/// let (_, tr) = trace(|| scope("encoder", || sample("z", Normal::new(0.0, 1.0)?)))?;
/// assert!(tr.contains("encoder/z"));
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn scope<R>(prefix: impl Into<String>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    run_with(ScopeMessenger::new(prefix), f).0
}
