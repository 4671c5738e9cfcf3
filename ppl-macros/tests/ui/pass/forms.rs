//! Every form `#[model]` understands, run under `trace`, with the names each one produces.

use ppl_macros::{deterministic, factor, model, observe, param, plate, sample, scope};
use ppl_rt::candle_core::{DType, Device, Tensor};
use ppl_rt::dist::{Bernoulli, Normal};
use ppl_rt::handlers::{condition, do_, seed, trace};
use ppl_rt::params::Constraint;
use ppl_rt::runtime::InferConfig;
use ppl_rt::Result;

fn names(tr: &ppl_rt::handlers::Trace) -> Vec<&str> {
    tr.names().collect()
}

/// `let` naming in its three spellings, explicit and formatted names, keyed options.
#[model]
fn sites(n: usize) -> Result<Tensor> {
    let a = sample!(Normal::new(0.0, 1.0)?);
    let b: Tensor = sample!(Normal::new(&a, 1.0)?);
    let mut c = sample!(Normal::new(&b, 1.0), infer = InferConfig::default());
    c = (c + 1.0)?;
    let explicit = sample!("named", Normal::new(0.0, 1.0)?);
    let label = String::from("dyn");
    let _d = sample!(label.clone(), Normal::new(&explicit, 1.0)?);
    for t in 0..n {
        sample!("walk_{t}", Normal::new(0.0, 1.0)?);
        let _u = sample!(format!("u_{}", t), Normal::new(0.0, 1.0)?);
    }
    let y = observe!(Normal::new(&c, 1.0)?, Tensor::new(0.5f32, &Device::Cpu)?);
    observe!("y2", Normal::new(&y, 1.0)?, &y);
    let w = param!(|| Ok(Tensor::new(0.25f32, &Device::Cpu)?));
    let s = param!(
        || Ok(Tensor::new(2.0f32, &Device::Cpu)?),
        constraint = Constraint::Positive
    );
    let _v = param!("v", || Ok(Tensor::new(1.0f32, &Device::Cpu)?));
    let m = deterministic!(((&w * &s)? + &c)?);
    deterministic!("m2", &m);
    factor!("penalty", Tensor::new(-1.0f32, &Device::Cpu)?);
    Ok(m)
}

#[model]
fn encoder(x: &Tensor) -> Result<Tensor> {
    let z = sample!(Normal::new(&(x * 0.5)?, 1.0)?);
    Ok(z)
}

/// Plates (block, guard, options), sub-models, a renamed second call, a plate's value.
#[model]
fn vae(data: &Tensor) -> Result<(Tensor, usize)> {
    let n = data.dim(0)?;
    let z = plate!("data", n, {
        let z = encoder(data)?;
        let z2 = scope!("encoder2", encoder(&z))?;
        let _x = observe!(Normal::new(&z2, 1.0)?, data);
        Ok::<_, ppl_rt::Error>(z2)
    })?;
    let visited = plate!("mini", n, subsample_size = 2, |p| {
        let _batch = sample!(Normal::new(0.0, 1.0)?);
        p.indices()?.dims()[0]
    });
    plate!("rows", 2, dim = -2, {
        let row = Tensor::zeros(n, DType::F32, &Device::Cpu)?;
        let _grid = sample!(Normal::new(&row, 1.0)?);
    });
    Ok((z, visited))
}

/// Exclusive branches may reuse a name; a closure site carries its own name.
#[model]
fn branches(flag: bool, k: u8) -> Result<Tensor> {
    let x = if flag {
        let x = sample!(Normal::new(0.0, 1.0)?);
        x
    } else {
        let x = sample!(Normal::new(5.0, 1.0)?);
        x
    };
    let y = match k {
        0 => sample!("y", Bernoulli::from_probs(0.5)?),
        _ => sample!("y", Normal::new(&x, 1.0)?),
    };
    ppl_rt::handlers::scale(2.0, || Ok(sample!("scaled", Normal::new(&y, 1.0)?)))
}

struct Mech {
    loc: f64,
}

impl Mech {
    /// A method model gets no companion module; it scopes like any other sub-model.
    #[model]
    fn cause(&self) -> Result<Tensor> {
        let cause = sample!(Normal::new(self.loc, 1.0)?);
        Ok(cause)
    }

    #[model(no_sites)]
    fn effect(mech: &Mech) -> Result<Tensor> {
        let c = mech.cause()?;
        let effect = sample!(Normal::new(&c, 1.0)?);
        Ok(effect)
    }
}

/// A generic model, naming the runtime explicitly.
#[model(crate = ppl_rt)]
fn generic<F: Fn(&Tensor) -> Result<Tensor>>(f: F) -> Result<Tensor> {
    let g = sample!(Normal::new(0.0, 1.0)?);
    let h = deterministic!(f(&g)?);
    Ok(h)
}

fn main() -> Result<()> {
    let (_, tr) = trace(|| seed(0, || sites(2)))?;
    assert_eq!(
        names(&tr),
        [
            "a", "b", "c", "named", "dyn", "walk_0", "u_0", "walk_1", "u_1", "y", "y2", "w", "s",
            "v", "m", "m2", "penalty"
        ]
    );
    assert!(tr.site("y")?.observed && tr.site("y2")?.observed);
    assert!(tr.site("s")?.value.to_scalar::<f32>()? > 0.0);
    assert_eq!(
        sites::sites::ALL,
        ["a", "b", "c", "named", "y", "y2", "w", "s", "v", "m", "m2", "penalty"]
    );
    assert_eq!(sites::sites::NAMED, "named");

    // Site constants drive queries.
    let obs = Tensor::new(1.5f32, &Device::Cpu)?;
    let (_, tr) = trace(|| {
        seed(1, || {
            do_([(sites::sites::A, 3.0)], || {
                condition([(sites::sites::B, &obs)], || sites(0))
            })
        })
    })?;
    assert_eq!(tr.value("a")?.to_scalar::<f32>()?, 3.0);
    assert_eq!(tr.value("b")?.to_scalar::<f32>()?, 1.5);

    let data = Tensor::new(&[0.5f32, -1.0, 2.0], &Device::Cpu)?;
    let ((z, visited), tr) = trace(|| seed(0, || vae(&data)))?;
    assert_eq!(
        names(&tr),
        ["encoder/z", "encoder2/z", "_x", "mini", "_batch", "_grid"]
    );
    assert_eq!(z.dims(), &[3]);
    assert_eq!(visited, 2);
    assert_eq!(tr.value("_batch")?.dims(), &[2]);
    assert_eq!(tr.value("_grid")?.dims(), &[2, 3]);
    assert_eq!(vae::sites::ALL, ["_x", "_batch", "_grid"]);
    assert_eq!(encoder::sites::ALL, ["z"]);

    // At the top level a sub-model's sites keep their names.
    let (_, tr) = trace(|| encoder(&data))?;
    assert_eq!(names(&tr), ["z"]);

    let (_, tr) = trace(|| branches(true, 0))?;
    assert_eq!(names(&tr), ["x", "y", "scaled"]);
    assert_eq!(tr.site("scaled")?.scale, 2.0);
    let (_, tr) = trace(|| branches(false, 1))?;
    assert!(tr.value("x")?.to_scalar::<f32>()? > 1.0);
    assert_eq!(branches::sites::ALL, ["x", "y", "scaled"]);

    let mech = Mech { loc: 0.0 };
    let (_, tr) = trace(|| Mech::effect(&mech))?;
    assert_eq!(names(&tr), ["cause/cause", "effect"]);
    let (_, tr) = trace(|| mech.cause())?;
    assert_eq!(names(&tr), ["cause"]);

    let (h, tr) = trace(|| generic(|g| Ok((g * 2.0)?)))?;
    assert_eq!(names(&tr), ["g", "h"]);
    assert_eq!(
        h.to_scalar::<f32>()?,
        tr.value("g")?.to_scalar::<f32>()? * 2.0
    );
    assert_eq!(generic::sites::ALL, ["g", "h"]);
    Ok(())
}
