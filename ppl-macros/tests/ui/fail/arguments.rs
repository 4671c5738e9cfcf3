use ppl_macros::{model, plate, sample};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

#[model]
fn scm() -> ppl_rt::Result<Tensor> {
    let x = sample!("x", Normal::new(0.0, 1.0)?, 3);
    let y = sample!(Normal::new(0.0, 1.0)?, enumerate = true);
    plate!("data", 3, sub = 2, {});
    Ok((x + y)?)
}

#[model(crate = ppl_rt, tracing)]
fn options() -> ppl_rt::Result<()> {
    Ok(())
}

#[model]
async fn not_sync() -> ppl_rt::Result<()> {
    Ok(())
}

fn main() {}
