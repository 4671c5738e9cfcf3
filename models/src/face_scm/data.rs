//! Cartoon faces as tensors for the face SCM: images average-pooled to the model's size,
//! binary attributes and colour indices, with the generator's samples kept for ground truth.

use candle_core::{DType, Device, Tensor};
use ppl_core::{Error, Result};

use crate::data::cartoon::{attributes_tensor, images_tensor, CartoonFaces, CartoonSample, SIZE};
use crate::data::image::{Image, PixelScale};

/// A set of faces ready for the face SCM.
#[derive(Debug, Clone)]
pub struct FaceData {
    /// The generator's faces (noise, attributes, 64×64 image).
    pub samples: Vec<CartoonSample>,
    /// `[n, 3, s, s]` images in `[0, 1]` at the model's size.
    pub images: Tensor,
    /// `[n, 9]` binary attributes as 0/1, columns in [`Attr::ALL`](crate::data::cartoon::Attr::ALL) order.
    pub binary: Tensor,
    /// `[n, 3]` colour indices (eye, skin, hair) as floats.
    pub colours: Tensor,
}

/// Average-pools `[n, c, h, w]` images by `k` (`k = 1` returns them unchanged).
pub fn downsample(images: &Tensor, k: usize) -> Result<Tensor> {
    if k <= 1 {
        return Ok(images.clone());
    }
    Ok(images.avg_pool2d(k)?)
}

/// Repeats every pixel of `[n, c, h, w]` images `k × k` times (nearest-neighbour upsampling),
/// so a model-size image can be read by the 64×64 attribute oracle.
pub fn upsample(images: &Tensor, k: usize) -> Result<Tensor> {
    if k <= 1 {
        return Ok(images.clone());
    }
    Ok(images.upsample_nearest2d(images.dim(2)? * k, images.dim(3)? * k)?)
}

/// A `[3, h, w]` image on the 0–255 scale as an [`Image`], upsampled by `k` first.
pub fn to_oracle_image(image: &Tensor, k: usize) -> Result<Image> {
    let up = upsample(&image.unsqueeze(0)?, k)?.squeeze(0)?;
    Image::from_tensor(&up.clamp(0f32, 255f32)?, PixelScale::Byte)
}

impl FaceData {
    /// Faces from `samples`, images pooled to `image_size` (32 or 64), on `device`.
    pub fn from_samples(
        samples: Vec<CartoonSample>,
        image_size: usize,
        device: &Device,
    ) -> Result<Self> {
        if image_size == 0 || !SIZE.is_multiple_of(image_size) {
            return Err(Error::usage(format!(
                "FaceData: image_size must divide {SIZE}, got {image_size}"
            )));
        }
        let images = downsample(
            &images_tensor(&samples, PixelScale::Unit, device)?,
            SIZE / image_size,
        )?;
        let binary = attributes_tensor(&samples, device)?;
        let colours: Vec<f32> = samples
            .iter()
            .flat_map(|s| {
                [
                    s.attributes.eye.index() as f32,
                    s.attributes.skin.index() as f32,
                    s.attributes.hair.index() as f32,
                ]
            })
            .collect();
        let colours = Tensor::from_vec(colours, (samples.len(), 3), device)?;
        Ok(FaceData {
            samples,
            images,
            binary,
            colours,
        })
    }

    /// Faces `start..start + n` of the data set with `seed` (so train and test splits are
    /// disjoint ranges of one seed).
    pub fn generate(
        faces: &CartoonFaces,
        seed: u64,
        start: u64,
        n: usize,
        image_size: usize,
        device: &Device,
    ) -> Result<Self> {
        let samples = (start..start + n as u64)
            .map(|i| faces.sample_at(seed, i))
            .collect();
        Self::from_samples(samples, image_size, device)
    }

    /// The number of faces.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no face.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The faces at `idx` (in that order).
    pub fn select(&self, idx: &[usize]) -> Result<Self> {
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(Error::usage(format!(
                "FaceData::select: index {bad} out of {} faces",
                self.len()
            )));
        }
        let dev = self.images.device();
        let ids = Tensor::from_vec(
            idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            idx.len(),
            dev,
        )?;
        Ok(FaceData {
            samples: idx.iter().map(|&i| self.samples[i].clone()).collect(),
            images: self.images.index_select(&ids, 0)?,
            binary: self.binary.index_select(&ids, 0)?,
            colours: self.colours.index_select(&ids, 0)?,
        })
    }

    /// The first `n` faces (all if fewer).
    pub fn head(&self, n: usize) -> Result<Self> {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.select(&idx)
    }

    /// The binary attribute columns `[n]` each, in [`Attr::ALL`](crate::data::cartoon::Attr::ALL) order.
    pub fn binary_columns(&self) -> Result<Vec<Tensor>> {
        (0..self.binary.dim(1)?)
            .map(|i| {
                Ok(self
                    .binary
                    .narrow(1, i, 1)?
                    .squeeze(1)?
                    .to_dtype(DType::F32)?)
            })
            .collect()
    }

    /// The colour index columns `[n]` each (eye, skin, hair).
    pub fn colour_columns(&self) -> Result<Vec<Tensor>> {
        (0..3)
            .map(|i| Ok(self.colours.narrow(1, i, 1)?.squeeze(1)?))
            .collect()
    }
}
