//! A DCGAN (Radford, Metz & Chintala 2016) trained on face images, as a
//! [`LatentGenerator`] for the noise-space counterfactual samplers
//! ([`noise_cf`](crate::generators::noise_cf)) and latent de-biasing.
//!
//! [`Dcgan::new`] builds the generator and discriminator of a [`DcganConfig`] (16×16 to 64×64
//! images, `z ∈ [−1, 1]^latent_dim` under a uniform prior); [`Dcgan::train`] runs the
//! non-saturating GAN game with Adam on seeded minibatches of a
//! [`FaceData`](crate::face_scm::FaceData), reporting every step to a callback;
//! [`Dcgan::save`] / [`Dcgan::load`] keep the weights (and batch-norm statistics) in a folder.
//!
//! ```no_run
//! use candle_core::Device;
//! use models::data::cartoon::CartoonFaces;
//! use models::face_scm::FaceData;
//! use models::generators::dcgan::{Dcgan, DcganConfig, DcganEvent, DcganTrainConfig};
//! use models::generators::LatentGenerator;
//!
//! let faces = CartoonFaces::default();
//! let data = FaceData::generate(&faces, 0, 0, 4096, 64, &Device::Cpu)?;
//! let mut gan = Dcgan::new(DcganConfig::default(), &Device::Cpu, 0)?;
//! gan.train(&data, &DcganTrainConfig::default(), |e| {
//!     if let DcganEvent::Epoch { epoch, d_loss, g_loss, .. } = e {
//!         println!("epoch {epoch}: D {d_loss:.3}, G {g_loss:.3}");
//!     }
//! })?;
//! gan.save("runs/dcgan")?;
//! let z = gan.sample_latents(16, &mut ppl_core::rng::from_seed(1))?;
//! let images = gan.generate(&z)?; // [16, 3, 64, 64] in [0, 1]
//! # Ok::<(), ppl_core::Error>(())
//! ```

mod config;
mod net;
mod train;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ppl_core::params::ParamStore;
use ppl_core::rng::{self, Rng};
use ppl_core::{Error, Result};

pub use config::{DcganConfig, DcganTrainConfig};
use net::{Discriminator, Generator};
pub use train::{DcganEvent, DcganSummary};

use super::LatentGenerator;
use crate::data::image::write_atomic;

const GEN: &str = "generator";
const DISC: &str = "discriminator";
const CONFIG_FILE: &str = "dcgan.json";
const WEIGHTS_FILE: &str = "dcgan.safetensors";

/// A DCGAN: generator, discriminator and their parameters (one [`ParamStore`], the generator's
/// under `generator.`, the discriminator's under `discriminator.`, batch-norm running
/// statistics included).
///
/// As a [`LatentGenerator`] it draws `z` uniformly on `[−1, 1]^latent_dim` and generates in
/// evaluation mode (batch norm with running statistics, so an image depends on its own `z`
/// only). Usage: `Dcgan::new(cfg, &device, seed)`, then [`train`](Self::train) on faces at
/// `cfg.image_size`, then hand it to the samplers of
/// [`noise_cf`](crate::generators::noise_cf) or save it.
#[derive(Debug, Clone)]
pub struct Dcgan {
    cfg: DcganConfig,
    store: ParamStore,
    generator: Generator,
    discriminator: Discriminator,
    device: Device,
}

impl Dcgan {
    /// A freshly initialised DCGAN on `device` (f32), its weights drawn from `seed` (the
    /// thread's current generator is left as it was).
    pub fn new(cfg: DcganConfig, device: &Device, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let prev = rng::swap(rng::from_seed(seed));
        let built = Self::build(cfg, ParamStore::new(), device);
        rng::swap(prev);
        built
    }

    fn build(cfg: DcganConfig, store: ParamStore, device: &Device) -> Result<Self> {
        let vb = store.var_builder(DType::F32, device);
        let generator = Generator::new(vb.pp(GEN), &cfg)?;
        let discriminator = Discriminator::new(vb.pp(DISC), &cfg)?;
        Ok(Dcgan {
            cfg,
            store,
            generator,
            discriminator,
            device: device.clone(),
        })
    }

    /// The architecture.
    pub fn config(&self) -> &DcganConfig {
        &self.cfg
    }

    /// The parameters of both networks.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The device the networks live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The discriminator's logits `[n]` for images `[n, 3, s, s]` in `[0, 1]` (evaluation
    /// mode): large means judged real.
    pub fn discriminate(&self, images: &Tensor) -> Result<Tensor> {
        self.check_images("Dcgan::discriminate", images)?;
        self.discriminator.forward(images, false)
    }

    fn check_images(&self, what: &str, images: &Tensor) -> Result<()> {
        let s = self.cfg.image_size;
        match images.dims() {
            &[_, 3, h, w] if h == s && w == s => Ok(()),
            dims => Err(Error::shape(
                format!("{what}: images [n, 3, {s}, {s}]"),
                &[dims.first().copied().unwrap_or(0), 3, s, s],
                dims,
            )),
        }
    }

    fn check_latents(&self, z: &Tensor) -> Result<()> {
        let d = self.cfg.latent_dim;
        match z.dims() {
            &[_, k] if k == d => Ok(()),
            dims => Err(Error::shape(
                format!("Dcgan: latents [n, {d}]"),
                &[dims.first().copied().unwrap_or(0), d],
                dims,
            )),
        }
    }

    /// Writes the configuration (`dcgan.json`) and every parameter (`dcgan.safetensors`) into
    /// the folder `dir` (created if missing). Each file is written atomically; the weights go
    /// first, so a folder with a configuration always has weights of some save beside it.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        self.store.save(dir.join(WEIGHTS_FILE))?;
        let json = serde_json::to_vec_pretty(&self.cfg)
            .map_err(|e| Error::usage(format!("Dcgan::save: {e}")))?;
        write_atomic(dir.join(CONFIG_FILE), &json)
    }

    /// A DCGAN read from a folder written by [`save`](Self::save), on `device`. A missing or
    /// unreadable file, or weights that do not fit the configuration, are errors naming the file.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg_path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let cfg: DcganConfig = serde_json::from_slice(&bytes)
            .map_err(|e| Error::parse(&cfg_path, e.line(), e.to_string()))?;
        cfg.validate()
            .map_err(|e| Error::parse(&cfg_path, 0, e.to_string()))?;
        // Built from a throwaway seed, then overwritten in place by the file (which must hold
        // exactly these names and shapes).
        let gan = Self::new(cfg, device, 0)?;
        gan.store.load_on(dir.join(WEIGHTS_FILE), device)?;
        Ok(gan)
    }
}

impl LatentGenerator for Dcgan {
    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_size(&self) -> usize {
        self.cfg.image_size
    }

    /// Uniform on `(−1, 1)^latent_dim`.
    fn sample_latents(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        let u = rng::uniform01(rng, (n, self.cfg.latent_dim), DType::F32, &self.device)?;
        Ok(u.affine(2.0, -1.0)?)
    }

    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        self.check_latents(z)?;
        // Detached: images made for labelling or training a classifier must not drag the
        // generator's graph into that classifier's backward pass.
        Ok(self
            .generator
            .forward(&z.to_dtype(DType::F32)?.to_device(&self.device)?, false)?
            .detach())
    }
}
