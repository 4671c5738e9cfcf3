//! The seeded random generator that all sampling goes through.
//!
//! candle's CPU `randn` cannot be seeded, so ppl never calls it: every draw is made on the host
//! from a ChaCha8 stream and moved to the tensor's device. Each thread has one current generator,
//! seeded with [`DEFAULT_SEED`] when first used; [`set_seed`] reseeds it and the
//! [`seed`](crate::handlers::seed) handler swaps in a fresh one for the duration of a closure.
//! The same seed gives bit-identical results on the CPU, whatever the thread count.

use std::cell::RefCell;

use candle_core::{DType, Device, Shape, Tensor};
use rand::{Rng as _, SeedableRng};

use crate::error::{Error, Result};

/// The generator type behind every draw.
pub type Rng = rand_chacha::ChaCha8Rng;

/// The seed a thread's generator starts from when nothing else was set.
pub const DEFAULT_SEED: u64 = 0;

thread_local! {
    static CURRENT: RefCell<Rng> = RefCell::new(Rng::seed_from_u64(DEFAULT_SEED));
}

/// A generator seeded with `seed`.
pub fn from_seed(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// Reseeds this thread's current generator (like `pyro.set_rng_seed`).
pub fn set_seed(seed: u64) {
    CURRENT.with(|c| *c.borrow_mut() = Rng::seed_from_u64(seed));
}

/// Runs `f` with this thread's current generator.
///
/// `f` must not itself call `with_rng` (distributions receive the generator as an argument and
/// never reach for the thread's one).
pub fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    CURRENT.with(|c| f(&mut c.borrow_mut()))
}

/// Replaces this thread's current generator, returning the previous one.
pub fn swap(rng: Rng) -> Rng {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), rng))
}

/// Builds a tensor of `dtype` on `device` from host values computed in f64.
pub fn tensor_from_f64(
    values: Vec<f64>,
    shape: impl Into<Shape>,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let t = match dtype {
        DType::F64 => Tensor::from_vec(values, shape, device)?,
        DType::F32 => {
            let v: Vec<f32> = values.into_iter().map(|x| x as f32).collect();
            Tensor::from_vec(v, shape, device)?
        }
        other => Tensor::from_vec(values, shape, device)?.to_dtype(other)?,
    };
    Ok(t)
}

fn check_float(dtype: DType) -> Result<()> {
    match dtype {
        DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Ok(()),
        other => Err(Error::Unsupported {
            what: format!("drawing random {other:?} values"),
            why: "random draws are floating point".into(),
        }),
    }
}

/// `shape` values drawn one by one on the host by `draw`, as a tensor of `dtype` on `device`.
fn host_draws(
    rng: &mut Rng,
    shape: impl Into<Shape>,
    dtype: DType,
    device: &Device,
    mut draw: impl FnMut(&mut Rng) -> f64,
) -> Result<Tensor> {
    check_float(dtype)?;
    let shape = shape.into();
    let v: Vec<f64> = (0..shape.elem_count()).map(|_| draw(rng)).collect();
    tensor_from_f64(v, shape, dtype, device)
}

/// Standard normal draws of `shape`, made on the host from `rng`.
pub fn standard_normal(
    rng: &mut Rng,
    shape: impl Into<Shape>,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    host_draws(rng, shape, dtype, device, |r| {
        r.sample::<f64, _>(rand_distr::StandardNormal)
    })
}

/// Uniform draws on the open interval (0, 1) of `shape`, made on the host from `rng`.
///
/// Zero and one are excluded so that `ln(u)` and `logit(u)` of a draw are always finite. On the
/// CPU in f32 and f64 the draws are made in parallel (see [`crate::kernels`]), with the same
/// values whatever the thread count.
pub fn uniform01(
    rng: &mut Rng,
    shape: impl Into<Shape>,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    use crate::kernels::elementwise::{cpu_tensor, uniforms};
    let shape = shape.into();
    let n = shape.elem_count();
    match (dtype, device) {
        (DType::F32, Device::Cpu) => cpu_tensor(uniforms::<f32>(rng, n), shape.dims()),
        (DType::F64, Device::Cpu) => cpu_tensor(uniforms::<f64>(rng, n), shape.dims()),
        _ => host_draws(rng, shape, dtype, device, open01),
    }
}

/// One uniform draw on the open interval (0, 1).
pub fn open01(rng: &mut Rng) -> f64 {
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            return u;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let a = standard_normal(&mut from_seed(7), (3, 4), DType::F32, &Device::Cpu).unwrap();
        let b = standard_normal(&mut from_seed(7), (3, 4), DType::F32, &Device::Cpu).unwrap();
        let c = standard_normal(&mut from_seed(8), (3, 4), DType::F32, &Device::Cpu).unwrap();
        let (a, b, c) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            c.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn set_seed_restarts_the_thread_stream() {
        set_seed(3);
        let a: f64 = with_rng(|r| r.random());
        set_seed(3);
        let b: f64 = with_rng(|r| r.random());
        assert_eq!(a, b);
    }

    #[test]
    fn integer_dtypes_are_refused() {
        assert!(uniform01(&mut from_seed(0), 2, DType::U32, &Device::Cpu).is_err());
    }
}
