//! Pieces the models share: training progress with its checkpoint files (every model
//! [`training::svi_epochs`](crate::training) trains), and concatenating mechanism inputs that
//! carry different world dims (the deep SCMs).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Tensor, D};
use ppl_core::optim::{Adam, Optimizer};
use ppl_core::params::ParamStore;
use ppl_core::{Error, Result};

/// How far a model has trained: Adam's state, epochs and SVI steps done.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub optim_state: BTreeMap<String, Tensor>,
    pub epochs: usize,
    pub steps: usize,
}

impl Progress {
    /// Writes `store` and this progress to `dir` (created if needed): `params.safetensors`,
    /// `optim.safetensors` (Adam's state) and `progress.txt` (epochs and steps done), each file
    /// atomically.
    pub fn save(&self, dir: &Path, store: &ParamStore) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        store.save(dir.join("params.safetensors"))?;
        let mut optim = Adam::new(1e-3);
        optim.load_state(&self.optim_state)?;
        optim.save_state(&dir.join("optim.safetensors"))?;
        crate::data::image::write_atomic(
            dir.join("progress.txt"),
            format!("epochs {} steps {}\n", self.epochs, self.steps).as_bytes(),
        )
    }

    /// Reads a checkpoint written by [`save`](Self::save): the parameters are loaded into
    /// `store` in place, and the progress is returned.
    pub fn load(dir: &Path, store: &ParamStore) -> Result<Progress> {
        let progress = dir.join("progress.txt");
        let text = std::fs::read_to_string(&progress).map_err(|e| Error::io(&progress, e))?;
        let nums: Vec<usize> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [epochs, steps] = nums[..] else {
            return Err(Error::parse(
                &progress,
                1,
                format!("expected `epochs <e> steps <s>`, got `{}`", text.trim()),
            ));
        };
        let mut optim = Adam::new(1e-3);
        optim.load_state_file(&dir.join("optim.safetensors"))?;
        store.load(dir.join("params.safetensors"))?;
        Ok(Progress {
            optim_state: optim.state_tensors()?,
            epochs,
            steps,
        })
    }
}

/// Concatenates along the last dim after broadcasting the leading dims of every part (inputs
/// downstream of an intervention carry world dims, others do not). `what` names the caller in
/// the error for clashing leading dims.
pub(crate) fn broadcast_cat(parts: &[&Tensor], what: &str) -> Result<Tensor> {
    let mut lead: Vec<usize> = Vec::new();
    for p in parts {
        let d = p.dims();
        let l = &d[..d.len().saturating_sub(1)];
        lead = ppl_core::dist::broadcast_shapes(&lead, l).ok_or_else(|| {
            Error::shape(
                format!("{what}: inputs with clashing leading dims"),
                &lead,
                l,
            )
        })?;
    }
    let expanded = parts
        .iter()
        .map(|p| {
            let mut s = lead.clone();
            s.push(*p.dims().last().unwrap_or(&1));
            Ok(p.broadcast_as(s)?.contiguous()?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&expanded, D::Minus1)?)
}
