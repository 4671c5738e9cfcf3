//! An RGB raster to draw figures on: crisp rectangles, anti-aliased lines, bitmap text and
//! images, then out as an [`Image`] or a PNG.
//!
//! Coordinates are in pixels, `x` to the right and `y` down; pixel `(i, j)` covers the square
//! `[i, i + 1) × [j, j + 1)`, so its centre is `(i + 0.5, j + 0.5)`. Everything drawn outside
//! the canvas is clipped.

use std::path::Path;

use ppl_core::{Error, Result};

use super::font;
use crate::data::image::{write_png, Image};

/// An 8-bit RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// White.
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    /// Black.
    pub const BLACK: Rgb = Rgb(0, 0, 0);

    /// `self` mixed with `other`: `t = 0` gives `self`, `t = 1` gives `other`.
    pub fn mix(self, other: Rgb, t: f64) -> Rgb {
        let t = t.clamp(0.0, 1.0);
        let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

/// The Okabe–Ito palette, told apart under the common colour-vision deficiencies, in the
/// order figures use it: blue, orange, bluish green, vermillion, reddish purple, sky blue,
/// black, yellow (last: it is faint on white).
pub const OKABE_ITO: [Rgb; 8] = [
    Rgb(0, 114, 178),
    Rgb(230, 159, 0),
    Rgb(0, 158, 115),
    Rgb(213, 94, 0),
    Rgb(204, 121, 167),
    Rgb(86, 180, 233),
    Rgb(0, 0, 0),
    Rgb(240, 228, 66),
];

/// The palette colour of series `i` (the palette repeats after 8).
pub fn palette(i: usize) -> Rgb {
    OKABE_ITO[i % OKABE_ITO.len()]
}

/// An RGB raster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Canvas {
    /// A `width × height` canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Result<Canvas> {
        if width == 0 || height == 0 {
            return Err(Error::usage(format!(
                "a canvas must not be empty, got {width}x{height}"
            )));
        }
        let data = [background.0, background.1, background.2].repeat(width * height);
        Ok(Canvas {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at column `x`, row `y` (`None` outside the canvas).
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y * self.width + x) * 3;
        Some(Rgb(self.data[at], self.data[at + 1], self.data[at + 2]))
    }

    fn index(&self, x: i64, y: i64) -> Option<usize> {
        let (w, h) = (self.width as i64, self.height as i64);
        (x >= 0 && y >= 0 && x < w && y < h).then(|| (y as usize * self.width + x as usize) * 3)
    }

    /// Sets the pixel at `(x, y)` (ignored outside the canvas).
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if let Some(at) = self.index(x, y) {
            self.data[at..at + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// Paints `c` over the pixel at `(x, y)` with opacity `alpha` in `[0, 1]`.
    pub fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f64) {
        if alpha <= 0.0 {
            return;
        }
        if let Some(at) = self.index(x, y) {
            let old = Rgb(self.data[at], self.data[at + 1], self.data[at + 2]);
            let new = old.mix(c, alpha);
            self.data[at..at + 3].copy_from_slice(&[new.0, new.1, new.2]);
        }
    }

    /// Fills the `w × h` rectangle whose top-left pixel is `(x, y)`.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + w).min(self.width as i64);
        let y1 = (y + h).min(self.height as i64);
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, c);
            }
        }
    }

    /// Outlines the `w × h` rectangle whose top-left pixel is `(x, y)` with a 1-pixel border.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        if w <= 0 || h <= 0 {
            return;
        }
        self.fill_rect(x, y, w, 1, c);
        self.fill_rect(x, y + h - 1, w, 1, c);
        self.fill_rect(x, y, 1, h, c);
        self.fill_rect(x + w - 1, y, 1, h, c);
    }

    /// An anti-aliased line of `width` pixels from `(x0, y0)` to `(x1, y1)` (continuous
    /// coordinates) with round caps, painted with opacity `alpha`.
    ///
    /// Each pixel is covered by how far its centre lies inside the stroke, so a horizontal
    /// line of width ≥ 2 fully covers the pixel row that contains it.
    #[allow(clippy::too_many_arguments)]
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, width: f64, c: Rgb, alpha: f64) {
        if ![x0, y0, x1, y1, width].iter().all(|v| v.is_finite()) || width <= 0.0 {
            return;
        }
        let r = width / 2.0;
        let pad = r + 1.0;
        let (lx, hx) = (x0.min(x1) - pad, x0.max(x1) + pad);
        let (ly, hy) = (y0.min(y1) - pad, y0.max(y1) + pad);
        let xa = lx.floor().max(0.0) as i64;
        let xb = hx.ceil().min(self.width as f64) as i64;
        let ya = ly.floor().max(0.0) as i64;
        let yb = hy.ceil().min(self.height as f64) as i64;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        for py in ya..yb {
            for px in xa..xb {
                let (cx, cy) = (px as f64 + 0.5, py as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (x0 + t * dx - cx, y0 + t * dy - cy);
                let d = (qx * qx + qy * qy).sqrt();
                let cover = (r + 0.5 - d).clamp(0.0, 1.0);
                if cover > 0.0 {
                    self.blend(px, py, c, cover * alpha);
                }
            }
        }
    }

    /// A polyline through `points` (see [`line`](Self::line)); non-finite points break it.
    pub fn polyline(&mut self, points: &[(f64, f64)], width: f64, c: Rgb, alpha: f64) {
        // The segments' coverages are merged on a mask first and the colour painted once, so the
        // joints of a translucent line are not darker than its segments.
        let mut layer = Canvas {
            width: self.width,
            height: self.height,
            data: vec![0; self.width * self.height * 3],
        };
        let white = Rgb(255, 255, 255);
        let mut drawn = false;
        for w in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if [x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
                layer.line(x0, y0, x1, y1, width, white, 1.0);
                drawn = true;
            }
        }
        if points.len() == 1 && points[0].0.is_finite() && points[0].1.is_finite() {
            let (x, y) = points[0];
            layer.line(x, y, x, y, width, white, 1.0);
            drawn = true;
        }
        if !drawn {
            return;
        }
        for p in 0..self.width * self.height {
            let cover = layer.data[p * 3];
            if cover > 0 {
                let (x, y) = ((p % self.width) as i64, (p / self.width) as i64);
                self.blend(x, y, c, f64::from(cover) / 255.0 * alpha);
            }
        }
    }

    /// Draws `text` on one line with its top-left corner at `(x, y)`, each font pixel a
    /// `scale × scale` block; returns the width drawn. Characters the font lacks are drawn as
    /// [`font::REPLACEMENT`].
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        let s = scale.max(1) as i64;
        for (i, ch) in text.chars().enumerate() {
            let g = font::glyph_or_replacement(ch);
            let ox = x + (i * font::ADVANCE) as i64 * s;
            for gy in 0..font::GLYPH_HEIGHT {
                for gx in 0..font::GLYPH_WIDTH {
                    if g.is_set(gx, gy) {
                        self.fill_rect(ox + gx as i64 * s, y + gy as i64 * s, s, s, c);
                    }
                }
            }
        }
        font::text_width(text, scale.max(1))
    }

    /// Draws `text` rotated a quarter turn anticlockwise (reading bottom to top), the rotated
    /// block's top-left corner at `(x, y)`; it is [`font::text_height`] wide and
    /// [`font::text_width`] tall.
    pub fn text_vertical(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) {
        let s = scale.max(1) as i64;
        let total = font::text_width(text, scale.max(1)) as i64;
        for (i, ch) in text.chars().enumerate() {
            let g = font::glyph_or_replacement(ch);
            let along = (i * font::ADVANCE) as i64 * s;
            for gy in 0..font::GLYPH_HEIGHT {
                for gx in 0..font::GLYPH_WIDTH {
                    if g.is_set(gx, gy) {
                        // Glyph column runs up the page, glyph row runs right.
                        let px = x + gy as i64 * s;
                        let py = y + total - along - (gx as i64 + 1) * s;
                        self.fill_rect(px, py, s, s, c);
                    }
                }
            }
        }
    }

    /// Copies `image` (grey or RGB) with its top-left corner at `(x, y)`, each pixel a
    /// `scale × scale` block.
    pub fn blit(&mut self, image: &Image, x: i64, y: i64, scale: usize) {
        let s = scale.max(1) as i64;
        for iy in 0..image.height() {
            for ix in 0..image.width() {
                let c = match image.pixel(ix, iy) {
                    Some([g]) => Rgb(*g, *g, *g),
                    Some([r, g, b]) => Rgb(*r, *g, *b),
                    _ => continue,
                };
                self.fill_rect(x + ix as i64 * s, y + iy as i64 * s, s, s, c);
            }
        }
    }

    /// The canvas as an RGB [`Image`].
    pub fn to_image(&self) -> Image {
        Image::rgb(self.width, self.height, self.data.clone())
            .expect("a canvas is never empty and holds width * height * 3 samples")
    }

    /// Writes the canvas to `path` as a PNG, atomically.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        write_png(path, &self.to_image())
    }
}
