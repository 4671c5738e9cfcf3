//! Writing a glyph data set to disk: one PNG per glyph, a CSV of attributes and noise, and a
//! contact sheet.

use std::path::Path;

use ppl_core::{Error, Result};

use super::generate::MorphoGlyphs;
use super::skeleton::SIZE;
use crate::data::image::{write_contact_sheet, write_csv, write_png, Image, SheetOptions};

/// The columns of `attributes.csv`, in order.
pub const ATTRIBUTE_COLUMNS: [&str; 16] = [
    "index",
    "file",
    "label",
    "thickness",
    "intensity",
    "eps_t",
    "eps_i",
    "slant",
    "scale_x",
    "scale_y",
    "shift_x",
    "shift_y",
    "warp_0",
    "warp_1",
    "warp_2",
    "warp_3",
];

impl MorphoGlyphs {
    /// Writes `dir/images/NNNNN.png` for every glyph, `dir/attributes.csv` (the columns of
    /// [`ATTRIBUTE_COLUMNS`]; floats in shortest round-trip form, so the noise reloads exactly)
    /// and, when pixel noise is on, `dir/pixel_noise.csv` (`index` then one column per pixel,
    /// rows top to bottom). Every file is written atomically.
    pub fn export(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let images = dir.join("images");
        std::fs::create_dir_all(&images).map_err(|e| Error::io(&images, e))?;
        let mut rows = Vec::with_capacity(self.len());
        let mut noise_rows = Vec::new();
        for (k, s) in self.samples().iter().enumerate() {
            let file = format!("images/{k:05}.png");
            // The images hold whole grey levels 0–255, so the u8 cast is exact.
            let bytes: Vec<u8> = s.image.iter().map(|&v| v as u8).collect();
            write_png(dir.join(&file), &Image::gray(SIZE, SIZE, bytes)?)?;
            let n = &s.noise;
            let j = &n.jitter;
            let mut row = vec![k.to_string(), file, n.class.to_string()];
            row.extend(
                [
                    s.thickness,
                    s.intensity,
                    n.eps_t,
                    n.eps_i,
                    n.slant,
                    j.scale_x,
                    j.scale_y,
                    j.shift_x,
                    j.shift_y,
                    j.warp[0],
                    j.warp[1],
                    j.warp[2],
                    j.warp[3],
                ]
                .iter()
                .map(f64::to_string),
            );
            rows.push(row);
            if let Some(p) = &n.pixel_noise {
                let mut row = vec![k.to_string()];
                row.extend(p.iter().map(f32::to_string));
                noise_rows.push(row);
            }
        }
        write_csv(dir.join("attributes.csv"), &ATTRIBUTE_COLUMNS, &rows)?;
        if !noise_rows.is_empty() {
            let names: Vec<String> = std::iter::once("index".to_string())
                .chain((0..SIZE * SIZE).map(|p| format!("p{p}")))
                .collect();
            let header: Vec<&str> = names.iter().map(String::as_str).collect();
            write_csv(dir.join("pixel_noise.csv"), &header, &noise_rows)?;
        }
        Ok(())
    }

    /// Writes a contact sheet of the first `max` glyphs (all when `None`) to `path`, in a square
    /// grid with 2-pixel grey padding.
    pub fn write_contact_sheet(&self, path: impl AsRef<Path>, max: Option<usize>) -> Result<()> {
        let n = max.unwrap_or(self.len()).min(self.len());
        if n == 0 {
            return Err(Error::usage("a contact sheet needs at least one glyph"));
        }
        let images = self.images().narrow(0, 0, n)?;
        write_contact_sheet(path, &images, &SheetOptions::default())
    }
}
