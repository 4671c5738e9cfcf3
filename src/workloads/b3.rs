//! B3 `twin_world_linear`: a twin-world counterfactual with exact abduction over N individuals.

use crate::models::data::portable::std_normal;
use crate::prelude::*;
use crate::transforms::{AffineTransform, TransformExt};

/// `(x, y, z)` in f64: `x = u_x`, `y = 2x + u_y`, `z = −1.5y + u_z`, noise from the portable
/// generator (seed 3003), bit-identical to the peers'.
pub fn data_f64(n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let e = std_normal(3003, 3 * n);
    let x = e[..n].to_vec();
    let y: Vec<f64> = (0..n).map(|i| 2.0 * x[i] + e[n + i]).collect();
    let z = (0..n).map(|i| -1.5 * y[i] + e[2 * n + i]).collect();
    (x, y, z)
}

/// The peers' `data_checksum`s `(sum_x, sum_y, sum_z)` (f64 sums of the f32 data) by size.
pub fn expected_checksum(n: usize) -> Option<(f64, f64, f64)> {
    match n {
        10_000 => Some((83.15858597457918, 199.2636443972151, -391.8796278552618)),
        100_000 => Some((170.04445097408825, 92.41999221222432, -184.81642077542347)),
        _ => None,
    }
}

/// The data as f32 tensors of shape `(n,)`.
pub fn data(n: usize, device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let (x, y, z) = data_f64(n);
    let t = |v: Vec<f64>| {
        Tensor::from_vec(
            v.into_iter().map(|a| a as f32).collect::<Vec<_>>(),
            n,
            device,
        )
    };
    Ok((t(x)?, t(y)?, t(z)?))
}

/// The mechanism `parent·coef + u`, `u ~ N(0, 1)`, as a transformed distribution (how ChiRho
/// abducts noise exactly; ours abducts any structural site).
fn linear(parent: &Tensor, coef: f64) -> Result<TransformedDistribution> {
    let base = Normal::new(&Tensor::zeros((), parent.dtype(), parent.device())?, 1.0)?;
    TransformedDistribution::new(
        base,
        vec![AffineTransform::new((parent * coef)?, 1.0)?.shared()],
    )
}

/// `x ~ N(0, 1)`, `y = 2x + u_y`, `z = −1.5y + u_z` for `n` individuals (one plate).
#[model(crate = crate)]
pub fn scm(n: usize, device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    plate!("individuals", n, {
        let x = sample!(Normal::new(&Tensor::zeros((), DType::F32, device)?, 1.0)?);
        let y = sample!(linear(&x, 2.0)?);
        let z = sample!(linear(&y, -1.5)?);
        Ok((x, y, z))
    })
}

/// The query: in the twin world of `do(x := x + 1)` given all of `(x, y, z)`, the counterfactual
/// `(y, z)` and the factual `z`, each of shape `(n,)`.
pub fn query(x: &Tensor, y: &Tensor, z: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    use crate::causal::{twin_world, world, COUNTERFACTUAL, FACTUAL, TWIN};
    let n = x.dim(0)?;
    twin_world(|| {
        do_([("x", Intervention::func(|x| Ok((x + 1.0)?)))], || {
            condition([("x", x), ("y", y), ("z", z)], || {
                let (_, ys, zs) = scm(n, x.device())?;
                let cf = |v: &Tensor| -> Result<Tensor> {
                    Ok(world(v, &[(TWIN, COUNTERFACTUAL)])?.reshape(n)?)
                };
                Ok((
                    cf(&ys)?,
                    cf(&zs)?,
                    world(&zs, &[(TWIN, FACTUAL)])?.reshape(n)?,
                ))
            })
        })
    })
}
