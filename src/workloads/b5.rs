//! B5 `discrete_scm`: interventional and counterfactual queries on a binary attribute SCM.

use crate::causal::{cpt, twin_world, world, COUNTERFACTUAL, TWIN};
use crate::prelude::*;

/// `P(Young = 1)`.
pub const P_YOUNG: f64 = 0.75;
/// `P(Male = 1)`.
pub const P_MALE: f64 = 0.42;
/// `P(Smiling = 1)`.
pub const P_SMILING: f64 = 0.48;
/// `P(Bald = 1 | Young, Male)`, indexed `[young][male]`.
pub const P_BALD: [[f64; 2]; 2] = [[0.02, 0.30], [0.005, 0.08]];
/// `P(Mustache = 1 | Male)`.
pub const P_MUSTACHE: [f64; 2] = [0.01, 0.15];
/// `P(Wearing_Lipstick = 1 | Male)`.
pub const P_LIPSTICK: [f64; 2] = [0.80, 0.02];
/// `P(Eyeglasses = 1 | Young, Male)`, indexed `[young][male]`.
pub const P_EYEGLASSES: [[f64; 2]; 2] = [[0.10, 0.20], [0.04, 0.08]];

/// Q1's exact answer, `P(Bald = 1 | do(Young = 0)) = 86/625`.
pub const Q1_EXACT: f64 = 86.0 / 625.0;
/// Q2's exact answer, `P(Bald_{Young←0} = 1 | Young = 1, Bald = 0) = 1011/9635`.
pub const Q2_EXACT: f64 = 1011.0 / 9635.0;

/// `table[a][b]` elementwise ([`cpt`]), `a` and `b` broadcast together (a value with world dims
/// meets one without).
fn cpt2(table: [[f64; 2]; 2], a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let t = Tensor::new(&table, a.device())?.to_dtype(a.dtype())?;
    cpt(&t, &[a, b])
}

fn cpt1(table: [f64; 2], a: &Tensor) -> Result<Tensor> {
    let t = Tensor::new(&table, a.device())?.to_dtype(a.dtype())?;
    cpt(&t, &[a])
}

/// The attribute SCM in CPD form for `n` people (one plate), every variable a Bernoulli site
/// whose structural noise is its threshold uniform (`V = 1[U_V < p(parents)]`).
#[model(crate = crate)]
pub fn attributes(n: usize, device: &Device) -> Result<Tensor> {
    let p = |v: f64| Tensor::new(v as f32, device);
    plate!("people", n, {
        let young = sample!(Bernoulli::from_probs(&p(P_YOUNG)?)?);
        let male = sample!(Bernoulli::from_probs(&p(P_MALE)?)?);
        let _smiling = sample!(Bernoulli::from_probs(&p(P_SMILING)?)?);
        let bald = sample!(Bernoulli::from_probs(&cpt2(P_BALD, &young, &male)?)?);
        let _mustache = sample!(Bernoulli::from_probs(&cpt1(P_MUSTACHE, &male)?)?);
        let _lipstick = sample!(Bernoulli::from_probs(&cpt1(P_LIPSTICK, &male)?)?);
        let _eyeglasses = sample!(Bernoulli::from_probs(&cpt2(P_EYEGLASSES, &young, &male)?)?);
        Ok(bald)
    })
}

/// Q1 by the `do` handler: the mean of `bald` over `n` people under `do(young = 0)`.
pub fn q1(n: usize, device: &Device) -> Result<f64> {
    let bald = do_([("young", 0.0)], || attributes(n, device))?;
    Ok(bald.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()?)
}

/// Q2 in the twin world, `n` people as particles: each person's weight is the likelihood of the
/// evidence (`young = 1, bald = 0`) in the factual world, and `bald`'s noise is abducted exactly
/// from the factual observation. Returns the self-normalised estimate and the effective sample
/// size.
pub fn q2(n: usize, device: &Device) -> Result<(f64, f64)> {
    let one = Tensor::new(1.0f32, device)?;
    let zero = Tensor::new(0.0f32, device)?;
    let (bald_cf, tr) = trace(|| {
        twin_world(|| {
            do_([("young", 0.0)], || {
                condition([("young", &one), ("bald", &zero)], || {
                    let bald = attributes(n, device)?;
                    Ok(world(&bald, &[(TWIN, COUNTERFACTUAL)])?.reshape(n)?)
                })
            })
        })
    })?;
    // log w = the factual world's log-likelihood of the observations, per person.
    let mut log_w: Option<Tensor> = None;
    for site in tr.iter().filter(|s| s.observed && s.is_sample()) {
        // (1, 1, 1, 1, n) to (n,) as a view: a site observed once for everyone has a
        // broadcast log-density, which a reshape would copy.
        let mut lp = crate::causal::factual_log_prob(site)?.to_dtype(DType::F32)?;
        while lp.rank() > 1 {
            lp = lp.squeeze(0)?;
        }
        log_w = Some(match log_w {
            None => lp,
            Some(acc) => acc.broadcast_add(&lp)?,
        });
    }
    let log_w = match log_w {
        Some(l) => l.broadcast_as(n)?,
        None => Tensor::zeros(n, DType::F32, device)?,
    };
    let est = crate::infer::weighted_mean(&log_w, &bald_cf)?;
    Ok((est.mean, est.ess))
}
