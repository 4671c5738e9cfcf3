//! Neural blocks: layers against host computations, batch-norm statistics in both modes,
//! encoder and decoder shapes in f32 and f64, heads, seeding, and typed errors.

use candle_core::{DType, Device, Tensor};
use ppl_core::kernels::{Conv2dConfig, ConvTranspose2dConfig};
use ppl_core::nn::{
    Activation, BatchNorm, BatchNormConfig, Conv2d, ConvDecoder, ConvDecoderConfig, ConvEncoder,
    ConvEncoderConfig, ConvTranspose2d, Linear, LocScaleHead, LogitsHead, Mlp, ScaleLink,
};
use ppl_core::params::ParamStore;
use ppl_core::{rng, Error};

type R<T = ()> = ppl_core::Result<T>;

const CPU: Device = Device::Cpu;

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("host read")
}

fn normal(shape: &[usize], dtype: DType) -> Tensor {
    rng::with_rng(|r| rng::standard_normal(r, shape, dtype, &CPU)).expect("draw")
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn linear_and_mlp_match_host_arithmetic() -> R {
    rng::set_seed(1);
    let store = ParamStore::new();
    let vb = store.var_builder(DType::F64, &CPU);
    let lin = Linear::new(vb.pp("lin"), 3, 2)?;
    let (w, b) = (values(lin.weight()), values(lin.bias().expect("bias")));
    // torch's initialisation bound 1/√3.
    assert!(w.iter().chain(&b).all(|v| v.abs() <= 1.0 / 3f64.sqrt()));
    let x = normal(&[2, 4, 3], DType::F64);
    let y = lin.forward(&x)?;
    assert_eq!(y.dims(), &[2, 4, 2]);
    let xv = values(&x);
    let want: Vec<f64> = (0..8)
        .flat_map(|r| {
            let xv = &xv;
            let (w, b) = (&w, &b);
            (0..2).map(move |o| b[o] + (0..3).map(|k| w[o * 3 + k] * xv[r * 3 + k]).sum::<f64>())
        })
        .collect();
    close(&values(&y), &want, 1e-12, "linear");
    // A single vector works too.
    assert_eq!(lin.forward(&x.get(0)?.get(0)?)?.dims(), &[2]);

    let mlp = Mlp::new(vb.pp("mlp"), &[3, 5, 2], Activation::Tanh)?;
    let manual = mlp.layers()[1].forward(&mlp.layers()[0].forward(&x)?.tanh()?)?;
    close(&values(&mlp.forward(&x)?), &values(&manual), 1e-15, "mlp");
    assert_eq!((mlp.in_dim(), mlp.out_dim()), (3, 2));
    assert_eq!(
        store.names(),
        [
            "lin.bias",
            "lin.weight",
            "mlp.layers.0.bias",
            "mlp.layers.0.weight",
            "mlp.layers.1.bias",
            "mlp.layers.1.weight"
        ]
    );
    let zero = Mlp::zero_last(vb.pp("z"), &[3, 4, 2], Activation::Relu)?;
    assert!(values(&zero.forward(&x)?).iter().all(|v| *v == 0.0));
    Ok(())
}

#[test]
fn activations_have_their_closed_forms() -> R {
    let x = Tensor::new(&[-2.0f64, -0.5, 0.0, 1.5], &CPU)?;
    let f = |a: Activation| values(&a.apply(&x).expect("apply"));
    assert_eq!(f(Activation::Relu), vec![0.0, 0.0, 0.0, 1.5]);
    assert_eq!(f(Activation::LeakyRelu(0.2)), vec![-0.4, -0.1, 0.0, 1.5]);
    assert_eq!(f(Activation::Identity), values(&x));
    let xs = values(&x);
    close(
        &f(Activation::Tanh),
        &xs.iter().map(|v| v.tanh()).collect::<Vec<_>>(),
        1e-15,
        "tanh",
    );
    close(
        &f(Activation::Sigmoid),
        &xs.iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect::<Vec<_>>(),
        1e-15,
        "sigmoid",
    );
    close(
        &f(Activation::Softplus),
        &xs.iter().map(|v| v.exp().ln_1p()).collect::<Vec<_>>(),
        1e-15,
        "softplus",
    );
    assert!(matches!(
        Activation::LeakyRelu(1.5).apply(&x),
        Err(Error::InvalidParameter { .. })
    ));
    Ok(())
}

/// A direct 2-d convolution on the host: `(C_in, H, W)` input, `(C_out, C_in, k, k)` weight.
fn host_conv(
    x: &[f64],
    (c, h, w): (usize, usize, usize),
    wt: &[f64],
    co: usize,
    k: usize,
    pad: usize,
    stride: usize,
) -> Vec<f64> {
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (w + 2 * pad - k) / stride + 1;
    let mut out = vec![0.0; co * ho * wo];
    for o in 0..co {
        for i in 0..ho {
            for j in 0..wo {
                let mut s = 0.0;
                for ci in 0..c {
                    for a in 0..k {
                        for b in 0..k {
                            let (r, q) = (
                                (i * stride + a) as isize - pad as isize,
                                (j * stride + b) as isize - pad as isize,
                            );
                            if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                s += wt[((o * c + ci) * k + a) * k + b]
                                    * x[(ci * h + r as usize) * w + q as usize];
                            }
                        }
                    }
                }
                out[(o * ho + i) * wo + j] = s;
            }
        }
    }
    out
}

#[test]
fn conv_layers_add_their_bias_to_the_kernels() -> R {
    rng::set_seed(2);
    let store = ParamStore::new();
    let vb = store.var_builder(DType::F64, &CPU);
    let cfg = Conv2dConfig {
        padding: 1,
        stride: 2,
        ..Default::default()
    };
    let conv = Conv2d::new(vb.pp("c"), 2, 3, 3, cfg)?;
    // Leading dims (2, 1) around images of 2 × 5 × 5.
    let x = normal(&[2, 1, 2, 5, 5], DType::F64);
    let y = conv.forward(&x)?;
    assert_eq!(y.dims(), &[2, 1, 3, 3, 3]);
    let (wt, b) = (values(conv.weight()), values(conv.bias()));
    let xv = values(&x);
    for n in 0..2 {
        let mut want = host_conv(&xv[n * 50..(n + 1) * 50], (2, 5, 5), &wt, 3, 3, 1, 2);
        for (idx, v) in want.iter_mut().enumerate() {
            *v += b[idx / 9];
        }
        close(&values(&y)[n * 27..(n + 1) * 27], &want, 1e-12, "conv2d");
    }
    let tcfg = ConvTranspose2dConfig {
        padding: 1,
        stride: 2,
        ..Default::default()
    };
    let deconv = ConvTranspose2d::new(vb.pp("d"), 3, 2, 4, tcfg)?;
    let z = deconv.forward(&y)?;
    assert_eq!(z.dims(), &[2, 1, 2, 6, 6]);
    // With a zero input only the bias is left.
    let zero = deconv.forward(&y.zeros_like()?)?;
    let bias = values(deconv.bias());
    for (i, v) in values(&zero).iter().enumerate() {
        assert_eq!(*v, bias[(i / 36) % 2]);
    }
    Ok(())
}

#[test]
fn batch_norm_uses_batch_statistics_in_training_and_running_ones_in_evaluation() -> R {
    for dtype in [DType::F32, DType::F64] {
        rng::set_seed(3);
        let store = ParamStore::new();
        let vb = store.var_builder(dtype, &CPU);
        let bn = BatchNorm::new(vb.pp("bn"), 2, BatchNormConfig::default())?;
        let x = normal(&[4, 2, 3, 3], dtype).affine(2.0, 1.0)?;
        let y = bn.forward_t(&x, true)?;
        let (xv, yv) = (values(&x), values(&y));
        for c in 0..2 {
            let pick = |v: &[f64]| -> Vec<f64> {
                (0..4)
                    .flat_map(|n| v[(n * 2 + c) * 9..(n * 2 + c + 1) * 9].to_vec())
                    .collect()
            };
            let (xs, ys) = (pick(&xv), pick(&yv));
            let m = xs.iter().sum::<f64>() / 36.0;
            let var = xs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 36.0;
            let ym = ys.iter().sum::<f64>() / 36.0;
            let yvar = ys.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / 36.0;
            let tol = if dtype == DType::F32 { 1e-5 } else { 1e-10 };
            assert!(ym.abs() < tol, "{dtype:?} channel {c}: mean {ym}");
            // eps = 1e-5 shrinks the variance by var / (var + eps).
            assert!(
                (yvar - var / (var + 1e-5)).abs() < tol,
                "{dtype:?} channel {c}: variance {yvar}"
            );
            // torch's update: momentum 0.1, the unbiased variance.
            let rm = values(bn.running_mean())[c];
            let rv = values(bn.running_var())[c];
            assert!((rm - 0.1 * m).abs() < tol, "running mean {rm}");
            assert!(
                (rv - (0.9 + 0.1 * var * 36.0 / 35.0)).abs() < tol,
                "running var {rv}"
            );
            // The statistics are store entries (saved with the weights).
            let stored = store.get("bn.running_mean")?.expect("stored");
            assert!((values(&stored)[c] - rm).abs() == 0.0);
            // Evaluation normalises by the running statistics.
            let e = values(&bn.forward_t(&x, false)?);
            let idx = c * 9 + 4;
            let want = (xv[idx] - rm) / (rv + 1e-5).sqrt();
            assert!(
                (e[idx] - want).abs() < tol * 10.0,
                "eval {} vs {want}",
                e[idx]
            );
        }
        assert!(matches!(
            bn.forward_t(&normal(&[4, 3, 2, 2], dtype), true),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            bn.forward_t(&normal(&[1, 2], dtype), true),
            Err(Error::Usage(_))
        ));
    }
    Ok(())
}

#[test]
fn encoder_and_decoder_shapes_in_both_dtypes() -> R {
    for dtype in [DType::F32, DType::F64] {
        rng::set_seed(4);
        let store = ParamStore::new();
        let vb = store.var_builder(dtype, &CPU);
        let enc = ConvEncoder::new(
            vb.pp("enc"),
            ConvEncoderConfig::new(1, (14, 14), vec![8, 16]),
        )?;
        assert_eq!(enc.feature_shape(), (16, 3, 3));
        let x = normal(&[3, 2, 1, 14, 14], dtype);
        let h = enc.forward_t(&x, true)?;
        assert_eq!((h.dims(), h.dtype()), (&[3, 2, 144][..], dtype));
        let head = LocScaleHead::new(vb.pp("q"), 144, 4, ScaleLink::Softplus)?;
        let (loc, scale) = head.forward(&h)?;
        assert_eq!((loc.dims(), scale.dims()), (&[3, 2, 4][..], &[3, 2, 4][..]));
        assert!(values(&scale).iter().all(|s| *s > 0.0));
        let dec = ConvDecoder::new(
            vb.pp("dec"),
            ConvDecoderConfig::new(6, 8, (7, 7), vec![], 1),
        )?;
        assert_eq!(dec.output_shape(), (1, 14, 14));
        let z = normal(&[3, 2, 6], dtype);
        let img = dec.forward_t(&z, false)?;
        assert_eq!((img.dims(), img.dtype()), (&[3, 2, 1, 14, 14][..], dtype));
        let deep = ConvDecoder::new(
            vb.pp("deep"),
            ConvDecoderConfig::new(6, 8, (2, 2), vec![8, 4], 3),
        )?;
        assert_eq!(deep.output_shape(), (3, 16, 16));
        assert_eq!(deep.forward_t(&z, true)?.dims(), &[3, 2, 3, 16, 16]);
        assert_eq!(
            LogitsHead::new(vb.pp("cls"), 6, 10)?.forward(&z)?.dims(),
            &[3, 2, 10]
        );
        // Wrong image sizes are errors naming the shapes.
        assert!(matches!(
            enc.forward_t(&normal(&[2, 1, 12, 12], dtype), true),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    Ok(())
}

#[test]
fn heads_apply_their_scale_links() -> R {
    rng::set_seed(5);
    let store = ParamStore::new();
    let vb = store.var_builder(DType::F64, &CPU);
    let h = normal(&[4, 3], DType::F64);
    for link in [ScaleLink::Softplus, ScaleLink::Exp] {
        let name = format!("{link:?}");
        let head = LocScaleHead::new(vb.pp(&name), 3, 2, link)?.with_min_scale(0.01)?;
        let (_, scale) = head.forward(&h)?;
        // The raw scale is the second half of one linear layer.
        let w = store.get(&format!("{name}.weight"))?.expect("weight");
        let b = store.get(&format!("{name}.bias"))?.expect("bias");
        let raw = h.matmul(&w.t()?)?.broadcast_add(&b)?.narrow(1, 2, 2)?;
        let want: Vec<f64> = values(&raw)
            .iter()
            .map(|r| {
                0.01 + if link == ScaleLink::Exp {
                    r.exp()
                } else {
                    r.exp().ln_1p()
                }
            })
            .collect();
        close(&values(&scale), &want, 1e-12, &name);
    }
    assert!(LocScaleHead::new(vb.pp("x"), 3, 2, ScaleLink::Exp)?
        .with_min_scale(-1.0)
        .is_err());
    Ok(())
}

#[test]
fn blocks_are_seeded_and_shared_through_the_store() -> R {
    let build = |seed| -> R<(ParamStore, Vec<f64>)> {
        rng::set_seed(seed);
        let store = ParamStore::new();
        let vb = store.var_builder(DType::F32, &CPU);
        let enc = ConvEncoder::new(vb.pp("e"), ConvEncoderConfig::new(1, (8, 8), vec![2]))?;
        let _ = enc;
        let w = store.get("e.conv0.weight")?.expect("weight");
        Ok((store, values(&w)))
    };
    let (store, a) = build(7)?;
    let (_, b) = build(7)?;
    let (_, c) = build(8)?;
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Built again from the same store, a block reuses the stored weights.
    let again = Conv2d::new(
        store.var_builder(DType::F32, &CPU).pp("e").pp("conv0"),
        1,
        2,
        4,
        Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        },
    )?;
    assert_eq!(values(again.weight()), a);
    assert!(Linear::new(store.var_builder(DType::F32, &CPU), 0, 2).is_err());
    assert!(Mlp::new(store.var_builder(DType::F32, &CPU), &[3], Activation::Relu).is_err());
    let lin = Linear::new(store.var_builder(DType::F32, &CPU).pp("l"), 3, 2)?;
    assert!(matches!(
        lin.forward(&Tensor::zeros((2, 4), DType::F32, &CPU)?),
        Err(Error::ShapeMismatch { .. })
    ));
    Ok(())
}
