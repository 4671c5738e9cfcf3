//! Micro-benchmarks of the runtime's hot paths: one sample site through the handler stack, the
//! log-densities of the common distributions, and a traced run with its log-joint.
//!
//! `cargo bench -p ppl-core --bench runtime`

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ppl_core::dist::{Bernoulli, Beta, Categorical, Distribution, Gamma, Normal};
use ppl_core::handlers::{condition, trace};
use ppl_core::rng;
use ppl_core::runtime::sample;

fn site_dispatch(c: &mut Criterion) {
    ppl_core::runtime::pin_thread_count();
    ppl_core::dist::set_validation(false);
    let mut g = c.benchmark_group("site");
    g.bench_function("sample, no handler", |b| {
        b.iter(|| sample("x", Normal::new(0.0f32, 1.0f32)).unwrap())
    });
    g.bench_function("sample under trace", |b| {
        b.iter(|| trace(|| sample("x", Normal::new(0.0f32, 1.0f32))).unwrap())
    });
    let y = Tensor::new(0.5f32, &Device::Cpu).unwrap();
    g.bench_function("observed under condition + trace", |b| {
        b.iter(|| {
            trace(|| condition([("x", &y)], || sample("x", Normal::new(0.0f32, 1.0f32)))).unwrap()
        })
    });
    g.bench_function("trace + log_prob_sum of a 100-site random walk", |b| {
        b.iter(|| {
            let (_, tr) = trace(|| {
                let mut x = sample("x_0", Normal::new(0.0f32, 1.0f32))?;
                for t in 1..100 {
                    x = sample(format!("x_{t}"), Normal::new(&x, 1.0f32))?;
                }
                Ok(x)
            })
            .unwrap();
            tr.log_prob_sum().unwrap().to_scalar::<f32>().unwrap()
        })
    });
    g.finish();
    ppl_core::dist::set_validation(true);
}

fn log_prob(c: &mut Criterion) {
    let dev = Device::Cpu;
    let n = 1000;
    let mut r = rng::from_seed(0);
    let x = rng::uniform01(&mut r, n, DType::F32, &dev).unwrap();
    let half = Tensor::full(0.5f32, n, &dev).unwrap();
    let ones = Tensor::ones(n, DType::F32, &dev).unwrap();
    let bits = x.ge(0.5).unwrap().to_dtype(DType::F32).unwrap();
    let cats = (x.clone() * 2.99).unwrap().floor().unwrap();
    let probs = Tensor::new(&[0.2f32, 0.3, 0.5], &dev).unwrap();
    let cases: Vec<(&str, Box<dyn Distribution>, Tensor)> = vec![
        (
            "Normal",
            Box::new(Normal::new(&half, &ones).unwrap()),
            x.clone(),
        ),
        (
            "Bernoulli",
            Box::new(Bernoulli::from_probs(&half).unwrap()),
            bits,
        ),
        (
            "Categorical",
            Box::new(Categorical::from_probs(&probs).unwrap()),
            cats,
        ),
        (
            "Beta",
            Box::new(Beta::new(&half, &ones).unwrap()),
            x.clone(),
        ),
        (
            "Gamma",
            Box::new(Gamma::new(&half, &ones).unwrap()),
            (x + 0.1).unwrap(),
        ),
    ];
    let mut g = c.benchmark_group("log_prob n=1000");
    for (name, d, v) in &cases {
        g.bench_function(*name, |b| {
            b.iter_batched(
                || v.clone(),
                |v| d.log_prob(&v).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, site_dispatch, log_prob);
criterion_main!(benches);
