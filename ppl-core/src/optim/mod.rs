//! Optimisers over a [`ParamStore`], keyed by parameter name.
//!
//! [`Adam`], [`ClippedAdam`] (Pyro's) and [`Sgd`] create each parameter's state the first time
//! they see it with a gradient, so parameters that appear late (a guide growing, a module built
//! on demand) start their own step count, and bias correction, at 1 — as torch's per-tensor state
//! and Pyro's per-parameter optimisers do. Parameters can get their own rates by name prefix or
//! by a function of the name.
//!
//! Every update writes the parameter in place, so every tensor already holding it sees the new
//! value. On the CPU, f32 and f64 parameters are updated by one fused kernel per parameter;
//! other devices and dtypes use the same arithmetic in tensor ops.
//!
//! State can be saved and restored with a training checkpoint ([`Optimizer::save_state`],
//! [`Optimizer::load_state_file`]), in the same atomic safetensors format as the store.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::params::ParamStore;

mod adam;
mod lr;
mod sgd;
mod slots;
mod unfused;

pub use adam::{Adam, ClippedAdam};
pub use lr::LrFn;
pub use sgd::Sgd;

const FORMAT_KEY: &str = "ppl.format";
const STATE_FORMAT: &str = "ppl.optim.v1";
const KIND_KEY: &str = "ppl.optimizer";

/// A gradient-based optimiser of the parameters in a [`ParamStore`].
pub trait Optimizer {
    /// Updates every parameter of `store` that has a gradient in `grads` (others untouched).
    fn step(&mut self, store: &ParamStore, grads: &GradStore) -> Result<()>;

    /// The base learning rate.
    fn learning_rate(&self) -> f64;

    /// The optimiser's name (`"Adam"`, `"ClippedAdam"`, `"Sgd"`), recorded with saved state.
    fn kind(&self) -> &'static str;

    /// The state of every parameter stepped so far, as host or device tensors named
    /// `<parameter>.step` (an i64 scalar) and `<parameter>.<buffer>` with torch's buffer names
    /// (`exp_avg`, `exp_avg_sq`, `momentum_buffer`). The tensors are copies.
    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>>;

    /// Replaces the whole state by `tensors` (as [`state_tensors`](Self::state_tensors) names
    /// them). Everything is checked first: on error the state is unchanged. Each parameter's
    /// state is moved to its device and dtype at its next step, where its shape must match.
    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()>;

    /// Writes the state to the safetensors file `path`, atomically (an existing file is left
    /// as it was on any error).
    fn save_state(&self, path: &Path) -> Result<()> {
        let meta = HashMap::from([
            (FORMAT_KEY.to_string(), STATE_FORMAT.to_string()),
            (KIND_KEY.to_string(), self.kind().to_string()),
        ]);
        let tensors = self.state_tensors()?.into_iter().collect();
        crate::params::io::write_safetensors(path, tensors, meta)
    }

    /// Reads state written by [`save_state`](Self::save_state) from `path`; a file written by
    /// another kind of optimiser, or malformed, is an error naming the file.
    fn load_state_file(&mut self, path: &Path) -> Result<()> {
        let (tensors, meta) = crate::params::io::read_safetensors(path, &Device::Cpu)?;
        match meta.get(KIND_KEY) {
            Some(k) if k == self.kind() => {}
            other => {
                return Err(Error::parse(
                    path,
                    0,
                    format!(
                        "holds optimiser state of {}, not {}",
                        other.map_or("no known optimiser", |k| k.as_str()),
                        self.kind()
                    ),
                ))
            }
        }
        self.load_state(&tensors).map_err(|e| match e {
            Error::Usage(msg) => Error::parse(path, 0, msg),
            e => e,
        })
    }
}

impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step(&mut self, store: &ParamStore, grads: &GradStore) -> Result<()> {
        (**self).step(store, grads)
    }
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        (**self).state_tensors()
    }
    fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        (**self).load_state(tensors)
    }
    fn save_state(&self, path: &Path) -> Result<()> {
        (**self).save_state(path)
    }
    fn load_state_file(&mut self, path: &Path) -> Result<()> {
        (**self).load_state_file(path)
    }
}
