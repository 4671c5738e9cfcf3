use ppl_macros::{model, observe, sample};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

#[model]
fn scm(data: &Tensor) -> ppl_rt::Result<Tensor> {
    sample!(Normal::new(0.0, 1.0)?);
    let x = sample!(Normal::new(0.0, 1.0)?).exp()?;
    observe!(Normal::new(&x, 1.0)?, data);
    Ok(x)
}

fn main() {}
