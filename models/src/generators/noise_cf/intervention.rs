//! The intervention form of an antecedent: moving latents across attribute hyperplanes.

use candle_core::{DType, Tensor};
use ppl_core::rng::{self, Rng};
use ppl_core::{Error, Result};

use super::query::{columns, present, AttributeValue};
use super::scores;
use crate::fairness::scorer::AttributeScorer;
use crate::fairness::svm::{Hyperplane, LinearSvm};
use crate::generators::LatentGenerator;

/// Images generated and scored at a time while fitting.
const FIT_BATCH: usize = 256;

/// Attribute hyperplanes in a generator's latent space and a margin: imposes an antecedent
/// `A = a` on latents by moving them along the hyperplanes' normals.
///
/// With `s = wᵀz + b` the factual latent's signed distance to `A`'s hyperplane and `σ = +1`
/// for `a = 1` (`−1` for `a = 0`), the imposed distance is `t = σ·max(m, σ·s)`: a latent
/// already at least `m` deep on the antecedent's side keeps its distance, any other is moved
/// to distance `m` on that side. [`impose`](Self::impose) gives a proposal `p` (the factual
/// latent itself, or a kernel's redraw of it) the imposed distances by the smallest move,
/// `z' = p + Wᵀ(WWᵀ)⁻¹(t − Wp − b)` over the antecedent's hyperplanes `W`: the component of
/// `p` orthogonal to the normals is untouched. Moved latents may leave a uniform prior's
/// support; generators decode them anyway.
///
/// `LatentIntervention::fit(&gan, &scorer, &["Mustache", "Bald"], 2000, &LinearSvm::default(),
/// 0.5, &mut rng)?` fits one hyperplane per attribute on the scorer's verdicts of 2000 prior
/// draws.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentIntervention {
    planes: Vec<(String, Hyperplane)>,
    margin: f64,
}

impl LatentIntervention {
    /// From fitted hyperplanes (named by attribute) and a margin `m ≥ 0` (in latent units: the
    /// normals have unit length).
    pub fn new(planes: Vec<(String, Hyperplane)>, margin: f64) -> Result<Self> {
        if !(margin >= 0.0 && margin.is_finite()) {
            return Err(Error::param(
                "LatentIntervention",
                "margin",
                format!("must be finite and non-negative, got {margin}"),
            ));
        }
        if let Some((name, h)) = planes.iter().find(|(_, h)| h.dim() != planes[0].1.dim()) {
            return Err(Error::shape(
                format!("LatentIntervention: hyperplane of {name:?}"),
                &[planes[0].1.dim()],
                &[h.dim()],
            ));
        }
        Ok(LatentIntervention { planes, margin })
    }

    /// Fits a [`LinearSvm`] hyperplane per attribute on `n` latents drawn from `gen`'s prior
    /// with `rng`, labelled by `scorer`'s verdicts (probability above 1/2) on their images.
    pub fn fit(
        gen: &(impl LatentGenerator + ?Sized),
        scorer: &(impl AttributeScorer + ?Sized),
        attributes: &[&str],
        n: usize,
        svm: &LinearSvm,
        margin: f64,
        rng: &mut Rng,
    ) -> Result<Self> {
        let cols = attributes
            .iter()
            .map(|a| scorer.column(a))
            .collect::<Result<Vec<_>>>()?;
        let z = gen.sample_latents(n, rng)?;
        let verdicts = present(&scores(gen, scorer, &z, FIT_BATCH)?, &cols)?;
        let verdicts = verdicts.to_vec2::<f32>()?;
        let mut planes = Vec::with_capacity(attributes.len());
        for (j, name) in attributes.iter().enumerate() {
            let y: Vec<bool> = verdicts.iter().map(|r| r[j] > 0.5).collect();
            let h = svm
                .fit(&z, &y)
                .map_err(|e| Error::usage(format!("fitting the hyperplane of {name:?}: {e}")))?;
            planes.push((name.to_string(), h));
        }
        Self::new(planes, margin)
    }

    /// The hyperplane of `name`, or an error naming it.
    pub fn hyperplane(&self, name: &str) -> Result<&Hyperplane> {
        self.planes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h)
            .ok_or_else(|| {
                Error::usage(format!(
                    "LatentIntervention has no hyperplane for {name:?} (it has {:?})",
                    self.planes.iter().map(|(n, _)| n).collect::<Vec<_>>()
                ))
            })
    }

    /// The margin `m`.
    pub fn margin(&self) -> f64 {
        self.margin
    }

    /// The proposals `proposal` (`[n, d]`) moved so that each row has the distances the
    /// antecedent imposes on the same row of `factual` (see the type's docs). Runs on the host
    /// in f64 (a `k × k` solve per call, `k` the antecedent's size).
    pub fn impose(
        &self,
        factual: &Tensor,
        proposal: &Tensor,
        antecedent: &[AttributeValue],
    ) -> Result<Tensor> {
        if factual.dims() != proposal.dims() || factual.rank() != 2 {
            return Err(Error::shape(
                "LatentIntervention::impose: factual and proposal [n, d]",
                factual.dims(),
                proposal.dims(),
            ));
        }
        let planes = antecedent
            .iter()
            .map(|a| self.hyperplane(&a.name))
            .collect::<Result<Vec<_>>>()?;
        let d = factual.dim(1)?;
        if let Some(h) = planes.iter().find(|h| h.dim() != d) {
            return Err(Error::shape(
                "LatentIntervention::impose: latent width",
                &[h.dim()],
                &[d],
            ));
        }
        let gram_inv = inverse(&gram(&planes))?;
        let host = |t: &Tensor| -> Result<Vec<Vec<f64>>> { Ok(t.to_dtype(DType::F64)?.to_vec2()?) };
        let (fact, prop) = (host(factual)?, host(proposal)?);
        let score = |h: &Hyperplane, z: &[f64]| -> f64 {
            h.b() + h.w().iter().zip(z).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut out = Vec::with_capacity(prop.len() * d);
        for (f, p) in fact.iter().zip(&prop) {
            let resid: Vec<f64> = planes
                .iter()
                .zip(antecedent)
                .map(|(h, a)| {
                    let sign = if a.value { 1.0 } else { -1.0 };
                    let target = sign * self.margin.max(sign * score(h, f));
                    target - score(h, p)
                })
                .collect();
            let coef: Vec<f64> = gram_inv
                .iter()
                .map(|row| row.iter().zip(&resid).map(|(g, r)| g * r).sum())
                .collect();
            out.extend((0..d).map(|i| {
                p[i] + planes
                    .iter()
                    .zip(&coef)
                    .map(|(h, c)| c * h.w()[i])
                    .sum::<f64>()
            }));
        }
        rng::tensor_from_f64(out, factual.dims(), proposal.dtype(), proposal.device())
    }

    /// Columns of the antecedent in `scorer` (checked before any work).
    pub(crate) fn check(
        &self,
        scorer: &(impl AttributeScorer + ?Sized),
        antecedent: &[AttributeValue],
    ) -> Result<()> {
        columns(scorer, antecedent)?;
        for a in antecedent {
            self.hyperplane(&a.name)?;
        }
        Ok(())
    }
}

fn gram(planes: &[&Hyperplane]) -> Vec<Vec<f64>> {
    planes
        .iter()
        .map(|a| {
            planes
                .iter()
                .map(|b| a.w().iter().zip(b.w()).map(|(x, y)| x * y).sum())
                .collect()
        })
        .collect()
}

/// Gauss–Jordan inverse with partial pivoting of a small symmetric positive matrix; nearly
/// parallel normals (no unique smallest move) are an error.
fn inverse(m: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
    let k = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..k).map(|j| f64::from(u8::from(i == j))));
            r
        })
        .collect();
    for c in 0..k {
        let piv = (c..k)
            .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
            .unwrap_or(c);
        if a[piv][c].abs() < 1e-9 {
            return Err(Error::usage(
                "LatentIntervention: the antecedent's hyperplanes have (nearly) parallel normals, \
                 so no move sets all their distances",
            ));
        }
        a.swap(c, piv);
        let p = a[c][c];
        for v in a[c].iter_mut() {
            *v /= p;
        }
        for r in 0..k {
            if r != c {
                let f = a[r][c];
                let pivot_row = a[c].clone();
                for (v, pv) in a[r].iter_mut().zip(&pivot_row) {
                    *v -= f * pv;
                }
            }
        }
    }
    Ok(a.into_iter().map(|r| r[k..].to_vec()).collect())
}
