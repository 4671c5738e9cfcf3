//! Loaders for the MNIST and Morpho-MNIST files users download.
//!
//! - IDX images (magic `0x00000803`: count, rows, columns, then one byte per pixel) and IDX labels
//!   (magic `0x00000801`: count, then one byte per label), all integers big-endian. Plain or
//!   gzip-compressed files are told apart by their first bytes, not by the file name.
//! - Morpho-MNIST `*-morpho.csv`: a header line naming the columns, read by name, in either the
//!   original form `index,area,length,thickness,slant,width,height` or the DeepSCM form
//!   `index,thickness,intensity` (any extra numeric columns are kept too).
//!
//! A malformed file gives [`Error::Parse`] naming the file and the line: for the binary IDX files,
//! line 0 is the header and line `k` is record `k` (1-based), the first one that is incomplete.

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ppl_core::{Error, Result};

const IDX_IMAGES: u32 = 0x0000_0803;
const IDX_LABELS: u32 = 0x0000_0801;

/// The images of an IDX file: `count` images of `rows × cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// The number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// All pixels, image after image, rows top to bottom.
    pub data: Vec<u8>,
}

impl IdxImages {
    /// The pixels of image `k` (`None` past the end).
    pub fn image(&self, k: usize) -> Option<&[u8]> {
        let len = self.rows * self.cols;
        (k < self.count).then(|| &self.data[k * len..(k + 1) * len])
    }

    /// All images as a `[count, 1, rows, cols]` f32 tensor on `device`, values 0–255.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let v: Vec<f32> = self.data.iter().map(|&b| f32::from(b)).collect();
        Ok(Tensor::from_vec(
            v,
            (self.count, 1, self.rows, self.cols),
            device,
        )?)
    }
}

/// Reads a whole file, inflating it when it starts with the gzip magic `1f 8b`.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::parse(path, 0, format!("corrupt or truncated gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn idx_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    dims: usize,
    what: &str,
) -> Result<Vec<usize>> {
    // The magic first: a file of the wrong kind is named as such even when it is short.
    if bytes.len() >= 4 {
        let got = be_u32(bytes, 0);
        if got != magic {
            return Err(Error::parse(
                path,
                0,
                format!("bad magic number 0x{got:08x}: IDX {what} files start with 0x{magic:08x}"),
            ));
        }
    }
    let need = 4 + 4 * dims;
    if bytes.len() < need {
        return Err(Error::parse(
            path,
            0,
            format!(
                "truncated IDX header: {} bytes, an IDX {what} header has {need}",
                bytes.len()
            ),
        ));
    }
    Ok((0..dims)
        .map(|d| be_u32(bytes, 4 + 4 * d) as usize)
        .collect())
}

/// Checks that `body` holds exactly `count` records of `record` bytes.
fn check_records(path: &Path, body: &[u8], count: usize, record: usize, what: &str) -> Result<()> {
    let expected = count.checked_mul(record).ok_or_else(|| {
        Error::parse(
            path,
            0,
            format!("header claims {count} {what}s of {record} bytes: too large"),
        )
    })?;
    if body.len() < expected {
        let whole = body.len() / record.max(1);
        return Err(Error::parse(
            path,
            whole + 1,
            format!(
                "truncated: {what} {} of {count} is incomplete ({} of {expected} data bytes present)",
                whole + 1,
                body.len()
            ),
        ));
    }
    if body.len() > expected {
        return Err(Error::parse(
            path,
            count + 1,
            format!(
                "{} bytes after the last of the {count} {what}s the header announces",
                body.len() - expected
            ),
        ));
    }
    Ok(())
}

/// Reads an IDX image file (`*-images-idx3-ubyte`, plain or gzip).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let bytes = read_maybe_gzip(path)?;
    let dims = idx_header(path, &bytes, IDX_IMAGES, 3, "image")?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(Error::parse(
            path,
            0,
            format!("images of {rows}x{cols} pixels are empty"),
        ));
    }
    let record = rows.checked_mul(cols).ok_or_else(|| {
        Error::parse(
            path,
            0,
            format!("images of {rows}x{cols} pixels: too large"),
        )
    })?;
    let body = &bytes[16..];
    check_records(path, body, count, record, "image")?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        data: body.to_vec(),
    })
}

/// Reads an IDX label file (`*-labels-idx1-ubyte`, plain or gzip).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let bytes = read_maybe_gzip(path)?;
    let count = idx_header(path, &bytes, IDX_LABELS, 1, "label")?[0];
    let body = &bytes[8..];
    check_records(path, body, count, 1, "label")?;
    Ok(body.to_vec())
}

/// A Morpho-MNIST attribute table: the `index` column and every other column by name.
#[derive(Debug, Clone, PartialEq)]
pub struct MorphoCsv {
    index: Vec<usize>,
    // The file line of each row, for errors found after parsing.
    lines: Vec<usize>,
    columns: Vec<(String, Vec<f64>)>,
}

impl MorphoCsv {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table has no row.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The `index` column: the image each row describes.
    pub fn index(&self) -> &[usize] {
        &self.index
    }

    /// The column `name` (other than `index`), if present.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The names of the columns other than `index`, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    /// Stroke thickness (present in both forms).
    pub fn thickness(&self) -> &[f64] {
        // Construction guarantees the column (read_morpho_csv refuses a file without it).
        self.column("thickness").unwrap_or(&[])
    }

    /// Intensity (the DeepSCM form only).
    pub fn intensity(&self) -> Option<&[f64]> {
        self.column("intensity")
    }
}

/// Reads a Morpho-MNIST attribute CSV by its header names. `index` and `thickness` are
/// required; a leading column with an empty name (a pandas row index) is skipped; blank lines
/// are ignored.
pub fn read_morpho_csv(path: impl AsRef<Path>) -> Result<MorphoCsv> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(raw)
        .map_err(|e| Error::parse(path, 0, format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(k, l)| (k + 1, l.trim_end_matches('\r')));
    let (hline, header) = lines
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or_else(|| Error::parse(path, 1, "empty file: missing header"))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        return Err(Error::parse(
            path,
            hline,
            "missing header: the first line holds numbers, expected column names such as \
             index,thickness,intensity",
        ));
    }
    let skip_first = names.len() > 1 && names[0].is_empty();
    for (k, n) in names.iter().enumerate() {
        if n.is_empty() && !(k == 0 && skip_first) {
            return Err(Error::parse(
                path,
                hline,
                format!("column {} has no name", k + 1),
            ));
        }
        if names[..k].contains(n) && !n.is_empty() {
            return Err(Error::parse(
                path,
                hline,
                format!("column `{n}` appears twice"),
            ));
        }
    }
    let find = |want: &str| names.iter().position(|n| *n == want);
    let idx_col = find("index");
    let missing: Vec<&str> = ["index", "thickness"]
        .into_iter()
        .filter(|w| find(w).is_none())
        .collect();
    let idx_col = match (idx_col, missing.is_empty()) {
        (Some(c), true) => c,
        _ => {
            return Err(Error::parse(
                path,
                hline,
                format!("header `{header}` lacks the column(s) {missing:?}"),
            ))
        }
    };
    let value_cols: Vec<usize> = (0..names.len())
        .filter(|&k| k != idx_col && !(k == 0 && skip_first))
        .collect();
    let mut index = Vec::new();
    let mut rows_at = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); value_cols.len()];
    for (ln, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(Error::parse(
                path,
                ln,
                format!(
                    "expected {} fields ({}), got {}",
                    names.len(),
                    names.join(","),
                    fields.len()
                ),
            ));
        }
        let ix = fields[idx_col];
        // pandas may write integer indices as floats ("3.0"): accept whole numbers only.
        let i = ix
            .parse::<usize>()
            .ok()
            .or_else(|| {
                ix.parse::<f64>()
                    .ok()
                    .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v < 2f64.powi(52))
                    .map(|v| v as usize)
            })
            .ok_or_else(|| {
                Error::parse(
                    path,
                    ln,
                    format!("column `index`: `{ix}` is not a non-negative integer"),
                )
            })?;
        index.push(i);
        rows_at.push(ln);
        for (slot, &c) in values.iter_mut().zip(&value_cols) {
            let f = fields[c];
            let v = f
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Error::parse(
                        path,
                        ln,
                        format!("column `{}`: `{f}` is not a finite number", names[c]),
                    )
                })?;
            slot.push(v);
        }
    }
    let columns = value_cols
        .iter()
        .zip(values)
        .map(|(&c, v)| (names[c].to_string(), v))
        .collect();
    Ok(MorphoCsv {
        index,
        lines: rows_at,
        columns,
    })
}

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60 000 training images (`train-*`).
    Train,
    /// The 10 000 test images (`t10k-*`).
    Test,
}

impl Split {
    /// The file name prefix (`train` or `t10k`).
    pub fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// One split of MNIST or Morpho-MNIST, loaded from a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistSplit {
    /// The images.
    pub images: IdxImages,
    /// One label per image.
    pub labels: Vec<u8>,
    /// The Morpho-MNIST attributes, when `PREFIX-morpho.csv` is present.
    pub morpho: Option<MorphoCsv>,
}

fn first_existing(dir: &Path, stem: &str) -> Result<PathBuf> {
    let plain = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(Error::io(
            plain,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {stem} nor {stem}.gz exists here"),
            ),
        ))
    }
}

/// Loads `PREFIX-images-idx3-ubyte[.gz]`, `PREFIX-labels-idx1-ubyte[.gz]` and, if present,
/// `PREFIX-morpho.csv` from `dir`, checking that they describe the same number of images.
pub fn load_split(dir: impl AsRef<Path>, split: Split) -> Result<MnistSplit> {
    let dir = dir.as_ref();
    let p = split.prefix();
    let images = read_idx_images(first_existing(dir, &format!("{p}-images-idx3-ubyte"))?)?;
    let label_path = first_existing(dir, &format!("{p}-labels-idx1-ubyte"))?;
    let labels = read_idx_labels(&label_path)?;
    if labels.len() != images.count {
        return Err(Error::parse(
            &label_path,
            0,
            format!(
                "holds {} labels but the images file holds {} images",
                labels.len(),
                images.count
            ),
        ));
    }
    let csv_path = dir.join(format!("{p}-morpho.csv"));
    let morpho = if csv_path.is_file() {
        let m = read_morpho_csv(&csv_path)?;
        if m.len() != images.count {
            return Err(Error::parse(
                &csv_path,
                0,
                format!(
                    "holds {} rows but the images file holds {} images",
                    m.len(),
                    images.count
                ),
            ));
        }
        if let Some(row) = m.index().iter().position(|&i| i >= images.count) {
            return Err(Error::parse(
                &csv_path,
                m.lines[row],
                format!(
                    "index {} is past the last of the {} images",
                    m.index()[row],
                    images.count
                ),
            ));
        }
        Some(m)
    } else {
        None
    };
    Ok(MnistSplit {
        images,
        labels,
        morpho,
    })
}
