//! Counterfactual images: abduct `z` with the factual treatment, decode with another one.

use candle_core::Tensor;
use ppl_core::{Error, Result};

use super::model::IntactVae;

/// The extrapolated treatment `t' = t + s·(1 − 2t)`: `s = 1` flips a 0/1 treatment, `s = 0`
/// keeps it, `s > 1` pushes past the other arm (`t = 0 → s`, `t = 1 → 1 − s`).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use models::generators::intact_vae::extrapolate_treatment;
/// let t = Tensor::new(&[0f32, 1.0], &Device::Cpu)?;
/// let t2 = extrapolate_treatment(&t, 2.0)?.to_vec1::<f32>()?;
/// assert_eq!(t2, vec![2.0, -1.0]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn extrapolate_treatment(t: &Tensor, s: f64) -> Result<Tensor> {
    if !s.is_finite() {
        return Err(Error::param(
            "extrapolate_treatment",
            "s",
            format!("must be finite, got {s}"),
        ));
    }
    // t + s(1 − 2t) = (1 − 2s)·t + s
    Ok(t.affine(1.0 - 2.0 * s, s)?)
}

/// The abducted latent codes: the posterior mean of `q(z | y, x, t)` with the factual
/// treatment, `[n, latent_dim]`.
pub fn abduct(vae: &IntactVae, y: &Tensor, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    Ok(vae.encode(y, x, t)?.0)
}

/// Each unit's image had its treatment been `t + s·(1 − 2t)` (see
/// [`extrapolate_treatment`]): `z` abducted with the factual `t` (posterior mean), decoded with
/// the counterfactual treatment. `y` `[n, 3, s, s]` in `[0, 1]`, `x` `[n, k]`, `t` `[n]` (0/1);
/// the answer is the decoder's mean image `[n, 3, s, s]`.
///
/// ```no_run
/// # use candle_core::Device;
/// # use models::generators::intact_vae::*;
/// let dev = Device::Cpu;
/// let faces = limited_overlap_faces(0.1)?;
/// let cfg = IntactConfig::default();
/// let data = IntactData::generate(&faces, 0, 0, 512, &cfg, &dev)?;
/// let vae = IntactVae::new(cfg, &dev, 0)?;
/// train(&vae, &data, &IntactTrainConfig::default(), |_| {})?;
/// let flipped = counterfactual(&vae, data.images(), &data.x, &data.t, 1.0)?;
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn counterfactual(
    vae: &IntactVae,
    y: &Tensor,
    x: &Tensor,
    t: &Tensor,
    s: f64,
) -> Result<Tensor> {
    let z = abduct(vae, y, x, t)?;
    vae.decode(&z, &extrapolate_treatment(t, s)?)
}

/// The per-unit image effect `E[y | z, do(t = 1)] − E[y | z, do(t = 0)]` with `z` abducted
/// with the factual treatment: `[n, 3, s, s]` in `[−1, 1]`, the image analogue of the
/// conditional average treatment effect at the unit's latent.
pub fn treatment_effect(vae: &IntactVae, y: &Tensor, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    let z = abduct(vae, y, x, t)?;
    let ones = t.ones_like()?;
    let zeros = t.zeros_like()?;
    Ok((vae.decode(&z, &ones)? - vae.decode(&z, &zeros)?)?)
}
