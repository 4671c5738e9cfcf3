//! Drawing the exogenous noise and generating a data set of glyphs from a seed.

use candle_core::{Device, Tensor};
use ppl_core::rng::{self, Rng};
use ppl_core::{Error, Result};
use rand::Rng as _;
use rand_distr::{Distribution, Gamma, StandardNormal};

use super::scm::{
    counterfactual, Intervention, MorphoNoise, MorphoSample, THICKNESS_RATE, THICKNESS_SHAPE,
};
use super::skeleton::{Jitter, NUM_CLASSES, SIZE};
use crate::data::batches::TensorDataset;

/// What varies between glyphs besides the SCM's thickness and intensity.
#[derive(Debug, Clone, PartialEq)]
pub struct MorphoConfig {
    /// The classes drawn (uniformly); all ten by default.
    pub classes: Vec<u8>,
    /// Standard deviation of the slant (a shear; 0.2 ≈ 11° at one sd).
    pub slant_std: f64,
    /// Multiplies every jitter standard deviation (1 default; 0 renders the bare templates).
    pub jitter: f64,
    /// Standard deviation of additive Gaussian pixel noise in grey levels (0, off, by default).
    pub pixel_noise_std: f64,
}

impl Default for MorphoConfig {
    fn default() -> Self {
        MorphoConfig {
            classes: (0..NUM_CLASSES as u8).collect(),
            slant_std: 0.2,
            jitter: 1.0,
            pixel_noise_std: 0.0,
        }
    }
}

// Jitter standard deviations at `jitter = 1`: scales are log-normal so they stay positive.
const SCALE_X_SD: f64 = 0.08;
const SCALE_Y_SD: f64 = 0.06;
const SHIFT_SD: f64 = 0.7;
const WARP_SD: f64 = 0.035;

impl MorphoConfig {
    fn validate(&self) -> Result<()> {
        if self.classes.is_empty() {
            return Err(Error::usage("MorphoConfig.classes must not be empty"));
        }
        if let Some(c) = self
            .classes
            .iter()
            .find(|&&c| usize::from(c) >= NUM_CLASSES)
        {
            return Err(Error::usage(format!(
                "MorphoConfig.classes: class {c} is not in 0..{NUM_CLASSES}"
            )));
        }
        for (name, v) in [
            ("slant_std", self.slant_std),
            ("jitter", self.jitter),
            ("pixel_noise_std", self.pixel_noise_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::usage(format!(
                    "MorphoConfig.{name} must be finite and non-negative, got {v}"
                )));
            }
        }
        Ok(())
    }

    /// Draws the exogenous variables of one glyph, in a fixed order (class, ε_t, ε_i, jitter,
    /// slant, pixel noise), so the k-th glyph of a seed does not depend on how many are drawn.
    pub fn sample_noise(&self, r: &mut Rng) -> Result<MorphoNoise> {
        self.validate()?;
        let gamma = Gamma::new(THICKNESS_SHAPE, 1.0 / THICKNESS_RATE)
            .map_err(|e| Error::param("Gamma", "shape", e.to_string()))?;
        let normal = |r: &mut Rng| -> f64 { r.sample(StandardNormal) };
        let class = self.classes[r.random_range(0..self.classes.len())];
        let eps_t = gamma.sample(r);
        let eps_i = normal(r);
        let j = self.jitter;
        let jitter = Jitter {
            scale_x: (SCALE_X_SD * j * normal(r)).exp(),
            scale_y: (SCALE_Y_SD * j * normal(r)).exp(),
            shift_x: SHIFT_SD * j * normal(r),
            shift_y: SHIFT_SD * j * normal(r),
            warp: [
                WARP_SD * j * normal(r),
                WARP_SD * j * normal(r),
                WARP_SD * j * normal(r),
                WARP_SD * j * normal(r),
            ],
        };
        let slant = self.slant_std * normal(r);
        let pixel_noise = (self.pixel_noise_std > 0.0).then(|| {
            (0..SIZE * SIZE)
                .map(|_| (self.pixel_noise_std * normal(r)) as f32)
                .collect()
        });
        Ok(MorphoNoise {
            class,
            jitter,
            slant,
            eps_t,
            eps_i,
            pixel_noise,
        })
    }
}

/// A data set of glyphs with its full structural record.
///
/// `images` is `[n, 1, 28, 28]` f32 in whole grey levels 0–255; `thickness` and `intensity` are
/// `[n]` f32; `labels` is `[n]` u32 (the class). `samples` holds every glyph's noise and exact
/// attributes (f64), from which any counterfactual is re-rendered.
#[derive(Debug, Clone)]
pub struct MorphoGlyphs {
    samples: Vec<MorphoSample>,
    images: Tensor,
    thickness: Tensor,
    intensity: Tensor,
    labels: Tensor,
}

impl MorphoGlyphs {
    /// `n` glyphs of the default [`MorphoConfig`] from `seed`, on the CPU.
    ///
    /// ```
    /// use models::data::morpho::MorphoGlyphs;
    /// let g = MorphoGlyphs::generate(4, 7)?;
    /// assert_eq!(g.images().dims(), &[4, 1, 28, 28]);
    /// # Ok::<(), ppl_core::Error>(())
    /// ```
    pub fn generate(n: usize, seed: u64) -> Result<Self> {
        Self::generate_with(n, seed, &MorphoConfig::default(), &Device::Cpu)
    }

    /// `n` glyphs of `config` from `seed`, with tensors on `device`.
    pub fn generate_with(
        n: usize,
        seed: u64,
        config: &MorphoConfig,
        device: &Device,
    ) -> Result<Self> {
        let mut r = rng::from_seed(seed);
        let samples = (0..n)
            .map(|_| MorphoSample::from_noise(config.sample_noise(&mut r)?))
            .collect::<Result<Vec<_>>>()?;
        Self::from_samples(samples, device)
    }

    /// A data set of the given samples, tensors on `device`.
    pub fn from_samples(samples: Vec<MorphoSample>, device: &Device) -> Result<Self> {
        let n = samples.len();
        let mut pixels = Vec::with_capacity(n * SIZE * SIZE);
        for (k, s) in samples.iter().enumerate() {
            if s.image.len() != SIZE * SIZE {
                return Err(Error::shape(
                    format!("image of glyph {k}"),
                    &[SIZE * SIZE],
                    &[s.image.len()],
                ));
            }
            pixels.extend_from_slice(&s.image);
        }
        let col =
            |f: &dyn Fn(&MorphoSample) -> f32| -> Vec<f32> { samples.iter().map(f).collect() };
        let thickness = Tensor::from_vec(col(&|s| s.thickness as f32), n, device)?;
        let intensity = Tensor::from_vec(col(&|s| s.intensity as f32), n, device)?;
        let labels: Vec<u32> = samples.iter().map(|s| u32::from(s.noise.class)).collect();
        let labels = Tensor::from_vec(labels, n, device)?;
        let images = Tensor::from_vec(pixels, (n, 1, SIZE, SIZE), device)?;
        Ok(MorphoGlyphs {
            samples,
            images,
            thickness,
            intensity,
            labels,
        })
    }

    /// The true counterfactual data set under `intervention`, glyph by glyph (same device).
    pub fn counterfactual(&self, intervention: &Intervention) -> Result<Self> {
        let cf = self
            .samples
            .iter()
            .map(|s| counterfactual(s, intervention))
            .collect::<Result<Vec<_>>>()?;
        Self::from_samples(cf, self.images.device())
    }

    /// The number of glyphs.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no glyph.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Every glyph's noise, attributes and image.
    pub fn samples(&self) -> &[MorphoSample] {
        &self.samples
    }

    /// `[n, 1, 28, 28]`, whole grey levels 0–255.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// `[n]` stroke thickness in pixels.
    pub fn thickness(&self) -> &Tensor {
        &self.thickness
    }

    /// `[n]` stroke intensity (grey level).
    pub fn intensity(&self) -> &Tensor {
        &self.intensity
    }

    /// `[n]` u32 classes.
    pub fn labels(&self) -> &Tensor {
        &self.labels
    }

    /// The glyphs as a [`TensorDataset`] with columns `thickness`, `intensity` and `label`, for
    /// minibatch training.
    pub fn to_dataset(&self) -> Result<TensorDataset> {
        TensorDataset::new(self.images.clone())?
            .with_column("thickness", self.thickness.clone())?
            .with_column("intensity", self.intensity.clone())?
            .with_column("label", self.labels.clone())
    }
}
