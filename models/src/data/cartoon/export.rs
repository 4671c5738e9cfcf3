//! Writing faces to disk (a PNG per face and one CSV of attributes and noise), reading the
//! CSV back, and contact sheets.

use std::path::Path;

use candle_core::Device;
use ppl_core::{Error, Result};

use super::generate::images_tensor;
use super::noise::{Exogenous, Style};
use super::palette::{EyeColour, HairColour, SkinTone};
use super::sample::{Attributes, CartoonSample};
use super::scm::{Attr, NUM_ATTRS};
use crate::data::image::{self, PixelScale, SheetOptions};

/// The name of the table that [`export`] writes next to the images.
pub const TABLE_FILE: &str = "attributes.csv";

/// One row of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// The image's file name, relative to the table's folder.
    pub file: String,
    /// The face's attributes.
    pub attributes: Attributes,
    /// The face's exogenous noise.
    pub noise: Exogenous,
}

fn header() -> Vec<String> {
    let mut h = vec!["file".to_string()];
    h.extend(Attr::ALL.iter().map(|a| a.name().to_string()));
    h.extend(
        [
            EyeColour::ATTRIBUTE,
            SkinTone::ATTRIBUTE,
            HairColour::ATTRIBUTE,
        ]
        .map(String::from),
    );
    h.extend(Attr::ALL.iter().map(|a| format!("U_{}", a.name())));
    h.extend(["U_eye_colour", "U_skin_tone", "U_hair_colour"].map(String::from));
    h.extend(Style::default().fields().iter().map(|(n, _)| n.to_string()));
    h
}

/// Writes every face of `samples` to `dir` (created if missing) as `00000.png`, `00001.png`,
/// .. and a table `attributes.csv` with one row per face: the file, the binary attributes
/// (0/1), the colour names, and every exogenous variable (`U_*` and the style fields) printed
/// so that they read back exactly. Every file is written atomically.
pub fn export(dir: impl AsRef<Path>, samples: &[CartoonSample]) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut rows = Vec::with_capacity(samples.len());
    for (k, s) in samples.iter().enumerate() {
        let file = format!("{k:05}.png");
        image::write_png(dir.join(&file), &s.image)?;
        let a = &s.attributes;
        let n = &s.noise;
        let mut row = vec![file];
        row.extend(Attr::ALL.iter().map(|&x| u8::from(a.get(x)).to_string()));
        row.extend([a.eye.name(), a.skin.name(), a.hair.name()].map(String::from));
        row.extend(n.u.iter().map(|u| u.to_string()));
        row.extend([n.u_eye, n.u_skin, n.u_hair].map(|u| u.to_string()));
        row.extend(n.style.fields().iter().map(|(_, v)| v.to_string()));
        rows.push(row);
    }
    let h = header();
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    image::write_csv(dir.join(TABLE_FILE), &h, &rows)
}

/// Reads a table written by [`export`]. Malformed lines give an error naming the file and
/// line.
pub fn read_table(path: impl AsRef<Path>) -> Result<Vec<TableRow>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines().enumerate();
    let want = header();
    match lines.next() {
        Some((_, h)) if h.split(',').eq(want.iter().map(String::as_str)) => {}
        Some(_) => {
            return Err(Error::parse(
                path,
                1,
                format!("expected the header {}", want.join(",")),
            ))
        }
        None => return Err(Error::parse(path, 1, "the file is empty")),
    }
    let mut rows = Vec::new();
    for (k, line) in lines {
        let ln = k + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != want.len() {
            return Err(Error::parse(
                path,
                ln,
                format!("expected {} fields, found {}", want.len(), f.len()),
            ));
        }
        let num = |i: usize| -> Result<f64> {
            f[i].trim().parse::<f64>().map_err(|_| {
                Error::parse(
                    path,
                    ln,
                    format!("column `{}`: `{}` is not a number", want[i], f[i]),
                )
            })
        };
        let mut binary = [false; NUM_ATTRS];
        for (i, b) in binary.iter_mut().enumerate() {
            *b = match f[1 + i].trim() {
                "0" => false,
                "1" => true,
                other => {
                    return Err(Error::parse(
                        path,
                        ln,
                        format!("column `{}`: `{other}` is not 0 or 1", want[1 + i]),
                    ))
                }
            };
        }
        let c0 = 1 + NUM_ATTRS;
        let bad_colour = |i: usize| {
            Error::parse(
                path,
                ln,
                format!("column `{}`: unknown colour `{}`", want[i], f[i]),
            )
        };
        let eye = EyeColour::from_name(f[c0].trim()).ok_or_else(|| bad_colour(c0))?;
        let skin = SkinTone::from_name(f[c0 + 1].trim()).ok_or_else(|| bad_colour(c0 + 1))?;
        let hair = HairColour::from_name(f[c0 + 2].trim()).ok_or_else(|| bad_colour(c0 + 2))?;
        let u0 = c0 + 3;
        let mut u = [0.0; NUM_ATTRS];
        for (i, x) in u.iter_mut().enumerate() {
            *x = num(u0 + i)?;
        }
        let s0 = u0 + NUM_ATTRS + 3;
        let mut sv = [0.0; 7];
        for (i, x) in sv.iter_mut().enumerate() {
            *x = num(s0 + i)?;
        }
        let noise = Exogenous {
            u,
            u_eye: num(u0 + NUM_ATTRS)?,
            u_skin: num(u0 + NUM_ATTRS + 1)?,
            u_hair: num(u0 + NUM_ATTRS + 2)?,
            style: Style::from_fields(sv).map_err(|e| Error::parse(path, ln, e.to_string()))?,
        };
        noise
            .validate()
            .map_err(|e| Error::parse(path, ln, e.to_string()))?;
        rows.push(TableRow {
            file: f[0].to_string(),
            attributes: Attributes {
                binary,
                eye,
                skin,
                hair,
            },
            noise,
        });
    }
    Ok(rows)
}

/// Writes the faces of `samples` as one grid image, `columns` faces to a row.
pub fn write_contact_sheet(
    path: impl AsRef<Path>,
    samples: &[CartoonSample],
    columns: usize,
) -> Result<()> {
    let t = images_tensor(samples, PixelScale::Byte, &Device::Cpu)?;
    let opts = SheetOptions {
        columns: Some(columns),
        padding: 2,
        pad_value: 255,
        scale: PixelScale::Byte,
    };
    image::write_contact_sheet(path, &t, &opts)
}

/// Width and height of CelebA's aligned images, which [`export_celeba`] imitates.
const CELEBA_WIDTH: usize = 178;
const CELEBA_HEIGHT: usize = 218;
/// The side of the centred square the CelebA pipelines crop (and [`export_celeba`] fills).
const CELEBA_CROP: usize = 148;

/// Writes `train` and `test` faces to `dir` in CelebA's layout, so that the CelebA path of a
/// pipeline can be run, end to end, on faces whose true SCM is known:
/// `list_attr_celeba.txt` (the nine face attributes, `1`/`-1`), `list_eval_partition.txt`
/// (`0` for `train`, `2` for `test`) and `img_align_celeba/NNNNNN.png`, each face upscaled to
/// the 148×148 centre of a 178×218 canvas of its own background colour — so the default
/// [`CropResize`](crate::data::celeba::CropResize) (crop 148) reads back the whole face.
/// Files are written atomically; errors if both sets are empty.
///
/// ```
/// use candle_core::Device;
/// use models::data::cartoon::{export_celeba, CartoonFaces};
/// use models::data::celeba::{Celeba, CropResize, Split};
///
/// let faces = CartoonFaces::default();
/// let dir = std::env::temp_dir().join(format!("ppl-doc-celeba-{}", std::process::id()));
/// export_celeba(&dir, &faces.generate(0, 3), &faces.generate(1, 2))?;
/// let set = Celeba::open(&dir, CropResize { crop: 148, size: 32 })?;
/// assert_eq!((set.split(Split::Train).len(), set.split(Split::Test).len()), (3, 2));
/// assert!(set.attributes().column("Male").is_some());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn export_celeba(
    dir: impl AsRef<Path>,
    train: &[CartoonSample],
    test: &[CartoonSample],
) -> Result<()> {
    use crate::data::celeba::{resize_bilinear, ATTRIBUTE_FILE, IMAGE_DIR, PARTITION_FILE};
    let dir = dir.as_ref();
    if train.is_empty() && test.is_empty() {
        return Err(Error::usage(
            "export_celeba: no faces to write (train and test are both empty)",
        ));
    }
    let img_dir = dir.join(IMAGE_DIR);
    std::fs::create_dir_all(&img_dir).map_err(|e| Error::io(&img_dir, e))?;
    let n = train.len() + test.len();
    let names: Vec<&str> = Attr::ALL.iter().map(|a| a.name()).collect();
    let mut attr_text = format!("{n}\n{}\n", names.join(" "));
    let mut partition = String::new();
    let (x0, y0) = (
        (CELEBA_WIDTH - CELEBA_CROP) / 2,
        (CELEBA_HEIGHT - CELEBA_CROP) / 2,
    );
    let all = train
        .iter()
        .map(|s| (s, 0))
        .chain(test.iter().map(|s| (s, 2)));
    for (k, (s, split)) in all.enumerate() {
        let file = format!("{:06}.png", k + 1);
        let face = resize_bilinear(&s.image, CELEBA_CROP, CELEBA_CROP)?;
        let c = face.channels();
        // The corner pixel is background: the canvas continues it beyond the crop.
        let bg = &face.data()[..c];
        let mut canvas: Vec<u8> = bg
            .iter()
            .copied()
            .cycle()
            .take(CELEBA_WIDTH * CELEBA_HEIGHT * c)
            .collect();
        for y in 0..CELEBA_CROP {
            let src = &face.data()[y * CELEBA_CROP * c..(y + 1) * CELEBA_CROP * c];
            let at = ((y0 + y) * CELEBA_WIDTH + x0) * c;
            canvas[at..at + CELEBA_CROP * c].copy_from_slice(src);
        }
        let img = image::Image::new(CELEBA_WIDTH, CELEBA_HEIGHT, c, canvas)?;
        image::write_png(img_dir.join(&file), &img)?;
        let signs: Vec<&str> = Attr::ALL
            .iter()
            .map(|&a| if s.attributes.get(a) { "1" } else { "-1" })
            .collect();
        attr_text.push_str(&format!("{file} {}\n", signs.join(" ")));
        partition.push_str(&format!("{file} {split}\n"));
    }
    image::write_atomic(dir.join(PARTITION_FILE), partition.as_bytes())?;
    image::write_atomic(dir.join(ATTRIBUTE_FILE), attr_text.as_bytes())
}
