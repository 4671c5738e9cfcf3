//! The arithmetic of monotone rational splines (Durkan et al. 2019; Dolatabadi et al. 2020):
//! knots from unnormalised parameters, bin look-up, and the map, its inverse and its log-slope
//! inside `[-bound, bound]`, the identity outside.

use candle_core::{DType, Tensor, D};

use crate::error::{Error, Result};
use crate::special;

/// Smallest bin width, as a fraction of the interval (Pyro's `min_bin_width`).
const MIN_BIN_WIDTH: f64 = 1e-3;
/// Smallest bin height, as a fraction of the interval.
const MIN_BIN_HEIGHT: f64 = 1e-3;
/// Smallest knot derivative.
const MIN_DERIVATIVE: f64 = 1e-3;
/// Smallest (and one minus the largest) split point of a linear-rational bin.
const MIN_LAMBDA: f64 = 0.025;

/// A spline's knots, ready to map values. Every tensor has the parameters' batch shape plus a
/// last dim over bins.
#[derive(Debug, Clone)]
pub(crate) struct Knots {
    /// `K + 1` knot positions on the input axis, `-bound` to `bound`.
    xs: Tensor,
    /// `K + 1` knot positions on the output axis.
    ys: Tensor,
    /// `K + 1` derivatives at the knots, 1 at both ends so the slope is continuous at the
    /// boundary.
    ds: Tensor,
    /// `K` split points of the linear-rational bins; `None` for the rational-quadratic spline.
    lambdas: Option<Tensor>,
    bound: f64,
    bins: usize,
}

/// The bin quantities a value needs, each of the value's shape.
struct Bin {
    x0: Tensor,
    w: Tensor,
    y0: Tensor,
    h: Tensor,
    d0: Tensor,
    d1: Tensor,
    lambda: Option<Tensor>,
}

/// `K + 1` knots from `K` unnormalised sizes: softmax with a floor, cumulated, on `[-b, b]`,
/// with both ends exact.
fn knot_positions(unnormalised: &Tensor, min_size: f64, bound: f64) -> Result<Tensor> {
    let k = unnormalised.dim(D::Minus1)?;
    let sizes = candle_nn::ops::softmax(unnormalised, D::Minus1)?
        .affine(1.0 - min_size * k as f64, min_size)?;
    let cum = sizes.cumsum(D::Minus1)?;
    let mut edge_shape = cum.dims().to_vec();
    *edge_shape.last_mut().expect("rank >= 1") = 1;
    let zero = Tensor::zeros(edge_shape.as_slice(), cum.dtype(), cum.device())?;
    let one = Tensor::ones(edge_shape.as_slice(), cum.dtype(), cum.device())?;
    let inner = cum.narrow(D::Minus1, 0, k - 1)?;
    let unit = Tensor::cat(&[&zero, &inner, &one], D::Minus1)?;
    Ok(unit.affine(2.0 * bound, -bound)?)
}

impl Knots {
    /// Knots from unnormalised widths and heights `(..., K)`, derivatives `(..., K − 1)` and,
    /// for the linear-rational spline, lambdas `(..., K)`, as Pyro's `Spline` parameterises
    /// them.
    pub(crate) fn new(
        widths: &Tensor,
        heights: &Tensor,
        derivatives: &Tensor,
        lambdas: Option<&Tensor>,
        bound: f64,
    ) -> Result<Self> {
        const WHAT: &str = "spline";
        if !(bound > 0.0 && bound.is_finite()) {
            return Err(Error::param(
                "Spline",
                "bound",
                format!("must be positive and finite, got {bound}"),
            ));
        }
        let wd = widths.dims();
        let Some((&k, batch)) = wd.split_last() else {
            return Err(Error::usage(
                "spline parameters must have a last dim over bins, got a scalar",
            ));
        };
        if k < 2 {
            return Err(Error::param(
                "Spline",
                "count_bins",
                format!("must be at least 2, got {k}"),
            ));
        }
        let want = |n: usize| {
            let mut s = batch.to_vec();
            s.push(n);
            s
        };
        let check = |t: &Tensor, n: usize, name: &str| -> Result<()> {
            if t.dims() != want(n).as_slice() {
                return Err(Error::shape(
                    format!(
                        "{WHAT} unnormalised {name} (batch..., bins{})",
                        if n < k { " − 1" } else { "" }
                    ),
                    &want(n),
                    t.dims(),
                ));
            }
            if t.dtype() != widths.dtype() {
                return Err(Error::usage(format!(
                    "{WHAT}: the {name} are {:?} but the widths are {:?}",
                    t.dtype(),
                    widths.dtype()
                )));
            }
            Ok(())
        };
        check(heights, k, "heights")?;
        check(derivatives, k - 1, "derivatives")?;
        if let Some(l) = lambdas {
            check(l, k, "lambdas")?;
        }
        let xs = knot_positions(widths, MIN_BIN_WIDTH, bound)?;
        let ys = knot_positions(heights, MIN_BIN_HEIGHT, bound)?;
        let inner = special::softplus(derivatives)?.affine(1.0, MIN_DERIVATIVE)?;
        let ends = Tensor::ones(want(1), widths.dtype(), widths.device())?;
        let ds = Tensor::cat(&[&ends, &inner, &ends], D::Minus1)?;
        let lambdas = match lambdas {
            Some(l) => {
                Some(candle_nn::ops::sigmoid(l)?.affine(1.0 - 2.0 * MIN_LAMBDA, MIN_LAMBDA)?)
            }
            None => None,
        };
        Ok(Knots {
            xs,
            ys,
            ds,
            lambdas,
            bound,
            bins: k,
        })
    }

    /// The parameters' batch shape (the shape of values they apply to, before broadcasting).
    pub(crate) fn batch_shape(&self) -> &[usize] {
        let d = self.xs.dims();
        &d[..d.len() - 1]
    }

    /// The knots as `dtype` (no copy when they already are).
    fn cast(&self, dtype: DType) -> Result<Knots> {
        let c = |t: &Tensor| t.to_dtype(dtype);
        Ok(Knots {
            xs: c(&self.xs)?,
            ys: c(&self.ys)?,
            ds: c(&self.ds)?,
            lambdas: self.lambdas.as_ref().map(c).transpose()?,
            bound: self.bound,
            bins: self.bins,
        })
    }

    /// The bin of every element of `v` (already inside `[-bound, bound]`) along `knots` (the
    /// input or the output axis), as a one-hot mask `(v.shape, K)`.
    fn one_hot(&self, v: &Tensor, knots: &Tensor) -> Result<Tensor> {
        let k = self.bins;
        let interior = knots.narrow(D::Minus1, 1, k - 1)?;
        let above = v
            .unsqueeze(D::Minus1)?
            .broadcast_ge(&interior)?
            .to_dtype(v.dtype())?
            .sum_keepdim(D::Minus1)?;
        let ids = Tensor::arange(0u32, k as u32, v.device())?.to_dtype(v.dtype())?;
        Ok(above.broadcast_eq(&ids)?.to_dtype(v.dtype())?)
    }

    /// The bin quantities for a one-hot mask.
    fn bin(&self, mask: &Tensor) -> Result<Bin> {
        let k = self.bins;
        let pick = |t: &Tensor| -> Result<Tensor> { Ok(mask.broadcast_mul(t)?.sum(D::Minus1)?) };
        let lo = |t: &Tensor| t.narrow(D::Minus1, 0, k);
        let hi = |t: &Tensor| t.narrow(D::Minus1, 1, k);
        let widths = (hi(&self.xs)? - lo(&self.xs)?)?;
        let heights = (hi(&self.ys)? - lo(&self.ys)?)?;
        Ok(Bin {
            x0: pick(&lo(&self.xs)?)?,
            w: pick(&widths)?,
            y0: pick(&lo(&self.ys)?)?,
            h: pick(&heights)?,
            d0: pick(&lo(&self.ds)?)?,
            d1: pick(&hi(&self.ds)?)?,
            lambda: self.lambdas.as_ref().map(pick).transpose()?,
        })
    }

    /// `(y, log dy/dx)` of `x`, which must already have the broadcast shape of values and
    /// parameters.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let kn = self.cast(x.dtype())?;
        let b = self.bound;
        // Values outside the interval pass through; the spline branch sees clamped values so
        // that its gradients stay finite where it is not taken.
        let inside = x.ge(-b)?.mul(&x.le(b)?)?;
        let xc = x.clamp(-b, b)?;
        let bin = kn.bin(&kn.one_hot(&xc, &kn.xs)?)?;
        let theta = ((&xc - &bin.x0)? / &bin.w)?.clamp(0.0, 1.0)?;
        let (y, ladj) = match &bin.lambda {
            None => rq_forward(&bin, &theta)?,
            Some(l) => lr_forward(&bin, l, &theta)?,
        };
        Ok((
            inside.where_cond(&y, x)?,
            inside.where_cond(&ladj, &ladj.zeros_like()?)?,
        ))
    }

    /// `(x, log dy/dx at x)` of `y`, which must already have the broadcast shape.
    pub(crate) fn inverse(&self, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let kn = self.cast(y.dtype())?;
        let b = self.bound;
        let inside = y.ge(-b)?.mul(&y.le(b)?)?;
        let yc = y.clamp(-b, b)?;
        let bin = kn.bin(&kn.one_hot(&yc, &kn.ys)?)?;
        let theta = match &bin.lambda {
            None => rq_inverse(&bin, &yc)?,
            Some(l) => lr_inverse(&bin, l, &yc)?,
        }
        .clamp(0.0, 1.0)?;
        let x = ((&theta * &bin.w)? + &bin.x0)?;
        let ladj = match &bin.lambda {
            None => rq_forward(&bin, &theta)?.1,
            Some(l) => lr_forward(&bin, l, &theta)?.1,
        };
        Ok((
            inside.where_cond(&x, y)?,
            inside.where_cond(&ladj, &ladj.zeros_like()?)?,
        ))
    }
}

/// The rational-quadratic map of a bin at relative position `theta`: `(y, log dy/dx)`.
///
/// With `s = h / w`, `y = y0 + h (s θ² + d0 θ(1−θ)) / (s + (d0 + d1 − 2s) θ(1−θ))` and
/// `dy/dx = s² (d1 θ² + 2s θ(1−θ) + d0 (1−θ)²) / (s + (d0 + d1 − 2s) θ(1−θ))²`.
fn rq_forward(bin: &Bin, theta: &Tensor) -> Result<(Tensor, Tensor)> {
    let s = (&bin.h / &bin.w)?;
    let one_m = theta.affine(-1.0, 1.0)?;
    let t1m = (theta * &one_m)?;
    let t2 = theta.sqr()?;
    let slope_sum = ((&bin.d0 + &bin.d1)? - s.affine(2.0, 0.0)?)?;
    let den = (&s + (&slope_sum * &t1m)?)?;
    let num = (&bin.h * ((&s * &t2)? + (&bin.d0 * &t1m)?)?)?;
    let y = (&bin.y0 + (num / &den)?)?;
    let dnum = ((&bin.d1 * &t2)? + (s.affine(2.0, 0.0)? * &t1m)? + (&bin.d0 * one_m.sqr()?)?)?;
    let ladj = ((s.log()?.affine(2.0, 0.0)? + dnum.log()?)? - den.log()?.affine(2.0, 0.0)?)?;
    Ok((y, ladj))
}

/// The relative position `θ` in its bin of an output `y` of the rational-quadratic map: the
/// root of `a θ² + b θ + c = 0` in `[0, 1]`, written as `2c / (−b − √(b² − 4ac))` so that it
/// does not cancel.
fn rq_inverse(bin: &Bin, y: &Tensor) -> Result<Tensor> {
    let s = (&bin.h / &bin.w)?;
    let dy = (y - &bin.y0)?;
    let slope_sum = ((&bin.d0 + &bin.d1)? - s.affine(2.0, 0.0)?)?;
    let dy_sum = (&dy * &slope_sum)?;
    let a = ((&bin.h * (&s - &bin.d0)?)? + &dy_sum)?;
    let b = ((&bin.h * &bin.d0)? - &dy_sum)?;
    let c = (s.neg()? * &dy)?;
    let disc = (b.sqr()? - (&a * &c)?.affine(4.0, 0.0)?)?.relu()?;
    let den = (b.neg()? - disc.sqrt()?)?;
    Ok((c.affine(2.0, 0.0)? / den)?)
}

/// The weights of a linear-rational bin split at `lambda` (weight 1 at its left end): `wb` at
/// the right end, `wc` at the split, and the output offsets `yc − y0` and `y1 − yc` of the
/// split point, chosen so that the slopes at the ends are `d0` and `d1`.
struct LinearRational {
    wb: Tensor,
    wc: Tensor,
    below: Tensor,
    above: Tensor,
}

fn lr_weights(bin: &Bin, lambda: &Tensor) -> Result<LinearRational> {
    let s = (&bin.h / &bin.w)?;
    let one_m = lambda.affine(-1.0, 1.0)?;
    let wb = (&bin.d0 / &bin.d1)?.sqrt()?;
    let wc = (((lambda * &bin.d0)? + (&one_m * (&wb * &bin.d1)?)?)? / &s)?;
    // yc is the weighted mean of the ends: (1−λ)·1·y0 + λ·wb·y1 over (1−λ) + λ·wb.
    let total = (&one_m + (lambda * &wb)?)?;
    let below = ((lambda * &wb)? * &bin.h)?.div(&total)?;
    let above = (&one_m * &bin.h)?.div(&total)?;
    Ok(LinearRational {
        wb,
        wc,
        below,
        above,
    })
}

/// The linear-rational map of a bin at relative position `theta`: `(y, log dy/dx)`.
///
/// Left of the split, `y = y0 + wc θ (yc − y0) / (λ − θ + wc θ)`; right of it,
/// `y = y1 − wc (1 − θ)(y1 − yc) / (wc (1 − θ) + wb (θ − λ))`. Each side is evaluated at θ
/// clamped to its own half, so that the side not taken stays finite.
fn lr_forward(bin: &Bin, lambda: &Tensor, theta: &Tensor) -> Result<(Tensor, Tensor)> {
    let LinearRational {
        wb,
        wc,
        below,
        above,
    } = lr_weights(bin, lambda)?;
    let left = theta.le(lambda)?;
    let tl = theta.minimum(lambda)?;
    let tr = theta.maximum(lambda)?;
    let y1 = (&bin.y0 + &bin.h)?;

    let den_l = ((lambda - &tl)? + (&wc * &tl)?)?;
    let y_l = (&bin.y0 + ((&wc * &tl)? * &below)?.div(&den_l)?)?;
    let dl = ((&wc * lambda)? * &below)?.div(&den_l.sqr()?)?;

    let tr1m = tr.affine(-1.0, 1.0)?;
    let den_r = ((&wc * &tr1m)? + (&wb * (&tr - lambda)?)?)?;
    let y_r = (&y1 - ((&wc * &tr1m)? * &above)?.div(&den_r)?)?;
    let one_m = lambda.affine(-1.0, 1.0)?;
    let dr = (((&wb * &wc)? * &one_m)? * &above)?.div(&den_r.sqr()?)?;

    let y = left.where_cond(&y_l, &y_r)?;
    let dtheta = left.where_cond(&dl, &dr)?;
    let ladj = (dtheta.log()? - bin.w.log()?)?;
    Ok((y, ladj))
}

/// The relative position `θ` of an output `y` of the linear-rational map: with `u = y − y0`
/// and `v = y1 − y`, `θ = λ u / (u + wc (Δ− − u))` below the split and
/// `θ = (wc (Δ+ − v) + λ wb v) / (wc (Δ+ − v) + wb v)` above it (`Δ∓` the offsets of the split).
fn lr_inverse(bin: &Bin, lambda: &Tensor, y: &Tensor) -> Result<Tensor> {
    let LinearRational {
        wb,
        wc,
        below,
        above,
    } = lr_weights(bin, lambda)?;
    let split = (&bin.y0 + &below)?;
    let left = y.le(&split)?;
    let u = (y.minimum(&split)? - &bin.y0)?.relu()?;
    let y1 = (&bin.y0 + &bin.h)?;
    let v = (&y1 - y.maximum(&split)?)?.relu()?;

    let theta_l = (lambda * &u)?.div(&(&u + (&wc * (&below - &u)?.relu()?)?)?)?;
    let rest = (&wc * (&above - &v)?.relu()?)?;
    let theta_r = (&rest + ((lambda * &wb)? * &v)?)?.div(&(&rest + (&wb * &v)?)?)?;
    Ok(left.where_cond(&theta_l, &theta_r)?)
}
