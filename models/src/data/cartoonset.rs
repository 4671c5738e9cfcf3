//! The Google Cartoon Set: per-image attribute CSVs and RGBA PNGs.
//!
//! Each image `csNNN.png` (500×500 RGBA) comes with `csNNN.csv`, one line per attribute:
//! `"attr_name", value, n_variants`. Lines are read by name, in any order; every one of the 18
//! attributes must appear once, with the cardinality of [`ATTRIBUTES`] and a value below it.
//! Images are flattened onto white and can be shrunk by area averaging (a box filter, which
//! does not alias the thin outlines the way bilinear sampling would at 500 → 64). Malformed
//! files give [`Error::Parse`] naming the file and line.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ppl_core::{Error, Result};

use crate::data::image::{read_png_over, Image, PixelScale};

/// The 18 attributes and their numbers of variants, in the order rows are stored.
pub const ATTRIBUTES: [(&str, usize); 18] = [
    ("eye_angle", 3),
    ("eye_lashes", 2),
    ("eye_lid", 2),
    ("chin_length", 3),
    ("eyebrow_weight", 2),
    ("eyebrow_shape", 14),
    ("eyebrow_thickness", 4),
    ("face_shape", 7),
    ("facial_hair", 15),
    ("hair", 111),
    ("eye_color", 5),
    ("face_color", 11),
    ("hair_color", 10),
    ("glasses", 12),
    ("glasses_color", 7),
    ("eye_slant", 3),
    ("eyebrow_width", 3),
    ("eye_eyebrow_distance", 3),
];

/// The number of attributes.
pub const NUM_ATTRIBUTES: usize = ATTRIBUTES.len();

/// The position of attribute `name` in [`ATTRIBUTES`].
pub fn attribute_index(name: &str) -> Option<usize> {
    ATTRIBUTES.iter().position(|(n, _)| *n == name)
}

/// Reads one attribute CSV: the values in [`ATTRIBUTES`] order.
pub fn read_attributes(path: impl AsRef<Path>) -> Result<[usize; NUM_ATTRIBUTES]> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::parse(path, 0, "the file is not UTF-8 text"),
        _ => Error::io(path, e),
    })?;
    parse_attributes(path, &text)
}

/// Parses the text of one attribute CSV; `path` names it in errors.
pub fn parse_attributes(path: &Path, text: &str) -> Result<[usize; NUM_ATTRIBUTES]> {
    let mut values = [None::<usize>; NUM_ATTRIBUTES];
    let mut last = 0;
    for (k, line) in text.lines().enumerate() {
        let ln = k + 1;
        last = ln;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 3 {
            return Err(Error::parse(
                path,
                ln,
                format!(
                    "expected `\"name\", value, n_variants`, found {} field(s)",
                    f.len()
                ),
            ));
        }
        let name = f[0]
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(f[0]);
        let idx = attribute_index(name)
            .ok_or_else(|| Error::parse(path, ln, format!("unknown attribute `{name}`")))?;
        let int = |s: &str, what: &str| {
            s.parse::<usize>().map_err(|_| {
                Error::parse(
                    path,
                    ln,
                    format!("`{name}`: the {what} `{s}` is not a non-negative integer"),
                )
            })
        };
        let value = int(f[1], "value")?;
        let n = int(f[2], "number of variants")?;
        let want = ATTRIBUTES[idx].1;
        if n != want {
            return Err(Error::parse(
                path,
                ln,
                format!("`{name}` has {want} variants, the file says {n}"),
            ));
        }
        if value >= n {
            return Err(Error::parse(
                path,
                ln,
                format!("`{name}`: value {value} is not below its {n} variants"),
            ));
        }
        if values[idx].replace(value).is_some() {
            return Err(Error::parse(
                path,
                ln,
                format!("attribute `{name}` appears twice"),
            ));
        }
    }
    let mut out = [0; NUM_ATTRIBUTES];
    for (i, v) in values.iter().enumerate() {
        out[i] = v.ok_or_else(|| {
            Error::parse(
                path,
                last + 1,
                format!(
                    "the file is truncated: attribute `{}` is missing",
                    ATTRIBUTES[i].0
                ),
            )
        })?;
    }
    Ok(out)
}

/// Shrinks (or grows) an image by area averaging: each output pixel is the mean of the
/// source area it covers, fractional pixels weighted by their overlap.
pub fn resize_area(img: &Image, width: usize, height: usize) -> Result<Image> {
    if width == 0 || height == 0 {
        return Err(Error::usage(format!(
            "resize: the target must not be empty, got {width}x{height}"
        )));
    }
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let src = img.data();
    // The source pixels that output pixel `o` covers, with their overlap.
    let spans = |n_out: usize, n_in: usize| -> Vec<Vec<(usize, f64)>> {
        let scale = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|o| {
                let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
                let lo = a.floor() as usize;
                let hi = (b.ceil() as usize).min(n_in);
                (lo..hi)
                    .map(|i| (i, (b.min((i + 1) as f64) - a.max(i as f64)).max(0.0)))
                    .collect()
            })
            .collect()
    };
    let xs = spans(width, w);
    let ys = spans(height, h);
    let mut out = Vec::with_capacity(width * height * c);
    for ys_o in &ys {
        for xs_o in &xs {
            for ch in 0..c {
                let (mut acc, mut wsum) = (0.0, 0.0);
                for &(y, wy) in ys_o {
                    for &(x, wx) in xs_o {
                        acc += f64::from(src[(y * w + x) * c + ch]) * wx * wy;
                        wsum += wx * wy;
                    }
                }
                out.push((acc / wsum).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Image::new(width, height, c, out)
}

/// Reads a Cartoon Set PNG as RGB with its alpha flattened onto white, shrunk to
/// `size`×`size` by area averaging when `size` is given.
pub fn read_image(path: impl AsRef<Path>, size: Option<usize>) -> Result<Image> {
    let img = read_png_over(path, 255)?;
    let img = if img.channels() == 1 {
        let data = img.data().iter().flat_map(|&g| [g, g, g]).collect();
        Image::rgb(img.width(), img.height(), data)?
    } else {
        img
    };
    match size {
        Some(s) => resize_area(&img, s, s),
        None => Ok(img),
    }
}

/// A Cartoon Set folder: every `*.csv` with its PNG of the same stem.
#[derive(Debug, Clone)]
pub struct CartoonSet {
    dir: PathBuf,
    stems: Vec<String>,
    attributes: Vec<[usize; NUM_ATTRIBUTES]>,
}

impl CartoonSet {
    /// Reads the attribute CSVs of `dir` (sorted by name); images are read on demand.
    pub fn open(dir: impl AsRef<Path>) -> Result<CartoonSet> {
        let dir = dir.as_ref().to_path_buf();
        let mut stems = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "csv") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    stems.push(stem.to_string());
                }
            }
        }
        stems.sort();
        let attributes = stems
            .iter()
            .map(|s| read_attributes(dir.join(format!("{s}.csv"))))
            .collect::<Result<_>>()?;
        Ok(CartoonSet {
            dir,
            stems,
            attributes,
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.stems.len()
    }

    /// Whether the folder has no images.
    pub fn is_empty(&self) -> bool {
        self.stems.is_empty()
    }

    /// The file stems (`cs1048486361028912`), sorted.
    pub fn stems(&self) -> &[String] {
        &self.stems
    }

    /// The attribute values of image `i`, in [`ATTRIBUTES`] order.
    pub fn attributes(&self, i: usize) -> Option<&[usize; NUM_ATTRIBUTES]> {
        self.attributes.get(i)
    }

    /// Image `i`, flattened onto white and shrunk to `size` if given.
    pub fn image(&self, i: usize, size: Option<usize>) -> Result<Image> {
        let stem = self.stems.get(i).ok_or_else(|| {
            Error::usage(format!(
                "image {i} is out of range (the set has {})",
                self.len()
            ))
        })?;
        read_image(self.dir.join(format!("{stem}.png")), size)
    }

    /// Attributes of `rows` as an `[n, 18]` f32 tensor of variant indices on `device`.
    pub fn attributes_tensor(&self, rows: &[usize], device: &Device) -> Result<Tensor> {
        let mut v = Vec::with_capacity(rows.len() * NUM_ATTRIBUTES);
        for &r in rows {
            let a = self.attributes(r).ok_or_else(|| {
                Error::usage(format!(
                    "image {r} is out of range (the set has {})",
                    self.len()
                ))
            })?;
            v.extend(a.iter().map(|&x| x as f32));
        }
        Ok(Tensor::from_vec(v, (rows.len(), NUM_ATTRIBUTES), device)?)
    }

    /// Images `rows` at `size`×`size` as an `[n, 3, size, size]` f32 tensor on `device`.
    pub fn images(
        &self,
        rows: &[usize],
        size: usize,
        scale: PixelScale,
        device: &Device,
    ) -> Result<Tensor> {
        let k = match scale {
            PixelScale::Byte => 1.0,
            PixelScale::Unit => 1.0 / 255.0,
        };
        let hw = size * size;
        let mut v = vec![0f32; rows.len() * 3 * hw];
        for (b, &i) in rows.iter().enumerate() {
            let img = self.image(i, Some(size))?;
            for (p, px) in img.data().chunks_exact(3).enumerate() {
                for c in 0..3 {
                    v[(b * 3 + c) * hw + p] = f32::from(px[c]) * k;
                }
            }
        }
        Ok(Tensor::from_vec(v, (rows.len(), 3, size, size), device)?)
    }
}
