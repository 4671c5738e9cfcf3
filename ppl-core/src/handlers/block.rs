//! `block`: hides sites from the handlers outside.

use std::collections::HashSet;

use super::named::run_with;
use crate::error::Result;
use crate::runtime::{Message, Messenger};

/// Which sites a [`block`] hides.
pub enum Hide {
    /// Every site.
    All,
    /// The named sites.
    Names(HashSet<String>),
    /// Every site except the named ones.
    AllBut(HashSet<String>),
    /// The sites a predicate picks.
    Where(Box<dyn Fn(&Message) -> bool>),
}

impl Hide {
    /// Hide the named sites.
    pub fn names<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        Hide::Names(names.into_iter().map(|s| s.as_ref().to_string()).collect())
    }

    /// Hide every site except the named ones.
    pub fn all_but<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        Hide::AllBut(names.into_iter().map(|s| s.as_ref().to_string()).collect())
    }

    fn hides(&self, msg: &Message) -> bool {
        match self {
            Hide::All => true,
            Hide::Names(n) => n.contains(&msg.name),
            Hide::AllBut(n) => !n.contains(&msg.name),
            Hide::Where(p) => p(msg),
        }
    }
}

/// Stops the messages it hides from reaching the handlers outside it.
pub struct BlockMessenger {
    hide: Hide,
}

impl BlockMessenger {
    /// Hides what `hide` picks.
    pub fn new(hide: Hide) -> Self {
        BlockMessenger { hide }
    }
}

impl Messenger for BlockMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if self.hide.hides(msg) {
            msg.stop = true;
        }
        Ok(())
    }
}

/// Runs `f` with the sites that `hide` picks invisible to every handler outside (Pyro's
/// `block`): an outer `trace` does not record them and an outer `condition` cannot reach them.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::{block, trace, Hide}, runtime::sample};
/// let (_, tr) = trace(|| block(Hide::names(["x"]), || {
///     sample("x", Normal::new(0.0, 1.0)?)?;
///     sample("y", Normal::new(0.0, 1.0)?)
/// }))?;
/// assert_eq!(tr.names().collect::<Vec<_>>(), ["y"]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn block<R>(hide: Hide, f: impl FnOnce() -> Result<R>) -> Result<R> {
    run_with(BlockMessenger::new(hide), f).0
}
