//! Figures, tables and checkpoints for tutorials and audits: everything a run writes to its
//! output folder so that a reader can follow it and a rerun can resume it.
//!
//! - [`font`]: a built-in 5 × 7 bitmap font (printable ASCII and `± × μ σ ° ·`).
//! - [`canvas`]: an RGB raster with lines, rectangles, text and images; the Okabe–Ito palette.
//! - [`plot`]: line plots (training curves, log-y, smoothing) and grouped bar charts with
//!   interval whiskers, with nice axis ticks.
//! - [`grid`]: labelled grids of images (e.g. factual and counterfactual images side by side).
//! - [`table`]: Markdown tables and the `report.md` builder.
//! - [`checkpoint`]: parameters, optimiser state and progress saved atomically and resumed
//!   only under the same configuration.
//!
//! Every file is written atomically (see [`crate::data::image::write_atomic`]).

use std::path::Path;

use ppl_core::{Error, Result};
use serde::Serialize;

use crate::data::image::write_atomic;

pub mod canvas;
pub mod checkpoint;
pub mod font;
pub mod grid;
pub mod plot;
pub mod table;

/// Writes `value` to `path` as pretty-printed JSON (e.g. a run's `report.json`), atomically.
/// Non-finite floats are written as `null`, as JSON has no NaN.
pub fn write_json<T: Serialize + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::usage(format!("{}: cannot write as JSON: {e}", path.display())))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}
