//! Labelled grids of images: rows × columns of tiles (e.g. one row per unit, one column per
//! intervention), with column headers and row labels in the built-in font.
//!
//! Every cell has the size of the largest tile times the scale; smaller tiles are centred.
//! The layout, all in pixels with `p` the padding, `s` the text scale, `H = 9s` the text height
//! and `label` the widest row label ([`font::text_width`]):
//!
//! - width = `p + (label + p if any row label) + cols × cell_w + (cols − 1) × p + p`,
//! - height = `p + (H + p if a title) + (H + p if any column header) + rows × cell_h +
//!   (rows − 1) × p + p`.

use std::path::Path;

use candle_core::Tensor;
use ppl_core::{Error, Result};

use super::canvas::{Canvas, Rgb};
use super::font;
use crate::data::image::{write_png, Image, PixelScale};

const TEXT: Rgb = Rgb(40, 40, 40);
const EMPTY: Rgb = Rgb(235, 235, 235);

/// Where an [`ImageGrid`]'s parts lie, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Cell width (widest tile × scale).
    pub cell_width: usize,
    /// Cell height (tallest tile × scale).
    pub cell_height: usize,
    /// The first column of the first cell column.
    pub cells_left: usize,
    /// The first row of the first cell row.
    pub cells_top: usize,
    /// Pixels between cells and around the border.
    pub padding: usize,
}

impl GridLayout {
    /// The top-left pixel of cell (`row`, `col`).
    pub fn cell_origin(&self, row: usize, col: usize) -> (usize, usize) {
        (
            self.cells_left + col * (self.cell_width + self.padding),
            self.cells_top + row * (self.cell_height + self.padding),
        )
    }
}

/// A grid of images with headers and labels.
///
/// ```
/// use models::report::grid::ImageGrid;
/// use models::data::image::Image;
/// let mut grid = ImageGrid::new(1, 2)?
///     .scale(4)
///     .column_headers(["factual", "do(t=5)"])
///     .row_labels(["unit 0"]);
/// grid.set(0, 0, Image::gray(2, 2, vec![0, 255, 255, 0])?)?;
/// grid.set(0, 1, Image::gray(2, 2, vec![255, 0, 0, 255])?)?;
/// let image = grid.render()?;
/// assert_eq!(image.height(), grid.layout()?.height);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    rows: usize,
    cols: usize,
    cells: Vec<Option<Image>>,
    headers: Vec<String>,
    labels: Vec<String>,
    title: String,
    scale: usize,
    text_scale: usize,
    padding: usize,
    background: Rgb,
}

impl ImageGrid {
    /// An empty `rows × cols` grid (tile scale 1, text scale 2, padding 8, white background).
    pub fn new(rows: usize, cols: usize) -> Result<ImageGrid> {
        if rows == 0 || cols == 0 {
            return Err(Error::usage(format!(
                "an image grid needs at least one row and column, got {rows}x{cols}"
            )));
        }
        Ok(ImageGrid {
            rows,
            cols,
            cells: vec![None; rows * cols],
            headers: Vec::new(),
            labels: Vec::new(),
            title: String::new(),
            scale: 1,
            text_scale: 2,
            padding: 8,
            background: Rgb::WHITE,
        })
    }

    /// Each tile pixel becomes a `k × k` block (k ≥ 1).
    pub fn scale(mut self, k: usize) -> ImageGrid {
        self.scale = k.max(1);
        self
    }

    /// The integer scale of the text (≥ 1).
    pub fn text_scale(mut self, k: usize) -> ImageGrid {
        self.text_scale = k.max(1);
        self
    }

    /// Pixels between cells and around the border.
    pub fn padding(mut self, p: usize) -> ImageGrid {
        self.padding = p;
        self
    }

    /// The background colour.
    pub fn background(mut self, c: Rgb) -> ImageGrid {
        self.background = c;
        self
    }

    /// A title above the grid.
    pub fn title(mut self, title: impl Into<String>) -> ImageGrid {
        self.title = title.into();
        self
    }

    /// Headers above the columns (at most one per column; extra ones are an error at
    /// rendering).
    pub fn column_headers<S: Into<String>>(
        mut self,
        headers: impl IntoIterator<Item = S>,
    ) -> ImageGrid {
        self.headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Labels left of the rows (at most one per row).
    pub fn row_labels<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> ImageGrid {
        self.labels = labels.into_iter().map(Into::into).collect();
        self
    }

    fn slot(&self, row: usize, col: usize) -> Result<usize> {
        if row >= self.rows || col >= self.cols {
            return Err(Error::usage(format!(
                "cell ({row}, {col}) is outside the {}x{} grid",
                self.rows, self.cols
            )));
        }
        Ok(row * self.cols + col)
    }

    /// Puts `image` in cell (`row`, `col`).
    pub fn set(&mut self, row: usize, col: usize, image: Image) -> Result<()> {
        let at = self.slot(row, col)?;
        self.cells[at] = Some(image);
        Ok(())
    }

    /// Puts a `[h, w]`, `[1, h, w]` or `[3, h, w]` tensor with values on `scale` in cell
    /// (`row`, `col`).
    pub fn set_tensor(
        &mut self,
        row: usize,
        col: usize,
        t: &Tensor,
        scale: PixelScale,
    ) -> Result<()> {
        self.set(row, col, Image::from_tensor(t, scale)?)
    }

    /// Fills row `row` from a batch `[n, h, w]` or `[n, c, h, w]` (c = 1 or 3), image `i`
    /// going to column `i`; the batch must have one image per column.
    pub fn set_row(&mut self, row: usize, batch: &Tensor, scale: PixelScale) -> Result<()> {
        let n = batch.dims().first().copied().unwrap_or(0);
        if batch.rank() < 3 || n != self.cols {
            return Err(Error::usage(format!(
                "row {row} of a {}-column grid takes a batch [{}, (c,) h, w], got {:?}",
                self.cols,
                self.cols,
                batch.dims()
            )));
        }
        self.slot(row, 0)?;
        for col in 0..n {
            self.set_tensor(row, col, &batch.get(col)?, scale)?;
        }
        Ok(())
    }

    /// The pixel layout (fails when no cell holds an image or when there are more headers or
    /// labels than columns or rows).
    pub fn layout(&self) -> Result<GridLayout> {
        if self.headers.len() > self.cols || self.labels.len() > self.rows {
            return Err(Error::usage(format!(
                "a {}x{} grid got {} column headers and {} row labels",
                self.rows,
                self.cols,
                self.headers.len(),
                self.labels.len()
            )));
        }
        let tiles = self.cells.iter().flatten();
        let w = tiles.clone().map(Image::width).max();
        let h = tiles.map(Image::height).max();
        let (Some(w), Some(h)) = (w, h) else {
            return Err(Error::usage("an image grid needs at least one image"));
        };
        let (p, s) = (self.padding, self.text_scale);
        let th = font::text_height(s);
        let (cell_w, cell_h) = (w * self.scale, h * self.scale);
        let label_w = self
            .labels
            .iter()
            .map(|l| font::text_width(l, s))
            .max()
            .unwrap_or(0);
        let cells_left = p + if self.labels.is_empty() {
            0
        } else {
            label_w + p
        };
        let mut cells_top = p;
        if !self.title.is_empty() {
            cells_top += th + p;
        }
        if !self.headers.is_empty() {
            cells_top += th + p;
        }
        Ok(GridLayout {
            width: cells_left + self.cols * cell_w + (self.cols - 1) * p + p,
            height: cells_top + self.rows * cell_h + (self.rows - 1) * p + p,
            cell_width: cell_w,
            cell_height: cell_h,
            cells_left,
            cells_top,
            padding: p,
        })
    }

    /// Draws the grid as an RGB image; empty cells are light grey.
    pub fn render(&self) -> Result<Image> {
        let l = self.layout()?;
        let mut c = Canvas::new(l.width, l.height, self.background)?;
        let (p, s) = (self.padding as i64, self.text_scale);
        let th = font::text_height(s) as i64;
        let cap = (7 * s) as i64;
        if !self.title.is_empty() {
            c.text(p, p, &self.title, s, TEXT);
            c.text(p + 1, p, &self.title, s, TEXT);
        }
        let header_top = l.cells_top as i64 - p - th;
        for (col, h) in self.headers.iter().enumerate() {
            let (x, _) = l.cell_origin(0, col);
            let w = font::text_width(h, s) as i64;
            let x = x as i64 + (l.cell_width as i64 - w) / 2;
            c.text(x, header_top, h, s, TEXT);
        }
        for (row, label) in self.labels.iter().enumerate() {
            let (_, y) = l.cell_origin(row, 0);
            let w = font::text_width(label, s) as i64;
            let x = l.cells_left as i64 - p - w;
            c.text(
                x,
                y as i64 + (l.cell_height as i64 - cap) / 2,
                label,
                s,
                TEXT,
            );
        }
        for row in 0..self.rows {
            for col in 0..self.cols {
                let (x, y) = l.cell_origin(row, col);
                let (x, y) = (x as i64, y as i64);
                match &self.cells[row * self.cols + col] {
                    Some(img) => {
                        let dx = (l.cell_width - img.width() * self.scale) / 2;
                        let dy = (l.cell_height - img.height() * self.scale) / 2;
                        c.blit(img, x + dx as i64, y + dy as i64, self.scale);
                    }
                    None => c.fill_rect(x, y, l.cell_width as i64, l.cell_height as i64, EMPTY),
                }
            }
        }
        Ok(c.to_image())
    }

    /// Draws the grid and writes it to `path` as a PNG, atomically.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        write_png(path, &self.render()?)
    }
}
