//! `seed`: a fixed random stream for a run.

use crate::error::Result;
use crate::rng;

/// Swaps the thread's generator back when dropped, also on error or panic.
struct Restore(Option<rng::Rng>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            rng::swap(prev);
        }
    }
}

/// Runs `f` with the thread's generator seeded with `seed`, restoring the previous generator
/// after: the same seed gives bit-identical draws.
///
/// ```
/// use ppl_core::{dist::Normal, handlers::seed, runtime::sample};
/// let a = seed(7, || sample("x", Normal::new(0.0, 1.0)?))?;
/// let b = seed(7, || sample("x", Normal::new(0.0, 1.0)?))?;
/// assert_eq!(a.to_scalar::<f32>()?, b.to_scalar::<f32>()?);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn seed<R>(seed: u64, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let _restore = Restore(Some(rng::swap(rng::from_seed(seed))));
    f()
}
