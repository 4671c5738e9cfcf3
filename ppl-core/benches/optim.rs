//! One Adam step over the B4 parameter set (the DeepSCM Morpho VAE and flows: 226,789 f32
//! values in 18 tensors), with our fused in-place Adam and with `candle_nn::AdamW` (weight decay
//! 0, i.e. Adam), on the same fixed gradients. Also ClippedAdam and SGD with momentum, which run
//! the same kind of kernel.
//!
//! `cargo bench -p ppl-core --bench optim` (threads from `RAYON_NUM_THREADS`).

use std::time::Duration;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Var};
use candle_nn::Optimizer as _;
use criterion::{criterion_group, criterion_main, Criterion};
use ppl_core::optim::{Adam, ClippedAdam, Optimizer, Sgd};
use ppl_core::params::{Init, ParamStore};
use ppl_core::rng;

/// The B4 parameters (torch shapes): decoder Linear(18, 3136), ConvTranspose2d(64, 32, 4),
/// ConvTranspose2d(32, 1, 4); encoder Conv2d(1, 32, 4), Conv2d(32, 64, 4), Linear(3138, 32);
/// intensity MLP Linear(1, 16), Linear(16, 2); thickness affine loc and log_scale.
const SHAPES: [&[usize]; 18] = [
    &[3136, 18],
    &[3136],
    &[64, 32, 4, 4],
    &[32],
    &[32, 1, 4, 4],
    &[1],
    &[32, 1, 4, 4],
    &[32],
    &[64, 32, 4, 4],
    &[64],
    &[32, 3138],
    &[32],
    &[16, 1],
    &[16],
    &[2, 16],
    &[2],
    &[1],
    &[1],
];

/// A store holding the B4 parameters and a gradient for each.
fn setup() -> (ParamStore, GradStore) {
    rng::set_seed(0);
    let store = ParamStore::new();
    let mut grads = GradStore::default();
    let mut gen = rng::from_seed(1);
    let mut total = 0;
    for (i, shape) in SHAPES.iter().enumerate() {
        let init = Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        };
        let p = store
            .var(&format!("p{i:02}"), *shape, init, DType::F32, &Device::Cpu)
            .expect("parameter");
        let g = rng::standard_normal(&mut gen, *shape, DType::F32, &Device::Cpu).expect("gradient");
        grads.insert(&p, g);
        total += p.elem_count();
    }
    assert_eq!(total, 226_789);
    (store, grads)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimizer step, B4 parameters (226,789 f32)");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let (store, grads) = setup();
    let mut adam = Adam::new(1e-3);
    group.bench_function("ppl Adam (fused, in place)", |b| {
        b.iter(|| adam.step(&store, &grads).expect("step"))
    });

    let mut clipped = ClippedAdam::new(1e-3).lrd(0.9999);
    group.bench_function("ppl ClippedAdam (fused, in place)", |b| {
        b.iter(|| clipped.step(&store, &grads).expect("step"))
    });

    let mut sgd = Sgd::new(1e-3).momentum(0.9);
    group.bench_function("ppl SGD momentum (fused, in place)", |b| {
        b.iter(|| sgd.step(&store, &grads).expect("step"))
    });

    let (store, grads) = setup();
    let vars: Vec<Var> = store.entries().into_iter().map(|(_, e)| e.var).collect();
    let params = candle_nn::ParamsAdamW {
        lr: 1e-3,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut adamw = candle_nn::AdamW::new(vars, params).expect("AdamW");
    group.bench_function("candle_nn AdamW (weight decay 0)", |b| {
        b.iter(|| adamw.step(&grads).expect("step"))
    });

    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
