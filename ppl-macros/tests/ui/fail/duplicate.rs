use ppl_macros::{model, sample, scope};
use ppl_rt::candle_core::Tensor;
use ppl_rt::dist::Normal;

#[model]
fn scm(flag: bool) -> ppl_rt::Result<Tensor> {
    let x = sample!(Normal::new(0.0, 1.0)?);
    let y = if flag {
        let y = sample!(Normal::new(&x, 1.0)?);
        y
    } else {
        let y = sample!(Normal::new(&x, 2.0)?);
        y
    };
    let y = sample!(Normal::new(&y, 1.0)?);
    let z = sample!("x", Normal::new(&y, 1.0)?);
    let _inner = scope!("s", sample!("z", Normal::new(&z, 1.0)?));
    let _again = scope!("s", sample!("z", Normal::new(&z, 1.0)?));
    Ok(z)
}

fn main() {}
