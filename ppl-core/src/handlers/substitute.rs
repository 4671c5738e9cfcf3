//! `substitute`: gives values to latent and parameter sites.

use std::collections::HashMap;

use candle_core::Tensor;

use super::named::{collect, run_with, SiteValue};
use crate::error::Result;
use crate::runtime::{Message, Messenger, SiteKind};

/// Gives the named latent sample sites and param sites the given values.
#[derive(Debug)]
pub struct SubstituteMessenger {
    data: HashMap<String, Tensor>,
}

impl SubstituteMessenger {
    /// Substitutes `data`.
    pub fn new(data: HashMap<String, Tensor>) -> Self {
        SubstituteMessenger { data }
    }
}

impl Messenger for SubstituteMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        let applies = match msg.kind {
            SiteKind::Sample => !msg.observed,
            SiteKind::Param => true,
            _ => false,
        };
        if applies {
            if let Some(v) = self.data.get(&msg.name) {
                msg.value = Some(v.clone());
            }
        }
        Ok(())
    }
}

/// Runs `f` with the named latent sample sites and param sites taking the given values
/// (NumPyro's `substitute`). Unlike `condition`, substituted sites stay latent, and names the
/// run does not reach are ignored, so one map of values can serve models that use part of it.
pub fn substitute<I, K, V, R>(data: I, f: impl FnOnce() -> Result<R>) -> Result<R>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: SiteValue<Tensor>,
{
    run_with(SubstituteMessenger::new(collect(data)), f).0
}
