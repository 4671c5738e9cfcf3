//! Our CPU convolution kernels against candle's, on the four conv layers of the B4 workload
//! (batch 64, f32): forward alone, and forward + backward (both gradients), per layer and for
//! the whole four-layer stack.
//!
//! `cargo bench -p ppl-core --bench conv` (threads from `RAYON_NUM_THREADS`).

use std::time::Duration;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use ppl_core::kernels::{conv2d, conv_transpose2d, Conv2dConfig, ConvTranspose2dConfig};
use ppl_core::rng;

const BATCH: usize = 64;

/// One B4 layer: 4×4 kernel, stride 2, padding 1.
#[derive(Clone, Copy)]
struct Layer {
    name: &'static str,
    transpose: bool,
    c_in: usize,
    c_out: usize,
    size: usize,
}

const LAYERS: [Layer; 4] = [
    Layer {
        name: "conv2d 1->32 28x28",
        transpose: false,
        c_in: 1,
        c_out: 32,
        size: 28,
    },
    Layer {
        name: "conv2d 32->64 14x14",
        transpose: false,
        c_in: 32,
        c_out: 64,
        size: 14,
    },
    Layer {
        name: "conv_t2d 64->32 7x7",
        transpose: true,
        c_in: 64,
        c_out: 32,
        size: 7,
    },
    Layer {
        name: "conv_t2d 32->1 14x14",
        transpose: true,
        c_in: 32,
        c_out: 1,
        size: 14,
    },
];

const CONV: Conv2dConfig = Conv2dConfig {
    padding: 1,
    stride: 2,
    dilation: 1,
    groups: 1,
};

const CONV_T: ConvTranspose2dConfig = ConvTranspose2dConfig {
    padding: 1,
    output_padding: 0,
    stride: 2,
    dilation: 1,
};

/// The loss `<y, up>` for a fixed `up`, whose backward hands `y` the dense gradient `up` in one
/// pass, so that the harness adds little to the convolutions it times. (`(y * up).sum_all()`
/// goes through candle's broadcast path, about 25 ns per element; a 1×1 matmul through
/// degenerate products; either would swamp the smaller layers.)
struct Dot(Tensor);

impl CustomOp1 for Dot {
    fn name(&self) -> &'static str {
        "bench-dot"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(y), Some((a, b))) = (s, l.contiguous_offsets()) else {
            candle_core::bail!("bench-dot takes a contiguous f32 tensor");
        };
        let up = self.0.flatten_all()?.to_vec1::<f32>()?;
        let dot: f32 = y[a..b].iter().zip(&up).map(|(y, u)| y * u).sum();
        Ok((CpuStorage::F32(vec![dot]), Shape::from(())))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad.to_scalar::<f32>()? as f64;
        Ok(Some(self.0.affine(g, 0.0)?))
    }
}

fn dot(y: &Tensor, up: &Tensor) -> Tensor {
    y.apply_op1(Dot(up.clone())).unwrap()
}

fn randn(r: &mut rng::Rng, shape: &[usize]) -> Tensor {
    rng::standard_normal(r, shape, DType::F32, &Device::Cpu).unwrap()
}

impl Layer {
    /// Input and weight, as variables.
    fn operands(&self, r: &mut rng::Rng) -> (Var, Var) {
        let x = randn(r, &[BATCH, self.c_in, self.size, self.size]);
        let w_shape = if self.transpose {
            [self.c_in, self.c_out, 4, 4]
        } else {
            [self.c_out, self.c_in, 4, 4]
        };
        let w = randn(r, &w_shape);
        (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap())
    }

    fn ours(&self, x: &Tensor, w: &Tensor) -> Tensor {
        if self.transpose {
            conv_transpose2d(x, w, &CONV_T).unwrap()
        } else {
            conv2d(x, w, &CONV).unwrap()
        }
    }

    fn candle(&self, x: &Tensor, w: &Tensor) -> Tensor {
        if self.transpose {
            x.conv_transpose2d(w, 1, 0, 2, 1).unwrap()
        } else {
            x.conv2d(w, 1, 2, 1, 1).unwrap()
        }
    }

    fn run(&self, ours: bool, x: &Tensor, w: &Tensor) -> Tensor {
        if ours {
            self.ours(x, w)
        } else {
            self.candle(x, w)
        }
    }
}

fn per_layer(c: &mut Criterion) {
    setup();
    ppl_core::runtime::pin_thread_count();
    let mut r = rng::from_seed(0);
    for layer in LAYERS {
        let (x, w) = layer.operands(&mut r);
        // The upstream gradient: dense, as the next layer sends.
        let up = randn(&mut r, layer.ours(&x, &w).dims());
        let mut g = c.benchmark_group(layer.name);
        for (label, ours) in [("ours", true), ("candle", false)] {
            g.bench_function(format!("fwd {label}"), |b| {
                b.iter(|| layer.run(ours, &x, &w))
            });
            g.bench_function(format!("fwd+bwd {label}"), |b| {
                b.iter(|| {
                    let y = layer.run(ours, &x, &w);
                    dot(&y, &up).backward().unwrap()
                })
            });
        }
        g.finish();
    }
}

/// The four layers chained as B4 chains them: the encoder's two convs on data images (no input
/// gradient), the decoder's two transposed convs on a latent feature map that needs one;
/// `relu` puts B4's activations between the layers (our fused kernel with ours, candle's
/// otherwise).
fn stack_step(ours: bool, relu: bool, s: &Stack) -> candle_core::backprop::GradStore {
    let act = |t: Tensor| match (relu, ours) {
        (false, _) => t,
        (true, true) => ppl_core::kernels::relu(&t).unwrap(),
        (true, false) => t.relu().unwrap(),
    };
    let h = act(LAYERS[0].run(ours, &s.image, &s.weights[0]));
    let enc = act(LAYERS[1].run(ours, &h, &s.weights[1]));
    let h = act(LAYERS[2].run(ours, &s.latent, &s.weights[2]));
    let dec = LAYERS[3].run(ours, &h, &s.weights[3]);
    let loss = (dot(&enc, &s.up_enc) + dot(&dec, &s.up_dec)).unwrap();
    loss.backward().unwrap()
}

/// Inputs of [`stack_step`].
struct Stack {
    image: Tensor,
    latent: Var,
    weights: Vec<Var>,
    up_enc: Tensor,
    up_dec: Tensor,
}

impl Stack {
    fn new() -> Self {
        let mut r = rng::from_seed(1);
        Stack {
            image: randn(&mut r, &[BATCH, 1, 28, 28]),
            latent: Var::from_tensor(&randn(&mut r, &[BATCH, 64, 7, 7])).unwrap(),
            weights: LAYERS.iter().map(|l| l.operands(&mut r).1).collect(),
            up_enc: randn(&mut r, &[BATCH, 64, 7, 7]),
            up_dec: randn(&mut r, &[BATCH, 1, 28, 28]),
        }
    }
}

fn stack(c: &mut Criterion) {
    setup();
    let s = Stack::new();
    let mut g = c.benchmark_group("B4 conv stack");
    for (label, relu) in [("", false), (" with relu", true)] {
        for (who, ours) in [("ours", true), ("candle", false)] {
            g.bench_function(format!("fwd+bwd{label} {who}"), |b| {
                b.iter(|| stack_step(ours, relu, &s))
            });
        }
    }
    g.finish();
}

/// `PPL_KEEP_FREED=1` measures with [`ppl_core::runtime::keep_freed_memory`] in force.
fn setup() {
    if std::env::var_os("PPL_KEEP_FREED").is_some() {
        assert!(ppl_core::runtime::keep_freed_memory());
    }
}

/// The activation alone, on the largest B4 feature map.
fn activation(c: &mut Criterion) {
    setup();
    let mut r = rng::from_seed(2);
    let x = Var::from_tensor(&randn(&mut r, &[BATCH, 32, 14, 14])).unwrap();
    let up = randn(&mut r, &[BATCH, 32, 14, 14]);
    let mut g = c.benchmark_group("relu 64x32x14x14");
    g.bench_function("fwd+bwd ours", |b| {
        b.iter(|| {
            dot(&ppl_core::kernels::relu(&x).unwrap(), &up)
                .backward()
                .unwrap()
        })
    });
    g.bench_function("fwd+bwd candle", |b| {
        b.iter(|| dot(&x.relu().unwrap(), &up).backward().unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = per_layer, stack, activation
}
criterion_main!(benches);
