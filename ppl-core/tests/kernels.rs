//! The CPU convolution kernels against candle's own `conv2d` / `conv_transpose2d`: forward
//! values and both gradients, on random shapes, strides, paddings, dilations, groups and
//! output paddings.

use candle_core::{DType, Device, Tensor, Var};
use ppl_core::kernels::{conv2d, conv_transpose2d, Conv2dConfig, ConvTranspose2dConfig};
use ppl_core::{rng, Error};
use proptest::prelude::*;

/// Largest absolute difference, relative to the reference's magnitude (at least 1).
fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
    let got = got.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    let want = want.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    let scale = want
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        .max(1.0);
    let diff = (got - want).unwrap().abs().unwrap().max(0).unwrap();
    diff.to_scalar::<f64>().unwrap() / scale
}

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F64 {
        1e-10
    } else {
        1e-5
    }
}

fn normal(r: &mut rng::Rng, shape: &[usize], dtype: DType) -> Tensor {
    rng::standard_normal(r, shape, dtype, &Device::Cpu).unwrap()
}

/// Forward value and the gradients of `sum(out * g)` with respect to `x` and `w`.
fn value_and_grads(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    f: impl Fn(&Tensor, &Tensor) -> Tensor,
) -> (Tensor, Tensor, Tensor) {
    let xv = Var::from_tensor(x).unwrap();
    let wv = Var::from_tensor(w).unwrap();
    let out = f(xv.as_tensor(), wv.as_tensor());
    let grads = (&out * g).unwrap().sum_all().unwrap().backward().unwrap();
    let gx = grads.get(xv.as_tensor()).unwrap().clone();
    let gw = grads.get(wv.as_tensor()).unwrap().clone();
    (out, gx, gw)
}

#[derive(Debug, Clone)]
struct ConvCase {
    batch: usize,
    groups: usize,
    c_in_g: usize,
    c_out_g: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
    dilation: usize,
    extra: (usize, usize),
    seed: u64,
}

impl ConvCase {
    /// Input height and width: the smallest that fits the dilated kernel, plus `extra`.
    fn input_hw(&self) -> (usize, usize) {
        let fit = |k: usize, e: usize| {
            let span = self.dilation * (k - 1) + 1;
            span.saturating_sub(2 * self.padding).max(1) + e
        };
        (
            fit(self.kernel.0, self.extra.0),
            fit(self.kernel.1, self.extra.1),
        )
    }
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        1usize..=3,
        1usize..=3,
        1usize..=3,
        1usize..=3,
        (1usize..=4, 1usize..=4),
        1usize..=3,
        0usize..=2,
        1usize..=2,
        (0usize..=5, 0usize..=5),
        any::<u64>(),
    )
        .prop_map(
            |(batch, groups, c_in_g, c_out_g, kernel, stride, padding, dilation, extra, seed)| {
                ConvCase {
                    batch,
                    groups,
                    c_in_g,
                    c_out_g,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    extra,
                    seed,
                }
            },
        )
}

fn check_conv2d(c: &ConvCase, dtype: DType) {
    let mut r = rng::from_seed(c.seed);
    let (h, w) = c.input_hw();
    let (c_in, c_out) = (c.c_in_g * c.groups, c.c_out_g * c.groups);
    let x = normal(&mut r, &[c.batch, c_in, h, w], dtype);
    let wt = normal(&mut r, &[c_out, c.c_in_g, c.kernel.0, c.kernel.1], dtype);
    let cfg = Conv2dConfig {
        padding: c.padding,
        stride: c.stride,
        dilation: c.dilation,
        groups: c.groups,
    };
    let out_shape = conv2d(&x, &wt, &cfg).unwrap().dims().to_vec();
    let g = normal(&mut r, &out_shape, dtype);
    let (y, gx, gw) = value_and_grads(&x, &wt, &g, |x, w| conv2d(x, w, &cfg).unwrap());

    // candle's conv2d backward derives the input gradient's output padding from the height
    // alone, and underflows when the padding exceeds what the transpose can remove. So the
    // reference pads explicitly (zero rows and columns cost nothing in the result), adding at
    // the bottom and right until both axes leave the same remainder (stride − 1), which keeps
    // the output unchanged and gives candle's backward consistent shapes.
    let rem = |len: usize, k: usize| (len + 2 * c.padding - c.dilation * (k - 1) - 1) % c.stride;
    let pad_h = c.stride - 1 - rem(h, c.kernel.0);
    let pad_w = c.stride - 1 - rem(w, c.kernel.1);
    let (y_ref, gx_ref, gw_ref) = value_and_grads(&x, &wt, &g, |x, w| {
        x.pad_with_zeros(2, c.padding, c.padding + pad_h)
            .unwrap()
            .pad_with_zeros(3, c.padding, c.padding + pad_w)
            .unwrap()
            .conv2d(w, 0, c.stride, c.dilation, c.groups)
            .unwrap()
    });
    let t = tol(dtype);
    assert!(rel_err(&y, &y_ref) < t, "forward {c:?}");
    assert!(rel_err(&gx, &gx_ref) < t, "grad x {c:?}");
    assert!(rel_err(&gw, &gw_ref) < t, "grad w {c:?}");
}

#[derive(Debug, Clone)]
struct TransposeCase {
    batch: usize,
    c_in: usize,
    c_out: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
    output_padding: usize,
    dilation: usize,
    hw: (usize, usize),
    seed: u64,
}

fn transpose_case() -> impl Strategy<Value = TransposeCase> {
    (
        1usize..=3,
        1usize..=4,
        1usize..=4,
        (1usize..=4, 1usize..=4),
        1usize..=3,
        0usize..=2,
        0usize..=2,
        1usize..=2,
        (1usize..=5, 1usize..=5),
        any::<u64>(),
    )
        .prop_map(
            |(batch, c_in, c_out, kernel, stride, padding, op, dilation, hw, seed)| {
                TransposeCase {
                    batch,
                    c_in,
                    c_out,
                    kernel,
                    stride,
                    padding,
                    // candle's backward needs output_padding < stride (torch allows < dilation
                    // too; that case is checked by `transpose_output_padding_up_to_dilation`).
                    output_padding: op % stride,
                    dilation,
                    hw,
                    seed,
                }
            },
        )
        .prop_filter("output must be non-empty", |c| {
            let full = |len: usize, k: usize| {
                (len - 1) * c.stride + c.dilation * (k - 1) + c.output_padding + 1
            };
            full(c.hw.0, c.kernel.0) > 2 * c.padding && full(c.hw.1, c.kernel.1) > 2 * c.padding
        })
}

fn check_conv_transpose2d(c: &TransposeCase, dtype: DType) {
    let mut r = rng::from_seed(c.seed);
    let x = normal(&mut r, &[c.batch, c.c_in, c.hw.0, c.hw.1], dtype);
    let wt = normal(&mut r, &[c.c_in, c.c_out, c.kernel.0, c.kernel.1], dtype);
    let cfg = ConvTranspose2dConfig {
        padding: c.padding,
        output_padding: c.output_padding,
        stride: c.stride,
        dilation: c.dilation,
    };
    let out_shape = conv_transpose2d(&x, &wt, &cfg).unwrap().dims().to_vec();
    let g = normal(&mut r, &out_shape, dtype);
    let (y, gx, gw) = value_and_grads(&x, &wt, &g, |x, w| conv_transpose2d(x, w, &cfg).unwrap());
    let (y_ref, gx_ref, gw_ref) = value_and_grads(&x, &wt, &g, |x, w| {
        x.conv_transpose2d(w, c.padding, c.output_padding, c.stride, c.dilation)
            .unwrap()
    });
    let t = tol(dtype);
    assert!(rel_err(&y, &y_ref) < t, "forward {c:?}");
    assert!(rel_err(&gx, &gx_ref) < t, "grad x {c:?}");
    assert!(rel_err(&gw, &gw_ref) < t, "grad w {c:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn conv2d_f32_matches_candle(c in conv_case()) {
        check_conv2d(&c, DType::F32);
    }

    #[test]
    fn conv2d_f64_matches_candle(c in conv_case()) {
        check_conv2d(&c, DType::F64);
    }

    #[test]
    fn conv_transpose2d_f32_matches_candle(c in transpose_case()) {
        check_conv_transpose2d(&c, DType::F32);
    }

    #[test]
    fn conv_transpose2d_f64_matches_candle(c in transpose_case()) {
        check_conv_transpose2d(&c, DType::F64);
    }
}

#[test]
fn batch_one_odd_sizes_and_b4_shapes_match_candle() {
    // The B4 layers at batch 1 (the products then run on the pool instead of over the batch).
    check_conv2d(
        &ConvCase {
            batch: 1,
            groups: 1,
            c_in_g: 32,
            c_out_g: 64,
            kernel: (4, 4),
            stride: 2,
            padding: 1,
            dilation: 1,
            extra: (12, 12),
            seed: 1,
        },
        DType::F32,
    );
    check_conv_transpose2d(
        &TransposeCase {
            batch: 1,
            c_in: 64,
            c_out: 32,
            kernel: (4, 4),
            stride: 2,
            padding: 1,
            output_padding: 0,
            dilation: 1,
            hw: (7, 7),
            seed: 2,
        },
        DType::F32,
    );
    // Odd, non-square sizes with a batch larger than the thread pool's task count.
    check_conv2d(
        &ConvCase {
            batch: 37,
            groups: 2,
            c_in_g: 3,
            c_out_g: 5,
            kernel: (3, 2),
            stride: 2,
            padding: 1,
            dilation: 2,
            extra: (6, 3),
            seed: 3,
        },
        DType::F64,
    );
    check_conv_transpose2d(
        &TransposeCase {
            batch: 37,
            c_in: 3,
            c_out: 5,
            kernel: (3, 2),
            stride: 3,
            padding: 1,
            output_padding: 2,
            dilation: 1,
            hw: (5, 3),
            seed: 4,
        },
        DType::F64,
    );
}

#[test]
fn transpose_output_padding_up_to_dilation() {
    // torch allows output_padding < dilation even when it is >= stride; candle's forward handles
    // it but its backward does not, so the gradients are checked through linearity instead:
    // L = <out, g> equals <x, ∂L/∂x> and <w, ∂L/∂w>.
    let mut r = rng::from_seed(7);
    let x = normal(&mut r, &[2, 3, 4, 5], DType::F64);
    let w = normal(&mut r, &[3, 2, 3, 3], DType::F64);
    let cfg = ConvTranspose2dConfig {
        padding: 1,
        output_padding: 2,
        stride: 1,
        dilation: 3,
    };
    let y = conv_transpose2d(&x, &w, &cfg).unwrap();
    let y_ref = x.conv_transpose2d(&w, 1, 2, 1, 3).unwrap();
    assert!(rel_err(&y, &y_ref) < 1e-10);
    let g = normal(&mut r, y.dims(), DType::F64);
    let (_, gx, gw) = value_and_grads(&x, &w, &g, |x, w| conv_transpose2d(x, w, &cfg).unwrap());
    let dot = |a: &Tensor, b: &Tensor| {
        (a * b)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let loss = dot(&y, &g);
    assert!((dot(&x, &gx) - loss).abs() < 1e-10 * loss.abs().max(1.0));
    assert!((dot(&w, &gw) - loss).abs() < 1e-10 * loss.abs().max(1.0));
}

#[test]
fn non_contiguous_inputs_and_data_inputs() {
    let mut r = rng::from_seed(11);
    // A transposed view as input: made contiguous before the kernel reads it.
    let x = normal(&mut r, &[2, 6, 5, 3], DType::F32)
        .transpose(2, 3)
        .unwrap();
    let w = normal(&mut r, &[4, 3, 2, 2], DType::F32);
    let cfg = Conv2dConfig {
        groups: 2,
        padding: 1,
        ..Default::default()
    };
    let y = conv2d(&x, &w, &cfg).unwrap();
    let y_ref = x.conv2d(&w, 1, 1, 1, 2).unwrap();
    assert!(rel_err(&y, &y_ref) < 1e-5);
    // An input that depends on no variable gets no gradient; the weight's is still right.
    let wv = Var::from_tensor(&w).unwrap();
    let grads = conv2d(&x, wv.as_tensor(), &cfg)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&x).is_none());
    let grads_ref = x
        .conv2d(wv.as_tensor(), 1, 1, 1, 2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gw = grads.get(wv.as_tensor()).unwrap();
    assert!(rel_err(gw, grads_ref.get(wv.as_tensor()).unwrap()) < 1e-5);
}

#[test]
fn other_dtypes_fall_back_to_candle() {
    let mut r = rng::from_seed(13);
    let x = normal(&mut r, &[2, 2, 5, 5], DType::F32)
        .to_dtype(DType::F16)
        .unwrap();
    let w = normal(&mut r, &[2, 3, 3, 3], DType::F32)
        .to_dtype(DType::F16)
        .unwrap();
    let cfg = ConvTranspose2dConfig {
        stride: 2,
        ..Default::default()
    };
    let y = conv_transpose2d(&x, &w, &cfg).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    let y_ref = x.conv_transpose2d(&w, 0, 0, 2, 1).unwrap();
    assert_eq!(rel_err(&y, &y_ref), 0.0);
    let wc = w.transpose(0, 1).unwrap();
    let y = conv2d(&x, &wc, &Conv2dConfig::default()).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    assert_eq!(rel_err(&y, &x.conv2d(&wc, 0, 1, 1, 1).unwrap()), 0.0);
}

fn expect_usage(r: ppl_core::Result<Tensor>, needle: &str) {
    match r {
        Err(Error::Usage(msg)) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
        other => panic!("expected a usage error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let dev = Device::Cpu;
    let t = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &dev).unwrap();
    let c = Conv2dConfig::default();
    // Wrong rank, naming the shape.
    expect_usage(conv2d(&t(&[1, 4, 4]), &t(&[1, 1, 2, 2]), &c), "[1, 4, 4]");
    expect_usage(conv2d(&t(&[1, 1, 4, 4]), &t(&[1, 2, 2]), &c), "[1, 2, 2]");
    expect_usage(
        conv_transpose2d(&t(&[4, 4]), &t(&[1, 1, 2, 2]), &Default::default()),
        "[4, 4]",
    );
    // Channel mismatch: the expected weight shape is named.
    match conv2d(&t(&[2, 3, 5, 5]), &t(&[4, 2, 3, 3]), &c) {
        Err(Error::ShapeMismatch { expected, got, .. }) => {
            assert_eq!(expected, vec![4, 3, 3, 3]);
            assert_eq!(got, vec![4, 2, 3, 3]);
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    match conv_transpose2d(&t(&[2, 3, 5, 5]), &t(&[2, 4, 3, 3]), &Default::default()) {
        Err(Error::ShapeMismatch { expected, got, .. }) => {
            assert_eq!(expected, vec![3, 4, 3, 3]);
            assert_eq!(got, vec![2, 4, 3, 3]);
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    // Groups that do not divide the channels, and zero groups.
    let grouped = |groups| Conv2dConfig { groups, ..c };
    expect_usage(
        conv2d(&t(&[1, 6, 5, 5]), &t(&[4, 2, 3, 3]), &grouped(4)),
        "groups (4)",
    );
    expect_usage(
        conv2d(&t(&[1, 6, 5, 5]), &t(&[5, 2, 3, 3]), &grouped(3)),
        "groups (3)",
    );
    expect_usage(
        conv2d(&t(&[1, 6, 5, 5]), &t(&[6, 2, 3, 3]), &grouped(0)),
        "groups (0)",
    );
    // Kernel larger than the padded input; zero stride; bad output padding; empty output.
    expect_usage(
        conv2d(&t(&[1, 1, 2, 2]), &t(&[1, 1, 3, 3]), &c),
        "does not fit",
    );
    expect_usage(
        conv2d(
            &t(&[1, 1, 4, 4]),
            &t(&[1, 1, 3, 3]),
            &Conv2dConfig { stride: 0, ..c },
        ),
        "stride",
    );
    expect_usage(
        conv_transpose2d(
            &t(&[1, 1, 4, 4]),
            &t(&[1, 1, 3, 3]),
            &ConvTranspose2dConfig {
                stride: 2,
                output_padding: 2,
                ..Default::default()
            },
        ),
        "output_padding",
    );
    expect_usage(
        conv_transpose2d(
            &t(&[1, 1, 1, 1]),
            &t(&[1, 1, 1, 1]),
            &ConvTranspose2dConfig {
                padding: 1,
                ..Default::default()
            },
        ),
        "removes the whole output",
    );
    // Mixed dtypes.
    let w64 = Tensor::zeros((1, 1, 2, 2), DType::F64, &dev).unwrap();
    expect_usage(conv2d(&t(&[1, 1, 4, 4]), &w64, &c), "F64");
}

/// The fused (leaky) ReLU against candle's ops: values and gradients, on sizes
/// below and above the parallel chunk, in both dtypes.
#[test]
fn fused_relu_matches_candle() {
    use ppl_core::kernels::{leaky_relu, relu};
    let mut r = rng::from_seed(11);
    for dtype in [DType::F32, DType::F64] {
        for n in [7usize, 100_003] {
            for slope in [0.0, 0.01, 0.3, 1.0] {
                let x = Var::from_tensor(&normal(&mut r, &[n], dtype)).unwrap();
                let g = normal(&mut r, &[n], dtype);
                let ours = if slope == 0.0 {
                    relu(&x).unwrap()
                } else {
                    leaky_relu(&x, slope).unwrap()
                };
                let theirs = x.maximum(&x.affine(slope, 0.0).unwrap()).unwrap();
                assert_eq!(rel_err(&ours, &theirs), 0.0, "forward, slope {slope}");
                let grad = |y: &Tensor| {
                    let gs = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                    gs.get(&x).unwrap().clone()
                };
                assert_eq!(
                    rel_err(&grad(&ours), &grad(&theirs)),
                    0.0,
                    "grad, slope {slope}"
                );
            }
        }
    }
    // A non-contiguous input goes through the same kernel.
    let x = normal(&mut r, &[3, 5], DType::F32).t().unwrap();
    assert_eq!(rel_err(&relu(&x).unwrap(), &x.relu().unwrap()), 0.0);
    assert!(matches!(
        leaky_relu(&x, 1.5),
        Err(Error::InvalidParameter { .. })
    ));
}

/// The per-channel bias add against candle's `broadcast_add`: value and both gradients, for a
/// feature map (channel dim 1) and a feature matrix (last dim), in both dtypes.
#[test]
fn bias_add_matches_candle() {
    use ppl_core::kernels::add_bias;
    let mut r = rng::from_seed(12);
    for dtype in [DType::F32, DType::F64] {
        for (shape, dim) in [
            (vec![4usize, 3, 5, 6], 1usize),
            (vec![7, 9], 1),
            (vec![2, 3, 4], 2),
        ] {
            let x = Var::from_tensor(&normal(&mut r, &shape, dtype)).unwrap();
            let b = Var::from_tensor(&normal(&mut r, &[shape[dim]], dtype)).unwrap();
            let g = normal(&mut r, &shape, dtype);
            let mut bshape = vec![1; shape.len()];
            bshape[dim] = shape[dim];
            let ours = add_bias(&x, &b, dim).unwrap();
            let theirs = x.broadcast_add(&b.reshape(bshape).unwrap()).unwrap();
            assert_eq!(rel_err(&ours, &theirs), 0.0);
            let grads = |y: &Tensor| {
                let gs = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                (gs.get(&x).unwrap().clone(), gs.get(&b).unwrap().clone())
            };
            let ((gx, gb), (hx, hb)) = (grads(&ours), grads(&theirs));
            assert_eq!(rel_err(&gx, &hx), 0.0);
            assert!(rel_err(&gb, &hb) < tol(dtype), "{shape:?} {dtype:?}");
        }
    }
    let x = normal(&mut r, &[2, 3], DType::F32);
    let wrong = normal(&mut r, &[2], DType::F32);
    assert!(matches!(
        add_bias(&x, &wrong, 1),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        add_bias(&x, &wrong, 5),
        Err(Error::ShapeMismatch { .. })
    ));
}
