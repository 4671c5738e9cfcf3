//! Anti-aliased rasterisation of a skeleton at a stroke thickness, and the intensity scaling.

use super::skeleton::{Point, SIZE};

/// The fraction of each pixel covered by the strokes of `thickness` pixels around `strokes`
/// (round caps and joins), `SIZE × SIZE` values in `[0, 1]`, rows top to bottom.
///
/// Coverage ramps linearly over one pixel across the stroke's edge, the box-filter
/// approximation: a pixel whose centre lies exactly on the edge is half covered, so binarising at
/// one half recovers a stroke exactly `thickness` pixels wide.
pub fn coverage(strokes: &[Vec<Point>], thickness: f64) -> Vec<f64> {
    let mut d2 = vec![f64::INFINITY; SIZE * SIZE];
    let reach = thickness / 2.0 + 1.0;
    for stroke in strokes {
        let segs: Vec<(Point, Point)> = if stroke.len() == 1 {
            vec![(stroke[0], stroke[0])]
        } else {
            stroke.windows(2).map(|w| (w[0], w[1])).collect()
        };
        for (a, b) in segs {
            // Only pixels within reach of the segment can be covered by it.
            let x0 = (a.0.min(b.0) - reach).floor().max(0.0) as usize;
            let x1 = ((a.0.max(b.0) + reach).ceil().max(0.0) as usize).min(SIZE);
            let y0 = (a.1.min(b.1) - reach).floor().max(0.0) as usize;
            let y1 = ((a.1.max(b.1) + reach).ceil().max(0.0) as usize).min(SIZE);
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = (x as f64 + 0.5, y as f64 + 0.5);
                    let d = segment_dist2(p, a, b);
                    let k = y * SIZE + x;
                    if d < d2[k] {
                        d2[k] = d;
                    }
                }
            }
        }
    }
    d2.into_iter()
        .map(|d| (thickness / 2.0 - d.sqrt() + 0.5).clamp(0.0, 1.0))
        .collect()
}

fn segment_dist2(p: Point, a: Point, b: Point) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let s = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (p.0 - a.0 - s * dx, p.1 - a.1 - s * dy);
    ex * ex + ey * ey
}

/// The median of the bright pixels — those at or above the midpoint between the image's minimum
/// and maximum — as Morpho-MNIST measures intensity (the mean of the two middle values when
/// their count is even). `None` for a constant image, which has no stroke.
pub fn bright_median(values: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    let (lo, hi) = values
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    // Also refuses NaN extremes.
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let cut = lo + 0.5 * (hi - lo);
    let mut bright: Vec<f64> = values.filter(|&v| v >= cut).collect();
    bright.sort_by(f64::total_cmp);
    let n = bright.len();
    Some(if n % 2 == 1 {
        bright[n / 2]
    } else {
        0.5 * (bright[n / 2 - 1] + bright[n / 2])
    })
}

/// The gain that makes the median of the bright pixels of `clip(gain · cov, 0, 255)` equal
/// `intensity` (as near as the discrete bright set allows).
fn gain_for(cov: &[f64], intensity: f64) -> Option<f64> {
    let level = |g: f64| bright_median(cov.iter().map(move |&c| (c * g).min(255.0)));
    let cmax = cov.iter().fold(0.0f64, |m, &c| m.max(c));
    let g0 = intensity / bright_median(cov.iter().copied())?;
    if g0 * cmax <= 255.0 {
        // Nothing clips: the scaling is exact.
        return Some(g0);
    }
    // Clipping lowered the maximum and so the bright threshold, letting dimmer pixels into the
    // bright set: the median at g0 is now at most `intensity`. It reaches 255 for a large enough
    // gain, so a bracket exists; bisect it.
    let (mut lo, mut hi) = (g0, g0);
    for _ in 0..64 {
        if level(hi)? >= intensity {
            break;
        }
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if level(mid)? >= intensity {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // The median jumps where a pixel enters the bright set: keep the side nearer the target.
    let (l, h) = (level(lo)?, level(hi)?);
    Some(if (intensity - l).abs() < (h - intensity).abs() {
        lo
    } else {
        hi
    })
}

/// Scales a coverage map so that the median of its bright pixels equals `intensity` (clipping at
/// 255 included), adds `pixel_noise` (grey levels) where given, clamps to 0–255 and rounds to
/// whole grey levels, so that an exported 8-bit PNG holds exactly the tensor's values.
pub fn shade(cov: &[f64], intensity: f64, pixel_noise: Option<&[f32]>) -> Option<Vec<f32>> {
    let gain = gain_for(cov, intensity)?;
    Some(
        cov.iter()
            .enumerate()
            .map(|(k, &c)| {
                let noise = pixel_noise.map_or(0.0, |n| f64::from(n[k]));
                (c * gain + noise).clamp(0.0, 255.0).round() as f32
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizontal_bar_is_thickness_pixels_wide() {
        // A segment along y = 14 (a pixel boundary): at t = 4 the centres of rows 12..=15 lie
        // 0.5 or 1.5 px away (fully covered), those of rows 11 and 16 2.5 px away (uncovered).
        let s = vec![vec![(5.0, 14.0), (23.0, 14.0)]];
        let c = coverage(&s, 4.0);
        let col: Vec<f64> = (0..SIZE).map(|r| c[r * SIZE + 14]).collect();
        for (r, v) in col.iter().enumerate() {
            let expect = match r {
                12..=15 => 1.0,
                _ => 0.0,
            };
            assert_eq!(*v, expect, "row {r}");
        }
        // At t = 3 the outer rows' centres lie 1.5 px away, exactly on the edge: half covered.
        let c = coverage(&s, 3.0);
        assert_eq!(c[12 * SIZE + 14], 0.5);
        assert_eq!(c[13 * SIZE + 14], 1.0);
    }

    #[test]
    fn bright_median_matches_numpy_convention() {
        // min 0, max 10, cut 5: bright {5, 6, 10, 10} -> (6 + 10) / 2.
        let v = [0.0, 1.0, 5.0, 6.0, 10.0, 10.0, 4.9];
        assert_eq!(bright_median(v.iter().copied()), Some(8.0));
        assert_eq!(bright_median([3.0, 3.0].iter().copied()), None);
    }
}
