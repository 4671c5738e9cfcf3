//! Bootstrap intervals of any metric: the median over resamples ± 2 standard deviations, the
//! form in which Ramaswamy et al. (2021) report their fairness figures.
//!
//! ```
//! use models::fairness::bootstrap::bootstrap;
//!
//! let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
//! let mean = |ix: &[usize]| Ok(ix.iter().map(|&i| x[i]).sum::<f64>() / ix.len() as f64);
//! let b = bootstrap(x.len(), 500, 7, mean)?;
//! assert!(b.low() < 4.5 && 4.5 < b.high());
//! # Ok::<(), ppl_core::Error>(())
//! ```

use ppl_core::rng;
use ppl_core::{Error, Result};
use rand::Rng as _;

/// A metric's bootstrap distribution, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// The median over resamples.
    pub median: f64,
    /// The standard deviation over resamples (`n − 1` in the denominator).
    pub sd: f64,
    /// The metric on every resample, in the order drawn.
    pub values: Vec<f64>,
}

impl Bootstrap {
    /// `median − 2·sd`.
    pub fn low(&self) -> f64 {
        self.median - 2.0 * self.sd
    }

    /// `median + 2·sd`.
    pub fn high(&self) -> f64 {
        self.median + 2.0 * self.sd
    }

    /// Whether `x` lies in `[low, high]`.
    pub fn contains(&self, x: f64) -> bool {
        self.low() <= x && x <= self.high()
    }
}

/// Evaluates `metric` on `resamples` (≥ 2) resamples with replacement of the indices `0..n`,
/// drawn from a generator seeded with `seed`. The metric receives each resample's indices and
/// may fail (e.g. a resample without positives for average precision): its first error is
/// returned as is. A non-finite metric value is an error naming the resample.
pub fn bootstrap(
    n: usize,
    resamples: usize,
    seed: u64,
    mut metric: impl FnMut(&[usize]) -> Result<f64>,
) -> Result<Bootstrap> {
    if n == 0 {
        return Err(Error::usage("bootstrap: no samples"));
    }
    if resamples < 2 {
        return Err(Error::param(
            "bootstrap",
            "resamples",
            format!("needs at least 2 for a standard deviation, got {resamples}"),
        ));
    }
    let mut r = rng::from_seed(seed);
    let mut ix = vec![0usize; n];
    let mut values = Vec::with_capacity(resamples);
    for b in 0..resamples {
        for i in ix.iter_mut() {
            *i = r.random_range(0..n);
        }
        let v = metric(&ix)?;
        if !v.is_finite() {
            return Err(Error::usage(format!(
                "bootstrap resample {b}: the metric is {v}"
            )));
        }
        values.push(v);
    }
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len();
    let median = if m % 2 == 1 {
        sorted[m / 2]
    } else {
        0.5 * (sorted[m / 2 - 1] + sorted[m / 2])
    };
    let mean = values.iter().sum::<f64>() / m as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
    Ok(Bootstrap {
        median,
        sd: var.sqrt(),
        values,
    })
}
