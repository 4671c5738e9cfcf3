//! Directed acyclic graphs of named variables: d-separation and the mutilated graphs of the
//! do-calculus.

use std::collections::HashSet;

use crate::error::{Error, Result};

/// A directed acyclic graph over named variables.
///
/// ```
/// use ppl_core::causal::Dag;
/// // The front-door graph: U -> X -> M -> Y, U -> Y.
/// let g = Dag::new(&["u", "x", "m", "y"], &[("u", "x"), ("x", "m"), ("m", "y"), ("u", "y")])?;
/// assert!(!g.d_separated(&["x"], &["y"], &[])?);
/// assert!(g.d_separated(&["x"], &["y"], &["m", "u"])?);
/// // Rule 2 of the front door: M ⊥ X in G_{underline X}, so P(m | do(x)) = P(m | x).
/// assert!(g.without_outgoing(&["x"])?.d_separated(&["m"], &["x"], &[])?);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    names: Vec<String>,
    parents: Vec<Vec<usize>>,
}

impl Dag {
    /// The graph on `names` with the edges `(from, to)`; an error for an unknown name, a
    /// repeated name or a cycle.
    pub fn new(names: &[&str], edges: &[(&str, &str)]) -> Result<Self> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut parents = vec![Vec::new(); names.len()];
        let idx = |n: &str| {
            names
                .iter()
                .position(|m| m == n)
                .ok_or_else(|| Error::usage(format!("edge names unknown variable `{n}`")))
        };
        for &(a, b) in edges {
            let (a, b) = (idx(a)?, idx(b)?);
            if !parents[b].contains(&a) {
                parents[b].push(a);
            }
        }
        Self::from_parents(names, parents)
    }

    /// The graph whose variable `i` has parents `parents[i]` (indices).
    pub fn from_parents(names: Vec<String>, parents: Vec<Vec<usize>>) -> Result<Self> {
        if names.len() != parents.len() {
            return Err(Error::usage(format!(
                "{} names but {} parent lists",
                names.len(),
                parents.len()
            )));
        }
        let mut seen = HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                return Err(Error::usage(format!("variable `{n}` is named twice")));
            }
        }
        for (i, ps) in parents.iter().enumerate() {
            if let Some(&p) = ps.iter().find(|&&p| p >= names.len() || p == i) {
                return Err(Error::usage(format!(
                    "variable `{}` has an invalid parent index {p}",
                    names[i]
                )));
            }
        }
        let g = Dag { names, parents };
        g.topological_order()?;
        Ok(g)
    }

    /// The variables' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of variable `name`.
    pub fn index(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            Error::usage(format!(
                "the graph has no variable `{name}`; it has {:?}",
                self.names
            ))
        })
    }

    /// The parents of variable `i`.
    pub fn parents(&self, i: usize) -> &[usize] {
        &self.parents[i]
    }

    /// The children of variable `i`.
    pub fn children(&self, i: usize) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&c| self.parents[c].contains(&i))
            .collect()
    }

    /// The variables in an order where parents come first; an error naming a variable on a
    /// cycle.
    pub fn topological_order(&self) -> Result<Vec<usize>> {
        let n = self.names.len();
        let mut indeg: Vec<usize> = self.parents.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(n);
        while let Some(v) = ready.pop() {
            order.push(v);
            for c in self.children(v) {
                indeg[c] -= 1;
                if indeg[c] == 0 {
                    ready.push(c);
                }
            }
        }
        if order.len() < n {
            let on_cycle = (0..n).find(|&i| indeg[i] > 0).expect("a variable is left");
            return Err(Error::usage(format!(
                "the graph has a cycle through `{}`",
                self.names[on_cycle]
            )));
        }
        Ok(order)
    }

    fn indices(&self, names: &[&str]) -> Result<Vec<usize>> {
        names.iter().map(|n| self.index(n)).collect()
    }

    /// Every ancestor of `set`, `set` included.
    pub fn ancestors(&self, set: &[usize]) -> Vec<bool> {
        let mut anc = vec![false; self.names.len()];
        let mut stack: Vec<usize> = set.to_vec();
        while let Some(v) = stack.pop() {
            if !anc[v] {
                anc[v] = true;
                stack.extend_from_slice(&self.parents[v]);
            }
        }
        anc
    }

    /// Whether `xs` and `ys` are d-separated given `zs` (named variables; the three sets must
    /// be disjoint).
    pub fn d_separated(&self, xs: &[&str], ys: &[&str], zs: &[&str]) -> Result<bool> {
        self.d_separated_idx(&self.indices(xs)?, &self.indices(ys)?, &self.indices(zs)?)
    }

    /// [`d_separated`](Self::d_separated) on indices. Uses the moral graph of the ancestral set
    /// of `xs ∪ ys ∪ zs`: the sets are d-separated iff removing `zs` disconnects `xs` from `ys`
    /// there (Lauritzen et al., 1990).
    pub fn d_separated_idx(&self, xs: &[usize], ys: &[usize], zs: &[usize]) -> Result<bool> {
        let n = self.names.len();
        let all: Vec<usize> = xs.iter().chain(ys).chain(zs).copied().collect();
        if let Some(&bad) = all.iter().find(|&&v| v >= n) {
            return Err(Error::usage(format!(
                "variable index {bad} is out of range"
            )));
        }
        let distinct: HashSet<usize> = all.iter().copied().collect();
        if distinct.len() != all.len() {
            return Err(Error::usage(
                "d-separation needs disjoint sets (and no variable twice)",
            ));
        }
        if xs.is_empty() || ys.is_empty() {
            return Ok(true);
        }
        let anc = self.ancestors(&all);
        let mut adj = vec![Vec::new(); n];
        for v in (0..n).filter(|&v| anc[v]) {
            let ps = &self.parents[v];
            for &p in ps {
                adj[v].push(p);
                adj[p].push(v);
            }
            for (i, &a) in ps.iter().enumerate() {
                for &b in &ps[i + 1..] {
                    adj[a].push(b);
                    adj[b].push(a);
                }
            }
        }
        let blocked: HashSet<usize> = zs.iter().copied().collect();
        let target: HashSet<usize> = ys.iter().copied().collect();
        let mut seen = vec![false; n];
        let mut stack: Vec<usize> = xs.to_vec();
        while let Some(v) = stack.pop() {
            if seen[v] || blocked.contains(&v) {
                continue;
            }
            if target.contains(&v) {
                return Ok(false);
            }
            seen[v] = true;
            stack.extend(adj[v].iter().copied().filter(|&w| anc[w]));
        }
        Ok(true)
    }

    /// `G_{\bar X}`: the graph with every edge into `xs` removed.
    pub fn without_incoming(&self, xs: &[&str]) -> Result<Dag> {
        Ok(self.without_incoming_idx(&self.indices(xs)?))
    }

    /// [`without_incoming`](Self::without_incoming) on indices.
    pub fn without_incoming_idx(&self, xs: &[usize]) -> Dag {
        let mut g = self.clone();
        for &x in xs {
            g.parents[x].clear();
        }
        g
    }

    /// `G_{\underline X}`: the graph with every edge out of `xs` removed.
    pub fn without_outgoing(&self, xs: &[&str]) -> Result<Dag> {
        Ok(self.without_outgoing_idx(&self.indices(xs)?))
    }

    /// [`without_outgoing`](Self::without_outgoing) on indices.
    pub fn without_outgoing_idx(&self, xs: &[usize]) -> Dag {
        let mut g = self.clone();
        for ps in &mut g.parents {
            ps.retain(|p| !xs.contains(p));
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collider_chain_fork() {
        // a -> c <- b (collider), c -> d.
        let g = Dag::new(&["a", "b", "c", "d"], &[("a", "c"), ("b", "c"), ("c", "d")]).unwrap();
        assert!(g.d_separated(&["a"], &["b"], &[]).unwrap());
        assert!(!g.d_separated(&["a"], &["b"], &["c"]).unwrap());
        assert!(!g.d_separated(&["a"], &["b"], &["d"]).unwrap()); // descendant of a collider
        assert!(!g.d_separated(&["a"], &["d"], &[]).unwrap());
        assert!(g.d_separated(&["a"], &["d"], &["c"]).unwrap());
        assert!(g
            .without_incoming(&["c"])
            .unwrap()
            .d_separated(&["a"], &["d"], &[])
            .unwrap());
        assert!(Dag::new(&["a", "b"], &[("a", "b"), ("b", "a")]).is_err());
        assert!(g.d_separated(&["a"], &["a"], &[]).is_err());
    }
}
