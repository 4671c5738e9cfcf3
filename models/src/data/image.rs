//! Images on disk: PNG in and out, contact sheets of a batch, and atomic CSV files.
//!
//! Every file is written atomically (a temporary file in the same folder, then a rename), so an
//! interrupted export never leaves a half-written image or table behind that a later run would
//! read as data.
//!
//! Conventions: an [`Image`] holds 8-bit samples, rows top to bottom, channels interleaved
//! (grey: 1 channel, colour: 3). Tensors are `[c, h, w]` (or `[h, w]` for grey) with values either
//! on the 0–255 scale ([`PixelScale::Byte`]) or on the 0–1 scale ([`PixelScale::Unit`]); values are
//! clamped to the range and rounded to the nearest grey level on the way out.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use ppl_core::{Error, Result};

/// The scale of the pixel values in a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelScale {
    /// Values in 0–255 (the scale of the generated glyphs and of MNIST).
    #[default]
    Byte,
    /// Values in 0–1.
    Unit,
}

impl PixelScale {
    fn to_byte(self, v: f32) -> Option<u8> {
        if v.is_nan() {
            return None;
        }
        let v = match self {
            PixelScale::Byte => v,
            PixelScale::Unit => v * 255.0,
        };
        Some(v.clamp(0.0, 255.0).round() as u8)
    }
}

/// An 8-bit grey or RGB image, rows top to bottom, channels interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    /// An image of `channels` (1 for grey, 3 for RGB) from interleaved samples.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Result<Image> {
        if channels != 1 && channels != 3 {
            return Err(Error::usage(format!(
                "an image has 1 (grey) or 3 (RGB) channels, got {channels}"
            )));
        }
        if width == 0 || height == 0 {
            return Err(Error::usage(format!(
                "an image must not be empty, got {width}x{height}"
            )));
        }
        if data.len() != width * height * channels {
            return Err(Error::shape(
                "image samples",
                &[width * height * channels],
                &[data.len()],
            ));
        }
        Ok(Image {
            width,
            height,
            channels,
            data,
        })
    }

    /// A grey image.
    pub fn gray(width: usize, height: usize, data: Vec<u8>) -> Result<Image> {
        Image::new(width, height, 1, data)
    }

    /// An RGB image, samples interleaved `r, g, b`.
    pub fn rgb(width: usize, height: usize, data: Vec<u8>) -> Result<Image> {
        Image::new(width, height, 3, data)
    }

    /// An image from a tensor `[h, w]`, `[1, h, w]` or `[3, h, w]` whose values are on `scale`.
    ///
    /// The tensor is copied to the host (this is for export, not for a training loop).
    pub fn from_tensor(t: &Tensor, scale: PixelScale) -> Result<Image> {
        let (c, h, w) = match *t.dims() {
            [h, w] => (1, h, w),
            [c, h, w] if c == 1 || c == 3 => (c, h, w),
            _ => {
                return Err(Error::usage(format!(
                    "an image tensor is [h, w], [1, h, w] or [3, h, w], got {:?}",
                    t.dims()
                )))
            }
        };
        let planar: Vec<f32> = t
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_vec1()?;
        let mut data = vec![0u8; c * h * w];
        for ch in 0..c {
            for p in 0..h * w {
                let v = planar[ch * h * w + p];
                data[p * c + ch] = scale.to_byte(v).ok_or_else(|| {
                    Error::usage(format!(
                        "image tensor has a NaN at channel {ch}, row {}, column {}",
                        p / w,
                        p % w
                    ))
                })?;
            }
        }
        Image::new(w, h, c, data)
    }

    /// The image as a `[c, h, w]` f32 tensor on `device`, values 0–255.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let (c, hw) = (self.channels, self.width * self.height);
        let mut planar = vec![0f32; c * hw];
        for p in 0..hw {
            for ch in 0..c {
                planar[ch * hw + p] = f32::from(self.data[p * c + ch]);
            }
        }
        Ok(Tensor::from_vec(
            planar,
            (c, self.height, self.width),
            device,
        )?)
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// 1 for grey, 3 for RGB.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The interleaved samples, rows top to bottom.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The samples of the pixel at column `x`, row `y` (`None` outside the image).
    pub fn pixel(&self, x: usize, y: usize) -> Option<&[u8]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y * self.width + x) * self.channels;
        Some(&self.data[at..at + self.channels])
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over `path`.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path.as_ref(), |w| w.write_all(bytes))
}

fn temp_path(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::usage(format!("{}: the path names no file", path.display())))?;
    // The process id and a counter keep concurrent writers (threads or processes) apart.
    let tmp = format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Ok(path.with_file_name(tmp))
}

fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::new(&file);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        // Best effort: the temporary file is ours and worthless once the write failed.
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Encodes `image` as an 8-bit grey or RGB PNG.
pub fn encode_png(image: &Image) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let color = if image.channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    };
    let to_err = |e: png::EncodingError| Error::usage(format!("PNG encoding failed: {e}"));
    let width = u32::try_from(image.width)
        .map_err(|_| Error::usage(format!("image width {} is too large", image.width)))?;
    let height = u32::try_from(image.height)
        .map_err(|_| Error::usage(format!("image height {} is too large", image.height)))?;
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(to_err)?;
    writer.write_image_data(&image.data).map_err(to_err)?;
    writer.finish().map_err(to_err)?;
    Ok(out)
}

/// Writes `image` to `path` as a PNG, atomically.
pub fn write_png(path: impl AsRef<Path>, image: &Image) -> Result<()> {
    write_atomic(path, &encode_png(image)?)
}

/// Writes a `[h, w]`, `[1, h, w]` or `[3, h, w]` tensor with values on `scale` to `path` as a PNG.
pub fn write_png_tensor(path: impl AsRef<Path>, t: &Tensor, scale: PixelScale) -> Result<()> {
    write_png(path, &Image::from_tensor(t, scale)?)
}

/// Reads a PNG (any bit depth and colour type) as 8-bit grey or RGB; an alpha channel is
/// composited over black.
pub fn read_png(path: impl AsRef<Path>) -> Result<Image> {
    read_png_over(path, 0)
}

/// Reads a PNG as 8-bit grey or RGB, compositing any alpha channel over the grey level
/// `background` (0 black, 255 white).
pub fn read_png_over(path: impl AsRef<Path>, background: u8) -> Result<Image> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let to_err = |e: png::DecodingError| match e {
        png::DecodingError::IoError(io) => Error::io(path, io),
        other => Error::parse(path, 0, format!("not a readable PNG: {other}")),
    };
    let mut dec = png::Decoder::new(BufReader::new(file));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(to_err)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::parse(path, 0, "the PNG is too large for memory"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(to_err)?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width as usize, info.height as usize);
    let (in_ch, out_ch, alpha) = match info.color_type {
        png::ColorType::Grayscale => (1, 1, false),
        png::ColorType::GrayscaleAlpha => (2, 1, true),
        png::ColorType::Rgb => (3, 3, false),
        png::ColorType::Rgba => (4, 3, true),
        png::ColorType::Indexed => {
            return Err(Error::parse(path, 0, "palette PNG was not expanded"));
        }
    };
    let row_in = info.line_size;
    let mut data = Vec::with_capacity(w * h * out_ch);
    let bg = u32::from(background);
    for y in 0..h {
        let row = &buf[y * row_in..y * row_in + w * in_ch];
        for px in row.chunks_exact(in_ch) {
            if alpha {
                let a = u32::from(px[in_ch - 1]);
                for &v in &px[..out_ch] {
                    let mixed = (u32::from(v) * a + bg * (255 - a) + 127) / 255;
                    data.push(mixed as u8);
                }
            } else {
                data.extend_from_slice(px);
            }
        }
    }
    Image::new(w, h, out_ch, data).map_err(|e| Error::parse(path, 0, e.to_string()))
}

/// How a contact sheet lays out its tiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetOptions {
    /// Tiles per row; `None` picks the smallest square grid that holds the batch.
    pub columns: Option<usize>,
    /// Pixels between tiles and around the border.
    pub padding: usize,
    /// The grey level of the padding and of unused tiles.
    pub pad_value: u8,
    /// The scale of the tensor's values.
    pub scale: PixelScale,
}

impl Default for SheetOptions {
    fn default() -> Self {
        SheetOptions {
            columns: None,
            padding: 2,
            pad_value: 128,
            scale: PixelScale::Byte,
        }
    }
}

/// Lays a batch `[n, c, h, w]` (c = 1 or 3) or `[n, h, w]` out as one grid image, tiles in
/// row-major order.
pub fn contact_sheet(images: &Tensor, opts: &SheetOptions) -> Result<Image> {
    let (n, c, h, w) = match *images.dims() {
        [n, h, w] => (n, 1, h, w),
        [n, c, h, w] if c == 1 || c == 3 => (n, c, h, w),
        _ => {
            return Err(Error::usage(format!(
                "a contact sheet takes [n, c, h, w] with c = 1 or 3, or [n, h, w]; got {:?}",
                images.dims()
            )))
        }
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(Error::usage(format!(
            "a contact sheet needs at least one non-empty image, got {:?}",
            images.dims()
        )));
    }
    let cols = match opts.columns {
        Some(0) => return Err(Error::usage("a contact sheet needs at least one column")),
        Some(k) => k.min(n),
        None => (1..=n).find(|k| k * k >= n).unwrap_or(n),
    };
    let rows = n.div_ceil(cols);
    let pad = opts.padding;
    let sheet_w = cols * w + (cols + 1) * pad;
    let sheet_h = rows * h + (rows + 1) * pad;
    let mut data = vec![opts.pad_value; sheet_w * sheet_h * c];
    let values: Vec<f32> = images
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_device(&Device::Cpu)?
        .to_vec1()?;
    for k in 0..n {
        let (ty, tx) = (k / cols, k % cols);
        let (oy, ox) = (pad + ty * (h + pad), pad + tx * (w + pad));
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = values[((k * c + ch) * h + y) * w + x];
                    let b = opts.scale.to_byte(v).ok_or_else(|| {
                        Error::usage(format!(
                            "image {k} of the contact sheet has a NaN at ({ch}, {y}, {x})"
                        ))
                    })?;
                    data[((oy + y) * sheet_w + ox + x) * c + ch] = b;
                }
            }
        }
    }
    Image::new(sheet_w, sheet_h, c, data)
}

/// Writes the contact sheet of `images` (see [`contact_sheet`]) to `path` as a PNG.
pub fn write_contact_sheet(
    path: impl AsRef<Path>,
    images: &Tensor,
    opts: &SheetOptions,
) -> Result<()> {
    write_png(path, &contact_sheet(images, opts)?)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a CSV file atomically: one header line, then one line per row. Fields holding commas,
/// quotes or line breaks are quoted (RFC 4180).
pub fn write_csv(path: impl AsRef<Path>, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let path = path.as_ref();
    if header.is_empty() {
        return Err(Error::usage(format!(
            "{}: a CSV file needs at least one column",
            path.display()
        )));
    }
    if let Some((i, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != header.len())
    {
        return Err(Error::usage(format!(
            "{}: row {i} has {} fields but the header has {}",
            path.display(),
            row.len(),
            header.len()
        )));
    }
    write_atomic_with(path, |w| {
        let line: Vec<String> = header.iter().map(|h| csv_field(h)).collect();
        writeln!(w, "{}", line.join(","))?;
        for row in rows {
            let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            writeln!(w, "{}", line.join(","))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ppl-image-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn grey_and_rgb_round_trip_through_png() {
        let d = tmpdir("rt");
        let grey = Image::gray(3, 2, vec![0, 10, 20, 30, 40, 255]).unwrap();
        write_png(d.join("g.png"), &grey).unwrap();
        assert_eq!(read_png(d.join("g.png")).unwrap(), grey);
        let rgb = Image::rgb(2, 1, vec![1, 2, 3, 250, 251, 252]).unwrap();
        write_png(d.join("c.png"), &rgb).unwrap();
        assert_eq!(read_png(d.join("c.png")).unwrap(), rgb);
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn alpha_is_composited_over_the_background() {
        let d = tmpdir("alpha");
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 2, 1);
            enc.set_color(png::ColorType::GrayscaleAlpha);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().unwrap();
            // Pixel 0: white at half opacity; pixel 1: grey 100, opaque.
            w.write_image_data(&[255, 128, 100, 255]).unwrap();
        }
        write_atomic(d.join("a.png"), &bytes).unwrap();
        // Over black: 255 * 128 / 255 = 128; over white: 255.
        assert_eq!(read_png(d.join("a.png")).unwrap().data(), &[128, 100]);
        assert_eq!(
            read_png_over(d.join("a.png"), 255).unwrap().data(),
            &[255, 100]
        );
    }

    #[test]
    fn tensor_scales_and_layout() {
        let t =
            Tensor::from_vec(vec![0f32, 0.5, 1.0, 2.0, 0.0, 1.0], (3, 1, 2), &Device::Cpu).unwrap();
        let img = Image::from_tensor(&t, PixelScale::Unit).unwrap();
        assert_eq!((img.width(), img.height(), img.channels()), (2, 1, 3));
        // Channels interleave: pixel 0 = (0, 1.0, 0) -> (0, 255, 0); 0.5 rounds to 128.
        assert_eq!(img.data(), &[0, 255, 0, 128, 255, 255]);
        let back = img.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(back.dims(), &[3, 1, 2]);
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0., 128., 255., 255., 0., 255.]
        );
        let nan = Tensor::new(&[[f32::NAN]], &Device::Cpu).unwrap();
        assert!(Image::from_tensor(&nan, PixelScale::Byte).is_err());
    }

    #[test]
    fn contact_sheet_places_tiles_with_padding() {
        // Three 1x2 grey images; default columns = 2 (2x2 grid), padding 1.
        let t = Tensor::from_vec(
            vec![10f32, 11., 20., 21., 30., 31.],
            (3, 1, 2),
            &Device::Cpu,
        )
        .unwrap();
        let opts = SheetOptions {
            padding: 1,
            pad_value: 7,
            ..SheetOptions::default()
        };
        let s = contact_sheet(&t, &opts).unwrap();
        assert_eq!((s.width(), s.height()), (2 * 2 + 3, 2 + 3));
        assert_eq!(s.pixel(0, 0).unwrap(), &[7]);
        assert_eq!(s.pixel(1, 1).unwrap(), &[10]);
        assert_eq!(s.pixel(2, 1).unwrap(), &[11]);
        assert_eq!(s.pixel(4, 1).unwrap(), &[20]);
        assert_eq!(s.pixel(1, 3).unwrap(), &[30]);
        // The fourth tile is unused and keeps the padding value.
        assert_eq!(s.pixel(4, 3).unwrap(), &[7]);
    }

    #[test]
    fn csv_quotes_and_checks_widths() {
        let d = tmpdir("csv");
        let p = d.join("t.csv");
        write_csv(
            &p,
            &["a", "b"],
            &[
                vec!["1".into(), "x,y".into()],
                vec!["2".into(), "q\"".into()],
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "a,b\n1,\"x,y\"\n2,\"q\"\"\"\n");
        assert!(write_csv(&p, &["a", "b"], &[vec!["1".into()]]).is_err());
    }
}
