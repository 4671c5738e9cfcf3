//! Fixed normalisations of thickness and intensity, so that flows and networks see values of
//! order one.
//!
//! - Thickness (pixels, `t = 0.5 + Gamma(10, rate 5)`, mean 2.5, sd 0.63) is modelled on a log
//!   scale: `log t ≈ 0.88 ± 0.25`, so the network input is `t̃ = (ln t − 0.88) / 0.25` and the
//!   thickness flow ends with `exp(0.88 + 0.25 ·)`.
//! - Intensity (grey levels in `(64, 255)`, the range of the data's mechanism
//!   `64 + 191 · sigmoid(..)`) is modelled through the same squashing: the intensity flow ends
//!   with `64 + 191 · sigmoid(·)`, and the network input is `ĩ = (i − 159.5) / 95.5 ∈ (−1, 1)`.
//!
//! The constants are properties of the data generator's law, not fitted, so a checkpoint needs
//! no extra state.

use candle_core::Tensor;
use ppl_core::Result;

/// Mean of `ln t` under the data's thickness law.
pub const LOG_THICKNESS_LOC: f64 = 0.88;
/// Standard deviation of `ln t` under the data's thickness law.
pub const LOG_THICKNESS_SCALE: f64 = 0.25;
/// The lowest intensity of the data's mechanism.
pub const INTENSITY_LOW: f64 = 64.0;
/// The span of the data's intensity mechanism (`255 − 64`).
pub const INTENSITY_SPAN: f64 = 191.0;

/// The network input of thickness `t` (pixels): `(ln t − 0.88) / 0.25`.
pub fn thickness_input(t: &Tensor) -> Result<Tensor> {
    Ok(t.log()?.affine(
        1.0 / LOG_THICKNESS_SCALE,
        -LOG_THICKNESS_LOC / LOG_THICKNESS_SCALE,
    )?)
}

/// The network input of intensity `i` (grey levels): `(i − 159.5) / 95.5`.
pub fn intensity_input(i: &Tensor) -> Result<Tensor> {
    let half = INTENSITY_SPAN / 2.0;
    Ok(i.affine(1.0 / half, -(INTENSITY_LOW + half) / half)?)
}
