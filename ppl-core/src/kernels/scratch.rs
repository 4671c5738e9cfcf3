//! Per-thread scratch buffers that outlive one kernel call.
//!
//! Freshly allocated buffers of a few hundred kilobytes come from `mmap` and go back with
//! `munmap`, which costs page faults and cross-core TLB shootdowns on every call (on the B4
//! layers these took about as long as the patch extraction itself). Each thread instead keeps
//! its buffers and reuses them; the pool workers that run the kernels live as long as the
//! process. A thread keeps the largest buffer it was asked for (one image's patch matrix, plus
//! one weight).

use std::cell::Cell;

use super::gemm::Element;

/// Which of a thread's buffers to use; one call uses each slot at most once at a time.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// Per-task patch and pixel buffers.
    Task,
    /// The reordered weight of one call.
    Weight,
}

/// Element types with per-thread scratch storage.
pub(crate) trait Scratch: Element {
    /// Takes the thread's buffer for `slot`, leaving an empty one behind.
    fn take(slot: Slot) -> Vec<Self>;
    /// Gives a buffer back to the thread's `slot`.
    fn put(slot: Slot, buf: Vec<Self>);
}

macro_rules! scratch_impl {
    ($t:ty, $key:ident) => {
        thread_local! {
            static $key: [Cell<Vec<$t>>; 2] =
                const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
        }
        impl Scratch for $t {
            fn take(slot: Slot) -> Vec<Self> {
                $key.with(|s| s[slot as usize].take())
            }
            fn put(slot: Slot, buf: Vec<Self>) {
                $key.with(|s| s[slot as usize].set(buf))
            }
        }
    };
}

scratch_impl!(f32, SCRATCH_F32);
scratch_impl!(f64, SCRATCH_F64);

/// Runs `f` on `len` elements of this thread's buffer for `slot` (contents unspecified).
///
/// Re-entrant: a nested call on the same slot (a thread pool may run another task on this
/// thread while a parallel product waits) finds the slot empty and allocates its own buffer.
pub(crate) fn with_scratch<T: Scratch, R>(
    slot: Slot,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buf = T::take(slot);
    if buf.len() < len {
        buf.resize(len, T::ZERO);
    }
    let out = f(&mut buf[..len]);
    T::put(slot, buf);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_nested_use_gets_its_own() {
        let first = with_scratch::<f32, _>(Slot::Task, 100, |b| {
            b.fill(2.0);
            // Nested use of the same slot: a separate buffer, still of the asked length.
            let inner = with_scratch::<f32, _>(Slot::Task, 10, |c| {
                c.fill(3.0);
                c.as_ptr() as usize
            });
            assert_ne!(inner, b.as_ptr() as usize);
            b.as_ptr() as usize
        });
        // The outer buffer was put back last and is found again, contents kept.
        with_scratch::<f32, _>(Slot::Task, 50, |b| {
            assert_eq!(b.as_ptr() as usize, first);
            assert!(b.iter().all(|&v| v == 2.0));
        });
    }
}
