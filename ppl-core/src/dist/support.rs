//! The sets that distributions' values lie in.

use candle_core::Tensor;

use crate::error::Result;

/// The set each element of a distribution's value lies in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Support {
    /// All reals.
    Real,
    /// `(0, inf)`.
    Positive,
    /// `(lower, inf)`.
    GreaterThan(f64),
    /// `[0, 1]`.
    UnitInterval,
    /// `[lower, upper]`.
    Interval(f64, f64),
    /// `{0, 1}`.
    Boolean,
    /// The integers `lower..=upper`.
    IntegerInterval(i64, i64),
    /// Non-negative vectors summing to one along the last dim.
    Simplex,
    /// No constraint is checked (e.g. the empty value of a factor).
    Any,
}

impl Support {
    /// Whether the support is discrete.
    pub fn is_discrete(&self) -> bool {
        matches!(self, Support::Boolean | Support::IntegerInterval(..))
    }

    /// A `u8` mask, of the value's shape, of the elements inside the support. For `Simplex` the
    /// mask is per element (each element in `[0, 1]`); the sum is checked by [`Self::check`].
    pub fn contains(&self, value: &Tensor) -> Result<Tensor> {
        let v = value;
        let is_int = |v: &Tensor| -> Result<Tensor> { Ok(v.eq(&v.round()?)?) };
        let m = match *self {
            Support::Real => v.eq(v)?.mul(&v.abs()?.lt(f64::INFINITY)?)?,
            Support::Positive => v.gt(0.0)?.mul(&v.lt(f64::INFINITY)?)?,
            Support::GreaterThan(lo) => v.gt(lo)?.mul(&v.lt(f64::INFINITY)?)?,
            Support::UnitInterval => v.ge(0.0)?.mul(&v.le(1.0)?)?,
            Support::Interval(lo, hi) => v.ge(lo)?.mul(&v.le(hi)?)?,
            Support::Boolean => v.eq(0.0)?.add(&v.eq(1.0)?)?,
            Support::IntegerInterval(lo, hi) => {
                let vf = v.to_dtype(candle_core::DType::F64)?;
                is_int(&vf)?
                    .mul(&vf.ge(lo as f64)?)?
                    .mul(&vf.le(hi as f64)?)?
            }
            Support::Simplex => v.ge(0.0)?.mul(&v.le(1.0)?)?,
            Support::Any => v.ones_like()?.to_dtype(candle_core::DType::U8)?,
        };
        Ok(m)
    }

    /// Whether the number `x` lies in the support (for `Simplex`, elementwise in `[0, 1]`).
    pub fn holds(&self, x: f64) -> bool {
        match *self {
            Support::Real => x.is_finite(),
            Support::Positive => x > 0.0 && x < f64::INFINITY,
            Support::GreaterThan(lo) => x > lo && x < f64::INFINITY,
            Support::UnitInterval | Support::Simplex => (0.0..=1.0).contains(&x),
            Support::Interval(lo, hi) => x >= lo && x <= hi,
            Support::Boolean => x == 0.0 || x == 1.0,
            Support::IntegerInterval(lo, hi) => x == x.round() && x >= lo as f64 && x <= hi as f64,
            Support::Any => true,
        }
    }

    /// The first element of a CPU float `value` outside the support. One closure per case, so
    /// that each scan is a loop the compiler can vectorise.
    fn first_outside(&self, value: &Tensor) -> Result<Option<(usize, f64)>> {
        use crate::kernels::elementwise::first_where;
        const INF: f64 = f64::INFINITY;
        match *self {
            Support::Real => first_where(value, |x| !x.is_finite()),
            Support::Positive => first_where(value, |x| !(x > 0.0 && x < INF)),
            Support::GreaterThan(lo) => first_where(value, |x| !(x > lo && x < INF)),
            Support::UnitInterval | Support::Simplex => {
                first_where(value, |x| !(0.0..=1.0).contains(&x))
            }
            Support::Interval(lo, hi) => first_where(value, |x| !(x >= lo && x <= hi)),
            Support::Boolean => first_where(value, |x| !(x == 0.0 || x == 1.0)),
            _ => first_where(value, |x| !self.holds(x)),
        }
    }

    /// Whether every element of `value` lies in the support: scanned in place on the CPU, reduced
    /// on the device and read as one number elsewhere.
    pub fn check(&self, value: &Tensor) -> Result<bool> {
        if matches!(self, Support::Any) {
            return Ok(true);
        }
        let mut ok = if value.dtype().is_float() && value.device().is_cpu() {
            self.first_outside(value)?.is_none()
        } else {
            let m = self.contains(value)?;
            let n_in = m
                .to_dtype(candle_core::DType::F64)?
                .sum_all()?
                .to_scalar::<f64>()?;
            n_in as usize == value.elem_count()
        };
        if ok && matches!(self, Support::Simplex) && value.rank() > 0 {
            let s = value
                .to_dtype(candle_core::DType::F64)?
                .sum(value.rank() - 1)?
                .affine(1.0, -1.0)?
                .abs()?
                .max_all()?
                .to_scalar::<f64>()?;
            ok = s < 1e-4;
        }
        Ok(ok)
    }
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Support::Real => write!(f, "the reals"),
            Support::Positive => write!(f, "(0, inf)"),
            Support::GreaterThan(lo) => write!(f, "({lo}, inf)"),
            Support::UnitInterval => write!(f, "[0, 1]"),
            Support::Interval(lo, hi) => write!(f, "[{lo}, {hi}]"),
            Support::Boolean => write!(f, "{{0, 1}}"),
            Support::IntegerInterval(lo, hi) => write!(f, "{{{lo}, .., {hi}}}"),
            Support::Simplex => write!(f, "the simplex"),
            Support::Any => write!(f, "anything"),
        }
    }
}
