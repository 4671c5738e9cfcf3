//! The generator: configuration, sampling, counterfactual re-rendering and tensors.

use candle_core::{Device, Tensor};
use ppl_core::rng::{from_seed, Rng};
use ppl_core::Result;

use super::noise::Exogenous;
use super::palette::ColourProbs;
use super::render::render;
use super::sample::{parse_interventions, Attributes, CartoonSample, Interventions};
use super::scm::{Attr, Cpds, NUM_ATTRS};
use super::SIZE;
use crate::data::image::PixelScale;

/// The configuration of the data set's structural causal model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CartoonConfig {
    /// The binary attributes' conditional probabilities.
    pub cpds: Cpds,
    /// The colour attributes' probabilities.
    pub colours: ColourProbs,
}

/// The cartoon-face data set: a known SCM over face attributes and a renderer.
///
/// ```
/// use models::data::cartoon::{Attr, CartoonFaces};
/// let faces = CartoonFaces::default();
/// let s = faces.sample_at(7, 0);
/// let old = faces.counterfactual(&s, &[("Young", 0.0)])?;
/// assert!(!old.attributes.get(Attr::Young));
/// assert_eq!(old.attributes.get(Attr::Male), s.attributes.get(Attr::Male));
/// assert_eq!(old.noise, s.noise);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CartoonFaces {
    config: CartoonConfig,
}

impl CartoonFaces {
    /// A generator with `config`; fails if a colour distribution is malformed (tables are
    /// checked when set).
    pub fn new(config: CartoonConfig) -> Result<CartoonFaces> {
        config.colours.validate()?;
        Ok(CartoonFaces { config })
    }

    /// The configuration.
    pub fn config(&self) -> &CartoonConfig {
        &self.config
    }

    fn solve(&self, noise: &Exogenous, iv: &Interventions) -> Attributes {
        let c = &self.config.colours;
        Attributes {
            binary: self.config.cpds.solve(&noise.u, &iv.binary),
            eye: iv.eye.unwrap_or_else(|| c.eye_colour(noise.u_eye)),
            skin: iv.skin.unwrap_or_else(|| c.skin_tone(noise.u_skin)),
            hair: iv.hair.unwrap_or_else(|| c.hair_colour(noise.u_hair)),
        }
    }

    /// The face that `noise` determines; fails if a noise value lies outside its range.
    pub fn from_noise(&self, noise: Exogenous) -> Result<CartoonSample> {
        noise.validate()?;
        Ok(self.build(noise, &Interventions::default()))
    }

    fn build(&self, noise: Exogenous, iv: &Interventions) -> CartoonSample {
        let attributes = self.solve(&noise, iv);
        CartoonSample {
            noise,
            attributes,
            image: render(&attributes, &noise.style),
        }
    }

    /// Draws one face from `rng`.
    pub fn sample(&self, rng: &mut Rng) -> CartoonSample {
        self.build(Exogenous::draw(rng), &Interventions::default())
    }

    /// The exogenous noise of face `index` of the data set with `seed`: drawn from its own
    /// ChaCha8 stream, so any face can be made without the ones before it.
    pub fn noise_at(&self, seed: u64, index: u64) -> Exogenous {
        let mut rng = from_seed(seed);
        rng.set_stream(index);
        Exogenous::draw(&mut rng)
    }

    /// The attributes that `noise` determines under `interventions` (as in
    /// [`counterfactual`](Self::counterfactual)), without rendering: cheap enough for label
    /// statistics over many faces.
    pub fn attributes_of(
        &self,
        noise: &Exogenous,
        interventions: &[(&str, f64)],
    ) -> Result<Attributes> {
        Ok(self.solve(noise, &parse_interventions(interventions)?))
    }

    /// Face `index` of the data set with `seed` (its noise is [`noise_at`](Self::noise_at)).
    pub fn sample_at(&self, seed: u64, index: u64) -> CartoonSample {
        self.build(self.noise_at(seed, index), &Interventions::default())
    }

    /// Faces `0..n` of the data set with `seed`.
    pub fn generate(&self, seed: u64, n: usize) -> Vec<CartoonSample> {
        (0..n as u64).map(|i| self.sample_at(seed, i)).collect()
    }

    /// The true counterfactual of `sample` under `interventions`: the intervened attributes
    /// take their values, every other binary attribute is recomputed through the graph with
    /// the sample's own `U` (so non-descendants keep their values), and the face is
    /// re-rendered with the same colour and style noise.
    ///
    /// Names are CelebA attribute names with values 0 or 1, or `eye_colour`, `skin_tone`,
    /// `hair_colour` with a colour index; anything else is an error.
    pub fn counterfactual(
        &self,
        sample: &CartoonSample,
        interventions: &[(&str, f64)],
    ) -> Result<CartoonSample> {
        let iv = parse_interventions(interventions)?;
        sample.noise.validate()?;
        Ok(self.build(sample.noise, &iv))
    }
}

/// The images of `samples` as an `[n, 3, 64, 64]` f32 tensor on `device`, values on `scale`.
pub fn images_tensor(
    samples: &[CartoonSample],
    scale: PixelScale,
    device: &Device,
) -> Result<Tensor> {
    let hw = SIZE * SIZE;
    let k = match scale {
        PixelScale::Byte => 1.0,
        PixelScale::Unit => 1.0 / 255.0,
    };
    let mut v = vec![0f32; samples.len() * 3 * hw];
    for (n, s) in samples.iter().enumerate() {
        for (p, px) in s.image.data().chunks_exact(3).enumerate() {
            for c in 0..3 {
                v[(n * 3 + c) * hw + p] = f32::from(px[c]) * k;
            }
        }
    }
    Ok(Tensor::from_vec(v, (samples.len(), 3, SIZE, SIZE), device)?)
}

/// The binary attributes of `samples` as an `[n, 9]` f32 tensor of 0/1 on `device`, columns in
/// [`Attr::ALL`] order.
pub fn attributes_tensor(samples: &[CartoonSample], device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = samples
        .iter()
        .flat_map(|s| Attr::ALL.map(|a| f32::from(u8::from(s.attributes.get(a)))))
        .collect();
    Ok(Tensor::from_vec(v, (samples.len(), NUM_ATTRS), device)?)
}
