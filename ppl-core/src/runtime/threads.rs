//! The CPU thread count candle uses.

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
