//! Per-parameter learning rates (Pyro's per-parameter `optim_args` callable, plus name prefixes).

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A learning rate as a function of a parameter's name.
pub type LrFn = Arc<dyn Fn(&str) -> f64 + Send + Sync>;

/// The learning rate of each parameter: the rate of the longest prefix rule matching its name,
/// else the function's value for it, else the base rate. Each parameter's rate is fixed the
/// first time the optimiser sees it, as Pyro calls its per-parameter callable once.
#[derive(Clone)]
pub(crate) struct LearningRates {
    base: f64,
    prefixes: Vec<(String, f64)>,
    func: Option<LrFn>,
}

impl fmt::Debug for LearningRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LearningRates")
            .field("base", &self.base)
            .field("prefixes", &self.prefixes)
            .field("func", &self.func.as_ref().map(|_| "Fn(&str) -> f64"))
            .finish()
    }
}

impl LearningRates {
    pub(crate) fn new(base: f64) -> Self {
        Self {
            base,
            prefixes: Vec::new(),
            func: None,
        }
    }

    pub(crate) fn base(&self) -> f64 {
        self.base
    }

    pub(crate) fn set_prefix(&mut self, prefix: String, lr: f64) {
        self.prefixes.retain(|(p, _)| *p != prefix);
        self.prefixes.push((prefix, lr));
    }

    pub(crate) fn set_fn(&mut self, f: LrFn) {
        self.func = Some(f);
    }

    /// The rate of `name`, checked to be finite and non-negative.
    pub(crate) fn of(&self, optimizer: &'static str, name: &str) -> Result<f64> {
        let lr = self
            .prefixes
            .iter()
            .filter(|(p, _)| name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|&(_, lr)| lr)
            .or_else(|| self.func.as_ref().map(|f| f(name)))
            .unwrap_or(self.base);
        check(optimizer, name, lr)?;
        Ok(lr)
    }

    /// Checks the base rate and every prefix rate.
    pub(crate) fn validate(&self, optimizer: &'static str) -> Result<()> {
        check(optimizer, "(base rate)", self.base)?;
        for (p, lr) in &self.prefixes {
            check(optimizer, &format!("{p}*"), *lr)?;
        }
        Ok(())
    }
}

fn check(optimizer: &'static str, name: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::param(
            optimizer,
            "lr",
            format!("learning rate of `{name}` must be finite and >= 0, got {lr}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_then_function_then_base() -> Result<()> {
        let mut r = LearningRates::new(0.1);
        assert_eq!(r.of("Adam", "enc.w")?, 0.1);
        r.set_fn(Arc::new(
            |n: &str| if n.ends_with("bias") { 0.3 } else { 0.2 },
        ));
        r.set_prefix("enc.".into(), 0.01);
        r.set_prefix("enc.fc1.".into(), 0.001);
        assert_eq!(r.of("Adam", "enc.fc1.w")?, 0.001);
        assert_eq!(r.of("Adam", "enc.fc2.w")?, 0.01);
        assert_eq!(r.of("Adam", "dec.bias")?, 0.3);
        assert_eq!(r.of("Adam", "dec.w")?, 0.2);
        r.set_prefix("enc.".into(), 0.05);
        assert_eq!(r.of("Adam", "enc.fc2.w")?, 0.05);
        r.set_prefix("bad".into(), -1.0);
        assert!(r.validate("Adam").is_err());
        assert!(r
            .of("Adam", "bad.x")
            .unwrap_err()
            .to_string()
            .contains("bad.x"));
        Ok(())
    }
}
