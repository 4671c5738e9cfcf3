//! Anti-aliased drawing from signed distances.
//!
//! Every shape is a signed distance function in pixels (negative inside). A pixel whose centre
//! lies at distance `d` is covered `clamp(0.5 - d, 0, 1)`, which is exact box-filter coverage
//! for a straight edge along a pixel axis and close to it elsewhere; the colour is then
//! composited over the canvas with that alpha. Shapes combine by `min` (union) and `max`
//! (intersection) of their distances.

use super::palette::Rgb;
use crate::data::image::Image;

/// An RGB canvas of floating-point samples on the 0–255 scale.
#[derive(Debug, Clone)]
pub(crate) struct Canvas {
    width: usize,
    height: usize,
    px: Vec<Rgb>,
}

impl Canvas {
    pub(crate) fn new(width: usize, height: usize, fill: Rgb) -> Canvas {
        Canvas {
            width,
            height,
            px: vec![fill; width * height],
        }
    }

    /// Composites `colour` over the pixels that `sdf` (a function of the pixel centre, in
    /// pixels) covers, looking only inside the box `[x0, x1] x [y0, y1]`.
    pub(crate) fn paint(&mut self, bbox: [f64; 4], colour: Rgb, sdf: impl Fn(f64, f64) -> f64) {
        let [x0, y0, x1, y1] = bbox;
        let clampi = |v: f64, n: usize| (v.max(0.0) as usize).min(n);
        let (i0, i1) = (
            clampi(x0.floor() - 1.0, self.width),
            clampi(x1.ceil() + 1.0, self.width),
        );
        let (j0, j1) = (
            clampi(y0.floor() - 1.0, self.height),
            clampi(y1.ceil() + 1.0, self.height),
        );
        for j in j0..j1 {
            for i in i0..i1 {
                let a = (0.5 - sdf(i as f64 + 0.5, j as f64 + 0.5)).clamp(0.0, 1.0);
                if a > 0.0 {
                    let p = &mut self.px[j * self.width + i];
                    for c in 0..3 {
                        p[c] = p[c] * (1.0 - a) + colour[c] * a;
                    }
                }
            }
        }
    }

    pub(crate) fn to_image(&self) -> Image {
        let data = self
            .px
            .iter()
            .flat_map(|p| p.map(|v| v.clamp(0.0, 255.0).round() as u8))
            .collect();
        // Dimensions and sample count agree by construction.
        Image::rgb(self.width, self.height, data).expect("canvas dimensions are valid")
    }
}

/// Distance from `(x, y)` to an axis-aligned ellipse centred at the origin with radii
/// `(a, b)`, to first order (exact on the boundary, good within a few pixels of it).
pub(crate) fn ellipse(x: f64, y: f64, a: f64, b: f64) -> f64 {
    let f = ((x / a).powi(2) + (y / b).powi(2)).sqrt();
    let g = ((x / (a * a)).powi(2) + (y / (b * b)).powi(2)).sqrt();
    if g < 1e-12 {
        return -a.min(b);
    }
    (f - 1.0) * f / g
}

/// [`ellipse`] with its major axis turned by `angle` radians (clockwise on screen).
pub(crate) fn rotated_ellipse(x: f64, y: f64, a: f64, b: f64, angle: f64) -> f64 {
    let (s, c) = angle.sin_cos();
    ellipse(c * x + s * y, -s * x + c * y, a, b)
}

/// Distance from `(x, y)` to the segment `a`–`b`.
pub(crate) fn segment(x: f64, y: f64, a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((x - a.0 - t * dx).powi(2) + (y - a.1 - t * dy).powi(2)).sqrt()
}

/// Distance from `(x, y)` to a polyline.
pub(crate) fn polyline(x: f64, y: f64, pts: &[(f64, f64)]) -> f64 {
    pts.windows(2)
        .map(|w| segment(x, y, w[0], w[1]))
        .fold(f64::INFINITY, f64::min)
}

/// Distance to a rectangle centred at the origin with half sizes `(hw, hh)` and corners
/// rounded with radius `r`.
pub(crate) fn round_rect(x: f64, y: f64, hw: f64, hh: f64, r: f64) -> f64 {
    let qx = x.abs() - (hw - r);
    let qy = y.abs() - (hh - r);
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

/// The points of `y = f(x)` for `x` from `x0` to `x1`, `n` segments.
pub(crate) fn curve(x0: f64, x1: f64, n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    (0..=n)
        .map(|k| {
            let x = x0 + (x1 - x0) * k as f64 / n as f64;
            (x, f(x))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_of_a_half_plane_is_exact() {
        // The edge x = 2.3: pixel 2 (centre 2.5) is 0.7 covered when the inside is x > 2.3.
        let mut c = Canvas::new(4, 1, [0.0; 3]);
        c.paint([0.0, 0.0, 4.0, 1.0], [100.0; 3], |x, _| 2.3 - x);
        let img = c.to_image();
        let row: Vec<u8> = img.data().chunks(3).map(|p| p[0]).collect();
        assert_eq!(row, vec![0, 0, 70, 100]);
    }

    #[test]
    fn distances_are_exact_where_they_must_be() {
        assert!((ellipse(5.0, 0.0, 4.0, 2.0) - 1.0).abs() < 1e-12);
        assert!((ellipse(0.0, 3.0, 4.0, 2.0) - 1.0).abs() < 0.3);
        assert!(ellipse(0.0, 0.0, 4.0, 2.0) < 0.0);
        assert!((segment(1.0, 1.0, (0.0, 0.0), (2.0, 0.0)) - 1.0).abs() < 1e-12);
        assert!((round_rect(3.0, 0.0, 2.0, 1.0, 0.5) - 1.0).abs() < 1e-12);
        assert!(
            (rotated_ellipse(0.0, 5.0, 4.0, 2.0, std::f64::consts::FRAC_PI_2) - 1.0).abs() < 1e-9
        );
    }
}
