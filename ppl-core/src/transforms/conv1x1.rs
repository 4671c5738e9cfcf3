//! Glow's invertible 1×1 convolution, LU-parameterised.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use nalgebra::DMatrix;
use rand::Rng as _;

use super::{check_event_rank, Transform};
use crate::error::{Error, Result};
use crate::kernels::{conv2d, Conv2dConfig};
use crate::nn::{from_nchw, param_from, to_nchw};
use crate::rng;

const NAME: &str = "InvertibleConv1x1";

/// Glow's invertible 1×1 convolution on images `(..., C, H, W)`: every pixel's channel vector
/// is multiplied by a learnable `C × C` matrix `W = P L (U + diag(sign · exp(log_s)))` (the LU
/// parameterisation), with log-det `H · W · Σ log_s` (event dim 3).
///
/// `W` starts as a random rotation drawn from the seeded generator. Stored under the builder's
/// prefix: trainable `lower` and `upper` `(C, C)` (only their strict triangles are used) and
/// `log_s` `(C)`; fixed buffers `perm` `(C, C)` and `sign_s` `(C)`. The inverse is exact and
/// differentiable: the inverses of the unit-triangular factors are finite Neumann series
/// (their off-diagonal parts are nilpotent), evaluated by repeated squaring.
#[derive(Debug, Clone)]
pub struct InvertibleConv1x1 {
    perm: Tensor,
    lower: Tensor,
    upper: Tensor,
    log_s: Tensor,
    sign_s: Tensor,
}

/// `P A = L U` of a square matrix by partial pivoting: `(P, L, U)` with `A = Pᵀ L U`.
fn lu(a: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
    let n = a.nrows();
    let mut m = a.clone();
    let mut perm: Vec<usize> = (0..n).collect();
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| m[(i, k)].abs().total_cmp(&m[(j, k)].abs()))
            .unwrap_or(k);
        m.swap_rows(k, p);
        perm.swap(k, p);
        for i in k + 1..n {
            let f = m[(i, k)] / m[(k, k)];
            m[(i, k)] = f;
            for j in k + 1..n {
                m[(i, j)] -= f * m[(k, j)];
            }
        }
    }
    let l = DMatrix::from_fn(n, n, |i, j| match i.cmp(&j) {
        std::cmp::Ordering::Greater => m[(i, j)],
        std::cmp::Ordering::Equal => 1.0,
        std::cmp::Ordering::Less => 0.0,
    });
    let u = DMatrix::from_fn(n, n, |i, j| if i <= j { m[(i, j)] } else { 0.0 });
    let p = DMatrix::from_fn(n, n, |i, j| if perm[i] == j { 1.0 } else { 0.0 });
    (p, l, u)
}

/// The LU factors of a random rotation: `(perm, lower, upper, log_s, sign_s)` as row-major
/// host values, `perm` being `Pᵀ`.
fn random_rotation_lu(c: usize) -> [Vec<f64>; 5] {
    let g = rng::with_rng(|r| {
        DMatrix::from_fn(c, c, |_, _| r.sample::<f64, _>(rand_distr::StandardNormal))
    });
    let q = g.qr().q();
    let (p, l, u) = lu(&q);
    let rows = |m: &DMatrix<f64>| -> Vec<f64> {
        (0..c)
            .flat_map(|i| (0..c).map(move |j| (i, j)))
            .map(|(i, j)| m[(i, j)])
            .collect()
    };
    let diag: Vec<f64> = (0..c).map(|i| u[(i, i)]).collect();
    [
        rows(&p.transpose()),
        rows(&l),
        rows(&u),
        diag.iter().map(|d| d.abs().ln()).collect(),
        diag.iter().map(|d| d.signum()).collect(),
    ]
}

/// `(I + N)⁻¹ = Σ_k (−N)^k` for a nilpotent `N` of size `c`, as `Π_j (I + (−N)^{2^j})`.
fn unit_triangular_inverse(n: &Tensor, c: usize) -> Result<Tensor> {
    let eye = Tensor::eye(c, n.dtype(), n.device())?;
    let mut pow = n.neg()?;
    let mut acc = (&eye + &pow)?;
    let mut span = 2;
    while span < c {
        pow = pow.matmul(&pow)?;
        acc = acc.matmul(&(&eye + &pow)?)?;
        span *= 2;
    }
    Ok(acc)
}

fn strict_mask(c: usize, lower: bool, dtype: DType, device: &Device) -> Result<Tensor> {
    let v: Vec<f64> = (0..c * c)
        .map(|k| {
            let (i, j) = (k / c, k % c);
            if (lower && i > j) || (!lower && i < j) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    rng::tensor_from_f64(v, (c, c), dtype, device)
}

impl InvertibleConv1x1 {
    /// A learnable invertible 1×1 convolution of `channels` channels.
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        let c = channels;
        if c == 0 {
            return Err(Error::usage("InvertibleConv1x1: channels must be positive"));
        }
        let (dtype, device) = (vb.dtype(), vb.device().clone());
        let init = if vb.contains_tensor("lower") {
            None
        } else {
            Some(random_rotation_lu(c))
        };
        let take = |i: usize, name: &str, shape: &[usize]| {
            param_from(&vb, name, shape, || {
                let v = init.as_ref().map(|a| a[i].clone()).unwrap_or_default();
                rng::tensor_from_f64(v, shape, dtype, &device)
            })
        };
        Ok(InvertibleConv1x1 {
            perm: take(0, "perm", &[c, c])?,
            lower: take(1, "lower", &[c, c])?,
            upper: take(2, "upper", &[c, c])?,
            log_s: take(3, "log_s", &[c])?,
            sign_s: take(4, "sign_s", &[c])?,
        })
    }

    fn channels(&self) -> usize {
        self.log_s.dims()[0]
    }

    /// `(P, L, U)` of the current parameters.
    fn factors(&self) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        let c = self.channels();
        let (dt, dev) = (self.lower.dtype(), self.lower.device());
        let n_l = (&self.lower * strict_mask(c, true, dt, dev)?)?;
        let m_u = (&self.upper * strict_mask(c, false, dt, dev)?)?;
        let s = (self.log_s.exp()? * &self.sign_s.detach())?;
        Ok((self.perm.detach(), n_l, m_u, s))
    }

    /// The matrix `W`.
    pub fn weight(&self) -> Result<Tensor> {
        let c = self.channels();
        let (p, n_l, m_u, s) = self.factors()?;
        let eye = Tensor::eye(c, n_l.dtype(), n_l.device())?;
        let l = (&eye + n_l)?;
        let u = (m_u + eye.broadcast_mul(&s.unsqueeze(0)?)?)?;
        Ok(p.matmul(&l)?.matmul(&u)?)
    }

    /// The matrix `W⁻¹ = U⁻¹ L⁻¹ Pᵀ`.
    pub fn inverse_weight(&self) -> Result<Tensor> {
        let c = self.channels();
        let (p, n_l, m_u, s) = self.factors()?;
        let l_inv = unit_triangular_inverse(&n_l, c)?;
        // U = D (I + D⁻¹ M), so U⁻¹ = (I + D⁻¹ M)⁻¹ D⁻¹.
        let s_inv = s.recip()?;
        let k = m_u.broadcast_mul(&s_inv.unsqueeze(1)?)?;
        let u_inv = unit_triangular_inverse(&k, c)?.broadcast_mul(&s_inv.unsqueeze(0)?)?;
        Ok(u_inv.matmul(&l_inv)?.matmul(&p.t()?)?)
    }

    fn apply(&self, v: &Tensor, w: &Tensor, what: &str) -> Result<Tensor> {
        let c = self.channels();
        check_event_rank(v, 3, &format!("{NAME}::{what}"))?;
        let got = v.dims()[v.rank() - 3];
        if got != c {
            return Err(Error::shape(
                format!("{NAME}::{what}: a value of shape (..., C, H, W) with C = {c}"),
                &[c],
                &[got],
            ));
        }
        let (flat, lead) = to_nchw(v, NAME)?;
        let w = w.to_dtype(v.dtype())?.reshape((c, c, 1, 1))?;
        let out = conv2d(&flat.contiguous()?, &w, &Conv2dConfig::default())?;
        from_nchw(&out, &lead)
    }
}

impl Transform for InvertibleConv1x1 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, &self.weight()?, "forward")
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.apply(y, &self.inverse_weight()?, "inverse")
    }

    fn log_abs_det_jacobian(&self, x: &Tensor, _y: &Tensor) -> Result<Tensor> {
        check_event_rank(x, 3, NAME)?;
        let d = x.dims();
        let r = x.rank();
        let pixels = (d[r - 2] * d[r - 1]) as f64;
        let total = self
            .log_s
            .to_dtype(x.dtype())?
            .sum_all()?
            .affine(pixels, 0.0)?;
        Ok(total.broadcast_as(&d[..r - 3])?.contiguous()?)
    }

    fn event_dim(&self) -> usize {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_reconstructs_the_matrix() {
        let a = DMatrix::from_row_slice(3, 3, &[0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, -1.0, 2.0]);
        let (p, l, u) = lu(&a);
        let err = (p.transpose() * l * u - &a).abs().max();
        assert!(err < 1e-14, "error {err}");
    }
}
