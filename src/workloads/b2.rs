//! B2 `svi_regression`: a Bayesian linear regression fitted by SVI with `AutoNormal`.

use crate::models::data::portable::std_normal;
use crate::prelude::*;

/// Data points.
pub const N: usize = 1000;
/// Regressors.
pub const D: usize = 5;
/// The weights the data were made with.
pub const W_TRUE: [f64; D] = [1.5, -2.0, 0.5, 0.0, 1.0];
/// The exact posterior mean `E[w | y]` (quadrature over `log sigma`, peers/README.md).
pub const W_EXACT: [f64; D] = [1.49698, -2.01106, 0.51278, 0.00389, 1.02702];
/// The exact posterior mean `E[sigma | y]`.
pub const SIGMA_EXACT: f64 = 0.50237;

/// The data set in f64 (`x` row-major `N × D`, then `y`), bit-identical to the peers'.
pub fn data_f64() -> (Vec<f64>, Vec<f64>) {
    let e = std_normal(2002, N * D + N);
    let x = e[..N * D].to_vec();
    let y = (0..N)
        .map(|n| (0..D).map(|d| x[n * D + d] * W_TRUE[d]).sum::<f64>() + 0.5 * e[N * D + n])
        .collect();
    (x, y)
}

/// The peers' `data_checksum`: `(sum_X, sum_y, X[0,0], y[0])` of the f64 data.
pub fn checksum(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64) {
    (x.iter().sum(), y.iter().sum(), x[0], y[0])
}

/// Whether a checksum matches the peers' (sums to 1e-12 relative: numpy sums pairwise, so the
/// last digits of a sum depend on the order; single values exactly).
pub fn checksum_matches(c: (f64, f64, f64, f64)) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    close(c.0, CHECKSUM.0) && close(c.1, CHECKSUM.1) && c.2 == CHECKSUM.2 && c.3 == CHECKSUM.3
}

/// The checksum printed in `peers/README.md`.
pub const CHECKSUM: (f64, f64, f64, f64) = (
    2.2517466706666944,
    -54.18070747561452,
    1.1536863216125912,
    2.1698749461917286,
);

/// The data as f32 tensors `(x: N × D, y: N)` on `device`.
pub fn data(device: &Device) -> Result<(Tensor, Tensor)> {
    let (x, y) = data_f64();
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
    Ok((
        Tensor::from_vec(f32s(x), (N, D), device)?,
        Tensor::from_vec(f32s(y), N, device)?,
    ))
}

/// `w ~ N(0, I_D)`, `sigma ~ LogNormal(0, 1)`, `y_n ~ N(x_n · w, sigma)` in a plate.
#[model(crate = crate)]
pub fn regression(x: &Tensor, y: &Tensor) -> Result<()> {
    let w = sample!(Normal::new(&Tensor::zeros(D, DType::F32, x.device())?, 1.0)?.to_event(1)?);
    let sigma = sample!(LogNormal::new(
        &Tensor::zeros((), DType::F32, x.device())?,
        1.0
    )?);
    let mean = x.matmul(&w.unsqueeze(1)?)?.squeeze(1)?;
    plate!("data", N, {
        observe!("y", Normal::new(&mean, &sigma)?, y);
        Ok(())
    })
}
