//! Training checkpoints, so that rerunning a tutorial resumes where it stopped.
//!
//! A checkpoint folder holds the parameters (`params-<g>.safetensors`, the [`ParamStore`]'s own
//! format), the optimiser state (`optim-<g>.safetensors`, [`Optimizer::save_state`]) and
//! `checkpoint.json`: the configuration fingerprint, the [`Progress`] (epoch, step, loss
//! history, free-form extras) and the name, length and FNV-1a hash of each tensor file.
//!
//! Each save writes a new generation `g` of tensor files, then replaces `checkpoint.json`
//! atomically, then deletes the older generations. Whenever the process stops, the JSON file
//! names complete tensor files of one generation; a tensor file changed or cut short
//! afterwards fails its length or hash check when loaded.
//!
//! Loading checks everything before it changes anything: a missing checkpoint is `Ok(None)`; a
//! fingerprint from another configuration, an unreadable JSON file, a tensor file that fails
//! its check or does not fit the store are errors naming the file
//! ([`Error::Parse`](ppl_core::Error::Parse) or [`Error::Io`](ppl_core::Error::Io)), and the
//! store and optimiser are then left as they were.
//!
//! ```
//! use models::report::checkpoint::{fingerprint, Checkpoint, Progress};
//! use ppl_core::candle_core::{Device, Tensor};
//! use ppl_core::optim::Adam;
//! use ppl_core::params::{Constraint, ParamStore};
//!
//! let dir = std::env::temp_dir().join(format!("ppl-ckpt-doc-{}", std::process::id()));
//! let config = ("lr", 1e-3, "epochs", 10);
//! let ckpt = Checkpoint::new(&dir, fingerprint(&config)?);
//!
//! let store = ParamStore::new();
//! let w = Tensor::new(&[1.0f32, 2.0], &Device::Cpu)?;
//! store.get_or_init("w", Some(Box::new(move || Ok(w))), Constraint::Real)?;
//! let adam = Adam::new(1e-3);
//! let progress = Progress { epoch: 3, step: 300, loss_history: vec![2.5, 1.0], ..Default::default() };
//! ckpt.save(&store, Some(&adam), &progress)?;
//!
//! let (fresh, mut adam2) = (ParamStore::new(), Adam::new(1e-3));
//! let resumed = ckpt.load(&fresh, Some(&mut adam2))?;
//! assert_eq!(resumed, Some(progress));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), ppl_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ppl_core::optim::Optimizer;
use ppl_core::params::ParamStore;
use ppl_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::data::image::write_atomic;

const FORMAT: &str = "ppl.checkpoint.v1";
const META: &str = "checkpoint.json";
const PARAMS: &str = "params";
const OPTIM: &str = "optim";
const EXT: &str = ".safetensors";

/// How far training got: restored by [`Checkpoint::load`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimiser steps.
    pub step: u64,
    /// The losses so far (restored bit for bit, NaN and infinities included).
    #[serde(with = "exact_floats")]
    pub loss_history: Vec<f64>,
    /// Anything else the run needs to resume (a best score, an RNG seed, ..); JSON numbers
    /// here come back as serde_json parses them, which may differ in the last bit.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Floats as strings in Rust's shortest round-trip spelling (`"0.30000000000000004"`,
/// `"1e-300"`, `"NaN"`, `"-inf"`), read back by the correctly rounded `str::parse`: JSON
/// numbers have no NaN and are not guaranteed to read back exactly.
mod exact_floats {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        text.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| {
                t.parse::<f64>()
                    .map_err(|_| D::Error::custom(format!("`{t}` is not a number")))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileRecord {
    name: String,
    bytes: u64,
    fnv1a64: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OptimRecord {
    kind: String,
    file: FileRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    format: String,
    fingerprint: String,
    generation: u64,
    progress: Progress,
    params: FileRecord,
    optimizer: Option<OptimRecord>,
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A fingerprint of a run's configuration: the FNV-1a hash of its compact JSON, as 16 hex
/// digits. Equal configurations give equal fingerprints across runs and platforms (use
/// ordered maps, e.g. `BTreeMap`, in the configuration, not `HashMap`).
pub fn fingerprint<T: Serialize + ?Sized>(config: &T) -> Result<String> {
    let json = serde_json::to_vec(config).map_err(|e| {
        Error::usage(format!(
            "the configuration cannot be fingerprinted as JSON: {e}"
        ))
    })?;
    Ok(format!("{:016x}", fnv1a64(&json)))
}

/// A checkpoint folder tied to one configuration fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    dir: PathBuf,
    fingerprint: String,
}

impl Checkpoint {
    /// The checkpoint in folder `dir` for the configuration with `fingerprint` (see
    /// [`fingerprint`]). Nothing is read or written until [`save`](Self::save) or
    /// [`load`](Self::load).
    pub fn new(dir: impl Into<PathBuf>, fingerprint: impl Into<String>) -> Checkpoint {
        Checkpoint {
            dir: dir.into(),
            fingerprint: fingerprint.into(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JSON file that names the current generation (`<dir>/checkpoint.json`).
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join(META)
    }

    /// Whether a checkpoint has been saved in the folder (its JSON file exists).
    pub fn exists(&self) -> bool {
        self.meta_path().is_file()
    }

    /// The generations of tensor files in the folder, with their paths.
    fn generations(&self) -> Vec<(u64, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(EXT)?;
                let (kind, g) = stem.rsplit_once('-')?;
                (kind == PARAMS || kind == OPTIM)
                    .then(|| g.parse::<u64>().ok())
                    .flatten()
                    .map(|g| (g, e.path()))
            })
            .collect()
    }

    fn record(&self, name: String) -> Result<FileRecord> {
        let path = self.dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(FileRecord {
            name,
            bytes: bytes.len() as u64,
            fnv1a64: format!("{:016x}", fnv1a64(&bytes)),
        })
    }

    /// Saves the parameters of `store`, the state of `optimizer` (if given) and `progress` as
    /// a new generation, then removes the older ones. On error the previous checkpoint is
    /// left as it was.
    pub fn save(
        &self,
        store: &ParamStore,
        optimizer: Option<&dyn Optimizer>,
        progress: &Progress,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let generation = self
            .generations()
            .iter()
            .map(|(g, _)| g + 1)
            .max()
            .unwrap_or(0);
        let params_name = format!("{PARAMS}-{generation}{EXT}");
        let optim_name = format!("{OPTIM}-{generation}{EXT}");
        let written = (|| -> Result<()> {
            store.save(self.dir.join(&params_name))?;
            let params = self.record(params_name.clone())?;
            let optimizer = match optimizer {
                Some(o) => {
                    o.save_state(&self.dir.join(&optim_name))?;
                    Some(OptimRecord {
                        kind: o.kind().to_string(),
                        file: self.record(optim_name.clone())?,
                    })
                }
                None => None,
            };
            let meta = Meta {
                format: FORMAT.to_string(),
                fingerprint: self.fingerprint.clone(),
                generation,
                progress: progress.clone(),
                params,
                optimizer,
            };
            let json = serde_json::to_vec_pretty(&meta)
                .map_err(|e| Error::usage(format!("checkpoint metadata cannot be written: {e}")))?;
            write_atomic(self.meta_path(), &json)
        })();
        // Best effort: files of an unfinished generation, or of superseded ones, are unused.
        let keep = if written.is_ok() {
            Some(generation)
        } else {
            None
        };
        for (g, path) in self.generations() {
            let stale = match keep {
                Some(k) => g != k,
                None => g == generation,
            };
            if stale {
                let _ = std::fs::remove_file(path);
            }
        }
        written
    }

    /// Reads and checks the JSON file: `None` when there is none.
    fn read_meta(&self) -> Result<Option<Meta>> {
        let path = self.meta_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| {
            Error::parse(
                &path,
                e.line(),
                format!("not a readable checkpoint file: {e}"),
            )
        })?;
        if meta.format != FORMAT {
            return Err(Error::parse(
                &path,
                0,
                format!("checkpoint format `{}`, expected `{FORMAT}`", meta.format),
            ));
        }
        if meta.fingerprint != self.fingerprint {
            return Err(Error::parse(
                &path,
                0,
                format!(
                    "the checkpoint was written for configuration {} but this run's is {}; \
                     nothing was loaded (remove the folder, or use another, to start afresh)",
                    meta.fingerprint, self.fingerprint
                ),
            ));
        }
        Ok(Some(meta))
    }

    fn verify(&self, rec: &FileRecord) -> Result<PathBuf> {
        let path = self.dir.join(&rec.name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let hash = format!("{:016x}", fnv1a64(&bytes));
        if bytes.len() as u64 != rec.bytes || hash != rec.fnv1a64 {
            return Err(Error::parse(
                &path,
                0,
                format!(
                    "the file is cut short or changed since the checkpoint was saved \
                     ({} bytes with hash {hash}; {} bytes with hash {} were saved)",
                    bytes.len(),
                    rec.bytes,
                    rec.fnv1a64
                ),
            ));
        }
        Ok(path)
    }

    /// Restores the checkpoint into `store` (new parameters on the CPU) and `optimizer`; see
    /// [`load_on`](Self::load_on).
    pub fn load(
        &self,
        store: &ParamStore,
        optimizer: Option<&mut dyn Optimizer>,
    ) -> Result<Option<Progress>> {
        self.load_on(store, optimizer, &Device::Cpu)
    }

    /// Restores the checkpoint: the parameters into `store` (as [`ParamStore::load_on`]: an
    /// empty store gets every parameter on `device`, a non-empty one must have exactly the
    /// saved names and shapes), the optimiser state into `optimizer` (when given, the
    /// checkpoint must hold state of the same kind), and returns the saved progress.
    ///
    /// `Ok(None)` when the folder holds no checkpoint. Any error leaves `store` and
    /// `optimizer` unchanged.
    pub fn load_on(
        &self,
        store: &ParamStore,
        optimizer: Option<&mut dyn Optimizer>,
        device: &Device,
    ) -> Result<Option<Progress>> {
        let Some(meta) = self.read_meta()? else {
            return Ok(None);
        };
        let params = self.verify(&meta.params)?;
        let optim = match (&optimizer, &meta.optimizer) {
            (None, _) => None,
            (Some(o), Some(rec)) if rec.kind == o.kind() => Some(self.verify(&rec.file)?),
            (Some(o), rec) => {
                return Err(Error::parse(
                    self.meta_path(),
                    0,
                    format!(
                        "the checkpoint holds {} but the run resumes a {} optimiser; \
                         nothing was loaded",
                        rec.as_ref()
                            .map_or("no optimiser state".to_string(), |r| format!(
                                "{} state",
                                r.kind
                            )),
                        o.kind()
                    ),
                ))
            }
        };
        // The store is loaded first (all or nothing); if the optimiser's state then fails,
        // the store's previous values are put back.
        let was_empty = store.is_empty();
        let before: Vec<(candle_core::Var, Tensor)> = store
            .entries()
            .into_iter()
            .map(|(_, e)| {
                let copy = e.var.as_tensor().copy()?;
                Ok((e.var, copy))
            })
            .collect::<Result<_>>()?;
        store.load_on(&params, device)?;
        if let (Some(o), Some(path)) = (optimizer, optim) {
            if let Err(e) = o.load_state_file(&path) {
                if was_empty {
                    store.clear();
                } else {
                    for (var, t) in before {
                        var.set(&t)?;
                    }
                }
                return Err(e);
            }
        }
        Ok(Some(meta.progress))
    }
}
