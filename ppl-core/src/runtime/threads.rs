//! Process-wide CPU settings that candle's performance depends on: its thread count, and how
//! the allocator treats the large short-lived buffers every tensor op allocates.

/// Pins candle's CPU thread count: sets `RAYON_NUM_THREADS` to the machine's available
/// parallelism when it is unset, and returns the count in force.
///
/// Why: with the variable unset, candle 0.11 recounts the physical cores (reading
/// `/proc/cpuinfo`) on every matrix product; on small models that costs more than the
/// arithmetic (measured on B2, a 1000 × 5 regression: 360 → 210 µs per SVI step). Call it first
/// thing in `main`, before any thread is spawned (setting an environment variable while other
/// threads read the environment is a race); `ppl-bench` and the examples do.
pub fn pin_thread_count() -> usize {
    let current = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0);
    match current {
        Some(n) => n,
        None => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            n
        }
    }
}

/// Makes glibc's allocator keep freed memory for reuse instead of returning every large block
/// to the kernel; returns whether the setting took (always `false` off glibc, where it is a
/// no-op).
///
/// Why: every candle op allocates its output, and glibc serves blocks above its mmap threshold
/// (128 KiB at start) with fresh `mmap`s, so each op on a 64 × 32 × 14 × 14 feature map pays
/// hundreds of page faults and, when freed, a cross-core TLB shootdown. Measured on a fused
/// ReLU forward + backward, page faults and shootdowns took more time than the arithmetic.
/// Raising the thresholds to 64 MiB (mmap) and 512 MiB (trim) keeps such blocks in the heap.
/// Call it first thing in `main`, like [`pin_thread_count`]; `ppl-bench` and the examples do.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only adjusts allocator parameters; it is called with valid options.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
