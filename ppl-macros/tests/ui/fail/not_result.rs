use ppl_macros::{model, sample};
use ppl_rt::dist::Normal;

#[model]
fn scm() {
    let _x = sample!(Normal::new(0.0, 1.0).unwrap());
}

fn main() {}
