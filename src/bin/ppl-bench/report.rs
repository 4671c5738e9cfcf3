//! Timing summaries and the peers' JSON-lines records (`shared/peers/peerlib.py::record`).

use std::fmt::Write as _;

/// A JSON value, as much of JSON as the records need.
#[derive(Debug, Clone)]
pub enum Json {
    Num(f64),
    Int(i64),
    Bool(bool),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An array of numbers.
    pub fn nums(v: &[f64]) -> Json {
        Json::Arr(v.iter().map(|&x| Json::Num(x)).collect())
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Num(x) if x.is_finite() => {
                let _ = write!(out, "{x:?}");
            }
            Json::Num(_) => out.push_str("null"),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Json::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Json::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    x.write(out);
                }
                out.push(']');
            }
            Json::Obj(kv) => {
                out.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    Json::Str(k.clone()).write(out);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<f64> for Json {
    fn from(x: f64) -> Self {
        Json::Num(x)
    }
}
impl From<usize> for Json {
    fn from(x: usize) -> Self {
        Json::Int(x as i64)
    }
}
impl From<bool> for Json {
    fn from(x: bool) -> Self {
        Json::Bool(x)
    }
}
impl From<&str> for Json {
    fn from(x: &str) -> Self {
        Json::Str(x.to_string())
    }
}
impl From<Vec<f64>> for Json {
    fn from(x: Vec<f64>) -> Self {
        Json::nums(&x)
    }
}

/// Median, min, mean and 90th percentile of per-repetition times, as peerlib summarises them.
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub mean: f64,
    pub p90: f64,
}

pub fn summarise(times: &[f64]) -> Summary {
    let mut t = times.to_vec();
    t.sort_by(|a, b| a.total_cmp(b));
    let n = t.len();
    Summary {
        median: if n % 2 == 1 {
            t[n / 2]
        } else {
            0.5 * (t[n / 2 - 1] + t[n / 2])
        },
        min: t[0],
        mean: t.iter().sum::<f64>() / n as f64,
        // Python's s[min(n - 1, int(0.9 * n))].
        p90: t[((0.9 * n as f64) as usize).min(n - 1)],
    }
}

/// One result line in the peers' format.
pub struct Record {
    fields: Vec<(String, Json)>,
    pub verified: bool,
}

impl Record {
    /// The common fields; `extra` fields follow with [`Record::field`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bench: &str,
        variant: &str,
        times: &[f64],
        unit: &str,
        units_per_rep: usize,
        answer: impl Into<Json>,
        expected: impl Into<Json>,
        tol: f64,
        verified: bool,
    ) -> Self {
        let s = summarise(times);
        let fields = vec![
            ("bench".into(), bench.into()),
            ("system".into(), "ppl".into()),
            ("variant".into(), variant.into()),
            ("median_s".into(), s.median.into()),
            ("min_s".into(), s.min.into()),
            ("mean_s".into(), s.mean.into()),
            ("p90_s".into(), s.p90.into()),
            (
                "per_unit_us".into(),
                (s.median / units_per_rep as f64 * 1e6).into(),
            ),
            ("unit".into(), unit.into()),
            ("units_per_rep".into(), units_per_rep.into()),
            ("reps".into(), times.len().into()),
            ("answer".into(), answer.into()),
            ("expected".into(), expected.into()),
            ("tol".into(), tol.into()),
            ("verified".into(), verified.into()),
        ];
        Record { fields, verified }
    }

    /// Reports the line under another system than `ppl`: the by-hand floors, written with plain
    /// tensor ops and not through the PPL (the peers' `torch` rows), are `candle`, so that a
    /// comparison of ours against the peers never picks them.
    pub fn system(mut self, system: &str) -> Self {
        self.fields[1].1 = system.into();
        self
    }

    /// Adds a benchmark-specific field.
    pub fn field(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.fields.push((key.to_string(), value.into()));
        self
    }

    /// Prints the line (with the versions field last, as peerlib does); returns `verified`.
    pub fn emit(mut self) -> bool {
        self.fields.push((
            "versions".into(),
            Json::Obj(vec![
                ("ppl".into(), env!("CARGO_PKG_VERSION").into()),
                ("candle".into(), "0.11.1".into()),
                (
                    "rayon_threads".into(),
                    std::env::var("RAYON_NUM_THREADS")
                        .unwrap_or_else(|_| "default".into())
                        .as_str()
                        .into(),
                ),
            ]),
        ));
        let mut out = String::new();
        Json::Obj(self.fields).write(&mut out);
        println!("{out}");
        self.verified
    }
}

/// `reps` timed runs of `f` after `warmup` untimed ones: the times (seconds) and the last
/// result. Zero repetitions is a usage error.
pub fn timed<R>(
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> ppl::Result<R>,
) -> ppl::Result<(Vec<f64>, R)> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(reps);
    let mut out = None;
    for _ in 0..reps {
        let t0 = std::time::Instant::now();
        let r = f()?;
        times.push(t0.elapsed().as_secs_f64());
        out = Some(r);
    }
    let last = out.ok_or_else(|| ppl::Error::usage("--reps must be at least 1"))?;
    Ok((times, last))
}
