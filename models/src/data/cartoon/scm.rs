//! The attribute graph and its conditional probability tables.
//!
//! Nine binary attributes follow the CausalGAN graph (Kocaoglu et al. 2018) restricted to the
//! attributes a cartoon face can show:
//!
//! ```text
//! Young -> Eyeglasses, Bald, Mustache, Smiling, Mouth_Slightly_Open, Narrow_Eyes
//! Male  -> Bald, Mustache, Smiling, Narrow_Eyes, Wearing_Lipstick
//! Smiling -> Mouth_Slightly_Open, Narrow_Eyes
//! ```
//!
//! Every attribute is a threshold mechanism `V = 1[U_V < p_V(parents)]` with `U_V ~ U(0, 1)`, so
//! given the exogenous `U` the value of every attribute under any intervention is determined:
//! counterfactuals are exact. [`Cpds`] holds `p_V` for every parent configuration, and the
//! enumeration helpers ([`Cpds::marginals`], [`Cpds::interventional_marginals`]) give the exact
//! answers that sampled estimates and other engines are checked against.

use ppl_core::causal::Scm;
use ppl_core::{Error, Result};

/// A binary face attribute, named as in CelebA's `list_attr_celeba.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    /// `Young`: a root.
    Young,
    /// `Male`: a root.
    Male,
    /// `Eyeglasses`, caused by `Young`.
    Eyeglasses,
    /// `Bald`, caused by `Young` and `Male`.
    Bald,
    /// `Mustache`, caused by `Young` and `Male`.
    Mustache,
    /// `Smiling`, caused by `Young` and `Male`.
    Smiling,
    /// `Wearing_Lipstick`, caused by `Male`.
    WearingLipstick,
    /// `Mouth_Slightly_Open`, caused by `Young` and `Smiling`.
    MouthSlightlyOpen,
    /// `Narrow_Eyes`, caused by `Young`, `Male` and `Smiling`.
    NarrowEyes,
}

/// The number of binary attributes.
pub const NUM_ATTRS: usize = 9;

impl Attr {
    /// Every attribute, in a topological order of the graph (parents before children); the
    /// index of an attribute in this list is [`Attr::index`].
    pub const ALL: [Attr; NUM_ATTRS] = [
        Attr::Young,
        Attr::Male,
        Attr::Eyeglasses,
        Attr::Bald,
        Attr::Mustache,
        Attr::Smiling,
        Attr::WearingLipstick,
        Attr::MouthSlightlyOpen,
        Attr::NarrowEyes,
    ];

    /// The position of the attribute in [`Attr::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The CelebA name (`"Wearing_Lipstick"`).
    pub fn name(self) -> &'static str {
        match self {
            Attr::Young => "Young",
            Attr::Male => "Male",
            Attr::Eyeglasses => "Eyeglasses",
            Attr::Bald => "Bald",
            Attr::Mustache => "Mustache",
            Attr::Smiling => "Smiling",
            Attr::WearingLipstick => "Wearing_Lipstick",
            Attr::MouthSlightlyOpen => "Mouth_Slightly_Open",
            Attr::NarrowEyes => "Narrow_Eyes",
        }
    }

    /// The attribute with CelebA name `name`.
    pub fn from_name(name: &str) -> Option<Attr> {
        Attr::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The attribute's parents, in the order that indexes its table (see [`Cpds::table`]).
    pub fn parents(self) -> &'static [Attr] {
        use Attr::*;
        match self {
            Young | Male => &[],
            Eyeglasses => &[Young],
            Bald | Mustache | Smiling => &[Young, Male],
            WearingLipstick => &[Male],
            MouthSlightlyOpen => &[Young, Smiling],
            NarrowEyes => &[Young, Male, Smiling],
        }
    }

    /// The attributes that have `self` as a parent.
    pub fn children(self) -> Vec<Attr> {
        Attr::ALL
            .into_iter()
            .filter(|c| c.parents().contains(&self))
            .collect()
    }

    /// Every attribute reachable from `self` along the graph's edges (not `self`).
    pub fn descendants(self) -> Vec<Attr> {
        let mut reached = [false; NUM_ATTRS];
        reached[self.index()] = true;
        // ALL is topological, so one forward sweep closes the set.
        for a in Attr::ALL {
            if a.parents().iter().any(|p| reached[p.index()]) {
                reached[a.index()] = true;
            }
        }
        Attr::ALL
            .into_iter()
            .filter(|a| *a != self && reached[a.index()])
            .collect()
    }
}

/// The conditional probabilities `p_V(parents) = P(V = 1 | parents)` of every attribute.
///
/// The table of an attribute with parents `[P0, .., P(k-1)]` has `2^k` entries; the entry for a
/// parent configuration is at index `sum_i P_i * 2^(k-1-i)` (the first parent is the most
/// significant bit, as in a nested table `t[p0][p1]..`). Entries may be 0 or 1, which makes an
/// attribute a deterministic function of its parents (no overlap).
#[derive(Debug, Clone, PartialEq)]
pub struct Cpds {
    tables: [Vec<f64>; NUM_ATTRS],
}

impl Default for Cpds {
    /// Strengths loosely after CelebA's attribute statistics.
    fn default() -> Self {
        Cpds {
            tables: [
                vec![0.75],                                           // Young
                vec![0.42],                                           // Male
                vec![0.25, 0.04],                                     // Eyeglasses | Young
                vec![0.02, 0.35, 0.005, 0.08],                        // Bald | Young, Male
                vec![0.01, 0.40, 0.005, 0.15],                        // Mustache | Young, Male
                vec![0.45, 0.35, 0.60, 0.45],                         // Smiling | Young, Male
                vec![0.75, 0.02],                                     // Wearing_Lipstick | Male
                vec![0.15, 0.70, 0.25, 0.85], // Mouth_Slightly_Open | Young, Smiling
                vec![0.10, 0.35, 0.12, 0.40, 0.05, 0.25, 0.06, 0.30], // Narrow_Eyes | Y, M, S
            ],
        }
    }
}

fn check_table(attr: Attr, table: &[f64]) -> Result<()> {
    let want = 1usize << attr.parents().len();
    if table.len() != want {
        return Err(Error::param(
            "Cpds",
            attr.name(),
            format!(
                "the table needs {want} entries (one per configuration of {:?}), got {}",
                attr.parents().iter().map(|p| p.name()).collect::<Vec<_>>(),
                table.len()
            ),
        ));
    }
    if let Some((i, p)) = table
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(Error::param(
            "Cpds",
            attr.name(),
            format!("entry {i} is {p}, not a probability in [0, 1]"),
        ));
    }
    Ok(())
}

fn logit(p: f64) -> f64 {
    const LIM: f64 = 30.0;
    (p.ln() - (1.0 - p).ln()).clamp(-LIM, LIM)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Cpds {
    /// The table of `attr` (see the type's documentation for its layout).
    pub fn table(&self, attr: Attr) -> &[f64] {
        &self.tables[attr.index()]
    }

    /// Replaces the table of `attr`; fails if it has the wrong length or an entry outside
    /// [0, 1].
    pub fn set_table(&mut self, attr: Attr, table: &[f64]) -> Result<()> {
        check_table(attr, table)?;
        self.tables[attr.index()] = table.to_vec();
        Ok(())
    }

    /// The same tables with every parent effect scaled by `strength` on the logit scale:
    /// `logit p'(c) = m + strength * (logit p(c) - m)`, `m` the mean logit of the table.
    ///
    /// `strength = 0` makes every attribute independent of its parents (full overlap), 1 keeps
    /// the tables, and larger values push them towards 0 and 1 (strong spurious correlations,
    /// little overlap). Root attributes are unchanged. Logits are clipped to ±30.
    pub fn with_strength(&self, strength: f64) -> Result<Cpds> {
        if !strength.is_finite() || strength < 0.0 {
            return Err(Error::param(
                "Cpds",
                "strength",
                format!("must be finite and non-negative, got {strength}"),
            ));
        }
        let mut out = self.clone();
        for t in out.tables.iter_mut() {
            let logits: Vec<f64> = t.iter().map(|&p| logit(p)).collect();
            let m = logits.iter().sum::<f64>() / logits.len() as f64;
            for (p, l) in t.iter_mut().zip(logits) {
                *p = sigmoid(m + strength * (l - m));
            }
        }
        Ok(out)
    }

    /// `P(attr = 1 | parents)` with the parents read from `values` (indexed by
    /// [`Attr::index`]).
    pub fn prob(&self, attr: Attr, values: &[bool; NUM_ATTRS]) -> f64 {
        let idx = attr
            .parents()
            .iter()
            .fold(0usize, |acc, p| (acc << 1) | usize::from(values[p.index()]));
        self.tables[attr.index()][idx]
    }

    /// The attributes determined by the exogenous `u` under `interventions`: each attribute
    /// is either set by an intervention or computed as `1[u < p(parents)]` in topological
    /// order. With no interventions this is the factual world.
    pub fn solve(&self, u: &[f64; NUM_ATTRS], interventions: &[(Attr, bool)]) -> [bool; NUM_ATTRS] {
        let mut v = [false; NUM_ATTRS];
        for a in Attr::ALL {
            v[a.index()] = match interventions.iter().rev().find(|(b, _)| *b == a) {
                Some(&(_, x)) => x,
                None => u[a.index()] < self.prob(a, &v),
            };
        }
        v
    }

    /// The probability of the full configuration `values` under `do(interventions)`
    /// (intervened attributes contribute 1 if they match the set value, 0 otherwise).
    pub fn joint(&self, values: &[bool; NUM_ATTRS], interventions: &[(Attr, bool)]) -> f64 {
        Attr::ALL.into_iter().fold(1.0, |acc, a| {
            let f = match interventions.iter().rev().find(|(b, _)| *b == a) {
                Some(&(_, x)) => f64::from(u8::from(x == values[a.index()])),
                None => {
                    let p = self.prob(a, values);
                    if values[a.index()] {
                        p
                    } else {
                        1.0 - p
                    }
                }
            };
            acc * f
        })
    }

    /// Every one of the 2^9 configurations with its probability under `do(interventions)`.
    pub fn enumerate(&self, interventions: &[(Attr, bool)]) -> Vec<([bool; NUM_ATTRS], f64)> {
        (0..1usize << NUM_ATTRS)
            .map(|bits| {
                let mut v = [false; NUM_ATTRS];
                for (i, x) in v.iter_mut().enumerate() {
                    *x = bits >> i & 1 == 1;
                }
                let p = self.joint(&v, interventions);
                (v, p)
            })
            .collect()
    }

    /// `P(V = 1)` of every attribute (indexed by [`Attr::index`]), exact by enumeration.
    pub fn marginals(&self) -> [f64; NUM_ATTRS] {
        self.interventional_marginals(&[])
    }

    /// `P(V = 1 | do(interventions))` of every attribute, exact by enumeration.
    pub fn interventional_marginals(&self, interventions: &[(Attr, bool)]) -> [f64; NUM_ATTRS] {
        let mut m = [0.0; NUM_ATTRS];
        for (v, p) in self.enumerate(interventions) {
            for (mi, &x) in m.iter_mut().zip(v.iter()) {
                if x {
                    *mi += p;
                }
            }
        }
        m
    }

    /// The binary attributes as a discrete [`Scm`] of the runtime (CelebA names, the same
    /// tables), so the handler-based engines — enumeration, twin worlds, the extended structural
    /// model of [`fairness::esm`](crate::fairness::esm) — answer queries about the data's own
    /// attribute mechanisms exactly. The `Scm`'s categorical noise is the mirror image of the
    /// threshold `1[U < p]` (`U ↦ 1 − U`), which leaves every joint counterfactual
    /// distribution unchanged.
    ///
    /// ```
    /// use models::data::cartoon::{Attr, Cpds};
    /// let scm = Cpds::default().to_scm()?;
    /// let joint = scm.joint()?;
    /// let p_male: f64 = joint.iter().filter(|(v, _)| v[Attr::Male.index()] == 1).map(|(_, p)| p).sum();
    /// assert!((p_male - Cpds::default().marginals()[Attr::Male.index()]).abs() < 1e-12);
    /// # Ok::<(), ppl_core::Error>(())
    /// ```
    pub fn to_scm(&self) -> Result<Scm> {
        Attr::ALL
            .iter()
            .fold(Scm::builder(), |b, a| {
                let parents: Vec<&str> = a.parents().iter().map(|p| p.name()).collect();
                b.binary(a.name(), &parents, self.table(*a).to_vec())
            })
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_is_topological_and_descendants_close() {
        for a in Attr::ALL {
            for p in a.parents() {
                assert!(p.index() < a.index(), "{:?} before {:?}", p, a);
            }
        }
        assert_eq!(
            Attr::Smiling.descendants(),
            vec![Attr::MouthSlightlyOpen, Attr::NarrowEyes]
        );
        // Male reaches Mouth_Slightly_Open through Smiling.
        assert_eq!(
            Attr::Male.descendants(),
            vec![
                Attr::Bald,
                Attr::Mustache,
                Attr::Smiling,
                Attr::WearingLipstick,
                Attr::MouthSlightlyOpen,
                Attr::NarrowEyes
            ]
        );
        assert_eq!(Attr::Young.descendants().len(), 6);
        assert!(Attr::NarrowEyes.descendants().is_empty());
        assert_eq!(
            Attr::from_name("Wearing_Lipstick"),
            Some(Attr::WearingLipstick)
        );
    }

    #[test]
    fn enumeration_sums_to_one_and_roots_match_their_tables() {
        let c = Cpds::default();
        let total: f64 = c.enumerate(&[]).iter().map(|(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let m = c.marginals();
        assert!((m[0] - 0.75).abs() < 1e-12 && (m[1] - 0.42).abs() < 1e-12);
        // Lipstick has one parent: P = 0.58 * 0.75 + 0.42 * 0.02.
        assert!((m[Attr::WearingLipstick.index()] - (0.58 * 0.75 + 0.42 * 0.02)).abs() < 1e-12);
        // do(Male = 1) leaves Young alone and sets lipstick's rate to its table entry.
        let d = c.interventional_marginals(&[(Attr::Male, true)]);
        assert!((d[0] - 0.75).abs() < 1e-12);
        assert!((d[Attr::WearingLipstick.index()] - 0.02).abs() < 1e-12);
    }

    #[test]
    fn strength_zero_removes_dependence_and_bad_tables_are_refused() {
        let c = Cpds::default().with_strength(0.0).unwrap();
        let t = c.table(Attr::Bald);
        assert!(t.iter().all(|p| (p - t[0]).abs() < 1e-12));
        let mut c = Cpds::default();
        assert!(c.set_table(Attr::Bald, &[0.1, 0.2]).is_err());
        assert!(c.set_table(Attr::Eyeglasses, &[0.1, 1.2]).is_err());
        assert!(c.set_table(Attr::Eyeglasses, &[0.0, 1.0]).is_ok());
        assert!(Cpds::default().with_strength(-1.0).is_err());
    }
}
