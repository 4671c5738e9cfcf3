//! A multi-scale RealNVP image flow, optionally conditioned on a context.

use std::sync::Arc;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::{
    ActNorm, AffineCoupling, ChannelSubset, ComposeTransform, ConditionalTransform, CouplingMask,
    InvertibleConv1x1, SqueezeTransform, TransformExt, TransformRef,
};
use crate::error::{Error, Result};

/// The shape of a [`RealNvp`] flow.
#[derive(Debug, Clone, PartialEq)]
pub struct RealNvpConfig {
    /// Channels of the images.
    pub channels: usize,
    /// Height and width of the images (divisible by `2^scales`).
    pub image: (usize, usize),
    /// Features of the context (0 for an unconditional flow).
    pub context_dim: usize,
    /// How many times the flow squeezes and factors out half of its channels.
    pub scales: usize,
    /// Coupling layers per stage (the last stage has one more, as in RealNVP).
    pub couplings: usize,
    /// Hidden channels of each coupling network.
    pub hidden: usize,
    /// An [`ActNorm`] before every coupling layer.
    pub actnorm: bool,
    /// An [`InvertibleConv1x1`] before every channel-wise coupling layer (otherwise the halves
    /// alternate).
    pub conv1x1: bool,
}

impl RealNvpConfig {
    /// One scale, three couplings per stage, 32 hidden channels, ActNorm and 1×1 convolutions.
    pub fn new(channels: usize, image: (usize, usize), context_dim: usize) -> Self {
        RealNvpConfig {
            channels,
            image,
            context_dim,
            scales: 1,
            couplings: 3,
            hidden: 32,
            actnorm: true,
            conv1x1: true,
        }
    }
}

/// One coupling step: optional normalisation and channel mixing, then the coupling.
#[derive(Debug, Clone)]
struct Step {
    actnorm: Option<ActNorm>,
    mix: Option<InvertibleConv1x1>,
    coupling: AffineCoupling,
}

/// The layers of one scale; `next` is the stage that the kept half of the channels enters.
#[derive(Debug, Clone)]
struct Stage {
    checker: Vec<Step>,
    channel: Vec<Step>,
    next: Option<Box<Stage>>,
    channels: usize,
}

/// A multi-scale RealNVP flow on images `(..., C, H, W)` (Dinh et al. 2017) with Glow's
/// ActNorm and 1×1 convolutions, conditioned on a context vector per image: the image
/// mechanism of a deep SCM, `image = f_(t, i)(u)`.
///
/// In the generative direction each scale runs checkerboard couplings at full resolution,
/// squeezes to `(4C, H/2, W/2)`, runs channel-wise couplings, passes half of the channels on
/// to the next scale (the other half leaves the flow) and unsqueezes; the last scale runs
/// checkerboard couplings only. The whole flow maps `(C, H, W)` to `(C, H, W)` (event dim 3),
/// so a standard Normal of that shape is its base. Parameters live under the builder's
/// prefix (`scale0.checker1.coupling.net.conv0.weight`, ...). [`ConditionalTransform::condition`]
/// gives the flow for a context `(..., context_dim)`; an unconditional flow is built by
/// [`transform`](Self::transform).
///
/// ```
/// use ppl_core::dist::{ConditionalTransformedDistribution, Distribution, DistExt, Normal};
/// use ppl_core::params::ParamStore;
/// use ppl_core::transforms::{LogitTransform, RealNvp, RealNvpConfig, TransformExt, TransformStep};
/// use ppl_core::candle_core::{DType, Device, Tensor};
///
/// ppl_core::rng::set_seed(0);
/// let store = ParamStore::new();
/// let vb = store.var_builder(DType::F32, &Device::Cpu);
/// // Images of 1 × 8 × 8 given (thickness, intensity).
/// let flow = RealNvp::new(vb.pp("image"), RealNvpConfig::new(1, (8, 8), 2))?;
/// let mech = ConditionalTransformedDistribution::new(
///     Normal::standard((1, 8, 8), DType::F32, &Device::Cpu)?.to_event(3)?,
///     vec![TransformStep::conditional(flow), LogitTransform::new(0.05)?.inv().shared().into()],
/// );
/// let parents = Tensor::new(&[[2.0f32, 1.5], [3.0, 0.5]], &Device::Cpu)?;
/// let images = mech.condition(&parents)?;
/// assert_eq!((images.batch_shape(), images.event_shape()), (&[2][..], &[1, 8, 8][..]));
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RealNvp {
    root: Arc<Stage>,
    cfg: RealNvpConfig,
}

impl RealNvp {
    /// A flow of the given shape.
    pub fn new(vb: VarBuilder, cfg: RealNvpConfig) -> Result<Self> {
        let (h, w) = cfg.image;
        let k = 1usize << cfg.scales;
        if cfg.channels == 0 || h == 0 || w == 0 || h % k != 0 || w % k != 0 {
            return Err(Error::usage(format!(
                "RealNvp: the image must be non-empty with height and width divisible by 2^scales \
                 = {k}, got {:?}",
                cfg
            )));
        }
        let root = build_stage(&vb, &cfg, 0, cfg.channels)?;
        Ok(RealNvp {
            root: Arc::new(root),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RealNvpConfig {
        &self.cfg
    }

    /// The unconditional flow (`context_dim` must be 0).
    pub fn transform(&self) -> Result<ComposeTransform> {
        if self.cfg.context_dim != 0 {
            return Err(Error::usage(format!(
                "RealNvp: the flow expects a context of {} features; use condition",
                self.cfg.context_dim
            )));
        }
        chain(&self.root, None)
    }

    /// The flow for `context` `(..., context_dim)`.
    pub fn conditioned(&self, context: &Tensor) -> Result<ComposeTransform> {
        if self.cfg.context_dim == 0 {
            return Err(Error::usage(
                "RealNvp: the flow has no context; use transform",
            ));
        }
        chain(&self.root, Some(context))
    }
}

impl ConditionalTransform for RealNvp {
    fn condition(&self, context: &Tensor) -> Result<TransformRef> {
        Ok(Arc::new(self.conditioned(context)?))
    }
}

fn build_step(
    vb: &VarBuilder,
    cfg: &RealNvpConfig,
    channels: usize,
    mask: CouplingMask,
    mix: bool,
) -> Result<Step> {
    Ok(Step {
        actnorm: if cfg.actnorm {
            Some(ActNorm::new(vb.pp("actnorm"), channels)?)
        } else {
            None
        },
        mix: if mix {
            Some(InvertibleConv1x1::new(vb.pp("conv1x1"), channels)?)
        } else {
            None
        },
        coupling: AffineCoupling::new(
            vb.pp("coupling"),
            channels,
            cfg.context_dim,
            cfg.hidden,
            mask,
        )?,
    })
}

/// Stage `scale` on `c` channels; stages are siblings under the flow's prefix (`scale0`,
/// `scale1`, ...).
fn build_stage(root: &VarBuilder, cfg: &RealNvpConfig, scale: usize, c: usize) -> Result<Stage> {
    let vb = root.pp(format!("scale{scale}"));
    let last = scale == cfg.scales;
    let n_checker = if last {
        cfg.couplings + 1
    } else {
        cfg.couplings
    };
    let checker = (0..n_checker)
        .map(|i| {
            let mask = CouplingMask::Checkerboard { parity: i % 2 == 1 };
            build_step(&vb.pp(format!("checker{i}")), cfg, c, mask, false)
        })
        .collect::<Result<Vec<_>>>()?;
    if last {
        return Ok(Stage {
            checker,
            channel: vec![],
            next: None,
            channels: c,
        });
    }
    let channel = (0..cfg.couplings)
        .map(|i| {
            let mask = CouplingMask::Channel { parity: i % 2 == 1 };
            build_step(&vb.pp(format!("channel{i}")), cfg, 4 * c, mask, cfg.conv1x1)
        })
        .collect::<Result<Vec<_>>>()?;
    let next = build_stage(root, cfg, scale + 1, 2 * c)?;
    Ok(Stage {
        checker,
        channel,
        next: Some(Box::new(next)),
        channels: c,
    })
}

fn push_step(parts: &mut Vec<TransformRef>, step: &Step, ctx: Option<&Tensor>) -> Result<()> {
    if let Some(a) = &step.actnorm {
        parts.push(a.clone().shared());
    }
    if let Some(m) = &step.mix {
        parts.push(m.clone().shared());
    }
    parts.push(match ctx {
        Some(c) => step.coupling.conditioned(c)?.shared(),
        None => step.coupling.transform()?.shared(),
    });
    Ok(())
}

fn chain(stage: &Stage, ctx: Option<&Tensor>) -> Result<ComposeTransform> {
    let mut parts: Vec<TransformRef> = Vec::new();
    for step in &stage.checker {
        push_step(&mut parts, step, ctx)?;
    }
    if let Some(next) = &stage.next {
        parts.push(SqueezeTransform.shared());
        for step in &stage.channel {
            push_step(&mut parts, step, ctx)?;
        }
        let inner = chain(next, ctx)?;
        parts.push(ChannelSubset::new(0, 2 * stage.channels, inner)?.shared());
        parts.push(SqueezeTransform.inv().shared());
    }
    Ok(ComposeTransform::new(parts))
}
