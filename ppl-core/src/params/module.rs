//! Neural modules in the store (Pyro's `pyro.module`).
//!
//! candle-nn layers are built from a [`candle_nn::VarBuilder`]; [`ParamStore::var_builder`] returns
//! one whose variables live in the store, under the builder's dotted prefix (`encoder.fc1.weight`, as candle names them), and
//! are initialised from the runtime's seeded generator instead of candle's unseedable one. A
//! module built twice from the same store shares its weights, so a model and a guide can both
//! build their networks inside the function they run.
//!
//! ```
//! use ppl_core::params::ParamStore;
//! use ppl_core::candle_core::{DType, Device, Module, Tensor};
//!
//! let store = ParamStore::new();
//! ppl_core::rng::set_seed(0);
//! let vb = store.var_builder(DType::F32, &Device::Cpu).pp("encoder");
//! let fc = candle_nn::linear(3, 2, vb.pp("fc1"))?;
//! assert_eq!(store.names(), ["encoder.fc1.bias", "encoder.fc1.weight"]);
//! let y = fc.forward(&Tensor::ones((4, 3), DType::F32, &Device::Cpu)?)?;
//! assert_eq!(y.dims(), &[4, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::init::NormalOrUniform;
use rand::Rng as _;

use super::{Constraint, ParamStore};
use crate::error::{Error, Result};
use crate::rng;

/// How a new variable is initialised (candle-nn's initialisers, drawn from our seeded generator).
pub use candle_nn::Init;

/// Draws a tensor of `shape` from `init` with the thread's seeded generator.
pub fn init_tensor(init: Init, shape: &Shape, dtype: DType, device: &Device) -> Result<Tensor> {
    let n = shape.elem_count();
    let values: Vec<f64> = match init {
        Init::Const(c) => vec![c; n],
        Init::Uniform { lo, up } => {
            rng::with_rng(|r| (0..n).map(|_| lo + (up - lo) * rng::open01(r)).collect())
        }
        Init::Randn { mean, stdev } => normal_values(n, mean, stdev),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let fan = fan.for_shape(shape).max(1);
            let std = non_linearity.gain() / (fan as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal_values(n, 0.0, std),
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    rng::with_rng(|r| {
                        (0..n)
                            .map(|_| bound * (2.0 * rng::open01(r) - 1.0))
                            .collect()
                    })
                }
            }
        }
    };
    rng::tensor_from_f64(values, shape.clone(), dtype, device)
}

fn normal_values(n: usize, mean: f64, stdev: f64) -> Vec<f64> {
    rng::with_rng(|r| {
        (0..n)
            .map(|_| mean + stdev * r.sample::<f64, _>(rand_distr::StandardNormal))
            .collect()
    })
}

impl ParamStore {
    /// The unconstrained (real) variable `name` of `shape`, created from `init` with the seeded
    /// generator the first time. The returned tensor shares storage with the stored variable, so
    /// in-place optimiser updates and [`load`](ParamStore::load)s are seen by whoever holds it.
    pub fn var(
        &self,
        name: &str,
        shape: impl Into<Shape>,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if let Some(entry) = self.entry(name) {
            let t = entry.var.as_tensor();
            if t.dims() != shape.dims() {
                return Err(Error::shape(
                    format!("parameter `{name}` (already in the store)"),
                    shape.dims(),
                    t.dims(),
                ));
            }
            return Ok(t.clone());
        }
        let value = init_tensor(init, &shape, dtype, device)?;
        self.get_or_init(name, Some(Box::new(move || Ok(value))), Constraint::Real)
    }

    /// A candle-nn `VarBuilder` whose variables live in this store (see the module docs).
    pub fn var_builder(&self, dtype: DType, device: &Device) -> candle_nn::VarBuilder<'static> {
        candle_nn::VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }
}

impl candle_nn::var_builder::SimpleBackend for ParamStore {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.var(name, shape, init, dtype, dev)
            .map_err(candle_core::Error::wrap)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        match self.entry(name) {
            Some(e) => Ok(e.var.as_tensor().clone()),
            None => Err(candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_modules_are_reproducible_and_shared() -> Result<()> {
        let build = |seed| -> Result<(ParamStore, Tensor)> {
            let store = ParamStore::new();
            rng::set_seed(seed);
            let vb = store.var_builder(DType::F64, &Device::Cpu);
            let fc = candle_nn::linear(5, 3, vb.pp("fc")).map_err(Error::from)?;
            Ok((store, fc.weight().clone()))
        };
        let (s1, w1) = build(7)?;
        let (_, w2) = build(7)?;
        let (_, w3) = build(8)?;
        let diff = |a: &Tensor, b: &Tensor| -> Result<f64> {
            Ok((a - b)?.abs()?.sum_all()?.to_scalar::<f64>()?)
        };
        assert_eq!(diff(&w1, &w2)?, 0.0);
        assert!(diff(&w1, &w3)? > 0.1);
        // Kaiming-normal fan-in 5, ReLU gain: std sqrt(2/5); 15 draws stay within 5 std.
        let max = w1.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(max < 5.0 * (2.0f64 / 5.0).sqrt(), "max |w| = {max}");
        // Building again from the same store reuses the weights.
        let vb = s1.var_builder(DType::F64, &Device::Cpu);
        let again = candle_nn::linear(5, 3, vb.pp("fc")).map_err(Error::from)?;
        assert_eq!(diff(again.weight(), &w1)?, 0.0);
        // A shape clash names the parameter.
        let err = candle_nn::linear(4, 3, vb.pp("fc")).unwrap_err();
        assert!(err.to_string().contains("fc.weight"), "{err}");
        Ok(())
    }

    #[test]
    fn uniform_init_respects_bounds() -> Result<()> {
        rng::set_seed(1);
        let t = init_tensor(
            Init::Uniform { lo: -0.5, up: 2.0 },
            &Shape::from(1000),
            DType::F64,
            &Device::Cpu,
        )?;
        let v = t.to_vec1::<f64>()?;
        assert!(v.iter().all(|&x| (-0.5..2.0).contains(&x)));
        let mean = v.iter().sum::<f64>() / 1000.0;
        // Uniform(-0.5, 2) has mean 0.75 and sd 0.72; 5 standard errors is 0.114.
        assert!((mean - 0.75).abs() < 0.114, "mean {mean}");
        Ok(())
    }
}
