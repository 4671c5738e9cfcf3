//! The attribute oracle: reads every rendered attribute back from a face image.
//!
//! It uses the image alone. The skin colour is the median of a cheek band that is skin for
//! every style; the face frame (centre and size) is located from the sub-pixel positions of
//! the face's left and right edges at cheek height and of the chin, read off the
//! anti-aliased edge pixels; then each attribute is a colour test at the place in the frame
//! where the renderer draws it (see [`layout`](super::layout)).

use ppl_core::{Error, Result};

use super::layout::*;
use super::noise::{MAX_SCALE_DEV, MAX_SHIFT};
use super::palette::{EyeColour, HairColour, Rgb, SkinTone};
use super::render::face_sdf;
use super::sample::Attributes;
use super::scm::{Attr, NUM_ATTRS};
use crate::data::image::Image;

/// What the oracle read from one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Every attribute. For a bald face the hair colour is read from the moustache or the
    /// brows.
    pub attributes: Attributes,
    /// The face frame located in the image.
    pub frame: Frame,
    /// The skin colour read from the image.
    pub skin_rgb: Rgb,
}

/// Log-RGB distance: the largest per-channel log ratio, with an offset that keeps dark
/// colours from dominating.
fn logdist(a: Rgb, b: Rgb) -> f64 {
    (0..3)
        .map(|c| ((a[c] + 10.0) / (b[c] + 10.0)).ln().abs())
        .fold(0.0, f64::max)
}

fn log_vec(a: Rgb) -> [f64; 3] {
    a.map(|v| (v + 10.0).ln())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

struct Pixels<'a> {
    img: &'a Image,
}

impl Pixels<'_> {
    fn at(&self, i: i64, j: i64) -> Rgb {
        let n = SIZE as i64 - 1;
        let p = self
            .img
            .pixel(i.clamp(0, n) as usize, j.clamp(0, n) as usize)
            .unwrap_or(&[0, 0, 0]);
        [f64::from(p[0]), f64::from(p[1]), f64::from(p[2])]
    }

    /// The pixel that contains the image point `(x, y)`.
    fn at_point(&self, x: f64, y: f64) -> Rgb {
        self.at(x.floor() as i64, y.floor() as i64)
    }

    fn median_rgb(&self, pts: impl Iterator<Item = (i64, i64)>) -> Rgb {
        let px: Vec<Rgb> = pts.map(|(i, j)| self.at(i, j)).collect();
        [0, 1, 2].map(|c| median(px.iter().map(|p| p[c]).collect()))
    }
}

/// The fraction of `p` that is `inside` when `p` mixes `inside` and `outside`.
fn coverage(p: Rgb, inside: Rgb, outside: Rgb) -> f64 {
    let d: Vec<f64> = (0..3).map(|c| inside[c] - outside[c]).collect();
    let norm2: f64 = d.iter().map(|x| x * x).sum();
    if norm2 < 1e-9 {
        return 1.0;
    }
    let proj: f64 = (0..3).map(|c| (p[c] - outside[c]) * d[c]).sum();
    (proj / norm2).clamp(0.0, 1.0)
}

const INSIDE: f64 = 0.08;
const INK: f64 = 0.25;

/// Sub-pixel position of the skin edge met walking along `line(k)` for k = 0, 1, ..: the
/// distance (in pixels, along the walk) from the start of pixel 0 to the edge.
fn edge_along(px: &Pixels<'_>, skin: Rgb, line: impl Fn(i64) -> (i64, i64)) -> Option<f64> {
    // Three skin pixels in a row: a single pixel mixing hair and background can match the
    // skin colour.
    let is_skin = |k: i64| {
        let (i, j) = line(k);
        logdist(px.at(i, j), skin) < INSIDE
    };
    let first = (0..SIZE as i64).find(|&k| is_skin(k) && is_skin(k + 1) && is_skin(k + 2))?;
    // The outside colour is read two pixels out: hair is at least three pixels wide where
    // it borders the face, so this is the colour the edge pixels mix with skin.
    let (oi, oj) = line((first - 2).max(0));
    let outside = px.at(oi, oj);
    // Pixels first-1 ..= first+1 span the edge: the outside ones add nothing and the inside
    // ones a whole pixel each, so the edge lies `sum` pixels before the end of pixel first+1.
    let sum: f64 = (first - 1..=first + 1)
        .map(|k| {
            if k < 0 {
                return 0.0;
            }
            let (i, j) = line(k);
            coverage(px.at(i, j), skin, outside)
        })
        .sum();
    Some((first + 2) as f64 - sum)
}

fn no_face() -> Error {
    Error::usage("measure: no cartoon face found in the image (no skin edge where one should be)")
}

/// Left and right edge (image x) of the face on pixel row `j`.
fn row_edges(px: &Pixels<'_>, skin: Rgb, j: i64) -> Result<(f64, f64)> {
    let n = SIZE as i64;
    let left = edge_along(px, skin, |k| (k, j)).ok_or_else(no_face)?;
    let right = n as f64 - edge_along(px, skin, |k| (n - 1 - k, j)).ok_or_else(no_face)?;
    Ok((left, right))
}

/// The half-width of the face outline at face height `v`.
fn half_width(v: f64, male: bool) -> f64 {
    let (mut lo, mut hi) = (0.0, FACE_R.0 + 1.0);
    if face_sdf(0.0, v, male) >= 0.0 {
        return 0.0;
    }
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        if face_sdf(mid, v, male) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn locate(px: &Pixels<'_>, skin: Rgb) -> Result<Frame> {
    let row = CENTRE.1 as i64;
    let (l, r) = row_edges(px, skin, row)?;
    let cx = 0.5 * (l + r);
    let w = 0.5 * (r - l);
    let col = (cx - 0.5).round() as i64;
    let n = SIZE as i64;
    let chin = n as f64 - edge_along(px, skin, |k| (col, n - 1 - k)).ok_or_else(no_face)?;
    let y = row as f64 + 0.5;
    // Chin at cy + FACE_R.1 * s and the half-width at row y fix the size: the width grows
    // with s, so bisect.
    let width_at = |s: f64| {
        let cy = chin - FACE_R.1 * s;
        s * half_width((y - cy) / s, false)
    };
    let (mut lo, mut hi) = (0.8, 1.2);
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        if width_at(mid) < w {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = 0.5 * (lo + hi);
    let f = Frame {
        cx,
        cy: chin - FACE_R.1 * s,
        s,
    };
    // A frame outside what the style noise can produce means there is no face to read (a
    // blank or foreign image), not a face at a strange place.
    let slack = 0.5;
    let fits = (f.cx - CENTRE.0).abs() <= MAX_SHIFT + slack
        && (f.cy - CENTRE.1).abs() <= MAX_SHIFT + slack
        && (f.s - 1.0).abs() <= MAX_SCALE_DEV + 0.02;
    if fits {
        Ok(f)
    } else {
        Err(no_face())
    }
}

fn nearest<T: Copy>(all: &[T], rgb: impl Fn(T) -> Rgb, p: Rgb) -> T {
    let lp = log_vec(p);
    let d = |c: T| {
        let lc = log_vec(rgb(c));
        (0..3).map(|k| (lp[k] - lc[k]).powi(2)).sum::<f64>()
    };
    all.iter()
        .copied()
        .min_by(|a, b| d(*a).total_cmp(&d(*b)))
        .unwrap_or(all[0])
}

/// The hair colour whose `k`-darkened shade, mixed with `skin` in the best proportion, comes
/// closest to `p`.
fn hair_by_mixing(p: Rgb, skin: Rgb, k: f64) -> HairColour {
    let residual = |h: HairColour| {
        let c = h.rgb().map(|v| v * k);
        let a = coverage(p, c, skin);
        (0..3)
            .map(|i| (p[i] - (a * c[i] + (1.0 - a) * skin[i])).powi(2))
            .sum::<f64>()
    };
    HairColour::ALL
        .iter()
        .copied()
        .min_by(|a, b| residual(*a).total_cmp(&residual(*b)))
        .unwrap_or(HairColour::Black)
}

/// Chromaticity of an iris pixel: log-RGB with the mean removed, so the pupil's darker
/// shade of the same colour reads the same.
fn chroma(p: Rgb) -> [f64; 3] {
    let l = log_vec(p);
    let m = (l[0] + l[1] + l[2]) / 3.0;
    l.map(|v| v - m)
}

/// Reads every attribute of a cartoon face from its 64×64 RGB image.
pub fn measure(image: &Image) -> Result<Measurement> {
    if image.width() != SIZE || image.height() != SIZE || image.channels() != 3 {
        return Err(Error::usage(format!(
            "measure: a cartoon face is a {SIZE}x{SIZE} RGB image, got {}x{} with {} channel(s)",
            image.width(),
            image.height(),
            image.channels()
        )));
    }
    let px = Pixels { img: image };
    let skin = px.median_rgb((19..=45).flat_map(|i| (35..=39).map(move |j| (i, j))));
    let f = locate(&px, skin)?;
    let at = |u: f64, v: f64| {
        let (x, y) = f.to_px(u, v);
        px.at_point(x, y)
    };
    let ink = |u: f64, v: f64| logdist(at(u, v), skin);
    // The pixel rows whose centres lie between face heights v0 and v1, at face column u.
    let column = |u: f64, v0: f64, v1: f64| -> Vec<f64> {
        let (x, _) = f.to_px(u, 0.0);
        let (_, y0) = f.to_px(0.0, v0);
        let (_, y1) = f.to_px(0.0, v1);
        let j0 = (y0 - 0.5).ceil() as i64;
        let j1 = (y1 - 0.5).floor() as i64;
        (j0..=j1)
            .map(|j| logdist(px.at(x.floor() as i64, j), skin))
            .collect()
    };

    let mut binary = [false; NUM_ATTRS];
    let mut set = |a: Attr, v: bool| binary[a.index()] = v;

    // Bald: the crown is skin.
    let crown = px.median_rgb(
        (-2..=2)
            .flat_map(|du| [-17.5, -16.5].map(move |v| (du, v)))
            .map(|(du, v)| {
                let (x, y) = f.to_px(f64::from(du), v);
                (x.floor() as i64, y.floor() as i64)
            }),
    );
    let bald = logdist(crown, skin) < 0.12;
    set(Attr::Bald, bald);

    // Male: the square jaw is wider low on the face.
    let v_jaw = 17.5;
    let (_, yj) = f.to_px(0.0, v_jaw);
    let j = (yj - 0.5).round() as i64;
    let (l, r) = row_edges(&px, skin, j)?;
    let v_row = (j as f64 + 0.5 - f.cy) / f.s;
    let w = 0.5 * (r - l) / f.s;
    let (wf, wm) = (half_width(v_row, false), half_width(v_row, true));
    let male = (w - wm).abs() < (w - wf).abs();
    set(Attr::Male, male);

    // Young: no age lines beside the mouth.
    let age = |side: f64| {
        (0..=8)
            .map(|k| ink(side * (7.6 + 0.5 * f64::from(k)), 8.5))
            .fold(0.0, f64::max)
    };
    set(Attr::Young, 0.5 * (age(-1.0) + age(1.0)) < 0.2);

    // Eyeglasses: frame ink on the bridge and below both eyes.
    let frame_hits = [
        ink(0.0, BRIDGE_Y - 0.05),
        ink(-EYE_X, EYE_Y + LENS_R.1),
        ink(EYE_X, EYE_Y + LENS_R.1),
    ]
    .iter()
    .filter(|&&d| d > INK)
    .count();
    set(Attr::Eyeglasses, frame_hits >= 2);

    // Mustache: ink at the centres of its two halves, where a clean-shaven face is bare skin
    // (hence a low threshold, which a blond moustache on brown skin needs).
    let tache = 0.5 * (ink(-MOUSTACHE.0, MOUSTACHE.1) + ink(MOUSTACHE.0, MOUSTACHE.1));
    let mustache = tache > 0.12;
    set(Attr::Mustache, mustache);

    // Lipstick: a magenta red that neither skin, lips, mouth nor any moustache has.
    let mut lipstick = 0.0f64;
    for du in -13..=13 {
        for dv in -8..=8 {
            let p = at(0.5 * f64::from(du), MOUTH_Y + 0.5 * f64::from(dv));
            lipstick = lipstick.max((p[0] - p[1]).min(2.0 * (p[2] - p[1])));
        }
    }
    set(Attr::WearingLipstick, lipstick > 45.0);

    // Mouth_Slightly_Open: a tall dark opening on the centre line.
    let open_rows = column(0.0, MOUTH_Y - 2.2, MOUTH_Y + 4.2)
        .iter()
        .filter(|&&d| d > INK)
        .count();
    set(Attr::MouthSlightlyOpen, open_rows >= 4);

    // Smiling: the mouth corners are raised, leaving ink near the corners above the level
    // that a neutral mouth reaches there.
    let corner = 0.85 * MOUTH_W;
    let raised = |side: f64| {
        column(side * corner, MOUTH_Y - 2.5, MOUTH_Y - 1.4)
            .into_iter()
            .fold(0.0, f64::max)
    };
    set(Attr::Smiling, 0.5 * (raised(-1.0) + raised(1.0)) > INK);

    // Narrow_Eyes: a short eye on its centre column, measured from the top to the bottom
    // inked row (an iris shade mixed with the white can match the skin inside the eye).
    let eye_rows = |side: f64| {
        let c = column(side * EYE_X, EYE_Y - 3.2, EYE_Y + 3.2);
        let first = c.iter().position(|&d| d > INK);
        let last = c.iter().rposition(|&d| d > INK);
        match (first, last) {
            (Some(a), Some(b)) => b - a + 1,
            _ => 0,
        }
    };
    set(Attr::NarrowEyes, eye_rows(-1.0) + eye_rows(1.0) < 11);

    // Eye colour: chromaticity of the iris pixels on each eye's centre row.
    let mut c = [0.0; 3];
    for side in [-1.0, 1.0] {
        for du in [-1.0, 0.0, 1.0] {
            let q = chroma(at(side * EYE_X + du, EYE_Y));
            for k in 0..3 {
                c[k] += q[k];
            }
        }
    }
    let eye = EyeColour::ALL
        .iter()
        .copied()
        .min_by(|a, b| {
            let d = |e: EyeColour| {
                let q = chroma(e.rgb());
                (0..3).map(|k| (c[k] / 6.0 - q[k]).powi(2)).sum::<f64>()
            };
            d(*a).total_cmp(&d(*b))
        })
        .unwrap_or(EyeColour::Brown);

    let skin_tone = nearest(SkinTone::ALL, |t| t.rgb(), skin);

    let hair = if !bald {
        nearest(HairColour::ALL, |h| h.rgb(), crown)
    } else if mustache {
        let p = [-1.0, 1.0].map(|side| at(side * MOUSTACHE.0, MOUSTACHE.1));
        nearest(
            HairColour::ALL,
            |h| h.rgb().map(|v| v * 0.65),
            [0, 1, 2].map(|k| 0.5 * (p[0][k] + p[1][k])),
        )
    } else {
        // The brow pixel that differs most from the skin, unmixed from it.
        let mut best = (0.0, skin);
        for side in [-1.0, 1.0] {
            for dv in -6..=6 {
                let p = at(side * EYE_X, BROW_Y - 1.0 + 0.25 * f64::from(dv));
                let d = logdist(p, skin);
                if d > best.0 {
                    best = (d, p);
                }
            }
        }
        hair_by_mixing(best.1, skin, 0.75)
    };

    Ok(Measurement {
        attributes: Attributes {
            binary,
            eye,
            skin: skin_tone,
            hair,
        },
        frame: f,
        skin_rgb: skin,
    })
}
