//! The peer benchmark workloads of `shared/peers/README.md` (B1–B5): their data sets, generated
//! bit-identically to the Pyro/ChiRho/NumPyro scripts, their models as `#[model]` functions, and
//! their exact answers. `ppl-bench` times them; the test suite checks their answers.

pub mod b2;
pub mod b3;
pub mod b4;
pub mod b5;
