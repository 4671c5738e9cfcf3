//! A small description of structural causal models: a DAG of named discrete or linear-Gaussian
//! variables with their conditional distributions, runnable under the handlers, with its exact
//! joint and its graph.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::dag::Dag;
use crate::dist::{Bernoulli, Categorical, Normal};
use crate::error::{Error, Result};
use crate::runtime::{plate, sample};

/// The conditional distribution of one variable given its parents.
#[derive(Debug, Clone, PartialEq)]
pub enum Cpd {
    /// A variable with values `0..card`. `table[c][v] = P(V = v | parents in configuration c)`,
    /// configurations numbered in mixed radix over the parents in their declared order, the last
    /// parent varying fastest. As a site: `Bernoulli` for two values, `Categorical` for more
    /// (threshold and Gumbel-max noise).
    Discrete {
        /// The number of values.
        card: usize,
        /// One row of probabilities per parent configuration.
        table: Vec<Vec<f64>>,
    },
    /// `V = intercept + Σ_k weights[k] · parent_k + sd · U`, `U ~ N(0, 1)`. Parents may be
    /// discrete or continuous.
    LinearGaussian {
        /// The constant term.
        intercept: f64,
        /// One weight per parent.
        weights: Vec<f64>,
        /// The noise's standard deviation (> 0).
        sd: f64,
    },
}

#[derive(Debug, Clone)]
struct Var {
    name: String,
    parents: Vec<usize>,
    cpd: Cpd,
    /// The CPD as a tensor: `P(V = 1 | c)` for binary variables, rows for categorical ones.
    table: Option<Tensor>,
}

/// A structural causal model over named variables, declared parents first.
///
/// ```
/// use ppl_core::causal::Scm;
/// use ppl_core::{handlers::do_, infer::enumerate};
///
/// let scm = Scm::builder()
///     .binary("z", &[], vec![0.3])
///     .binary("x", &["z"], vec![0.2, 0.8])
///     .binary("y", &["x", "z"], vec![0.1, 0.5, 0.4, 0.9])
///     .build()?;
/// // P(y = 1 | do(x = 1)) by the handlers and by truncated factorisation.
/// let post = enumerate(|| do_([("x", 1.0)], || scm.run()))?;
/// let p = post.probability(|tr| Ok(tr.value("y")?.to_scalar::<f64>()? == 1.0))?;
/// let exact: f64 = scm.joint_do(&[("x", 1)])?.iter().filter(|(a, _)| a[2] == 1).map(|(_, p)| p).sum();
/// assert!((p - exact).abs() < 1e-12 && (exact - (0.7 * 0.4 + 0.3 * 0.9)).abs() < 1e-12);
/// assert!(scm.dag().d_separated(&["x"], &["z"], &[])? == false);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Scm {
    vars: Vec<Var>,
    dag: Dag,
}

/// Declares an [`Scm`] variable by variable; errors surface at [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct ScmBuilder {
    decls: Vec<(String, Vec<String>, Cpd)>,
}

impl ScmBuilder {
    /// A variable with `card` values and CPD rows `table` (see [`Cpd::Discrete`]).
    pub fn discrete(
        mut self,
        name: &str,
        card: usize,
        parents: &[&str],
        table: Vec<Vec<f64>>,
    ) -> Self {
        self.decls.push((
            name.to_string(),
            parents.iter().map(|s| s.to_string()).collect(),
            Cpd::Discrete { card, table },
        ));
        self
    }

    /// A binary variable with `P(V = 1 | c) = p_one[c]`.
    pub fn binary(self, name: &str, parents: &[&str], p_one: Vec<f64>) -> Self {
        let table = p_one.into_iter().map(|p| vec![1.0 - p, p]).collect();
        self.discrete(name, 2, parents, table)
    }

    /// A linear-Gaussian variable (see [`Cpd::LinearGaussian`]).
    pub fn linear_gaussian(
        mut self,
        name: &str,
        parents: &[&str],
        intercept: f64,
        weights: Vec<f64>,
        sd: f64,
    ) -> Self {
        self.decls.push((
            name.to_string(),
            parents.iter().map(|s| s.to_string()).collect(),
            Cpd::LinearGaussian {
                intercept,
                weights,
                sd,
            },
        ));
        self
    }

    /// The model, validated: parents declared before their children, tables of the right size
    /// with rows of probabilities summing to one, discrete variables with discrete parents only,
    /// positive noise scales.
    pub fn build(self) -> Result<Scm> {
        let mut vars: Vec<Var> = Vec::new();
        for (name, parent_names, cpd) in self.decls {
            let bad = |why: String| Error::usage(format!("Scm variable `{name}`: {why}"));
            if vars.iter().any(|v| v.name == name) {
                return Err(bad("declared twice".into()));
            }
            let parents = parent_names
                .iter()
                .map(|p| {
                    vars.iter()
                        .position(|v| &v.name == p)
                        .ok_or_else(|| bad(format!("parent `{p}` is not declared before it")))
                })
                .collect::<Result<Vec<_>>>()?;
            let table = match &cpd {
                Cpd::Discrete { card, table } => {
                    if *card < 2 {
                        return Err(bad(format!("needs at least 2 values, got {card}")));
                    }
                    let mut configs = 1;
                    for &p in &parents {
                        match vars[p].cpd {
                            Cpd::Discrete { card, .. } => configs *= card,
                            Cpd::LinearGaussian { .. } => {
                                return Err(bad(format!(
                                    "a discrete variable cannot have the continuous parent `{}`",
                                    vars[p].name
                                )))
                            }
                        }
                    }
                    if table.len() != configs {
                        return Err(bad(format!(
                            "{configs} parent configurations but {} table rows",
                            table.len()
                        )));
                    }
                    for (c, row) in table.iter().enumerate() {
                        let ok = row.len() == *card
                            && row.iter().all(|p| (0.0..=1.0).contains(p))
                            && (row.iter().sum::<f64>() - 1.0).abs() < 1e-9;
                        if !ok {
                            return Err(bad(format!(
                                "row {c} must hold {card} probabilities summing to 1, got {row:?}"
                            )));
                        }
                    }
                    let t = if *card == 2 {
                        let p: Vec<f64> = table.iter().map(|r| r[1]).collect();
                        Tensor::from_vec(p, configs, &Device::Cpu)?
                    } else {
                        let flat: Vec<f64> = table.iter().flatten().copied().collect();
                        Tensor::from_vec(flat, (configs, *card), &Device::Cpu)?
                    };
                    Some(t)
                }
                Cpd::LinearGaussian {
                    weights,
                    sd,
                    intercept,
                } => {
                    if weights.len() != parents.len() {
                        return Err(bad(format!(
                            "{} parents but {} weights",
                            parents.len(),
                            weights.len()
                        )));
                    }
                    if !(*sd > 0.0 && sd.is_finite() && intercept.is_finite()) {
                        return Err(bad(format!(
                            "needs a finite intercept and sd > 0, got sd = {sd}"
                        )));
                    }
                    None
                }
            };
            vars.push(Var {
                name,
                parents,
                cpd,
                table,
            });
        }
        let dag = Dag::from_parents(
            vars.iter().map(|v| v.name.clone()).collect(),
            vars.iter().map(|v| v.parents.clone()).collect(),
        )?;
        Ok(Scm { vars, dag })
    }
}

impl Scm {
    /// An empty builder.
    pub fn builder() -> ScmBuilder {
        ScmBuilder::default()
    }

    /// The causal graph.
    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// The variables' names, in declaration (topological) order.
    pub fn names(&self) -> Vec<&str> {
        self.vars.iter().map(|v| v.name.as_str()).collect()
    }

    /// The number of values of each variable (`None` for continuous ones).
    pub fn cards(&self) -> Vec<Option<usize>> {
        self.vars
            .iter()
            .map(|v| match v.cpd {
                Cpd::Discrete { card, .. } => Some(card),
                Cpd::LinearGaussian { .. } => None,
            })
            .collect()
    }

    /// The CPD of variable `name`.
    pub fn cpd(&self, name: &str) -> Result<&Cpd> {
        Ok(&self.vars[self.dag.index(name)?].cpd)
    }

    /// Runs the model: one sample site per variable, named after it, in declaration order, with
    /// f64 values on the CPU. Returns the values by name.
    pub fn run(&self) -> Result<HashMap<String, Tensor>> {
        let mut values: Vec<Tensor> = Vec::with_capacity(self.vars.len());
        for var in &self.vars {
            let v = sample(var.name.clone(), self.site_dist(var, &values)?)?;
            values.push(v);
        }
        Ok(self
            .vars
            .iter()
            .map(|v| v.name.clone())
            .zip(values)
            .collect())
    }

    /// [`run`](Self::run) inside a plate `name` of `n` independent units.
    pub fn run_plate(&self, name: &str, n: usize) -> Result<HashMap<String, Tensor>> {
        plate(name, n, |_| self.run())
    }

    fn site_dist(&self, var: &Var, values: &[Tensor]) -> Result<crate::dist::DistRef> {
        use crate::dist::IntoDist;
        match &var.cpd {
            Cpd::Discrete { card, .. } => {
                let table = var.table.as_ref().expect("discrete variables have tables");
                let config = self.config_index(var, values)?;
                let shape = config.dims().to_vec();
                let ix = config.flatten_all()?.to_dtype(DType::U32)?;
                if *card == 2 {
                    let p = table.index_select(&ix, 0)?.reshape(shape)?;
                    Ok(Bernoulli::from_probs(p)?.into_dist())
                } else {
                    let mut s = shape.clone();
                    s.push(*card);
                    let rows = table.index_select(&ix, 0)?.reshape(s)?;
                    Ok(Categorical::from_probs(rows)?.into_dist())
                }
            }
            Cpd::LinearGaussian {
                intercept,
                weights,
                sd,
            } => {
                let mut loc = Tensor::new(*intercept, &Device::Cpu)?;
                for (&p, &w) in var.parents.iter().zip(weights) {
                    loc = loc.broadcast_add(&values[p].to_dtype(DType::F64)?.affine(w, 0.0)?)?;
                }
                Ok(Normal::new(loc, *sd)?.into_dist())
            }
        }
    }

    /// The mixed-radix configuration number of `var`'s parents, elementwise (f64).
    fn config_index(&self, var: &Var, values: &[Tensor]) -> Result<Tensor> {
        let mut config = Tensor::new(0.0f64, &Device::Cpu)?;
        for &p in &var.parents {
            let card = match self.vars[p].cpd {
                Cpd::Discrete { card, .. } => card,
                Cpd::LinearGaussian { .. } => unreachable!("checked at build"),
            };
            config = config
                .affine(card as f64, 0.0)?
                .broadcast_add(&values[p].to_dtype(DType::F64)?)?;
        }
        Ok(config)
    }

    fn discrete_cards(&self) -> Result<Vec<usize>> {
        self.vars
            .iter()
            .map(|v| match v.cpd {
                Cpd::Discrete { card, .. } => Ok(card),
                Cpd::LinearGaussian { .. } => Err(Error::Unsupported {
                    what: format!(
                        "the exact joint of an SCM with continuous variable `{}`",
                        v.name
                    ),
                    why: "it is a table over discrete variables".into(),
                }),
            })
            .collect()
    }

    /// The exact joint of an all-discrete model: every assignment (values in declaration order)
    /// with its probability.
    pub fn joint(&self) -> Result<Vec<(Vec<usize>, f64)>> {
        self.joint_do(&[])
    }

    /// The exact joint under `do(V = v)` for each `(V, v)` (truncated factorisation): the
    /// intervened variables are fixed and their factors dropped.
    pub fn joint_do(&self, actions: &[(&str, usize)]) -> Result<Vec<(Vec<usize>, f64)>> {
        let cards = self.discrete_cards()?;
        let mut fixed: Vec<Option<usize>> = vec![None; cards.len()];
        for &(name, v) in actions {
            let i = self.dag.index(name)?;
            if v >= cards[i] {
                return Err(Error::usage(format!(
                    "do({name} = {v}): `{name}` takes values 0..{}",
                    cards[i]
                )));
            }
            fixed[i] = Some(v);
        }
        let mut out = Vec::new();
        let total: usize = cards.iter().product();
        for flat in 0..total {
            let mut a = vec![0; cards.len()];
            let mut rest = flat;
            for i in (0..cards.len()).rev() {
                a[i] = rest % cards[i];
                rest /= cards[i];
            }
            if fixed
                .iter()
                .zip(&a)
                .any(|(f, &x)| f.is_some_and(|f| f != x))
            {
                continue;
            }
            let mut p = 1.0;
            for (i, var) in self.vars.iter().enumerate() {
                if fixed[i].is_some() {
                    continue;
                }
                let Cpd::Discrete { table, .. } = &var.cpd else {
                    unreachable!("checked by discrete_cards")
                };
                let mut c = 0;
                for &q in &var.parents {
                    c = c * cards[q] + a[q];
                }
                p *= table[c][a[i]];
            }
            out.push((a, p));
        }
        Ok(out)
    }
}
