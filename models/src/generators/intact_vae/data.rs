//! Faces under limited overlap between covariates and treatment, and the `(y, x, t)` tensors
//! the β-intact-VAE reads.

use candle_core::{DType, Device, Tensor};
use ppl_core::{Error, Result};

use super::config::IntactConfig;
use crate::data::cartoon::{Attr, CartoonConfig, CartoonFaces, Cpds};
use crate::face_scm::FaceData;

/// The cartoon faces with the treatment Eyeglasses (parent: Young, no descendants) set to
/// limited overlap: `P(Eyeglasses | Young) = overlap` and `P(Eyeglasses | old) = 1 − overlap`;
/// every other table and the colours keep their defaults.
///
/// With `overlap = 0.1` nine in ten young faces go without glasses and nine in ten old faces
/// wear them, so the "rare" units (young with glasses, old without) are the ones whose
/// counterfactual the data say least about; `overlap = 0.5` makes the treatment independent of
/// the covariates (full overlap) and `0` deterministic (none). Fails unless
/// `0 ≤ overlap ≤ 1`.
///
/// ```
/// use models::data::cartoon::Attr;
/// use models::generators::intact_vae::limited_overlap_faces;
/// let faces = limited_overlap_faces(0.1)?;
/// assert_eq!(faces.config().cpds.table(Attr::Eyeglasses), &[0.9, 0.1]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn limited_overlap_faces(overlap: f64) -> Result<CartoonFaces> {
    if !(0.0..=1.0).contains(&overlap) {
        return Err(Error::param(
            "limited_overlap_faces",
            "overlap",
            format!("must lie in [0, 1], got {overlap}"),
        ));
    }
    let mut cpds = Cpds::default();
    // The table is indexed by Young (0 = old first).
    cpds.set_table(Attr::Eyeglasses, &[1.0 - overlap, overlap])?;
    CartoonFaces::new(CartoonConfig {
        cpds,
        ..CartoonConfig::default()
    })
}

/// Faces as the β-intact-VAE sees them: outcome images `y`, covariates `x` and treatment `t`,
/// with the generator's samples kept for the true counterfactuals.
#[derive(Debug, Clone)]
pub struct IntactData {
    /// The faces (images `[n, 3, s, s]` in `[0, 1]`, all attributes, the generator's samples).
    pub faces: FaceData,
    /// The covariates as 0/1, `[n, k]` f32, columns in the configuration's order.
    pub x: Tensor,
    /// The treatment as 0/1, `[n]` f32.
    pub t: Tensor,
    covariates: Vec<Attr>,
    treatment: Attr,
}

fn column(binary: &Tensor, a: Attr) -> Result<Tensor> {
    Ok(binary
        .narrow(1, a.index(), 1)?
        .squeeze(1)?
        .to_dtype(DType::F32)?)
}

impl IntactData {
    /// Reads `x` and `t` off `faces` for `covariates` and `treatment`.
    pub fn new(faces: FaceData, covariates: &[Attr], treatment: Attr) -> Result<Self> {
        let cols = covariates
            .iter()
            .map(|a| column(&faces.binary, *a))
            .collect::<Result<Vec<_>>>()?;
        if cols.is_empty() {
            return Err(Error::usage("IntactData: needs at least one covariate"));
        }
        // Contiguous so minibatches can be gathered with `index_select`.
        let x = Tensor::stack(&cols, 1)?.contiguous()?;
        let t = column(&faces.binary, treatment)?.contiguous()?;
        Ok(IntactData {
            faces,
            x,
            t,
            covariates: covariates.to_vec(),
            treatment,
        })
    }

    /// Faces `start..start + n` of `generator`'s data set with `seed`, at `cfg`'s image size,
    /// covariates and treatment, on `device`.
    pub fn generate(
        generator: &CartoonFaces,
        seed: u64,
        start: u64,
        n: usize,
        cfg: &IntactConfig,
        device: &Device,
    ) -> Result<Self> {
        let faces = FaceData::generate(generator, seed, start, n, cfg.image_size, device)?;
        Self::new(faces, &cfg.covariates, cfg.treatment)
    }

    /// The outcome images `y`, `[n, 3, s, s]` in `[0, 1]`.
    pub fn images(&self) -> &Tensor {
        &self.faces.images
    }

    /// The covariates, in the order of `x`'s columns.
    pub fn covariates(&self) -> &[Attr] {
        &self.covariates
    }

    /// The treatment.
    pub fn treatment(&self) -> Attr {
        self.treatment
    }

    /// The number of faces.
    pub fn len(&self) -> usize {
        self.faces.len()
    }

    /// Whether there is no face.
    pub fn is_empty(&self) -> bool {
        self.faces.is_empty()
    }

    /// The faces at `idx` (in that order); fails on an index out of range.
    pub fn select(&self, idx: &[usize]) -> Result<Self> {
        Self::new(self.faces.select(idx)?, &self.covariates, self.treatment)
    }

    /// The first `n` faces (all if fewer).
    pub fn head(&self, n: usize) -> Result<Self> {
        Self::new(self.faces.head(n)?, &self.covariates, self.treatment)
    }

    /// Whether each unit's observed treatment was the rare one for its covariates under
    /// `generator`'s tables (`P(t_observed | parents) < 1/2`).
    pub fn rare_treatment(&self, generator: &CartoonFaces) -> Vec<bool> {
        let cpds = &generator.config().cpds;
        self.faces
            .samples
            .iter()
            .map(|s| {
                let p1 = cpds.prob(self.treatment, &s.attributes.binary);
                let p_obs = if s.attributes.get(self.treatment) {
                    p1
                } else {
                    1.0 - p1
                };
                p_obs < 0.5
            })
            .collect()
    }
}
