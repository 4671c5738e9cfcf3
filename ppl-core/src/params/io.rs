//! Saving and loading a [`ParamStore`] as safetensors.
//!
//! The file holds each parameter's unconstrained value under its name, and its constraint in the
//! safetensors metadata (`ppl.constraint.<name>`). Files are written atomically: a temporary file
//! in the target's folder is written, synced and renamed over the target, so a crash or an error
//! leaves either the old file or the new one, never a torn one. The same writer persists
//! optimiser state ([`crate::optim`]).
//!
//! ```
//! use ppl_core::params::{Constraint, ParamStore};
//! use ppl_core::candle_core::{Device, Tensor};
//!
//! let store = ParamStore::new();
//! let t = Tensor::new(&[0.5f32, 2.0], &Device::Cpu)?;
//! store.get_or_init("scale", Some(Box::new(move || Ok(t))), Constraint::Positive)?;
//! let path = std::env::temp_dir().join(format!("ppl-doc-{}.safetensors", std::process::id()));
//! store.save(&path)?;
//!
//! let restored = ParamStore::new();
//! restored.load(&path)?;
//! assert_eq!(restored.entry("scale").unwrap().constraint, Constraint::Positive);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor, Var};

use super::{Constraint, ParamEntry, ParamStore};
use crate::error::{Error, Result};

const FORMAT_KEY: &str = "ppl.format";
const STORE_FORMAT: &str = "ppl.params.v1";
const CONSTRAINT_PREFIX: &str = "ppl.constraint.";

impl ParamStore {
    /// Writes every parameter (unconstrained values and constraints) to the safetensors file
    /// `path`, atomically: on any error an existing file is left as it was.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let entries = self.entries();
        let mut meta = HashMap::new();
        meta.insert(FORMAT_KEY.to_string(), STORE_FORMAT.to_string());
        let mut tensors = Vec::with_capacity(entries.len());
        for (name, e) in entries {
            meta.insert(
                format!("{CONSTRAINT_PREFIX}{name}"),
                encode_constraint(&e.constraint),
            );
            tensors.push((name, e.var.as_tensor().clone()));
        }
        write_safetensors(path.as_ref(), tensors, meta)
    }

    /// Loads the safetensors file `path` (see [`load_on`](Self::load_on)); parameters new to
    /// the store are created on the CPU.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        self.load_on(path, &Device::Cpu)
    }

    /// Loads the safetensors file `path`.
    ///
    /// Into an empty store it creates every parameter of the file on `device`. Into a non-empty
    /// store the file must hold exactly the store's names, with the same shapes and constraints;
    /// otherwise the error lists the missing, extra and mismatched names and the store is left
    /// unchanged. Matching values are written into the existing variables in place (converted
    /// to each variable's dtype and device), so every tensor already holding a parameter sees the
    /// loaded value. A file without a recorded constraint for a name (e.g. one written by another
    /// tool) is read as [`Constraint::Real`].
    pub fn load_on(&self, path: impl AsRef<Path>, device: &Device) -> Result<()> {
        let path = path.as_ref();
        let (tensors, meta) = read_safetensors(path, &Device::Cpu)?;
        let mut file = BTreeMap::new();
        for (name, t) in tensors {
            let constraint = match meta.get(&format!("{CONSTRAINT_PREFIX}{name}")) {
                Some(s) => decode_constraint(s).ok_or_else(|| {
                    Error::parse(
                        path,
                        0,
                        format!("parameter `{name}` has an unreadable constraint `{s}`"),
                    )
                })?,
                None => Constraint::Real,
            };
            file.insert(name, (t, constraint));
        }

        // The lock is held from validation to the last write, so nothing can slip in between.
        let mut map = self.lock();
        if map.is_empty() {
            let mut fresh = BTreeMap::new();
            for (name, (t, constraint)) in file {
                let var = Var::from_tensor(&t.to_device(device)?)?;
                fresh.insert(name, ParamEntry { var, constraint });
            }
            *map = fresh;
            return Ok(());
        }

        let mut missing = Vec::new();
        let mut mismatched = Vec::new();
        for (name, e) in map.iter() {
            match file.get(name) {
                None => missing.push(name.clone()),
                Some((t, c)) => {
                    let have = e.var.as_tensor().dims();
                    if t.dims() != have {
                        mismatched.push(format!(
                            "`{name}` has shape {:?} in the file, {have:?} in the store",
                            t.dims()
                        ));
                    }
                    if *c != e.constraint {
                        mismatched.push(format!(
                            "`{name}` has constraint {c:?} in the file, {:?} in the store",
                            e.constraint
                        ));
                    }
                }
            }
        }
        let extra: Vec<&String> = file.keys().filter(|n| !map.contains_key(*n)).collect();
        if !missing.is_empty() || !extra.is_empty() || !mismatched.is_empty() {
            return Err(Error::parse(
                path,
                0,
                format!(
                    "the file does not match the parameter store (nothing was loaded): \
                     missing from the file: {missing:?}; not in the store: {extra:?}; \
                     mismatched: [{}]",
                    mismatched.join("; ")
                ),
            ));
        }
        // Convert everything first, so that a failed conversion writes nothing.
        let mut ready = Vec::with_capacity(map.len());
        for (name, e) in map.iter() {
            let (t, _) = &file[name];
            let target = e.var.as_tensor();
            let t = t.to_device(target.device())?.to_dtype(target.dtype())?;
            ready.push((e.var.clone(), t));
        }
        for (var, t) in ready {
            var.set(&t)?;
        }
        Ok(())
    }
}

/// The metadata spelling of a constraint (floats in Rust's shortest round-trip form).
fn encode_constraint(c: &Constraint) -> String {
    match *c {
        Constraint::Real => "real".into(),
        Constraint::Positive => "positive".into(),
        Constraint::SoftplusPositive => "softplus_positive".into(),
        Constraint::GreaterThan(lo) => format!("greater_than:{lo:?}"),
        Constraint::UnitInterval => "unit_interval".into(),
        Constraint::Interval(lo, hi) => format!("interval:{lo:?}:{hi:?}"),
        Constraint::Simplex => "simplex".into(),
    }
}

fn decode_constraint(s: &str) -> Option<Constraint> {
    let mut parts = s.split(':');
    let kind = parts.next()?;
    let mut num = || parts.next()?.parse::<f64>().ok();
    let c = match kind {
        "real" => Constraint::Real,
        "positive" => Constraint::Positive,
        "softplus_positive" => Constraint::SoftplusPositive,
        "greater_than" => Constraint::GreaterThan(num()?),
        "unit_interval" => Constraint::UnitInterval,
        "interval" => {
            let lo = num()?;
            Constraint::Interval(lo, num()?)
        }
        "simplex" => Constraint::Simplex,
        _ => return None,
    };
    parts.next().is_none().then_some(c)
}

/// Serialises `tensors` with `metadata` and writes them to `path` atomically.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut host = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !matches!(
            t.dtype(),
            DType::U8
                | DType::U32
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::F16
                | DType::BF16
                | DType::F32
                | DType::F64
        ) {
            return Err(Error::Unsupported {
                what: format!("saving `{name}` of dtype {:?}", t.dtype()),
                why: "safetensors output covers the integer and float dtypes only".into(),
            });
        }
        // On the host and contiguous, candle's safetensors view cannot fail.
        host.push((name, t.to_device(&Device::Cpu)?.contiguous()?));
    }
    let bytes = safetensors::serialize(host, Some(metadata))
        .map_err(|e| Error::parse(path, 0, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
}

/// Reads the safetensors file `path`: its tensors (on `device`) and its metadata.
pub(crate) fn read_safetensors(
    path: &Path,
    device: &Device,
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    use candle_core::safetensors::Load;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::parse(path, 0, format!("not a safetensors file: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::parse(path, 0, format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = view
            .load(device)
            .map_err(|e| Error::parse(path, 0, format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok((out, meta))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a synced temporary file in the same folder and a rename. On
/// any failure the temporary file is removed and `path` is untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        // create_new failing means the temporary file is not ours: leave it.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(Error::io(path, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // The rename is durable once the folder is synced; where folders cannot be opened (not
    // unix) the file itself is already complete.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_spelling_round_trips() {
        for c in [
            Constraint::Real,
            Constraint::Positive,
            Constraint::SoftplusPositive,
            Constraint::GreaterThan(-0.1),
            Constraint::UnitInterval,
            Constraint::Interval(1e-300, std::f64::consts::PI),
            Constraint::Simplex,
        ] {
            assert_eq!(decode_constraint(&encode_constraint(&c)), Some(c));
        }
        assert_eq!(decode_constraint("interval:0"), None);
        assert_eq!(decode_constraint("real:1"), None);
        assert_eq!(decode_constraint("circle"), None);
    }
}
