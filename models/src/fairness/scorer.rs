//! Reading attributes from images: what every audit needs from a classifier.

use candle_core::{DType, Tensor};
use ppl_core::{Error, Result};

use crate::data::cartoon::{measure, Attr, SIZE};
use crate::face_scm::to_oracle_image;

/// Anything that gives, for a batch of images, the probability of each of a fixed list of
/// binary attributes: a trained CNN classifier, or the cartoon faces' measurement oracle.
pub trait AttributeScorer {
    /// The attributes scored, in column order.
    fn attribute_names(&self) -> &[String];

    /// `[n, k]` probabilities (f32, on the images' device) for `[n, 3, s, s]` images in
    /// `[0, 1]`, one column per [`attribute_names`](Self::attribute_names) entry.
    fn attribute_probs(&self, images: &Tensor) -> Result<Tensor>;

    /// The column of `name`, or an error naming it.
    fn column(&self, name: &str) -> Result<usize> {
        self.attribute_names()
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| {
                Error::usage(format!(
                    "the scorer has no attribute {name:?} (it scores {:?})",
                    self.attribute_names()
                ))
            })
    }
}

/// The measurement oracle of the cartoon faces as a scorer: probabilities are 0 or 1 (an image
/// the oracle cannot read scores 0.5 on every attribute). Images smaller than 64×64 are
/// upsampled by pixel repetition first; the oracle is exact on rendered 64×64 faces and
/// degrades on blurry or pooled ones, so it is a ground truth for the data, not for every
/// generator's output.
#[derive(Debug, Clone)]
pub struct OracleScorer {
    attrs: Vec<Attr>,
    names: Vec<String>,
}

impl OracleScorer {
    /// An oracle scoring `attrs`, in that order.
    pub fn new(attrs: &[Attr]) -> Self {
        OracleScorer {
            attrs: attrs.to_vec(),
            names: attrs.iter().map(|a| a.name().to_string()).collect(),
        }
    }
}

impl AttributeScorer for OracleScorer {
    fn attribute_names(&self) -> &[String] {
        &self.names
    }

    fn attribute_probs(&self, images: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = images.dims4()?;
        if c != 3 || h != w || h == 0 || !SIZE.is_multiple_of(h) {
            return Err(Error::usage(format!(
                "OracleScorer: images must be [n, 3, s, s] with s dividing {SIZE}, got {:?}",
                images.dims()
            )));
        }
        let k = SIZE / h;
        let bytes = (images.to_dtype(DType::F32)? * 255.0)?;
        let mut out = Vec::with_capacity(n * self.attrs.len());
        for i in 0..n {
            let img = to_oracle_image(&bytes.get(i)?, k)?;
            match measure(&img) {
                Ok(m) => out.extend(self.attrs.iter().map(|a| {
                    if m.attributes.get(*a) {
                        1f32
                    } else {
                        0f32
                    }
                })),
                Err(_) => out.extend(std::iter::repeat_n(0.5f32, self.attrs.len())),
            }
        }
        Ok(Tensor::from_vec(
            out,
            (n, self.attrs.len()),
            images.device(),
        )?)
    }
}
