//! The stroke skeletons of the ten glyph classes and the per-image deformation (jitter, slant).
//!
//! A skeleton is a set of polylines in a unit box (x to the right, y downwards). The exogenous
//! [`Jitter`] and slant move it into the pixel frame of a 28×28 image: a smooth warp, a scale per
//! axis, a shear (slant, as Morpho-MNIST measures it) and a shift.

use std::f64::consts::PI;

/// The number of glyph classes (digit-like shapes 0–9).
pub const NUM_CLASSES: usize = 10;

/// Side of the square image in pixels.
pub const SIZE: usize = 28;

/// Height of the glyph box in pixels before jitter (MNIST digits fill about 20 of 28 rows).
const BOX_H: f64 = 19.0;
/// Width of the glyph box in pixels before jitter.
const BOX_W: f64 = 14.0;

/// A point `(x, y)`.
pub type Point = (f64, f64);

/// The per-image shape noise, in effective units (not standardised), so that a sample carries
/// everything needed to re-render it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    /// Horizontal scale factor of the glyph box.
    pub scale_x: f64,
    /// Vertical scale factor of the glyph box.
    pub scale_y: f64,
    /// Horizontal shift in pixels.
    pub shift_x: f64,
    /// Vertical shift in pixels.
    pub shift_y: f64,
    /// Smooth warp amplitudes in unit-box units: x by `sin(πy)`, x by `sin(2πy)`, y by `sin(πx)`,
    /// y by `sin(2πx)`.
    pub warp: [f64; 4],
}

impl Jitter {
    /// No deformation: the class's template as it is.
    pub const NONE: Jitter = Jitter {
        scale_x: 1.0,
        scale_y: 1.0,
        shift_x: 0.0,
        shift_y: 0.0,
        warp: [0.0; 4],
    };
}

fn arc(cx: f64, cy: f64, rx: f64, ry: f64, a0: f64, a1: f64) -> Vec<Point> {
    // About one point per 0.15 rad keeps the chord error far below a pixel at this size.
    let n = (((a1 - a0).abs() / 0.15).ceil() as usize).max(2);
    (0..=n)
        .map(|k| {
            let a = a0 + (a1 - a0) * k as f64 / n as f64;
            (cx + rx * a.cos(), cy + ry * a.sin())
        })
        .collect()
}

fn bezier(p0: Point, c: Point, p1: Point) -> Vec<Point> {
    let n = 16;
    (0..=n)
        .map(|k| {
            let s = k as f64 / n as f64;
            let (a, b, d) = ((1.0 - s) * (1.0 - s), 2.0 * s * (1.0 - s), s * s);
            (a * p0.0 + b * c.0 + d * p1.0, a * p0.1 + b * c.1 + d * p1.1)
        })
        .collect()
}

/// The template polylines of `class` in the unit box (angles run clockwise because y points down).
///
/// Classes outside 0–9 have no template; callers validate the class first.
pub(crate) fn template(class: u8) -> Vec<Vec<Point>> {
    match class {
        0 => vec![arc(0.5, 0.5, 0.42, 0.5, 0.0, 2.0 * PI)],
        1 => vec![vec![(0.56, 0.0), (0.48, 1.0)]],
        2 => {
            let mut s = arc(0.5, 0.3, 0.4, 0.3, PI - 0.2, 2.0 * PI + 0.7);
            s.extend([(0.05, 1.0), (0.95, 1.0)]);
            vec![s]
        }
        3 => vec![
            arc(0.5, 0.27, 0.38, 0.27, PI + 0.5, 2.5 * PI),
            arc(0.5, 0.73, 0.42, 0.27, -0.5 * PI, PI - 0.5),
        ],
        // Open-topped, as most handwritten fours: no acute wedge for a thick stroke to fill.
        4 => vec![
            vec![(0.2, 0.0), (0.08, 0.62), (0.95, 0.62)],
            vec![(0.72, 0.12), (0.72, 1.0)],
        ],
        5 => vec![
            vec![(0.9, 0.0), (0.22, 0.0), (0.17, 0.47)],
            arc(0.48, 0.68, 0.4, 0.32, PI + 0.7, 3.0 * PI - 0.5),
        ],
        6 => vec![
            bezier((0.78, 0.0), (0.2, 0.12), (0.12, 0.7)),
            arc(0.5, 0.7, 0.38, 0.3, 0.0, 2.0 * PI),
        ],
        7 => vec![vec![(0.05, 0.0), (0.95, 0.0), (0.38, 1.0)]],
        8 => vec![
            arc(0.5, 0.24, 0.32, 0.24, 0.0, 2.0 * PI),
            arc(0.5, 0.74, 0.4, 0.26, 0.0, 2.0 * PI),
        ],
        9 => vec![
            arc(0.48, 0.3, 0.38, 0.3, 0.0, 2.0 * PI),
            vec![(0.86, 0.3), (0.72, 1.0)],
        ],
        _ => Vec::new(),
    }
}

/// The skeleton of `class` deformed by `jitter` and `slant`, in pixel coordinates of a
/// [`SIZE`]×[`SIZE`] image (pixel `(c, r)` has its centre at `(c + 0.5, r + 0.5)`).
///
/// `slant` is a shear: a point `dy` pixels above the centre moves `slant · dy` pixels right.
pub fn skeleton(class: u8, jitter: &Jitter, slant: f64) -> Vec<Vec<Point>> {
    let centre = SIZE as f64 / 2.0;
    let w = &jitter.warp;
    template(class)
        .into_iter()
        .map(|stroke| {
            stroke
                .into_iter()
                .map(|(u, v)| {
                    let u2 = u + w[0] * (PI * v).sin() + w[1] * (2.0 * PI * v).sin();
                    let v2 = v + w[2] * (PI * u).sin() + w[3] * (2.0 * PI * u).sin();
                    let y = (v2 - 0.5) * BOX_H * jitter.scale_y;
                    let x = (u2 - 0.5) * BOX_W * jitter.scale_x - slant * y;
                    (centre + x + jitter.shift_x, centre + y + jitter.shift_y)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_strokes_inside_the_image() {
        for c in 0..NUM_CLASSES as u8 {
            let s = skeleton(c, &Jitter::NONE, 0.0);
            assert!(!s.is_empty(), "class {c}");
            for p in s.iter().flatten() {
                assert!(
                    p.0 > 6.0 && p.0 < 22.0 && p.1 > 4.0 && p.1 < 24.0,
                    "{c}: {p:?}"
                );
            }
        }
        assert!(template(10).is_empty());
    }

    #[test]
    fn slant_shears_the_top_to_the_right() {
        let s = skeleton(7, &Jitter::NONE, 0.5);
        // The top-left corner of the 7, (0.05, 0), lies BOX_H / 2 above the centre, so the shear
        // moves it 0.5 · BOX_H / 2 pixels right of its unslanted place.
        let (x, y) = s[0][0];
        assert!((y - (14.0 - BOX_H / 2.0)).abs() < 1e-12);
        let unslanted = 14.0 + (0.05 - 0.5) * BOX_W;
        assert!((x - (unslanted + 0.5 * BOX_H / 2.0)).abs() < 1e-12);
    }
}
