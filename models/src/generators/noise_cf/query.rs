//! Counterfactual queries over scored attributes, and reading a scorer's verdicts.

use candle_core::{DType, Tensor};
use ppl_core::{Error, Result};

use crate::fairness::scorer::AttributeScorer;

/// One attribute with a required value: present (`true`) or absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeValue {
    /// The attribute's name, as the scorer spells it (`"Male"`, `"Mustache"`, ..).
    pub name: String,
    /// Whether it must be present.
    pub value: bool,
}

/// A counterfactual query: "given `evidence`, what if `antecedent`; report `consequents`".
///
/// `CfQuery::new("given a woman, what if she had a moustache", &[("Male", false)],
/// &[("Mustache", true)], &["Male", "Wearing_Lipstick"])` asks, of generated faces the scorer
/// reads as women, how often their counterfactual with a moustache is read as male or wearing
/// lipstick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfQuery {
    /// A name for reports and errors.
    pub label: String,
    /// What the factual image must show (may be empty: any prior draw).
    pub evidence: Vec<AttributeValue>,
    /// What the counterfactual image must show (at least one attribute).
    pub antecedent: Vec<AttributeValue>,
    /// The attributes whose frequencies are reported.
    pub consequents: Vec<String>,
}

fn values(list: &[(&str, bool)]) -> Vec<AttributeValue> {
    list.iter()
        .map(|&(name, value)| AttributeValue {
            name: name.to_string(),
            value,
        })
        .collect()
}

fn check_distinct(label: &str, what: &str, list: &[AttributeValue]) -> Result<()> {
    for (i, a) in list.iter().enumerate() {
        if list[..i].iter().any(|b| b.name == a.name) {
            return Err(Error::usage(format!(
                "query {label:?}: {what} names {:?} twice",
                a.name
            )));
        }
    }
    Ok(())
}

impl CfQuery {
    /// A query; errors on an empty antecedent or an attribute named twice in one list.
    pub fn new(
        label: impl Into<String>,
        evidence: &[(&str, bool)],
        antecedent: &[(&str, bool)],
        consequents: &[&str],
    ) -> Result<Self> {
        let q = CfQuery {
            label: label.into(),
            evidence: values(evidence),
            antecedent: values(antecedent),
            consequents: consequents.iter().map(|s| s.to_string()).collect(),
        };
        if q.antecedent.is_empty() {
            return Err(Error::usage(format!(
                "query {:?}: the antecedent is empty",
                q.label
            )));
        }
        check_distinct(&q.label, "the evidence", &q.evidence)?;
        check_distinct(&q.label, "the antecedent", &q.antecedent)?;
        Ok(q)
    }
}

/// The seed queries of issue 11 on the cartoon faces' attributes:
///
/// 1. "given a woman, what if she had a moustache": `Male = 0` | `Mustache = 1`;
/// 2. "given a young man, what if he were bald": `Young = 1, Male = 1` | `Bald = 1`;
/// 3. "given a smiling woman, what if she were a man": `Smiling = 1, Male = 0` | `Male = 1`;
/// 4. "given a young person without glasses, what if they were old": `Young = 1,
///    Eyeglasses = 0` | `Young = 0`.
///
/// Each reports the attributes the cartoon graph makes depend on the antecedent's, and the
/// evidence's (whether they survive the counterfactual).
pub fn seed_queries() -> Vec<CfQuery> {
    let q = |label: &str, ev: &[(&str, bool)], ant: &[(&str, bool)], cons: &[&str]| CfQuery {
        label: label.to_string(),
        evidence: values(ev),
        antecedent: values(ant),
        consequents: cons.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        q(
            "given a woman, what if she had a moustache",
            &[("Male", false)],
            &[("Mustache", true)],
            &["Male", "Wearing_Lipstick", "Bald", "Young", "Smiling"],
        ),
        q(
            "given a young man, what if he were bald",
            &[("Young", true), ("Male", true)],
            &[("Bald", true)],
            &["Young", "Male", "Mustache", "Eyeglasses", "Smiling"],
        ),
        q(
            "given a smiling woman, what if she were a man",
            &[("Smiling", true), ("Male", false)],
            &[("Male", true)],
            &[
                "Smiling",
                "Wearing_Lipstick",
                "Mustache",
                "Bald",
                "Narrow_Eyes",
            ],
        ),
        q(
            "given a young person without glasses, what if they were old",
            &[("Young", true), ("Eyeglasses", false)],
            &[("Young", false)],
            &["Eyeglasses", "Bald", "Mouth_Slightly_Open", "Narrow_Eyes"],
        ),
    ]
}

/// Scorer columns of `list`, with their required values.
pub(crate) fn columns(
    scorer: &(impl AttributeScorer + ?Sized),
    list: &[AttributeValue],
) -> Result<Vec<(usize, bool)>> {
    list.iter()
        .map(|a| Ok((scorer.column(&a.name)?, a.value)))
        .collect()
}

/// The scorer's verdict: present when its probability is above 1/2, absent when below (an
/// image scored exactly 1/2, e.g. one the cartoon oracle cannot read, satisfies neither).
/// `probs` is `[n, k]`; the result is `[n]` `u8`, 1 where every condition holds.
pub(crate) fn satisfied(probs: &Tensor, conds: &[(usize, bool)]) -> Result<Tensor> {
    let n = probs.dim(0)?;
    let mut ok = Tensor::ones(n, DType::U8, probs.device())?;
    for &(c, v) in conds {
        let p = probs.narrow(1, c, 1)?.squeeze(1)?;
        let hit = if v { p.gt(0.5)? } else { p.lt(0.5)? };
        ok = ok.minimum(&hit)?;
    }
    Ok(ok)
}

/// `[n]` 0/1 verdicts (as f32) of the columns `cols` of `probs`, `[n, cols.len()]`.
pub(crate) fn present(probs: &Tensor, cols: &[usize]) -> Result<Tensor> {
    let ids = Tensor::from_vec(
        cols.iter().map(|&c| c as u32).collect::<Vec<_>>(),
        cols.len(),
        probs.device(),
    )?;
    Ok(probs.index_select(&ids, 1)?.gt(0.5)?.to_dtype(DType::F32)?)
}
