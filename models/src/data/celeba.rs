//! CelebA: the attribute table, the train/valid/test partition and the aligned images.
//!
//! The files are the ones users download: `list_attr_celeba.txt` (the first line is the image
//! count, the second the attribute names, then one `file ±1 ..` row per image, whitespace
//! separated), `list_eval_partition.txt` (`file 0|1|2`) and `img_align_celeba/` (178×218
//! JPEGs; PNGs are read too). Attributes become 0/1. Images are centre-cropped (148×148 by
//! default) and resized bilinearly (64×64 by default), as in the DCGAN and DeepSCM pipelines.
//! Malformed files give [`Error::Parse`] naming the file and line.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ppl_core::{Error, Result};

use crate::data::image::{read_png, Image, PixelScale};

/// The 40 CelebA attributes, in the order of the released `list_attr_celeba.txt`.
pub const ATTRIBUTE_NAMES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

/// The attribute file's name inside a CelebA folder.
pub const ATTRIBUTE_FILE: &str = "list_attr_celeba.txt";
/// The partition file's name inside a CelebA folder.
pub const PARTITION_FILE: &str = "list_eval_partition.txt";
/// The aligned images' folder inside a CelebA folder.
pub const IMAGE_DIR: &str = "img_align_celeba";

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::parse(path, line, "the file is not UTF-8 text")
    })
}

/// The attribute table: one 0/1 row per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeTable {
    names: Vec<String>,
    files: Vec<String>,
    values: Vec<u8>,
}

impl AttributeTable {
    /// Reads `list_attr_celeba.txt`.
    pub fn read(path: impl AsRef<Path>) -> Result<AttributeTable> {
        let path = path.as_ref();
        AttributeTable::parse(path, &read_text(path)?)
    }

    /// Parses the text of an attribute file; `path` names it in errors.
    ///
    /// Attribute names must be CelebA's (any subset, any order, each once); every row must
    /// have a file name and one `1` or `-1` per attribute; the row count must equal the first
    /// line's count and file names must be unique.
    pub fn parse(path: &Path, text: &str) -> Result<AttributeTable> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(k, l)| (k + 1, l))
            .filter(|(_, l)| !l.trim().is_empty());
        let (ln, first) = lines
            .next()
            .ok_or_else(|| Error::parse(path, 1, "the file is empty: expected the image count"))?;
        let count: usize = first.trim().parse().map_err(|_| {
            Error::parse(
                path,
                ln,
                format!("expected the image count, found `{}`", first.trim()),
            )
        })?;
        let (ln, header) = lines.next().ok_or_else(|| {
            Error::parse(path, ln + 1, "the file ends before the attribute names")
        })?;
        let names: Vec<String> = header.split_whitespace().map(String::from).collect();
        for (i, n) in names.iter().enumerate() {
            if !ATTRIBUTE_NAMES.contains(&n.as_str()) {
                return Err(Error::parse(
                    path,
                    ln,
                    format!("unknown attribute name `{n}`"),
                ));
            }
            if names[..i].contains(n) {
                return Err(Error::parse(
                    path,
                    ln,
                    format!("attribute `{n}` is named twice"),
                ));
            }
        }
        if names.is_empty() {
            return Err(Error::parse(path, ln, "no attribute names"));
        }
        let k = names.len();
        let mut files = Vec::with_capacity(count);
        let mut values = Vec::with_capacity(count * k);
        let mut seen = HashMap::new();
        let mut last = ln;
        for (ln, line) in lines {
            last = ln;
            let mut fields = line.split_whitespace();
            let file = fields.next().unwrap_or_default();
            let row: Vec<&str> = fields.collect();
            if row.len() != k {
                return Err(Error::parse(
                    path,
                    ln,
                    format!(
                        "expected a file name and {k} values, found {} field(s)",
                        row.len() + 1
                    ),
                ));
            }
            for (j, v) in row.iter().enumerate() {
                values.push(match *v {
                    "1" => 1,
                    "-1" => 0,
                    other => {
                        return Err(Error::parse(
                            path,
                            ln,
                            format!("attribute `{}`: `{other}` is not 1 or -1", names[j]),
                        ))
                    }
                });
            }
            if let Some(prev) = seen.insert(file.to_string(), ln) {
                return Err(Error::parse(
                    path,
                    ln,
                    format!("file `{file}` is listed twice (first on line {prev})"),
                ));
            }
            files.push(file.to_string());
            if files.len() > count {
                return Err(Error::parse(
                    path,
                    ln,
                    format!("more rows than the {count} the first line announces"),
                ));
            }
        }
        if files.len() != count {
            return Err(Error::parse(
                path,
                last + 1,
                format!(
                    "the file is truncated: the first line announces {count} rows, found {}",
                    files.len()
                ),
            ));
        }
        Ok(AttributeTable {
            names,
            files,
            values,
        })
    }

    /// The attribute names, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The image files, in file order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the table has no images.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The column of attribute `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The 0/1 values of image `i`, in [`names`](Self::names) order.
    pub fn row(&self, i: usize) -> Option<&[u8]> {
        let k = self.names.len();
        self.values.get(i * k..(i + 1) * k)
    }

    /// The value of attribute `name` of image `i`.
    pub fn get(&self, i: usize, name: &str) -> Option<bool> {
        Some(self.row(i)?[self.column(name)?] == 1)
    }

    /// An `[rows.len(), names.len()]` f32 tensor of 0/1 on `device`.
    pub fn tensor(&self, rows: &[usize], names: &[&str], device: &Device) -> Result<Tensor> {
        let cols: Vec<usize> = names
            .iter()
            .map(|n| {
                self.column(n)
                    .ok_or_else(|| Error::usage(format!("attribute `{n}` is not in the table")))
            })
            .collect::<Result<_>>()?;
        let mut v = Vec::with_capacity(rows.len() * cols.len());
        for &r in rows {
            let row = self.row(r).ok_or_else(|| {
                Error::usage(format!(
                    "row {r} is out of range (the table has {})",
                    self.len()
                ))
            })?;
            v.extend(cols.iter().map(|&c| f32::from(row[c])));
        }
        Ok(Tensor::from_vec(v, (rows.len(), cols.len()), device)?)
    }
}

/// The three CelebA partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Partition 0.
    Train,
    /// Partition 1.
    Valid,
    /// Partition 2.
    Test,
}

/// Reads `list_eval_partition.txt`: `(file, split)` in file order.
pub fn read_partition(path: impl AsRef<Path>) -> Result<Vec<(String, Split)>> {
    let path = path.as_ref();
    parse_partition(path, &read_text(path)?)
}

/// Parses the text of a partition file; `path` names it in errors.
pub fn parse_partition(path: &Path, text: &str) -> Result<Vec<(String, Split)>> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (k, line) in text.lines().enumerate() {
        let ln = k + 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() != 2 {
            return Err(Error::parse(
                path,
                ln,
                format!("expected `file split`, found {} field(s)", f.len()),
            ));
        }
        let split = match f[1] {
            "0" => Split::Train,
            "1" => Split::Valid,
            "2" => Split::Test,
            other => {
                return Err(Error::parse(
                    path,
                    ln,
                    format!("the split must be 0, 1 or 2, found `{other}`"),
                ))
            }
        };
        if let Some(prev) = seen.insert(f[0].to_string(), ln) {
            return Err(Error::parse(
                path,
                ln,
                format!("file `{}` is listed twice (first on line {prev})", f[0]),
            ));
        }
        out.push((f[0].to_string(), split));
    }
    Ok(out)
}

/// How images are cut and scaled: a centred `crop`×`crop` square, resized to `size`×`size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropResize {
    /// Side of the centred square crop, in source pixels.
    pub crop: usize,
    /// Side of the output image.
    pub size: usize,
}

impl Default for CropResize {
    /// 148 → 64, the usual CelebA preprocessing.
    fn default() -> Self {
        CropResize {
            crop: 148,
            size: 64,
        }
    }
}

fn decode_jpeg(path: &Path, bytes: &[u8]) -> Result<Image> {
    let mut dec = jpeg_decoder::Decoder::new(BufReader::new(bytes));
    let pixels = dec
        .decode()
        .map_err(|e| Error::parse(path, 0, format!("not a readable JPEG: {e}")))?;
    let info = dec
        .info()
        .ok_or_else(|| Error::parse(path, 0, "the JPEG has no frame header"))?;
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    let data = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&g| [g, g, g]).collect(),
        other => {
            return Err(Error::parse(
                path,
                0,
                format!("unsupported JPEG pixel format {other:?} (expected RGB or grey)"),
            ))
        }
    };
    Image::rgb(w, h, data).map_err(|e| Error::parse(path, 0, e.to_string()))
}

/// Reads a JPEG or PNG image (told apart by their signatures) as 8-bit RGB.
pub fn read_image(path: impl AsRef<Path>) -> Result<Image> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    let img = if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(path, &bytes)?
    } else if bytes.starts_with(b"\x89PNG") {
        read_png(path)?
    } else {
        return Err(Error::parse(path, 0, "neither a JPEG nor a PNG file"));
    };
    if img.channels() == 1 {
        let data = img.data().iter().flat_map(|&g| [g, g, g]).collect();
        return Image::rgb(img.width(), img.height(), data);
    }
    Ok(img)
}

/// Resizes an image with bilinear interpolation (pixel centres aligned, edges clamped).
pub fn resize_bilinear(img: &Image, width: usize, height: usize) -> Result<Image> {
    if width == 0 || height == 0 {
        return Err(Error::usage(format!(
            "resize: the target must not be empty, got {width}x{height}"
        )));
    }
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let src = img.data();
    let sx = w as f64 / width as f64;
    let sy = h as f64 / height as f64;
    let axis = |o: usize, scale: f64, n: usize| {
        let p = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (n - 1) as f64);
        let i0 = p.floor() as usize;
        (i0, (i0 + 1).min(n - 1), p - i0 as f64)
    };
    let mut out = Vec::with_capacity(width * height * c);
    for oy in 0..height {
        let (y0, y1, fy) = axis(oy, sy, h);
        for ox in 0..width {
            let (x0, x1, fx) = axis(ox, sx, w);
            for ch in 0..c {
                let v = |x: usize, y: usize| f64::from(src[(y * w + x) * c + ch]);
                let top = v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx;
                let bottom = v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx;
                let val = top * (1.0 - fy) + bottom * fy;
                out.push(val.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Image::new(width, height, c, out)
}

/// Cuts the centred `crop`×`crop` square out of `img` and resizes it to `size`×`size`.
/// `path` names the image in the error when it is smaller than the crop.
pub fn crop_resize(img: &Image, opts: &CropResize, path: &Path) -> Result<Image> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    if opts.crop == 0 || opts.crop > w || opts.crop > h {
        return Err(Error::parse(
            path,
            0,
            format!(
                "the image is {w}x{h}, which cannot hold a centred {0}x{0} crop",
                opts.crop
            ),
        ));
    }
    let (x0, y0) = ((w - opts.crop) / 2, (h - opts.crop) / 2);
    let mut data = Vec::with_capacity(opts.crop * opts.crop * c);
    for y in y0..y0 + opts.crop {
        data.extend_from_slice(&img.data()[(y * w + x0) * c..(y * w + x0 + opts.crop) * c]);
    }
    let cropped = Image::new(opts.crop, opts.crop, c, data)?;
    resize_bilinear(&cropped, opts.size, opts.size)
}

/// A CelebA folder: attributes, partition and images, checked against each other.
#[derive(Debug, Clone)]
pub struct Celeba {
    root: PathBuf,
    attributes: AttributeTable,
    splits: Vec<Split>,
    opts: CropResize,
}

impl Celeba {
    /// Opens the folder `root` holding `list_attr_celeba.txt`, `list_eval_partition.txt` and
    /// `img_align_celeba/`. Every image of the attribute table must have a partition entry.
    pub fn open(root: impl AsRef<Path>, opts: CropResize) -> Result<Celeba> {
        let root = root.as_ref().to_path_buf();
        let attributes = AttributeTable::read(root.join(ATTRIBUTE_FILE))?;
        let ppath = root.join(PARTITION_FILE);
        let partition = read_partition(&ppath)?;
        let by_file: HashMap<&str, Split> =
            partition.iter().map(|(f, s)| (f.as_str(), *s)).collect();
        let splits = attributes
            .files()
            .iter()
            .map(|f| {
                by_file.get(f.as_str()).copied().ok_or_else(|| {
                    Error::parse(
                        &ppath,
                        0,
                        format!("image `{f}` of {ATTRIBUTE_FILE} has no partition entry"),
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(Celeba {
            root,
            attributes,
            splits,
            opts,
        })
    }

    /// The attribute table.
    pub fn attributes(&self) -> &AttributeTable {
        &self.attributes
    }

    /// The indices (rows of the attribute table) of the images in `split`.
    pub fn split(&self, split: Split) -> Vec<usize> {
        (0..self.splits.len())
            .filter(|&i| self.splits[i] == split)
            .collect()
    }

    /// The split of image `i`.
    pub fn split_of(&self, i: usize) -> Option<Split> {
        self.splits.get(i).copied()
    }

    /// Image `i`, cropped and resized.
    pub fn image(&self, i: usize) -> Result<Image> {
        let file = self.attributes.files().get(i).ok_or_else(|| {
            Error::usage(format!(
                "image {i} is out of range (the table has {})",
                self.attributes.len()
            ))
        })?;
        let path = self.root.join(IMAGE_DIR).join(file);
        crop_resize(&read_image(&path)?, &self.opts, &path)
    }

    /// Images `rows` as an `[n, 3, size, size]` f32 tensor on `device`, values on `scale`.
    pub fn images(&self, rows: &[usize], scale: PixelScale, device: &Device) -> Result<Tensor> {
        let k = match scale {
            PixelScale::Byte => 1.0,
            PixelScale::Unit => 1.0 / 255.0,
        };
        let n = self.opts.size;
        let hw = n * n;
        let mut v = vec![0f32; rows.len() * 3 * hw];
        for (b, &i) in rows.iter().enumerate() {
            let img = self.image(i)?;
            for (p, px) in img.data().chunks_exact(3).enumerate() {
                for c in 0..3 {
                    v[(b * 3 + c) * hw + p] = f32::from(px[c]) * k;
                }
            }
        }
        Ok(Tensor::from_vec(v, (rows.len(), 3, n, n), device)?)
    }
}
