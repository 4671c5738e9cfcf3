//! One-pass elementwise maps over broadcast operands on the CPU, split over threads.
//!
//! A distribution's log-density or draw written with candle ops costs one full pass and one
//! allocation per op (a Bernoulli log-probability is about fifteen), and candle's comparison
//! and `where_cond` kernels do not vectorise. The maps here read every operand through its own
//! layout (broadcast operands have zero strides, so nothing is materialised), compute the whole
//! formula per element, and write the output once.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Layout, NdIter, Storage, Tensor};

use crate::rng::Rng;

/// Elements per parallel task. Below two tasks' worth the map runs on the calling thread: the
/// pool's hand-off costs more than the pass.
pub(crate) const GRAIN: usize = 1 << 15;

/// Elements per tile of [`map_with`]'s gather for operands of mixed strides.
const TILE: usize = 512;

/// The float types the kernels compute in natively.
pub(crate) trait Real:
    Copy
    + PartialOrd
    + Default
    + Send
    + Sync
    + 'static
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    /// How many 32-bit words of the generator one uniform draw consumes.
    const WORDS: u128;
    fn from_f64(x: f64) -> Self;
    /// Truncated towards zero, saturating (NaN gives 0).
    fn to_i32(self) -> i32;
    fn from_i32(i: i32) -> Self;
    fn to_f64(self) -> f64;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn exp(self) -> Self;
    /// A uniform draw on the open interval (0, 1): `(k + ½)·2⁻ᵐ` for a random `k` of m bits,
    /// m one less than the mantissa's width so that the largest draw, `1 − 2⁻ᵐ⁻¹`, is
    /// representable and cannot round to 1. Nothing is rejected, so a draw takes a fixed
    /// number of words, which lets threads seek to their share of a stream.
    fn uniform(rng: &mut Rng) -> Self;
    fn storage(v: Vec<Self>) -> CpuStorage;
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
}

/// `ln x` in f32, branch-free so that loops over it vectorise (libm's `logf` is a call per
/// element, and measured the largest cost of a Bernoulli log-probability).
///
/// `x = m·2ᵉ` with `m` in `[√½, √2)`; `ln m = 2 atanh(s)` with `s = (m − 1)/(m + 1)`, so
/// `|s| ≤ 0.172` and the odd series `2(s + s³/3 + … + s¹¹/11)` is exact to 1e-11 relative;
/// `e·ln 2` is summed in two parts so that it adds no rounding of its own. Within 1 ulp (test
/// below). Zero, subnormals,
/// infinities, negatives and NaN are handled as `logf` does (subnormals by rescaling).
#[inline(always)]
fn ln_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75; // 0x3f317200: ln 2 to 16 bits, so e·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Written without branches (selects only), so that loops over it vectorise.
    let tiny = x < f32::MIN_POSITIVE;
    // Subnormals: scale into the normal range by 2^24 and take 24 off the exponent.
    let xs = x * if tiny { 16_777_216.0 } else { 1.0 };
    let bits = xs.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127 - if tiny { 24 } else { 0 };
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    // Into [√½, √2): halve m (one off its exponent field) and count it in e.
    let big = m > std::f32::consts::SQRT_2;
    let m = f32::from_bits(m.to_bits() - if big { 1 << 23 } else { 0 });
    let e = e + i32::from(big);
    // ln m = ln(1 + f) = 2 atanh(s) = 2s + s·R(s²); as f − (f²/2 − s(f²/2 + R)) the leading
    // term is the exact f and rounding touches only the small correction.
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let r = s2
        * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0 + s2 * (2.0 / 11.0)))));
    let hfsq = 0.5 * f * f;
    let ef = e as f32;
    let y = ef * LN2_HI + (f - (hfsq - (s * (hfsq + r) + ef * LN2_LO)));
    // Off the positive normal-or-subnormal numbers: 0 → −inf, +inf → +inf, negative → NaN.
    if x > 0.0 && x < f32::INFINITY {
        y
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        f32::NAN
    }
}

/// `eˣ` in f32, branch-free like [`ln_f32`] so that loops over it vectorise.
///
/// `x = k·ln 2 + r` with `k` the nearest integer to `x/ln 2` and `|r| ≤ ½ ln 2` (`k·ln 2` in two
/// parts, exact), `eʳ` by its Taylor series to `r⁷/7!` (truncation below 3e-9 relative), and
/// `2ᵏ` built in the exponent field, in two factors so that results down to the subnormal range
/// come out right. Overflow gives `inf`, underflow 0, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Clamp so that k stays in range; the ends are fixed up below.
    let xc = x.clamp(-104.0, 89.0);
    // Round to nearest by adding and subtracting 1.5·2²³ (|x·log₂e| < 2²²): `round` would be a
    // libm call per element on baseline x86-64.
    const SHIFT: f32 = 12_582_912.0;
    let kf = (xc * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let k = kf as i32;
    // 2^k = 2^(k − s) · 2^s with s = ±64 near the ends, so both factors are normal numbers.
    let s = 64 * (i32::from(k > 120) - i32::from(k < -120));
    let a = f32::from_bits(((k - s + 127) as u32) << 23);
    let b = f32::from_bits(((s + 127) as u32) << 23);
    let y = p * a * b;
    if x > 88.72284 {
        f32::INFINITY
    } else if x < -103.97208 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    const WORDS: u128 = 1;
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_i32(self) -> i32 {
        self as i32
    }
    fn from_i32(i: i32) -> f32 {
        i as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn ln(self) -> f32 {
        ln_f32(self)
    }
    /// `ln(1 + x)` to full precision without libm's `log1pf`, which measured three times
    /// the cost of `logf`: with `u = 1 + x` rounded, `ln(u) · x / (u − 1)` cancels the
    /// rounding error of `u` (Goldberg 1991, theorem 4).
    #[inline(always)]
    fn ln_1p(self) -> f32 {
        let u = 1.0 + self;
        let lu = ln_f32(u);
        // Both sides computed, one selected: no branch in a vectorised loop.
        let corrected = lu * self / (u - 1.0);
        if u == 1.0 {
            self
        } else if u.is_finite() {
            corrected
        } else {
            lu
        }
    }
    #[inline(always)]
    fn exp(self) -> f32 {
        exp_f32(self)
    }
    fn uniform(rng: &mut Rng) -> f32 {
        use rand::RngCore;
        ((rng.next_u32() >> 9) as f32 + 0.5) * (1.0 / (1u32 << 23) as f32)
    }
    fn storage(v: Vec<f32>) -> CpuStorage {
        CpuStorage::F32(v)
    }
    fn slice(s: &CpuStorage) -> Option<&[f32]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    const WORDS: u128 = 2;
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_i32(self) -> i32 {
        self as i32
    }
    fn from_i32(i: i32) -> f64 {
        f64::from(i)
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    fn ln_1p(self) -> f64 {
        f64::ln_1p(self)
    }
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    fn uniform(rng: &mut Rng) -> f64 {
        use rand::RngCore;
        ((rng.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
    }
    fn storage(v: Vec<f64>) -> CpuStorage {
        CpuStorage::F64(v)
    }
    fn slice(s: &CpuStorage) -> Option<&[f64]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
}

/// `ln(1 + eˣ)` as `max(x, 0) + ln(1 + e^{−|x|})`: no overflow for any `x`.
#[inline(always)]
pub(crate) fn softplus<T: Real>(x: T) -> T {
    let (pos, neg) = if x > T::ZERO {
        (x, T::ZERO - x)
    } else {
        (T::ZERO, x)
    };
    pos + neg.exp().ln_1p()
}

/// `1 / (1 + e^{−x})`, with the exponential taken of `−|x|` so it cannot overflow.
#[inline(always)]
pub(crate) fn sigmoid<T: Real>(x: T) -> T {
    if x > T::ZERO {
        T::ONE / (T::ONE + (T::ZERO - x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// `out[k] = f(state, [a_0[k], …, a_{N−1}[k]])` in row-major order of the common dims of
/// `layouts`, each operand read from its buffer through its layout. `init(k0)` makes the state
/// of the task starting at output element `k0`, so a task's result cannot depend on how the
/// work was split (the random draws use this to seek the generator to their share).
pub(crate) fn map_with<T, U, S, const N: usize>(
    bufs: [&[T]; N],
    layouts: [&Layout; N],
    init: impl Fn(usize) -> S + Sync,
    f: impl Fn(&mut S, [T; N]) -> U + Sync,
) -> Vec<U>
where
    T: Copy + Default + Sync,
    U: Copy + Send,
{
    let n = layouts[0].shape().elem_count();
    let mut out: Vec<U> = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let iter = NdIter::new(layouts);
    let inner = iter.inner_size;
    let strides = iter.inner_strides;
    let bases: Vec<[usize; N]> = iter.collect();
    let fill = |start: usize, chunk: &mut [MaybeUninit<U>]| {
        let mut state = init(start);
        let end = start + chunk.len();
        let (mut k, mut o) = (start, 0);
        while k < end {
            let (block, i0) = (k / inner, k % inner);
            let len = (inner - i0).min(end - k);
            let base = bases[block];
            // Each operand's stretch for this block, so that the loop indexes within bounds
            // the compiler can see: a contiguous run, or the one element a broadcast repeats.
            let runs: [&[T]; N] = std::array::from_fn(|j| {
                let from = base[j] + i0 * strides[j];
                match strides[j] {
                    0 => &bufs[j][from..from + 1],
                    s => &bufs[j][from..from + (len - 1) * s + 1],
                }
            });
            let out = &mut chunk[o..o + len];
            if strides.iter().all(|&s| s == 1) {
                // Runs cut to the output's length, so that the indexing below needs no bounds
                // checks and the loop can vectorise.
                let runs: [&[T]; N] = std::array::from_fn(|j| &runs[j][..len]);
                for t in 0..len {
                    out[t].write(f(&mut state, std::array::from_fn(|j| runs[j][t])));
                }
            } else {
                // Mixed strides (a broadcast operand among contiguous ones): gather each
                // operand into a small contiguous tile first, so that the formula runs over
                // plain arrays the compiler can vectorise.
                let mut tiles = [[T::default(); TILE]; N];
                for (c, outs) in out.chunks_mut(TILE).enumerate() {
                    let (t0, tl) = (c * TILE, outs.len());
                    for j in 0..N {
                        match strides[j] {
                            0 => tiles[j][..tl].fill(runs[j][0]),
                            1 => tiles[j][..tl].copy_from_slice(&runs[j][t0..t0 + tl]),
                            s => {
                                for (t, v) in tiles[j][..tl].iter_mut().enumerate() {
                                    *v = runs[j][(t0 + t) * s];
                                }
                            }
                        }
                    }
                    let tl = tl.min(TILE);
                    for t in 0..tl {
                        outs[t].write(f(&mut state, std::array::from_fn(|j| tiles[j][t])));
                    }
                }
            }
            o += len;
            k += len;
        }
    };
    fill_split(&mut out, n, fill);
    out
}

/// Fills the first `n` elements of `out`'s spare capacity with `fill(start, chunk)` over chunks
/// of [`GRAIN`] elements, in parallel when there are at least two, and sets the length to `n`.
/// `fill` must write every element of its chunk.
fn fill_split<U: Send>(
    out: &mut Vec<U>,
    n: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<U>]) + Sync,
) {
    out.reserve(n);
    let spare = &mut out.spare_capacity_mut()[..n];
    if n < 2 * GRAIN {
        fill(0, spare);
    } else {
        let base = SendPtr(spare.as_mut_ptr());
        let chunks = n.div_ceil(GRAIN);
        candle_core::utils::barrier_pool().execute_chunked(chunks, |range| {
            for c in range {
                let start = c * GRAIN;
                let len = GRAIN.min(n - start);
                // SAFETY: chunk `c` covers elements `start..start + len` of `spare`, inside
                // its `n` elements; the pool hands every chunk index to exactly one call, so
                // the slices are disjoint, and `spare` outlives the pool's `execute`.
                let chunk = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), len) };
                fill(start, chunk);
            }
        });
    }
    // SAFETY: `fill` wrote every one of the first `n` elements (the chunks partition them and
    // each call writes its whole chunk).
    unsafe { out.set_len(n) };
}

/// A pointer the pool's workers may share; each dereferences only its own chunk.
struct SendPtr<U>(*mut MaybeUninit<U>);
impl<U> Clone for SendPtr<U> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<U> Copy for SendPtr<U> {}
// SAFETY: the pointer is only used to build disjoint chunks (see `fill_split`).
unsafe impl<U: Send> Send for SendPtr<U> {}
// SAFETY: as above.
unsafe impl<U: Send> Sync for SendPtr<U> {}

impl<U> SendPtr<U> {
    fn get(self) -> *mut MaybeUninit<U> {
        self.0
    }
}

/// `n` uniform draws on (0, 1) ([`Real::uniform`]), made in parallel yet equal to drawing them
/// one after another from `rng`, which is advanced past them.
pub(crate) fn uniforms<T: Real>(rng: &mut Rng, n: usize) -> Vec<T> {
    let pos0 = rng.get_word_pos();
    let base = rng.clone();
    let mut out = Vec::new();
    fill_split(&mut out, n, |k0, chunk| {
        let mut r = rng_at::<T>(&base, pos0, k0);
        for slot in chunk {
            slot.write(T::uniform(&mut r));
        }
    });
    advance::<T>(rng, pos0, n);
    out
}

/// `f` over chunks of [`GRAIN`] elements of `0..n`, in parallel when there are two or more, the
/// results in chunk order (so that a reduction of them does not depend on the thread count).
pub(crate) fn chunked<R: Send + Default + Clone>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    let chunks = n.div_ceil(GRAIN);
    let range = |c: usize| c * GRAIN..((c + 1) * GRAIN).min(n);
    if chunks < 2 {
        return (0..chunks).map(|c| f(range(c))).collect();
    }
    let out = std::sync::Mutex::new(vec![R::default(); chunks]);
    candle_core::utils::barrier_pool().execute_chunked(chunks, |cs| {
        for c in cs {
            let v = f(range(c));
            out.lock().unwrap_or_else(|e| e.into_inner())[c] = v;
        }
    });
    out.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// A CPU tensor of `shape` holding `v`.
pub(crate) fn cpu_tensor<T: Real>(v: Vec<T>, shape: &[usize]) -> crate::error::Result<Tensor> {
    Ok(match T::storage(v) {
        CpuStorage::F32(v) => Tensor::from_vec(v, shape, &candle_core::Device::Cpu)?,
        CpuStorage::F64(v) => Tensor::from_vec(v, shape, &candle_core::Device::Cpu)?,
        _ => unreachable!("Real is f32 or f64"),
    })
}

/// [`map_with`] without state.
pub(crate) fn map<T, U, const N: usize>(
    bufs: [&[T]; N],
    layouts: [&Layout; N],
    f: impl Fn([T; N]) -> U + Sync,
) -> Vec<U>
where
    T: Copy + Default + Sync,
    U: Copy + Send,
{
    map_with(
        bufs,
        layouts,
        |_| (),
        #[inline(always)]
        |_, a| f(a),
    )
}

/// A generator positioned for the task whose first draw is number `k0` of a stream that
/// starts at word `pos0` (a draw takes `T::WORDS` words).
pub(crate) fn rng_at<T: Real>(rng: &Rng, pos0: u128, k0: usize) -> Rng {
    let mut r = rng.clone();
    r.set_word_pos(pos0 + k0 as u128 * T::WORDS);
    r
}

/// Moves `rng` past the `n` draws a map made from it (as if they had been made in turn).
pub(crate) fn advance<T: Real>(rng: &mut Rng, pos0: u128, n: usize) {
    rng.set_word_pos(pos0 + n as u128 * T::WORDS);
}

/// Runs `f` on the CPU buffers and layouts of `tensors` when every one is a CPU tensor of
/// dtype `T`; `None` otherwise (another device or dtype: callers fall back to candle's ops).
pub(crate) fn with_cpu<T: Real, R, const N: usize>(
    tensors: [&Tensor; N],
    f: impl FnOnce([&[T]; N], [&Layout; N]) -> R,
) -> Option<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut bufs: [&[T]; N] = [&[]; N];
    for (slot, (storage, _)) in bufs.iter_mut().zip(&guards) {
        match &**storage {
            Storage::Cpu(s) => *slot = T::slice(s)?,
            _ => return None,
        }
    }
    let layouts: [&Layout; N] = std::array::from_fn(|j| guards[j].1);
    Some(f(bufs, layouts))
}

/// The first element of `t` in row-major order for which `bad` holds, as `(flat index,
/// value)`. CPU tensors of f32 and f64 are scanned in place, in parallel when large; others are
/// read to the host once.
pub(crate) fn first_where(
    t: &Tensor,
    bad: impl Fn(f64) -> bool + Sync,
) -> crate::error::Result<Option<(usize, f64)>> {
    fn scan<T: Real>(
        b: &[T],
        l: &Layout,
        bad: &(impl Fn(f64) -> bool + Sync),
    ) -> Option<(usize, f64)> {
        let flags: Vec<u8>;
        let found = match l.contiguous_offsets() {
            Some((start, end)) => {
                let s = &b[start..end];
                // Whole chunks without early exit (the fold vectorises); locate only in the
                // chunk that has a bad element.
                let first_in = |chunk: &[T]| -> Option<usize> {
                    if chunk.iter().fold(false, |acc, v| acc | bad(v.to_f64())) {
                        chunk.iter().position(|v| bad(v.to_f64()))
                    } else {
                        None
                    }
                };
                let starts = chunked(s.len(), |r| {
                    let start = r.start;
                    first_in(&s[r]).map(|i| start + i)
                });
                starts.into_iter().flatten().next()
            }
            None => {
                flags = map([b], [l], |[v]| u8::from(bad(v.to_f64())));
                flags.iter().position(|&f| f == 1)
            }
        };
        found.map(|i| {
            let v = map([b], [l], |[v]| v);
            (i, v[i].to_f64())
        })
    }
    let found = match t.dtype() {
        candle_core::DType::F32 => with_cpu::<f32, _, 1>([t], |[b], [l]| scan(b, l, &bad)),
        candle_core::DType::F64 => with_cpu::<f64, _, 1>([t], |[b], [l]| scan(b, l, &bad)),
        _ => None,
    };
    if let Some(found) = found {
        return Ok(found);
    }
    let values = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    Ok(values.into_iter().enumerate().find(|&(_, x)| bad(x)))
}

/// `t` with every broadcast dim (stride 0, size > 1) narrowed to size 1: the distinct elements
/// only, as a view. An elementwise op over compacted operands, broadcast back afterwards, does
/// the work once per distinct element (a factual value observed once for a whole plate, a world
/// mask) instead of once per element of the broadcast shape.
pub(crate) fn compact(t: &Tensor) -> candle_core::Result<Tensor> {
    let mut c = t.clone();
    for (d, (&size, &stride)) in t.dims().iter().zip(t.stride()).enumerate() {
        if stride == 0 && size > 1 {
            c = c.narrow(d, 0, 1)?;
        }
    }
    Ok(c)
}

/// The shape the compacted operands broadcast to, when it is smaller than `shape` (otherwise
/// `None`: compacting saves nothing).
pub(crate) fn compact_shape(operands: &[&Tensor], shape: &[usize]) -> Option<Vec<usize>> {
    let mut out = vec![1; shape.len()];
    for t in operands {
        let pad = shape.len().checked_sub(t.rank())?;
        for (d, (&size, &stride)) in t.dims().iter().zip(t.stride()).enumerate() {
            if !(stride == 0 || size == 1) {
                out[pad + d] = size;
            }
        }
    }
    (out.iter().product::<usize>() < shape.iter().product::<usize>()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_f32_is_within_one_ulp_everywhere() {
        // Every 4099th positive f32 bit pattern (subnormals to the largest finite), plus the
        // neighbourhood of 1 where ln is smallest.
        let near_one = (0..20_000u32).flat_map(|k| [1.0f32.to_bits() - k, 1.0f32.to_bits() + k]);
        let worst = (1..0x7f80_0000u32)
            .step_by(4099)
            .chain(near_one)
            .map(|b| {
                let x = f32::from_bits(b);
                let want = (x as f64).ln();
                let got = ln_f32(x) as f64;
                let ulp = (want as f32).abs().max(f32::MIN_POSITIVE);
                let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
                ((got - want).abs() / ulp, x)
            })
            .fold((0.0, 0.0f32), |a, b| if b.0 > a.0 { b } else { a });
        assert!(worst.0 <= 1.0, "{} ulps at {}", worst.0, worst.1);
    }

    #[test]
    fn exp_f32_is_within_two_ulps_everywhere() {
        let worst = (0..2_000_000u32)
            .map(|i| -104.0 + (193.0 * i as f64 / 2e6) as f32)
            .chain([-1e-7f32, 0.0, 1e-7, 88.7, -87.3])
            .map(|x| {
                let want = (x as f64).exp();
                let got = exp_f32(x) as f64;
                let w = (want as f32).max(f32::from_bits(1));
                let ulp = (f32::from_bits(w.to_bits() + 1) - w) as f64;
                ((got - want).abs() / ulp, x)
            })
            .fold((0.0, 0.0f32), |a, b| if b.0 > a.0 { b } else { a });
        assert!(worst.0 <= 2.0, "{} ulps at {}", worst.0, worst.1);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn ln_f32_special_values() {
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan() && ln_f32(f32::NAN).is_nan());
        assert_eq!(ln_f32(1.0), 0.0);
        assert!((ln_f32(f32::from_bits(1)) as f64 - (f32::from_bits(1) as f64).ln()).abs() < 1e-5);
    }
}
