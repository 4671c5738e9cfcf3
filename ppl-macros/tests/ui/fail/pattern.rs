use ppl_macros::{deterministic, model, sample};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

#[model]
fn scm() -> ppl_rt::Result<Tensor> {
    let (a, b) = sample!(Normal::new(0.0, 1.0)?);
    let _ = deterministic!(a);
    Ok(b)
}

fn main() {}
