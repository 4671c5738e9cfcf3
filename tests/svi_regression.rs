//! B2 of `shared/BENCHMARKS.md`: SVI with AutoNormal on a Bayesian linear regression recovers
//! the exact posterior mean `E[w | y]` (computed by quadrature in `shared/peers/README.md`).

use ppl::infer::{AutoNormal, Svi, TraceElbo};
use ppl::optim::Adam;
use ppl::prelude::*;
use ppl::workloads::b2::{self, regression, D, SIGMA_EXACT, W_EXACT};

#[test]
fn svi_recovers_the_posterior_mean_of_b2() -> Result<()> {
    let (xv, yv) = b2::data_f64();
    // The data are the peers' to the last bit (data_checksum of peers/README.md, B2).
    assert!(b2::checksum_matches(b2::checksum(&xv, &yv)));
    let (x, y) = b2::data(&Device::Cpu)?;

    let store = ParamStore::new();
    let mut svi = Svi::new(
        || regression(&x, &y),
        AutoNormal::new(),
        Adam::new(0.05),
        TraceElbo::new(),
    )
    .with_store(store.clone());
    let mut avg = [0.0f64; D];
    seed(0, || {
        for step in 1..=2000 {
            let loss = svi.step()?;
            assert!(loss.is_finite());
            if step > 1500 {
                let loc = store.scope(|| svi.guide().loc("w"))?.to_vec1::<f32>()?;
                for (a, l) in avg.iter_mut().zip(loc) {
                    *a += l as f64 / 500.0;
                }
            }
        }
        Ok(())
    })?;
    let err = avg
        .iter()
        .zip(W_EXACT)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f64::max);
    assert!(
        err < 0.01,
        "w averaged over the last 500 steps {avg:?}, max error {err}"
    );
    // sigma's median exp(loc) is near E[sigma | y] = 0.50237 (posterior sd ≈ 0.011).
    let sigma = store.scope(|| svi.guide().median())?["sigma"].to_scalar::<f32>()?;
    assert!((sigma as f64 - SIGMA_EXACT).abs() < 0.05, "sigma {sigma}");
    Ok(())
}
