//! The cartoon-face data SCM as a [`LatentGenerator`]: an *oracle* generator whose latent code
//! is the exogenous noise of the faces in Gaussian coordinates.
//!
//! A latent `z ∈ R^19`, `z ~ N(0, I)`, holds one coordinate per exogenous variable of
//! [`Exogenous`]: coordinates `0..9` are the attribute noises `U_V` in [`Attr::ALL`] order,
//! `9, 10, 11` the eye, skin and hair colour noises, and `12..19` the style noises in
//! [`Style::fields`] order. Each coordinate is mapped through the standard normal CDF `Φ` to the
//! uniform the data generator draws (style fields then spread over their ranges exactly as
//! [`Style::draw`] spreads its uniforms), the attributes are solved through the graph and the
//! face is rendered at 64×64 and average-pooled to the generator's size.
//!
//! Because `Φ` is monotone, a root attribute is a half-space of the latent space:
//! `Male = 1[Φ(z_Male) < p_Male] = 1[z_Male < Φ⁻¹(p_Male)]`, so
//! [`ProceduralFaces::root_hyperplane`] is the exact hyperplane a latent-space SVM should
//! recover, and [`ProceduralFaces::true_counterfactual`] renders the exact counterfactual image
//! of every latent. Learned generators (VAE, DCGAN) are measured against this reference: it is
//! the generator they would be if they had learned the data SCM perfectly.
//!
//! Rendering is a host procedure, so [`generate`](LatentGenerator::generate) reads the latents
//! back to the host; the images are made on the generator's device.
//!
//! ```
//! use candle_core::Device;
//! use models::data::cartoon::{Attr, CartoonFaces};
//! use models::generators::{procedural::ProceduralFaces, LatentGenerator};
//!
//! let gen = ProceduralFaces::new(CartoonFaces::default(), 16, &Device::Cpu)?;
//! let z = gen.sample_latents(4, &mut ppl_core::rng::from_seed(0))?;
//! let images = gen.generate(&z)?; // [4, 3, 16, 16]
//! let male = gen.labels(&z, Attr::Male)?;
//! let h = gen.root_hyperplane(Attr::Male)?;
//! let scores = h.scores(&z)?.to_vec1::<f32>()?;
//! for (s, m) in scores.iter().zip(&male) {
//!     assert_eq!(*s > 0.0, *m);
//! }
//! let women = gen.true_counterfactual(&z, &[("Male", 0.0)])?;
//! assert_eq!(women.dims(), images.dims());
//! # Ok::<(), ppl_core::Error>(())
//! ```

use candle_core::{DType, Device, Tensor};
use ppl_core::rng::{standard_normal, Rng};
use ppl_core::{Error, Result};
use statrs::function::erf::{erfc, erfc_inv};

use super::LatentGenerator;
use crate::data::cartoon::{
    images_tensor, noise, render, Attr, Attributes, CartoonFaces, CartoonSample, Exogenous, Style,
    NUM_ATTRS, SIZE,
};
use crate::data::image::PixelScale;
use crate::face_scm::{downsample, FaceData};

/// The latent width of [`ProceduralFaces`]: nine attribute noises, three colour noises and
/// seven style noises.
pub const PROCEDURAL_LATENT_DIM: usize = NUM_ATTRS + 3 + 7;

/// The first latent coordinate of the colour noises (eye, skin, hair).
const COLOUR_AT: usize = NUM_ATTRS;
/// The first latent coordinate of the style noises.
const STYLE_AT: usize = NUM_ATTRS + 3;

/// Centre and half-width of each style field, in [`Style::fields`] order (the mix is a plain
/// uniform: centre 0.5, half-width 0.5).
const STYLE_SPREAD: [(f64, f64); 7] = [
    (0.0, noise::MAX_SHIFT),
    (0.0, noise::MAX_SHIFT),
    (1.0, noise::MAX_SCALE_DEV),
    (1.0, noise::MAX_SKIN_SHADE_DEV),
    (1.0, noise::MAX_HAIR_SHADE_DEV),
    (1.0, noise::MAX_BACKGROUND_SHADE_DEV),
    (0.5, 0.5),
];

/// The standard normal CDF `Φ(x) = erfc(−x/√2)/2`, accurate in the tails.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile `Φ⁻¹(p)` (`±∞` at 1 and 0).
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// The cartoon faces' exogenous noise as a Gaussian latent code, rendered (see the module
/// documentation). An oracle generator: the reference that learned generators are measured
/// against, and a fast, exact generator for testing latent-space methods.
#[derive(Debug, Clone)]
pub struct ProceduralFaces {
    faces: CartoonFaces,
    image_size: usize,
    device: Device,
}

impl ProceduralFaces {
    /// The generator of `faces` (its tables set the attribute mechanisms) making
    /// `image_size`×`image_size` images (a divisor of 64) on `device`.
    pub fn new(faces: CartoonFaces, image_size: usize, device: &Device) -> Result<Self> {
        if image_size == 0 || !SIZE.is_multiple_of(image_size) {
            return Err(Error::param(
                "ProceduralFaces",
                "image_size",
                format!("must divide {SIZE}, got {image_size}"),
            ));
        }
        Ok(ProceduralFaces {
            faces,
            image_size,
            device: device.clone(),
        })
    }

    /// The data generator behind the latents.
    pub fn faces(&self) -> &CartoonFaces {
        &self.faces
    }

    /// The device the images are made on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The latent coordinate that drives binary attribute `attr` (its noise `U_attr`).
    pub fn coordinate(attr: Attr) -> usize {
        attr.index()
    }

    /// The exogenous noise of one latent code; errors on a wrong length or a non-finite value.
    pub fn exogenous(z: &[f64]) -> Result<Exogenous> {
        if z.len() != PROCEDURAL_LATENT_DIM {
            return Err(Error::shape(
                "ProceduralFaces: latent code",
                &[PROCEDURAL_LATENT_DIM],
                &[z.len()],
            ));
        }
        if let Some(i) = z.iter().position(|v| !v.is_finite()) {
            return Err(Error::param(
                "ProceduralFaces",
                "z",
                format!("coordinate {i} is {}", z[i]),
            ));
        }
        let u: Vec<f64> = z.iter().map(|&v| normal_cdf(v)).collect();
        let mut attrs = [0.0; NUM_ATTRS];
        attrs.copy_from_slice(&u[..NUM_ATTRS]);
        let mut style = [0.0; 7];
        for (k, s) in style.iter_mut().enumerate() {
            let (centre, half) = STYLE_SPREAD[k];
            *s = centre + half * (2.0 * u[STYLE_AT + k] - 1.0);
        }
        Ok(Exogenous {
            u: attrs,
            u_eye: u[COLOUR_AT],
            u_skin: u[COLOUR_AT + 1],
            u_hair: u[COLOUR_AT + 2],
            style: Style::from_fields(style)?,
        })
    }

    /// The latent code of exogenous noise `noise` (the inverse of [`exogenous`](Self::exogenous)
    /// up to rounding), so a face of the data set can be fed to the generator. Uniforms of
    /// exactly 0 or 1 map to ±8.5 (where `Φ` rounds to them in f64 for the upper end).
    pub fn latent_of(noise: &Exogenous) -> Vec<f32> {
        let q = |u: f64| normal_quantile(u).clamp(-8.5, 8.5) as f32;
        let mut z: Vec<f32> = noise.u.iter().map(|&u| q(u)).collect();
        z.extend([noise.u_eye, noise.u_skin, noise.u_hair].map(q));
        for (k, (_, v)) in noise.style.fields().iter().enumerate() {
            let (centre, half) = STYLE_SPREAD[k];
            z.push(q(((v - centre) / half + 1.0) / 2.0));
        }
        z
    }

    /// [`latent_of`](Self::latent_of) for many faces, as `[n, 19]` on the generator's device.
    pub fn latents_of(&self, noises: &[Exogenous]) -> Result<Tensor> {
        let v: Vec<f32> = noises.iter().flat_map(Self::latent_of).collect();
        Ok(Tensor::from_vec(
            v,
            (noises.len(), PROCEDURAL_LATENT_DIM),
            &self.device,
        )?)
    }

    fn rows(z: &Tensor) -> Result<Vec<Vec<f64>>> {
        match z.dims() {
            &[_, d] if d == PROCEDURAL_LATENT_DIM => {}
            dims => {
                return Err(Error::shape(
                    "ProceduralFaces: latents (n, 19)",
                    &[dims.first().copied().unwrap_or(0), PROCEDURAL_LATENT_DIM],
                    dims,
                ))
            }
        }
        Ok(z.to_dtype(DType::F64)?.to_vec2::<f64>()?)
    }

    /// The attributes of every latent under `interventions` (CelebA names with 0/1, or colour
    /// names with an index, as [`CartoonFaces::counterfactual`]), without rendering.
    pub fn attributes(&self, z: &Tensor, interventions: &[(&str, f64)]) -> Result<Vec<Attributes>> {
        Self::rows(z)?
            .iter()
            .map(|r| {
                self.faces
                    .attributes_of(&Self::exogenous(r)?, interventions)
            })
            .collect()
    }

    /// The true value of `attr` for every latent (no rendering).
    pub fn labels(&self, z: &Tensor, attr: Attr) -> Result<Vec<bool>> {
        Ok(self
            .attributes(z, &[])?
            .iter()
            .map(|a| a.get(attr))
            .collect())
    }

    /// The faces (noise, attributes, 64×64 image) of every latent under `interventions`
    /// (empty: the factual faces).
    pub fn samples(&self, z: &Tensor, interventions: &[(&str, f64)]) -> Result<Vec<CartoonSample>> {
        Self::rows(z)?
            .iter()
            .map(|r| {
                let noise = Self::exogenous(r)?;
                let attributes = self.faces.attributes_of(&noise, interventions)?;
                Ok(CartoonSample {
                    noise,
                    attributes,
                    image: render(&attributes, &noise.style),
                })
            })
            .collect()
    }

    /// The factual faces of `z` as a [`FaceData`] at the generator's size (images, binary
    /// labels and the samples, for true counterfactuals).
    pub fn face_data(&self, z: &Tensor) -> Result<FaceData> {
        FaceData::from_samples(self.samples(z, &[])?, self.image_size, &self.device)
    }

    fn images_of(&self, samples: &[CartoonSample]) -> Result<Tensor> {
        downsample(
            &images_tensor(samples, PixelScale::Unit, &self.device)?,
            SIZE / self.image_size,
        )
    }

    /// The exact counterfactual images `[n, 3, s, s]` of the latents `z` under
    /// `interventions`: the same exogenous noise, the attributes recomputed through the graph
    /// (non-descendants keep their values), re-rendered — [`CartoonFaces::counterfactual`] of
    /// the face `z` encodes, pooled to the generator's size.
    pub fn true_counterfactual(&self, z: &Tensor, interventions: &[(&str, f64)]) -> Result<Tensor> {
        self.images_of(&self.samples(z, interventions)?)
    }

    /// The exact latent hyperplane of root attribute `attr` (`Young` or `Male`):
    /// `score(z) = Φ⁻¹(p) − z_attr`, positive exactly where the attribute is 1. Errors for an
    /// attribute with parents (its region is not a half-space) or a root with probability 0 or
    /// 1 (no boundary).
    pub fn root_hyperplane(&self, attr: Attr) -> Result<crate::fairness::svm::Hyperplane> {
        if !attr.parents().is_empty() {
            return Err(Error::usage(format!(
                "ProceduralFaces::root_hyperplane: {} has parents {:?}, so its latent region is \
                 not a half-space",
                attr.name(),
                attr.parents().iter().map(|p| p.name()).collect::<Vec<_>>()
            )));
        }
        let p = self.faces.config().cpds.table(attr)[0];
        let b = normal_quantile(p);
        if !b.is_finite() {
            return Err(Error::usage(format!(
                "ProceduralFaces::root_hyperplane: P({}) = {p} leaves no boundary",
                attr.name()
            )));
        }
        let mut w = vec![0.0; PROCEDURAL_LATENT_DIM];
        w[Self::coordinate(attr)] = -1.0;
        crate::fairness::svm::Hyperplane::new(w, b)
    }
}

impl LatentGenerator for ProceduralFaces {
    fn latent_dim(&self) -> usize {
        PROCEDURAL_LATENT_DIM
    }

    fn image_size(&self) -> usize {
        self.image_size
    }

    fn sample_latents(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        standard_normal(rng, (n, PROCEDURAL_LATENT_DIM), DType::F32, &self.device)
    }

    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        self.images_of(&self.samples(z, &[])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_inverts_cdf_and_latents_round_trip() {
        for x in [-6.0, -1.3, 0.0, 0.4, 2.5] {
            assert!((normal_quantile(normal_cdf(x)) - x).abs() < 1e-9);
        }
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
        let noise = CartoonFaces::default().noise_at(3, 5);
        let z: Vec<f64> = ProceduralFaces::latent_of(&noise)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let back = ProceduralFaces::exogenous(&z).unwrap();
        for (a, b) in back.u.iter().zip(&noise.u) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!((back.style.dx - noise.style.dx).abs() < 1e-5);
        assert!(ProceduralFaces::exogenous(&z[1..]).is_err());
    }
}
