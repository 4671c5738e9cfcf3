use ppl_macros::{model, observe, sample};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

#[model]
fn scm(data: &[Tensor]) -> ppl_rt::Result<Tensor> {
    let mut x = sample!(Normal::new(0.0, 1.0)?);
    for d in data {
        let step = sample!(Normal::new(&x, 1.0)?);
        observe!("obs", Normal::new(&step, 1.0)?, d);
        x = step;
    }
    let draw = || -> ppl_rt::Result<Tensor> {
        let inner = sample!(Normal::new(0.0, 1.0)?);
        Ok(inner)
    };
    draw()?;
    Ok(x)
}

fn main() {}
