//! Binary morphology for the measurements: upscaling, Zhang–Suen thinning and an exact Euclidean
//! distance transform. Images are row-major `width × height` slices.

/// Bilinear upscaling by an integer `factor`, sampling at pixel centres and clamping at the
/// border (so a constant image stays constant).
pub fn upscale_bilinear(img: &[f64], width: usize, height: usize, factor: usize) -> Vec<f64> {
    let (w2, h2) = (width * factor, height * factor);
    let f = factor as f64;
    let coord = |k: usize, n: usize| -> (usize, usize, f64) {
        let s = ((k as f64 + 0.5) / f - 0.5).clamp(0.0, (n - 1) as f64);
        let i0 = s.floor() as usize;
        let i1 = (i0 + 1).min(n - 1);
        (i0, i1, s - i0 as f64)
    };
    let mut out = vec![0.0; w2 * h2];
    for y in 0..h2 {
        let (y0, y1, fy) = coord(y, height);
        for x in 0..w2 {
            let (x0, x1, fx) = coord(x, width);
            let top = img[y0 * width + x0] * (1.0 - fx) + img[y0 * width + x1] * fx;
            let bot = img[y1 * width + x0] * (1.0 - fx) + img[y1 * width + x1] * fx;
            out[y * w2 + x] = top * (1.0 - fy) + bot * fy;
        }
    }
    out
}

/// Zhang–Suen thinning (Zhang & Suen, CACM 1984): peels boundary pixels in two alternating
/// sub-iterations until only a one-pixel-wide, connected skeleton is left. Pixels beyond the
/// border count as background.
pub fn zhang_suen(binary: &[bool], width: usize, height: usize) -> Vec<bool> {
    // A one-pixel background frame removes every bounds check from the neighbourhood reads.
    let pw = width + 2;
    let mut g = vec![0u8; pw * (height + 2)];
    let mut live = Vec::new();
    for y in 0..height {
        for x in 0..width {
            if binary[y * width + x] {
                let k = (y + 1) * pw + x + 1;
                g[k] = 1;
                live.push(k);
            }
        }
    }
    // P2..P9, clockwise from north, as offsets from the centre (all in range thanks to the frame).
    let off = [
        -(pw as isize),
        1 - pw as isize,
        1,
        pw as isize + 1,
        pw as isize,
        pw as isize - 1,
        -1,
        -(pw as isize) - 1,
    ];
    let mut doomed = Vec::new();
    loop {
        let mut changed = false;
        for pass in 0..2 {
            doomed.clear();
            for &k in &live {
                if g[k] == 0 {
                    continue;
                }
                let mut p = [0u8; 8];
                for j in 0..8 {
                    p[j] = g[(k as isize + off[j]) as usize];
                }
                let mut b = 0u8;
                let mut a = 0u8;
                for j in 0..8 {
                    b += p[j];
                    a += u8::from(p[j] == 0 && p[(j + 1) & 7] == 1);
                }
                let (p2, p4, p6, p8) = (p[0], p[2], p[4], p[6]);
                let side = if pass == 0 {
                    p2 * p4 * p6 == 0 && p4 * p6 * p8 == 0
                } else {
                    p2 * p4 * p8 == 0 && p2 * p6 * p8 == 0
                };
                if (2..=6).contains(&b) && a == 1 && side {
                    doomed.push(k);
                }
            }
            changed |= !doomed.is_empty();
            for &k in &doomed {
                g[k] = 0;
            }
        }
        live.retain(|&k| g[k] == 1);
        if !changed {
            break;
        }
    }
    let mut out = vec![false; width * height];
    for k in live {
        let (y, x) = (k / pw - 1, k % pw - 1);
        out[y * width + x] = true;
    }
    out
}

/// The squared distance transform of a 1-D sampled function `f` (Felzenszwalb & Huttenlocher,
/// 2012): `d[q] = min_p (q − p)² + f[p]`, by the lower envelope of parabolas.
fn edt_1d(f: &[f64], d: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        if f[q] == f64::INFINITY {
            continue;
        }
        loop {
            let p = v[k];
            let s =
                ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * (q as f64 - p as f64));
            if f[p] == f64::INFINITY || s <= z[k] {
                if k == 0 {
                    // The envelope so far is empty of finite parabolas: q starts it.
                    v[0] = q;
                    z[0] = f64::NEG_INFINITY;
                    z[1] = f64::INFINITY;
                    break;
                }
                k -= 1;
            } else {
                k += 1;
                v[k] = q;
                z[k] = s;
                z[k + 1] = f64::INFINITY;
                break;
            }
        }
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate().take(n) {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        *dq = if f[p] == f64::INFINITY {
            f64::INFINITY
        } else {
            let dqp = q as f64 - p as f64;
            dqp * dqp + f[p]
        };
    }
}

/// The exact Euclidean distance from every pixel to the centre of the nearest background pixel
/// (`false`); background pixels get 0. Pixels beyond the border count as background, so the
/// result is always finite.
pub fn distance_transform(binary: &[bool], width: usize, height: usize) -> Vec<f64> {
    // Pad by one background pixel on every side: the border is then background by construction.
    let (pw, ph) = (width + 2, height + 2);
    let mut g = vec![0.0f64; pw * ph];
    for y in 0..height {
        for x in 0..width {
            if binary[y * width + x] {
                g[(y + 1) * pw + x + 1] = f64::INFINITY;
            }
        }
    }
    let n = pw.max(ph);
    let (mut f, mut d) = (vec![0.0; n], vec![0.0; n]);
    let (mut v, mut z) = (vec![0usize; n], vec![0.0; n + 1]);
    for x in 0..pw {
        for y in 0..ph {
            f[y] = g[y * pw + x];
        }
        edt_1d(&f[..ph], &mut d[..ph], &mut v, &mut z);
        for y in 0..ph {
            g[y * pw + x] = d[y];
        }
    }
    for y in 0..ph {
        f[..pw].copy_from_slice(&g[y * pw..(y + 1) * pw]);
        edt_1d(&f[..pw], &mut d[..pw], &mut v, &mut z);
        g[y * pw..(y + 1) * pw].copy_from_slice(&d[..pw]);
    }
    let mut out = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            out[y * width + x] = g[(y + 1) * pw + x + 1].sqrt();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    fn brute_edt(b: &[bool], w: usize, h: usize) -> Vec<f64> {
        let mut out = vec![0.0; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                if !b[y as usize * w + x as usize] {
                    continue;
                }
                let mut best = f64::INFINITY;
                for yy in -1..=h as isize {
                    for xx in -1..=w as isize {
                        let inside = xx >= 0 && yy >= 0 && xx < w as isize && yy < h as isize;
                        if inside && b[yy as usize * w + xx as usize] {
                            continue;
                        }
                        let d = (((xx - x).pow(2) + (yy - y).pow(2)) as f64).sqrt();
                        best = best.min(d);
                    }
                }
                out[y as usize * w + x as usize] = best;
            }
        }
        out
    }

    #[test]
    fn distance_transform_is_exact_against_brute_force() {
        let mut r = ppl_core::rng::from_seed(11);
        for &(w, h, p) in &[(13, 9, 0.8), (20, 20, 0.95), (7, 15, 0.5), (5, 5, 1.0)] {
            let b: Vec<bool> = (0..w * h).map(|_| r.random::<f64>() < p).collect();
            let fast = distance_transform(&b, w, h);
            let slow = brute_edt(&b, w, h);
            for (a, e) in fast.iter().zip(&slow) {
                assert!((a - e).abs() < 1e-12, "{w}x{h}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn thinning_a_bar_leaves_its_midline() {
        // A 5-pixel-high bar: the skeleton is the middle row (minus a pixel or two at the ends).
        let (w, h) = (30, 9);
        let b: Vec<bool> = (0..w * h)
            .map(|k| (2..7).contains(&(k / w)) && (3..27).contains(&(k % w)))
            .collect();
        let s = zhang_suen(&b, w, h);
        let rows: Vec<usize> = (0..w * h).filter(|&k| s[k]).map(|k| k / w).collect();
        assert!(rows.len() >= 18, "skeleton too short: {}", rows.len());
        assert!(rows.iter().all(|&r| r == 4), "rows {rows:?}");
    }

    #[test]
    fn upscaling_keeps_constants_and_interpolates() {
        let img = vec![0.0, 1.0];
        let up = upscale_bilinear(&img, 2, 1, 2);
        // 2x1 becomes 4x2: both rows read the one source row.
        assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0, 0.0, 0.25, 0.75, 1.0]);
        let c = upscale_bilinear(&[0.3; 6], 3, 2, 4);
        assert!(c.iter().all(|&v| (v - 0.3).abs() < 1e-15));
    }
}
