//! A one-entry cache of the log-det of the last `(x, y)` pair a transform computed.

use std::sync::Mutex;

use candle_core::{Tensor, TensorId};

/// The log-det of the last pair a transform mapped, keyed by the two tensors' ids (Pyro's
/// `cache_size=1`). Flows compute the log-det on the way through, and a transformed
/// distribution asks for it right after `inverse`; without the cache a coupling flow would run
/// its networks twice per `log_prob`. Tensor ids are never reused, so a hit is always the pair
/// that was computed.
#[derive(Default)]
pub(crate) struct LogDetCache(Mutex<Option<(TensorId, TensorId, Tensor)>>);

impl LogDetCache {
    /// The cached log-det of `(x, y)`, if that is the last pair.
    pub(crate) fn get(&self, x: &Tensor, y: &Tensor) -> Option<Tensor> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some((xi, yi, l)) if *xi == x.id() && *yi == y.id() => Some(l.clone()),
            _ => None,
        }
    }

    /// Records the log-det of `(x, y)`.
    pub(crate) fn put(&self, x: &Tensor, y: &Tensor, ladj: &Tensor) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some((x.id(), y.id(), ladj.clone()));
    }
}

impl Clone for LogDetCache {
    /// A clone starts empty: the cache belongs to one transform value.
    fn clone(&self) -> Self {
        LogDetCache::default()
    }
}

impl std::fmt::Debug for LogDetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogDetCache")
    }
}
