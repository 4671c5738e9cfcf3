//! The CPU kernels as candle custom ops, with backward passes built from the same kernels.
//!
//! The three kernels are closed under differentiation: each one's gradients with respect to its
//! two operands are the other two kernels on the same [`Geometry`], so one op type serves
//! conv2d, conv_transpose2d and all their gradients.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu_conv::{gather, scatter, weight_grad};
use super::geometry::Geometry;
use super::scratch::Scratch;
use super::slice;

/// Which of the three kernels an op runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `(large, weight) → small`: conv2d.
    Gather,
    /// `(small, weight) → large`: conv_transpose2d.
    Scatter,
    /// `(large, small) → weight`: the weight gradient.
    WeightGrad,
}

/// One kernel on one geometry, as a candle `CustomOp2`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvOp {
    kind: Kind,
    geom: Geometry,
}

impl ConvOp {
    /// The shapes of the two operands and of the result.
    fn shapes(&self) -> ([usize; 4], [usize; 4], [usize; 4]) {
        let g = &self.geom;
        match self.kind {
            Kind::Gather => (g.large_shape(), g.weight_shape(), g.small_shape()),
            Kind::Scatter => (g.small_shape(), g.weight_shape(), g.large_shape()),
            Kind::WeightGrad => (g.large_shape(), g.small_shape(), g.weight_shape()),
        }
    }

    fn run<T: Scratch>(&self, a: &[T], b: &[T]) -> Vec<T> {
        match self.kind {
            Kind::Gather => gather(&self.geom, a, b),
            Kind::Scatter => scatter(&self.geom, a, b),
            Kind::WeightGrad => weight_grad(&self.geom, a, b),
        }
    }
}

/// Runs `kind` on `(a, b)` through candle, so that the result joins the autograd graph.
pub(crate) fn apply(
    kind: Kind,
    geom: Geometry,
    a: &Tensor,
    b: &Tensor,
) -> candle_core::Result<Tensor> {
    // The kernels read plain NCHW slices: candle's strided iterator is private.
    a.contiguous()?
        .apply_op2(&b.contiguous()?, ConvOp { kind, geom })
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Gather => "ppl-conv2d",
            Kind::Scatter => "ppl-conv-transpose2d",
            Kind::WeightGrad => "ppl-conv2d-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (sa, sb, out) = self.shapes();
        if l1.dims() != sa || l2.dims() != sb {
            candle_core::bail!(
                "{}: operands {:?} and {:?} do not fit the geometry {:?}",
                self.name(),
                l1.dims(),
                l2.dims(),
                self.geom
            );
        }
        let name = self.name();
        let storage = match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                CpuStorage::F32(self.run(slice(a, l1, name)?, slice(b, l2, name)?))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                CpuStorage::F64(self.run(slice(a, l1, name)?, slice(b, l2, name)?))
            }
            (a, b) => candle_core::bail!(
                "{name}: no CPU kernel for dtypes {:?} and {:?}",
                a.dtype(),
                b.dtype()
            ),
        };
        Ok((storage, Shape::from(out.to_vec())))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // An operand that depends on no variable needs no gradient: skipping it saves a whole
        // kernel call for the first layer of a network fed with data.
        let want = |t: &Tensor, kind: Kind, x: &Tensor, y: &Tensor| {
            t.track_op()
                .then(|| apply(kind, self.geom, x, y))
                .transpose()
        };
        let (ga, gb) = match self.kind {
            // y = gather(x, w)
            Kind::Gather => (
                want(a, Kind::Scatter, grad, b)?,
                want(b, Kind::WeightGrad, a, grad)?,
            ),
            // x = scatter(y, w)
            Kind::Scatter => (
                want(a, Kind::Gather, grad, b)?,
                want(b, Kind::WeightGrad, grad, a)?,
            ),
            // w = weight_grad(x, y)
            Kind::WeightGrad => (
                want(a, Kind::Scatter, b, grad)?,
                want(b, Kind::Gather, a, grad)?,
            ),
        };
        Ok((ga, gb))
    }
}
