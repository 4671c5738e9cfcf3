//! Conditional probability tables indexed by their parents' values, elementwise.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::kernels::elementwise::{cpu_tensor, first_where, map, with_cpu, Real};

/// The entries of a conditional probability table picked by its parents' values, elementwise:
/// `table[v₁, …, v_k]` where `v_i` is parent `i`'s value, the parents broadcast together (a
/// parent that carries world dims meets one that does not). The result has the first parent's
/// dtype. `table` has one dim per parent, of the parent's cardinality.
///
/// This is the `P_B[young, male]` indexing of a Pyro model, for which candle has no broadcasting
/// op; on the CPU it is one pass over the parents (up to four; more fall back to an index
/// computation and a gather).
///
/// A parent value that is not an integer inside its dim is an error naming the parent, the flat
/// index and the value.
///
/// ```
/// use ppl_core::candle_core::{Device, Tensor};
/// use ppl_core::causal::cpt;
///
/// // P(Bald = 1 | Young, Male), indexed [young][male].
/// let p_bald = Tensor::new(&[[0.02f32, 0.30], [0.005, 0.08]], &Device::Cpu)?;
/// let young = Tensor::new(&[[0.0f32], [1.0]], &Device::Cpu)?; // two worlds
/// let male = Tensor::new(&[1.0f32, 0.0, 1.0], &Device::Cpu)?; // three people
/// let p = cpt(&p_bald, &[&young, &male])?;
/// assert_eq!(p.to_vec2::<f32>()?, [[0.30, 0.02, 0.30], [0.08, 0.005, 0.08]]);
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn cpt(table: &Tensor, parents: &[&Tensor]) -> Result<Tensor> {
    let cards = table.dims().to_vec();
    if parents.is_empty() || cards.len() != parents.len() {
        return Err(Error::shape(
            format!(
                "cpt: the table needs one dim per parent ({} parents)",
                parents.len()
            ),
            &[parents.len()],
            table.dims(),
        ));
    }
    let mut shape: Vec<usize> = Vec::new();
    for (i, p) in parents.iter().enumerate() {
        shape = crate::dist::broadcast_shapes(&shape, p.dims()).ok_or_else(|| {
            Error::shape(
                format!("cpt: parent {i} does not broadcast with the parents before it"),
                &shape,
                p.dims(),
            )
        })?;
    }
    let dtype = parents[0].dtype();
    if !dtype.is_float() || parents.iter().any(|p| p.dtype() != dtype) {
        return Err(Error::usage(format!(
            "cpt: the parents must share one float dtype, got {:?}",
            parents.iter().map(|p| p.dtype()).collect::<Vec<_>>()
        )));
    }
    let out = match dtype {
        DType::F32 => fused::<f32>(table, parents, &cards, &shape)?,
        DType::F64 => fused::<f64>(table, parents, &cards, &shape)?,
        _ => None,
    };
    let out = match out {
        Some(t) => t,
        None => gathered(table, parents, &cards, &shape)?,
    };
    // An index out of its dim produced NaN (the table's own entries are checked to be numbers).
    if let Some((at, _)) = first_where(&out, f64::is_nan)? {
        return Err(bad_parent(parents, &cards, &shape, at));
    }
    Ok(out)
}

/// One pass on the CPU for up to four parents; `None` elsewhere.
fn fused<T: Real>(
    table: &Tensor,
    parents: &[&Tensor],
    cards: &[usize],
    shape: &[usize],
) -> Result<Option<Tensor>> {
    if !parents.iter().all(|p| p.device().is_cpu()) || parents.len() > 4 {
        return Ok(None);
    }
    let t64: Vec<f64> = table.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let t: Vec<T> = t64.iter().map(|&v| T::from_f64(v)).collect();
    if t64.iter().any(|v| v.is_nan()) {
        return Err(Error::usage("cpt: the table holds NaN"));
    }
    let b: Vec<Tensor> = parents
        .iter()
        .map(|p| p.broadcast_as(shape))
        .collect::<candle_core::Result<_>>()?;
    // Mixed-radix strides of the table, row-major.
    let mut strides = vec![1usize; cards.len()];
    for i in (0..cards.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * cards[i + 1];
    }
    let nan = T::from_f64(f64::NAN);
    let t = &t;
    let binary = cards.iter().all(|&c| c == 2);
    let mut padded = [T::ZERO; 16];
    for (slot, &v) in padded.iter_mut().zip(t.iter()) {
        *slot = v;
    }
    let padded = &padded;
    macro_rules! run {
        ($n:literal, [$($k:literal),+]) => {
            with_cpu::<T, _, $n>([$(&b[$k]),+], |bufs, ls| {
                if binary {
                    map(bufs, ls, |v| binary_entry::<T, $n>(padded, v, nan))
                } else {
                    let e = Entry::<$n>::new(cards, &strides);
                    map(bufs, ls, |v| e.at(t, v, nan))
                }
            })
        };
    }
    let out: Option<Vec<T>> = match b.len() {
        1 => run!(1, [0]),
        2 => run!(2, [0, 1]),
        3 => run!(3, [0, 1, 2]),
        _ => run!(4, [0, 1, 2, 3]),
    };
    out.map(|v| cpu_tensor(v, shape)).transpose()
}

/// The entry of a table over `N` binary parents as the multilinear form
/// `Σ_c t[c] Π_j (c_j ? v_j : 1 − v_j)`, exact on `{0, 1}`: arithmetic only, so the loop
/// vectorises (an index and a gather do not). A value off `{0, 1}` gives NaN.
#[inline(always)]
fn binary_entry<T: Real, const N: usize>(table: &[T; 16], values: [T; N], nan: T) -> T {
    let mut ok = true;
    for &v in &values {
        ok &= v * (v - T::ONE) == T::ZERO;
    }
    let mut p = T::ZERO;
    // A constant trip count (the table padded to 16 entries): the loops unroll.
    for (c, &entry) in table.iter().enumerate().take(1 << N) {
        let mut w = T::ONE;
        for (j, &v) in values.iter().enumerate() {
            // Row-major: parent 0 is the most significant bit of the configuration.
            let bit = (c >> (N - 1 - j)) & 1 == 1;
            w = w * if bit { v } else { T::ONE - v };
        }
        p = p + entry * w;
    }
    if ok {
        p
    } else {
        nan
    }
}

/// The table entry for `N` parent values: cardinalities and row-major strides as fixed-size
/// arrays, so the per-element work is a few integer operations.
struct Entry<const N: usize> {
    cards: [i32; N],
    strides: [i32; N],
}

impl<const N: usize> Entry<N> {
    fn new(cards: &[usize], strides: &[usize]) -> Self {
        Entry {
            cards: std::array::from_fn(|j| cards[j] as i32),
            strides: std::array::from_fn(|j| strides[j] as i32),
        }
    }

    #[inline(always)]
    fn at<T: Real>(&self, table: &[T], values: [T; N], nan: T) -> T {
        let mut idx = 0i32;
        let mut ok = true;
        for ((&v, &card), &stride) in values.iter().zip(&self.cards).zip(&self.strides) {
            // An integer in 0..card: the round trip through i32 rejects fractions and NaN
            // (a floor or trunc would be a libm call per element).
            let i = v.to_i32();
            ok &= T::from_i32(i) == v && i >= 0 && i < card;
            idx += i * stride;
        }
        let p = table[(idx as usize).min(table.len() - 1)];
        if ok {
            p
        } else {
            nan
        }
    }
}

/// Any device or dtype: the mixed-radix index computed with tensor ops, then a gather.
fn gathered(
    table: &Tensor,
    parents: &[&Tensor],
    cards: &[usize],
    shape: &[usize],
) -> Result<Tensor> {
    let dtype = parents[0].dtype();
    let dev = parents[0].device();
    let mut index = Tensor::zeros((), DType::F64, dev)?;
    let mut valid = Tensor::ones((), DType::U8, dev)?;
    for (p, &card) in parents.iter().zip(cards) {
        let v = p.to_dtype(DType::F64)?;
        let ok = v
            .ge(0.0)?
            .mul(&v.lt(card as f64)?)?
            .mul(&v.eq(&v.floor()?)?)?;
        valid = valid.broadcast_mul(&ok)?;
        let safe = ok.where_cond(&v, &v.zeros_like()?)?;
        index = index.affine(card as f64, 0.0)?.broadcast_add(&safe)?;
    }
    let index = index
        .broadcast_as(shape)?
        .flatten_all()?
        .to_dtype(DType::U32)?;
    let flat = table.to_dtype(dtype)?.to_device(dev)?.flatten_all()?;
    let picked = flat.index_select(&index, 0)?.reshape(shape)?;
    let nan = Tensor::new(f64::NAN, dev)?
        .to_dtype(dtype)?
        .broadcast_as(shape)?;
    Ok(valid.broadcast_as(shape)?.where_cond(&picked, &nan)?)
}

/// The error for the first parent value at flat output index `at` that is out of its dim.
fn bad_parent(parents: &[&Tensor], cards: &[usize], shape: &[usize], at: usize) -> Error {
    for (i, (p, &card)) in parents.iter().zip(cards).enumerate() {
        let value = p
            .broadcast_as(shape)
            .and_then(|b| b.flatten_all())
            .and_then(|f| f.get(at))
            .and_then(|v| v.to_dtype(DType::F64))
            .and_then(|v| v.to_scalar::<f64>());
        if let Ok(v) = value {
            if !(v >= 0.0 && v < card as f64 && v == v.trunc()) {
                return Error::usage(format!(
                    "cpt: parent {i} has value {v} at flat index {at} of shape {shape:?}; the \
                     table's dim for it has size {card} (values 0..{card})"
                ));
            }
        }
    }
    Error::usage(format!(
        "cpt: no table entry for flat index {at} of shape {shape:?}"
    ))
}
