use ppl_macros::{model, plate, sample};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

fn not_a_model() -> ppl_rt::Result<Tensor> {
    let x = sample!(Normal::new(0.0, 1.0)?);
    Ok(x)
}

#[model]
fn scm() -> ppl_rt::Result<Vec<Tensor>> {
    fn helper() -> ppl_rt::Result<()> {
        plate!("data", 3, {});
        Ok(())
    }
    helper()?;
    Ok(vec![sample!("x", Normal::new(0.0, 1.0)?)])
}

fn main() {}
