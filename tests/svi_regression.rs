//! B2 of `shared/BENCHMARKS.md`: SVI with AutoNormal on a Bayesian linear regression recovers
//! the exact posterior mean `E[w | y]` (computed by quadrature in `shared/peers/README.md`).

use ppl::infer::{AutoNormal, Svi, TraceElbo};
use ppl::models::data::portable::std_normal;
use ppl::optim::Adam;
use ppl::prelude::*;

const N: usize = 1000;
const D: usize = 5;

/// The B2 data set, bit-identical to the peers' (`data_checksum` checked below).
fn data() -> (Vec<f64>, Vec<f64>) {
    let e = std_normal(2002, N * D + N);
    let w_true = [1.5, -2.0, 0.5, 0.0, 1.0];
    let x = e[..N * D].to_vec();
    let y = (0..N)
        .map(|n| (0..D).map(|d| x[n * D + d] * w_true[d]).sum::<f64>() + 0.5 * e[N * D + n])
        .collect();
    (x, y)
}

#[model]
fn regression(x: &Tensor, y: &Tensor) -> Result<()> {
    let w = sample!(Normal::new(&Tensor::zeros(D, DType::F32, x.device())?, 1.0)?.to_event(1)?);
    let sigma = sample!(LogNormal::new(&Tensor::zeros((), DType::F32, x.device())?, 1.0)?);
    let mean = x.matmul(&w.unsqueeze(1)?)?.squeeze(1)?;
    plate!("data", N, {
        observe!("y", Normal::new(&mean, &sigma)?, y);
        Ok(())
    })
}

#[test]
fn svi_recovers_the_posterior_mean_of_b2() -> Result<()> {
    let (xv, yv) = data();
    // data_checksum of peers/README.md, B2.
    assert!((xv.iter().sum::<f64>() - 2.2517466706666944).abs() < 1e-9);
    assert!((yv.iter().sum::<f64>() - -54.18070747561452).abs() < 1e-9);
    let x = Tensor::from_vec(xv.iter().map(|&v| v as f32).collect::<Vec<_>>(), (N, D), &Device::Cpu)?;
    let y = Tensor::from_vec(yv.iter().map(|&v| v as f32).collect::<Vec<_>>(), N, &Device::Cpu)?;

    let store = ParamStore::new();
    let mut svi = Svi::new(
        || regression(&x, &y),
        AutoNormal::new(),
        Adam::new(0.05),
        TraceElbo::new(),
    )
    .with_store(store.clone());
    let exact = [1.49698, -2.01106, 0.51278, 0.00389, 1.02702];
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
    let err = avg.iter().zip(exact).map(|(a, e)| (a - e).abs()).fold(0.0, f64::max);
    assert!(err < 0.01, "w averaged over the last 500 steps {avg:?}, max error {err}");
    // sigma's median exp(loc) is near E[sigma | y] = 0.50237 (posterior sd ≈ 0.011).
    let sigma = store.scope(|| svi.guide().median())?["sigma"].to_scalar::<f32>()?;
    assert!((sigma as f64 - 0.50237).abs() < 0.05, "sigma {sigma}");
    Ok(())
}
