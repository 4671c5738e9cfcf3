//! B5 `discrete_scm`: `P(Bald = 1 | do(Young = 0))` (Q1) and the counterfactual
//! `P(Bald_{Young←0} = 1 | Young = 1, Bald = 0)` (Q2) from 1,000,000 samples, against exact
//! enumeration in rational arithmetic.

use ppl::prelude::*;
use ppl::workloads::b5;

use crate::report::Record;
use crate::Opts;

const BENCH: &str = "B5_discrete_scm";
const N: usize = 1_000_000;

/// A non-negative rational, enough for enumerating the SCM's small probability tables.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Frac(u128, u128);

impl Frac {
    fn new(num: u128, den: u128) -> Frac {
        let g = gcd(num, den);
        Frac(num / g, den / g)
    }
    fn add(self, o: Frac) -> Frac {
        Frac::new(self.0 * o.1 + o.0 * self.1, self.1 * o.1)
    }
    fn sub(self, o: Frac) -> Frac {
        Frac::new(self.0 * o.1 - o.0 * self.1, self.1 * o.1)
    }
    fn mul(self, o: Frac) -> Frac {
        Frac::new(self.0 * o.0, self.1 * o.1)
    }
    fn div(self, o: Frac) -> Frac {
        Frac::new(self.0 * o.1, self.1 * o.0)
    }
    fn lt(self, o: Frac) -> bool {
        self.0 * o.1 < o.0 * self.1
    }
    fn f64(self) -> f64 {
        self.0 as f64 / self.1 as f64
    }
    fn text(self) -> String {
        format!("{}/{}", self.0, self.1)
    }
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

const ZERO: Frac = Frac(0, 1);
const ONE: Frac = Frac(1, 1);
const P_YOUNG: Frac = Frac(3, 4);
const P_MALE: Frac = Frac(21, 50);
/// `P(Bald = 1 | Young, Male)`, indexed `[young][male]`.
const P_BALD: [[Frac; 2]; 2] = [[Frac(1, 50), Frac(3, 10)], [Frac(1, 200), Frac(2, 25)]];

fn p_of(p: Frac, v: usize) -> Frac {
    if v == 1 {
        p
    } else {
        ONE.sub(p)
    }
}

/// `Σ_m P(M = m) P(B = 1 | Y = 0, M = m)`.
fn exact_q1() -> Frac {
    (0..2).fold(ZERO, |acc, m| acc.add(p_of(P_MALE, m).mul(P_BALD[0][m])))
}

/// Enumerates Young, Male and the cells of `U_B` cut at both worlds' thresholds: a cell decides
/// the factual and the counterfactual Bald at once.
fn exact_q2() -> Frac {
    let (mut num, mut den) = (ZERO, ZERO);
    for (y, row) in P_BALD.iter().enumerate() {
        for (m, &pf) in row.iter().enumerate() {
            let pc = P_BALD[0][m];
            let mut cuts = vec![ZERO, ONE, pf, pc];
            cuts.sort_by(|a, b| a.f64().total_cmp(&b.f64()));
            cuts.dedup();
            for w in cuts.windows(2) {
                let mid = w[0].add(w[1]).div(Frac(2, 1));
                let (bald_f, bald_cf) = (mid.lt(pf), mid.lt(pc));
                let mass = p_of(P_YOUNG, y).mul(p_of(P_MALE, m)).mul(w[1].sub(w[0]));
                if y == 1 && !bald_f {
                    den = den.add(mass);
                    if bald_cf {
                        num = num.add(mass);
                    }
                }
            }
        }
    }
    num.div(den)
}

/// Times `reps` runs of `f` after reseeding with `seed_value` and `warmup` untimed runs.
fn timed<R>(
    seed_value: u64,
    warmup: usize,
    reps: usize,
    f: impl FnMut() -> Result<R>,
) -> Result<(Vec<f64>, R)> {
    ppl::rng::set_seed(seed_value);
    crate::report::timed(warmup, reps, f)
}

/// Q2 by hand with exogenous noise tensors (not the PPL; the peers' `torch` floor): keep the
/// samples with Young = 1 and Bald = 0 in the factual world, average `1[U_B < p(0, M)]`.
/// Returns the estimate and the number kept.
fn q2_by_hand(n: usize) -> Result<(f64, f64)> {
    let dev = Device::Cpu;
    let [u_y, u_m, u_b] = ppl::rng::with_rng(|r| -> Result<[Tensor; 3]> {
        Ok([
            ppl::rng::uniform01(r, n, DType::F32, &dev)?,
            ppl::rng::uniform01(r, n, DType::F32, &dev)?,
            ppl::rng::uniform01(r, n, DType::F32, &dev)?,
        ])
    })?;
    let young = u_y.lt(b5::P_YOUNG)?.to_dtype(DType::F32)?;
    let male = u_m.lt(b5::P_MALE)?.to_dtype(DType::F32)?;
    let [[t00, t01], [t10, t11]] = b5::P_BALD;
    // p(y, m), exact on {0, 1}
    let p_f = ((&young * (t10 - t00))? + (&male * (t01 - t00))?)?;
    let p_f = ((&young * &male)? * (t11 - t10 - t01 + t00))?
        .add(&p_f)?
        .affine(1.0, t00)?;
    let p_cf = male.affine(t01 - t00, t00)?;
    let bald_f = u_b.lt(&p_f)?.to_dtype(DType::F32)?;
    let keep = (&young * bald_f.affine(-1.0, 1.0)?)?;
    let bald_cf = u_b.lt(&p_cf)?.to_dtype(DType::F32)?;
    let sum =
        |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?) };
    let kept = sum(&keep)?;
    Ok((sum(&(&keep * &bald_cf)?)? / kept, kept))
}

pub fn run(opts: &Opts) -> Result<bool> {
    let (reps, warmup) = (opts.reps.unwrap_or(10), opts.warmup.unwrap_or(2));
    let dev = Device::Cpu;
    let (e1, e2) = (exact_q1(), exact_q2());
    // The enumeration and the workload's constants must agree (86/625 and 1011/9635).
    let exact_ok =
        (e1.f64() - b5::Q1_EXACT).abs() < 1e-15 && (e2.f64() - b5::Q2_EXACT).abs() < 1e-15;
    let mut ok = true;

    let within =
        |est: f64, p: f64, n_eff: f64| (est - p).abs() < 3.0 * (p * (1.0 - p) / n_eff).sqrt();

    // Q1
    let p = e1.f64();
    ppl::rng::set_seed(0);
    let first = b5::q1(N, &dev)?;
    let (times, last) = timed(1, warmup, reps, || b5::q1(N, &dev))?;
    let se = (p * (1.0 - p) / N as f64).sqrt();
    ok &= Record::new(
        BENCH,
        "Q1:do",
        &times,
        "sample",
        N,
        first,
        p,
        3.0 * se,
        exact_ok && within(first, p, N as f64) && within(last, p, N as f64),
    )
    .field("n", N)
    .field("se", se)
    .field("answer_last_rep", last)
    .field("exact_fraction", e1.text().as_str())
    .emit();

    // Q2 through the twin world
    let p = e2.f64();
    ppl::rng::set_seed(0);
    let (first, n_eff) = b5::q2(N, &dev)?;
    let (times, (last, n_eff_last)) = timed(1, warmup, reps, || b5::q2(N, &dev))?;
    let se = (p * (1.0 - p) / n_eff).sqrt();
    ok &= Record::new(
        BENCH,
        "Q2:twin_world",
        &times,
        "sample",
        N,
        first,
        p,
        3.0 * se,
        exact_ok && within(first, p, n_eff) && within(last, p, n_eff_last),
    )
    .field("n", N)
    .field("n_eff", n_eff)
    .field("se", se)
    .field("answer_last_rep", last)
    .field("exact_fraction", e2.text().as_str())
    .emit();

    // Q2 by hand
    ppl::rng::set_seed(0);
    let (first, kept) = q2_by_hand(N)?;
    let (times, (last, kept_last)) = timed(1, warmup, reps, || q2_by_hand(N))?;
    let se = (p * (1.0 - p) / kept).sqrt();
    ok &= Record::new(
        BENCH,
        "Q2:by_hand_exogenous",
        &times,
        "sample",
        N,
        first,
        p,
        3.0 * se,
        exact_ok && within(first, p, kept) && within(last, p, kept_last),
    )
    .system("candle")
    .field("n", N)
    .field("n_eff", kept)
    .field("se", se)
    .field("answer_last_rep", last)
    .field("exact_fraction", e2.text().as_str())
    .emit();
    Ok(ok)
}
