//! `condition`: fixes sample sites to observed data.

use std::collections::HashMap;

use candle_core::Tensor;

use super::named::{collect, run_with, Reached, SiteValue};
use crate::error::Result;
use crate::runtime::{Message, Messenger, SiteKind};

/// Marks the named sample sites observed with the given values.
#[derive(Debug)]
pub struct ConditionMessenger {
    data: HashMap<String, Tensor>,
    reached: Reached,
}

impl ConditionMessenger {
    /// Conditions on `data`.
    pub fn new(data: HashMap<String, Tensor>) -> Self {
        ConditionMessenger {
            data,
            reached: Reached::default(),
        }
    }

    /// An `UnknownSite` error if some names were never reached.
    pub fn check(&self) -> Result<()> {
        self.reached.check("condition", self.data.keys())
    }
}

impl Messenger for ConditionMessenger {
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        if msg.kind != SiteKind::Sample {
            return Ok(());
        }
        let v = self.data.get(&msg.name);
        self.reached.visit(&msg.name, v.is_some())?;
        if let Some(v) = v {
            msg.value = Some(v.clone());
            msg.observed = true;
        }
        Ok(())
    }
}

/// Runs `f` with the named sample sites observed at the given values (Pyro's `condition`).
///
/// A name that the run never reaches is an [`UnknownSite`](crate::Error::UnknownSite) error.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::{condition, trace}, runtime::sample};
/// use candle_core::{Device, Tensor};
/// let y = Tensor::new(0.5f32, &Device::Cpu)?;
/// let model = || sample("y", Normal::new(0.0, 1.0)?);
/// let (v, tr) = trace(|| condition([("y", &y)], model))?;
/// assert!(tr.site("y")?.observed);
/// assert_eq!(v.to_scalar::<f32>()?, 0.5);
/// assert!(condition([("z", &y)], model).is_err()); // no site `z`
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn condition<I, K, V, R>(data: I, f: impl FnOnce() -> Result<R>) -> Result<R>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: SiteValue<Tensor>,
{
    let (out, m) = run_with(ConditionMessenger::new(collect(data)), f);
    let out = out?;
    m.check()?;
    Ok(out)
}
