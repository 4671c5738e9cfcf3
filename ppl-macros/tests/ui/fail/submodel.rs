use ppl_macros::{model, sample, scope};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

#[model]
fn encoder(x: &Tensor) -> ppl_rt::Result<Tensor> {
    let z = sample!(Normal::new(x, 1.0)?);
    Ok(z)
}

fn relu(x: &Tensor) -> ppl_rt::Result<Tensor> {
    Ok(x.relu()?)
}

#[model]
fn twice(x: &Tensor) -> ppl_rt::Result<Tensor> {
    let a = relu(x)?;
    let b = relu(&a)?;
    let z1 = encoder(&b)?;
    let z3 = scope!("encoder3", encoder(&z1))?;
    let z2 = encoder(&z3)?;
    Ok(z2)
}

#[model]
fn looped(xs: &[Tensor]) -> ppl_rt::Result<Vec<Tensor>> {
    let mut out = Vec::new();
    for (i, x) in xs.iter().enumerate() {
        out.push(scope!(format!("ok_{i}"), encoder(x))?);
        out.push(encoder(x)?);
    }
    Ok(out)
}

fn main() {}
