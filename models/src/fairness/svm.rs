//! A linear support vector machine (hinge loss, L2 penalty) fitted by dual coordinate descent
//! (Hsieh et al. 2008, liblinear's L1-loss SVC), returning the separating [`Hyperplane`] with a
//! unit-norm normal — the attribute hyperplanes of latent-space de-biasing (Ramaswamy et al.
//! 2021).
//!
//! Fitting runs on the host in f64: it is a one-off on at most a few thousand latents, and the
//! coordinate updates are sequential. Scoring ([`Hyperplane::scores`]) stays on the latents'
//! device.
//!
//! ```
//! use models::fairness::svm::{accuracy_rows, LinearSvm};
//!
//! let x = vec![vec![2.0f32, 1.0], vec![1.5, -1.0], vec![-2.0, 0.5], vec![-1.0, -1.5]];
//! let y = [true, true, false, false];
//! let h = LinearSvm::default().fit_rows(&x, &y)?;
//! assert_eq!(accuracy_rows(&h, &x, &y)?, 1.0);
//! assert!((h.w().iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::{DType, Device, Tensor};
use ppl_core::rng;
use ppl_core::{Error, Result};
use rand::Rng as _;

/// The hyperplane `{z : wᵀz + b = 0}` with `‖w‖ = 1`, so `wᵀz + b` is the signed distance of
/// `z` from it (positive on the side of the positive class).
#[derive(Debug, Clone, PartialEq)]
pub struct Hyperplane {
    w: Vec<f64>,
    b: f64,
}

impl Hyperplane {
    /// The hyperplane `wᵀz + b = 0`, rescaled so that `‖w‖ = 1` (the score `wᵀz + b` is divided
    /// by the old `‖w‖`; the classification is unchanged). Errors on a zero or non-finite `w`
    /// or a non-finite `b`.
    pub fn new(w: Vec<f64>, b: f64) -> Result<Self> {
        let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        if w.is_empty() || !(norm > 0.0 && norm.is_finite()) || !b.is_finite() {
            return Err(Error::param(
                "Hyperplane",
                "w",
                format!(
                    "needs a finite non-zero normal and a finite offset, got |w| = {norm}, b = {b}"
                ),
            ));
        }
        Ok(Hyperplane {
            w: w.into_iter().map(|v| v / norm).collect(),
            b: b / norm,
        })
    }

    /// The unit normal.
    pub fn w(&self) -> &[f64] {
        &self.w
    }

    /// The offset (the score at the origin).
    pub fn b(&self) -> f64 {
        self.b
    }

    /// The dimension of the space.
    pub fn dim(&self) -> usize {
        self.w.len()
    }

    /// `wᵀv` for another hyperplane's normal: the cosine of the angle between the normals.
    pub fn cos(&self, other: &Hyperplane) -> Result<f64> {
        if other.dim() != self.dim() {
            return Err(Error::shape(
                "Hyperplane::cos: dimensions",
                &[self.dim()],
                &[other.dim()],
            ));
        }
        Ok(self.w.iter().zip(&other.w).map(|(a, b)| a * b).sum())
    }

    /// The normal as a `(d,)` tensor of `dtype` on `device`.
    pub fn w_tensor(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        rng::tensor_from_f64(self.w.clone(), self.w.len(), dtype, device)
    }

    fn check_rows(&self, what: &str, z: &Tensor) -> Result<usize> {
        match z.dims() {
            &[n, d] if d == self.dim() => Ok(n),
            dims => Err(Error::shape(
                format!("{what}: latents (n, d)"),
                &[dims.first().copied().unwrap_or(0), self.dim()],
                dims,
            )),
        }
    }

    /// The scores `wᵀz_i + b` of the rows of `z` (`(n, d)`), as an `(n,)` tensor on `z`'s device
    /// in its dtype.
    pub fn scores(&self, z: &Tensor) -> Result<Tensor> {
        self.check_rows("Hyperplane::scores", z)?;
        let w = self.w_tensor(z.dtype(), z.device())?.unsqueeze(1)?;
        Ok(z.matmul(&w)?.squeeze(1)?.affine(1.0, self.b)?)
    }

    /// The score `wᵀz + b` of one point.
    pub fn score_row(&self, z: &[f32]) -> Result<f64> {
        if z.len() != self.dim() {
            return Err(Error::shape(
                "Hyperplane::score_row",
                &[self.dim()],
                &[z.len()],
            ));
        }
        Ok(self.b
            + self
                .w
                .iter()
                .zip(z)
                .map(|(a, &b)| a * b as f64)
                .sum::<f64>())
    }
}

/// Settings of the dual coordinate descent fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSvm {
    /// The hinge loss weight `C` (> 0): larger fits the training set harder.
    pub c: f64,
    /// The most passes over the data.
    pub max_epochs: usize,
    /// Stop when the projected gradient's spread over one pass is below this.
    pub tol: f64,
    /// Seeds the order in which each pass visits the samples.
    pub seed: u64,
}

impl Default for LinearSvm {
    /// `C = 1`, 1000 passes, tolerance 1e-4 (liblinear's defaults are C = 1, 0.1), seed 0.
    fn default() -> Self {
        LinearSvm {
            c: 1.0,
            max_epochs: 1000,
            tol: 1e-4,
            seed: 0,
        }
    }
}

impl LinearSvm {
    /// Fits the rows of `x` (`(n, d)`, any float dtype, any device) to labels `y` (`true` =
    /// positive side).
    pub fn fit(&self, x: &Tensor, y: &[bool]) -> Result<Hyperplane> {
        let (n, d) = match x.dims() {
            &[n, d] => (n, d),
            dims => {
                return Err(Error::shape(
                    "LinearSvm::fit: features (n, d)",
                    &[y.len(), 0],
                    dims,
                ))
            }
        };
        let flat = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        self.fit_flat(&flat, n, d, y)
    }

    /// Fits feature rows `x` (all of one length) to labels `y`.
    pub fn fit_rows(&self, x: &[Vec<f32>], y: &[bool]) -> Result<Hyperplane> {
        let d = x.first().map_or(0, |r| r.len());
        if let Some(i) = x.iter().position(|r| r.len() != d) {
            return Err(Error::shape(
                format!("LinearSvm::fit_rows: row {i}"),
                &[d],
                &[x[i].len()],
            ));
        }
        let flat: Vec<f64> = x.iter().flatten().map(|&v| v as f64).collect();
        self.fit_flat(&flat, x.len(), d, y)
    }

    /// Dual coordinate descent on `min_α ½αᵀQα − Σα, 0 ≤ α ≤ C`, `Q_ij = y_i y_j x̄_iᵀx̄_j`,
    /// with `x̄ = (x, 1)` so the offset is the last weight (regularised with the rest, as in
    /// liblinear).
    fn fit_flat(&self, x: &[f64], n: usize, d: usize, y: &[bool]) -> Result<Hyperplane> {
        if n == 0 || d == 0 {
            return Err(Error::usage("LinearSvm: no samples or no features"));
        }
        if y.len() != n {
            return Err(Error::shape(
                "LinearSvm: labels vs feature rows",
                &[n],
                &[y.len()],
            ));
        }
        let valid = self.c > 0.0 && self.c.is_finite() && self.tol > 0.0 && self.max_epochs > 0;
        if !valid {
            return Err(Error::param(
                "LinearSvm",
                "c",
                format!(
                    "needs C > 0, tol > 0 and at least one epoch, got C = {}, tol = {}, epochs = {}",
                    self.c, self.tol, self.max_epochs
                ),
            ));
        }
        if y.iter().all(|&v| v) || !y.iter().any(|&v| v) {
            return Err(Error::usage("LinearSvm: the labels hold a single class"));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::param(
                "LinearSvm",
                "features",
                format!("row {} holds {}", i / d, x[i]),
            ));
        }
        let row = |i: usize| &x[i * d..(i + 1) * d];
        let sign = |i: usize| if y[i] { 1.0 } else { -1.0 };
        let qii: Vec<f64> = (0..n)
            .map(|i| row(i).iter().map(|v| v * v).sum::<f64>() + 1.0)
            .collect();
        let mut alpha = vec![0.0f64; n];
        let mut w = vec![0.0f64; d + 1];
        let mut order: Vec<usize> = (0..n).collect();
        let mut r = rng::from_seed(self.seed);
        for _ in 0..self.max_epochs {
            for i in (1..n).rev() {
                order.swap(i, r.random_range(0..=i));
            }
            let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
            for &i in &order {
                let xi = row(i);
                let yi = sign(i);
                let wx = w[d] + w[..d].iter().zip(xi).map(|(a, b)| a * b).sum::<f64>();
                let g = yi * wx - 1.0;
                let pg = if alpha[i] == 0.0 {
                    g.min(0.0)
                } else if alpha[i] == self.c {
                    g.max(0.0)
                } else {
                    g
                };
                pg_max = pg_max.max(pg);
                pg_min = pg_min.min(pg);
                if pg.abs() > 1e-12 {
                    let old = alpha[i];
                    alpha[i] = (old - g / qii[i]).clamp(0.0, self.c);
                    let step = (alpha[i] - old) * yi;
                    for (wk, xk) in w[..d].iter_mut().zip(xi) {
                        *wk += step * xk;
                    }
                    w[d] += step;
                }
            }
            if pg_max - pg_min < self.tol {
                break;
            }
        }
        let b = w[d];
        w.truncate(d);
        Hyperplane::new(w, b)
    }
}

fn accuracy_of(scores: impl Iterator<Item = f64>, y: &[bool]) -> f64 {
    let hits = scores.zip(y).filter(|(s, &l)| (*s > 0.0) == l).count();
    hits as f64 / y.len() as f64
}

/// The fraction of rows of `x` (`(n, d)`) on the side of `h` their label says (`score > 0` for
/// `true`).
pub fn accuracy(h: &Hyperplane, x: &Tensor, y: &[bool]) -> Result<f64> {
    let n = h.check_rows("accuracy", x)?;
    if n != y.len() || n == 0 {
        return Err(Error::shape(
            "accuracy: labels vs rows (non-empty)",
            &[n],
            &[y.len()],
        ));
    }
    let s = h.scores(x)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok(accuracy_of(s.into_iter(), y))
}

/// [`accuracy`] on feature rows.
pub fn accuracy_rows(h: &Hyperplane, x: &[Vec<f32>], y: &[bool]) -> Result<f64> {
    if x.len() != y.len() || x.is_empty() {
        return Err(Error::shape(
            "accuracy_rows: labels vs rows (non-empty)",
            &[x.len()],
            &[y.len()],
        ));
    }
    let s = x
        .iter()
        .map(|r| h.score_row(r))
        .collect::<Result<Vec<f64>>>()?;
    Ok(accuracy_of(s.into_iter(), y))
}
