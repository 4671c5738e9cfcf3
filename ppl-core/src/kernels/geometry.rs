//! The index map shared by a convolution, its transpose and their gradients.
//!
//! A 2-d convolution pairs a *large* image (the conv's input, the transpose's output) with a
//! *small* one (the conv's output, the transpose's input): small position `o` and kernel tap `t`
//! meet large position `o * stride + t * dilation - padding` along each axis. Keeping both sizes
//! explicit (instead of deriving one from the other) lets the transpose's `output_padding` and
//! the gradients reuse one set of kernels.

/// Sizes and hyper-parameters of one convolution, in the conv's own orientation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Batch size.
    pub batch: usize,
    /// Channels of the large image (all groups).
    pub c_large: usize,
    /// Channels of the small image (all groups).
    pub c_small: usize,
    /// Height and width of the large image.
    pub large: (usize, usize),
    /// Height and width of the small image.
    pub small: (usize, usize),
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Step between small positions, in large positions.
    pub stride: usize,
    /// Implicit zeros around the large image.
    pub padding: usize,
    /// Step between kernel taps, in large positions.
    pub dilation: usize,
    /// Channel groups; both channel counts are multiples of it.
    pub groups: usize,
}

impl Geometry {
    /// Large-side channels in one group.
    pub fn c_large_group(&self) -> usize {
        self.c_large / self.groups
    }

    /// Small-side channels in one group.
    pub fn c_small_group(&self) -> usize {
        self.c_small / self.groups
    }

    /// Rows of the im2col matrix of one group: (channel, tap row, tap column).
    pub fn patch_len(&self) -> usize {
        self.c_large_group() * self.kernel.0 * self.kernel.1
    }

    /// Pixels of one small-image channel: the columns of the im2col matrix.
    pub fn small_len(&self) -> usize {
        self.small.0 * self.small.1
    }

    /// Pixels of one large-image channel.
    pub fn large_len(&self) -> usize {
        self.large.0 * self.large.1
    }

    /// Shape of the large image, `(B, C_large, H, W)`.
    pub fn large_shape(&self) -> [usize; 4] {
        [self.batch, self.c_large, self.large.0, self.large.1]
    }

    /// Shape of the small image, `(B, C_small, Ho, Wo)`.
    pub fn small_shape(&self) -> [usize; 4] {
        [self.batch, self.c_small, self.small.0, self.small.1]
    }

    /// Shape of the weight, `(C_small, C_large / groups, kH, kW)` (conv2d's layout, which is
    /// also conv_transpose2d's `(C_in, C_out, kH, kW)` with the small side as its input).
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.c_small,
            self.c_large_group(),
            self.kernel.0,
            self.kernel.1,
        ]
    }

    /// Whether im2col is the identity (1×1 kernel, unit stride, no padding): the kernels then
    /// read and write the images directly.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.stride == 1 && self.padding == 0 && self.large == self.small
    }
}

/// The output length of a convolution along one axis, or `None` when the dilated kernel does
/// not fit in the padded input.
pub(crate) fn conv_out_len(
    len: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation * (k - 1) + 1;
    let padded = len + 2 * padding;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

/// The output length of a transposed convolution along one axis, or `None` when the padding
/// removes everything.
pub(crate) fn conv_transpose_out_len(
    len: usize,
    k: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
    dilation: usize,
) -> Option<usize> {
    let full = (len - 1) * stride + dilation * (k - 1) + output_padding + 1;
    (full > 2 * padding).then(|| full - 2 * padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lengths_follow_the_torch_formulas() {
        assert_eq!(conv_out_len(28, 4, 2, 1, 1), Some(14));
        assert_eq!(conv_out_len(5, 3, 1, 0, 3), None);
        assert_eq!(conv_transpose_out_len(7, 4, 2, 1, 0, 1), Some(14));
        assert_eq!(conv_transpose_out_len(1, 1, 1, 1, 0, 1), None);
        assert_eq!(conv_transpose_out_len(3, 3, 2, 1, 1, 1), Some(6));
    }
}
