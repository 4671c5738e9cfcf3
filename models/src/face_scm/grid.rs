//! A PNG of counterfactual faces: original, reconstruction, each intervention and its true
//! counterfactual, one face per row.

use std::path::Path;

use ppl_core::{Error, Result};

use super::counterfactual::{counterfactual, FaceCfOptions, FaceIntervention};
use super::data::{downsample, FaceData};
use crate::data::cartoon::{images_tensor, CartoonFaces, SIZE};
use crate::data::image::{write_png, PixelScale};
use crate::report::grid::ImageGrid;

/// Writes a grid of counterfactuals of `units` to `path` (PNG) and returns nothing else:
/// columns are the original (at the model's size), the reconstruction, then for every
/// intervention our counterfactual and the generator's true counterfactual (same noise, pooled
/// the same way); rows are faces. Tiles are drawn `scale` times enlarged.
pub fn write_counterfactual_grid(
    scm: &super::FaceScm,
    units: &FaceData,
    faces: &CartoonFaces,
    interventions: &[FaceIntervention],
    opts: &FaceCfOptions,
    scale: usize,
    path: impl AsRef<Path>,
) -> Result<()> {
    let n = units.len();
    if n == 0 || interventions.is_empty() {
        return Err(Error::usage(
            "write_counterfactual_grid needs at least one face and one intervention",
        ));
    }
    let dev = scm.device().clone();
    let pool = SIZE / scm.config().image_size;
    let mut headers = vec!["original".to_string(), "recon".to_string()];
    for iv in interventions {
        headers.push(iv.label());
        headers.push("true".to_string());
    }
    let cols = headers.len();
    let mut grid = ImageGrid::new(n, cols)?
        .scale(scale.max(1))
        .text_scale(1)
        .column_headers(headers);
    let original = (units.images.to_device(&dev)? * 255.0)?;
    for (c, iv) in interventions.iter().enumerate() {
        let cf = counterfactual(scm, units, iv, opts)?;
        let truth = units
            .samples
            .iter()
            .map(|s| faces.counterfactual(s, &iv.actions()))
            .collect::<Result<Vec<_>>>()?;
        let true_imgs = downsample(&images_tensor(&truth, PixelScale::Byte, &dev)?, pool)?;
        for r in 0..n {
            if c == 0 {
                grid.set_tensor(r, 0, &original.get(r)?, PixelScale::Byte)?;
                grid.set_tensor(r, 1, &cf.factual_loc.get(r)?, PixelScale::Byte)?;
            }
            grid.set_tensor(r, 2 + 2 * c, &cf.image.get(r)?, PixelScale::Byte)?;
            grid.set_tensor(r, 3 + 2 * c, &true_imgs.get(r)?, PixelScale::Byte)?;
        }
    }
    write_png(path, &grid.render()?)
}
