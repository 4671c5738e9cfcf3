//! Causal queries on discrete models against exact enumeration: the do-calculus on random
//! DAGs, adjustment formulas, the counterfactual axioms, and CAUSAL-IDENTITIES.md 9 and 11.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use ppl_core::causal::{
    cf_value, counterfactual_exact, factual_log_prob, factual_value, multi_world, site_world,
    soft_condition, twin_world, world, Scm, Worlds, TWIN,
};
use ppl_core::dist::{gumbel_pair_prob, Bernoulli, Categorical, Uniform};
use ppl_core::handlers::{condition, do_, seed, trace};
use ppl_core::infer::enumerate;
use ppl_core::runtime::{deterministic, plate, sample};
use ppl_core::Result;

fn t(x: f64) -> Tensor {
    Tensor::new(x, &Device::Cpu).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn one(t: &Tensor) -> f64 {
    let v = f64s(t);
    assert_eq!(v.len(), 1, "expected one element, got shape {:?}", t.dims());
    v[0]
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(20_240_606),
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Random SCMs

/// A random DAG of `n` binary/ternary variables `v0..`, each edge `i -> j` (i < j) present with
/// probability ~0.45, CPD entries bounded away from 0.
fn random_scm() -> impl Strategy<Value = Scm> {
    (3usize..=6)
        .prop_flat_map(|n| {
            (
                Just(n),
                prop::collection::vec(1usize..=2, n),
                prop::collection::vec(prop::bool::weighted(0.45), n * n),
                prop::collection::vec(0.1f64..1.0, 3 * 729),
            )
        })
        .prop_map(|(n, extra, edges, weights)| {
            let cards: Vec<usize> = extra.iter().map(|e| e + 1).collect();
            let names: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
            let mut b = Scm::builder();
            let mut w = weights.into_iter().cycle();
            for j in 0..n {
                let parents: Vec<usize> = (0..j).filter(|&i| edges[i * n + j]).collect();
                let configs: usize = parents.iter().map(|&p| cards[p]).product();
                let table: Vec<Vec<f64>> = (0..configs)
                    .map(|_| {
                        let row: Vec<f64> = (0..cards[j]).map(|_| w.next().unwrap()).collect();
                        let s: f64 = row.iter().sum();
                        row.into_iter().map(|x| x / s).collect()
                    })
                    .collect();
                let pn: Vec<&str> = parents.iter().map(|&p| names[p].as_str()).collect();
                b = b.discrete(&names[j], cards[j], &pn, table);
            }
            b.build().unwrap()
        })
}

/// The joint of every variable under `do(actions)` by the `do_` handler and exact enumeration.
fn handler_joint(scm: &Scm, actions: &[(usize, usize)]) -> Result<HashMap<Vec<usize>, f64>> {
    let names = scm.names();
    let acts: Vec<(String, f64)> = actions
        .iter()
        .map(|&(i, v)| (names[i].to_string(), v as f64))
        .collect();
    let post = enumerate(|| do_(acts.clone(), || scm.run()))?;
    let mut out = HashMap::new();
    for (tr, p) in post.iter() {
        let a: Vec<usize> = names
            .iter()
            .map(|n| one(tr.value(n).unwrap()) as usize)
            .collect();
        *out.entry(a).or_insert(0.0) += p;
    }
    Ok(out)
}

/// `P(query | given)` from a joint table; `None` when `P(given) = 0`.
fn cond(
    joint: &HashMap<Vec<usize>, f64>,
    query: &[(usize, usize)],
    given: &[(usize, usize)],
) -> Option<f64> {
    let holds = |a: &[usize], s: &[(usize, usize)]| s.iter().all(|&(i, v)| a[i] == v);
    let (mut num, mut den) = (0.0, 0.0);
    for (a, &p) in joint {
        if holds(a, given) {
            den += p;
            if holds(a, query) {
                num += p;
            }
        }
    }
    (den > 1e-12).then(|| num / den)
}

/// Every assignment of the variables `vars`.
fn assignments(cards: &[usize], vars: &[usize]) -> Vec<Vec<(usize, usize)>> {
    let mut out = vec![Vec::new()];
    for &v in vars {
        out = out
            .into_iter()
            .flat_map(|a| {
                (0..cards[v]).map(move |x| {
                    let mut a = a.clone();
                    a.push((v, x));
                    a
                })
            })
            .collect();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The do-calculus (identity 9)

#[derive(Debug, Default)]
struct RuleStats {
    held: [usize; 3],
    failed_and_differ: [usize; 3],
}

/// Checks rules 1-3 on one SCM with singleton X, Y, Z and W of size 0 or 1 picked from `pick`.
fn check_rules(
    scm: &Scm,
    pick: &[usize],
    stats: &mut RuleStats,
) -> std::result::Result<(), TestCaseError> {
    let n = scm.names().len();
    let order: Vec<usize> = pick.iter().map(|&p| p % n).collect();
    let mut vars: Vec<usize> = Vec::new();
    for v in order {
        if !vars.contains(&v) {
            vars.push(v);
        }
    }
    if vars.len() < 3 {
        return Ok(());
    }
    let (x, y, z) = (vars[0], vars[1], vars[2]);
    let w: Vec<usize> = vars.get(3).copied().into_iter().collect();
    let cards: Vec<usize> = scm.cards().into_iter().map(|c| c.unwrap()).collect();
    let g = scm.dag();
    let xw: Vec<usize> = std::iter::once(x).chain(w.iter().copied()).collect();
    let g_bar_x = g.without_incoming_idx(&[x]);
    let cond1 = g_bar_x.d_separated_idx(&[y], &[z], &xw).unwrap();
    let cond2 = g_bar_x
        .without_outgoing_idx(&[z])
        .d_separated_idx(&[y], &[z], &xw)
        .unwrap();
    let anc_w = g_bar_x.ancestors(&w);
    let z_w: Vec<usize> = [z].into_iter().filter(|&v| !anc_w[v]).collect();
    let cond3 = g_bar_x
        .without_incoming_idx(&z_w)
        .d_separated_idx(&[y], &[z], &xw)
        .unwrap();

    let mut do_x = HashMap::new();
    let mut do_xz = HashMap::new();
    for xv in 0..cards[x] {
        do_x.insert(xv, handler_joint(scm, &[(x, xv)]).unwrap());
        for zv in 0..cards[z] {
            do_xz.insert((xv, zv), handler_joint(scm, &[(x, xv), (z, zv)]).unwrap());
        }
    }
    let mut max_diff = [0.0f64; 3];
    for xv in 0..cards[x] {
        for zv in 0..cards[z] {
            for wa in assignments(&cards, &w) {
                let zw: Vec<(usize, usize)> =
                    std::iter::once((z, zv)).chain(wa.iter().copied()).collect();
                for yv in 0..cards[y] {
                    let q = [(y, yv)];
                    let a = cond(&do_x[&xv], &q, &zw);
                    let b = cond(&do_x[&xv], &q, &wa);
                    let c = cond(&do_xz[&(xv, zv)], &q, &wa);
                    if let (Some(a), Some(b)) = (a, b) {
                        max_diff[0] = max_diff[0].max((a - b).abs());
                    }
                    if let (Some(c), Some(a)) = (c, a) {
                        max_diff[1] = max_diff[1].max((c - a).abs());
                    }
                    if let (Some(c), Some(b)) = (c, b) {
                        max_diff[2] = max_diff[2].max((c - b).abs());
                    }
                }
            }
        }
    }
    for (r, holds) in [cond1, cond2, cond3].into_iter().enumerate() {
        if holds {
            prop_assert!(max_diff[r] < 1e-9, "rule {} holds graphically (x={x}, y={y}, z={z}, w={w:?}) but the sides differ by {}", r + 1, max_diff[r]);
            stats.held[r] += 1;
        } else if max_diff[r] > 1e-6 {
            stats.failed_and_differ[r] += 1;
        }
    }
    Ok(())
}

#[test]
fn identity_9_do_calculus_rules_on_random_dags() {
    let mut runner = TestRunner::new(config(45));
    let stats = std::cell::RefCell::new(RuleStats::default());
    let strategy = (random_scm(), prop::collection::vec(0usize..6, 6));
    runner
        .run(&strategy, |(scm, pick)| {
            check_rules(&scm, &pick, &mut stats.borrow_mut())
        })
        .unwrap();
    let s = stats.into_inner();
    eprintln!("do-calculus: {s:?}");
    for r in 0..3 {
        assert!(
            s.held[r] > 0,
            "rule {}: no generated case where its condition holds",
            r + 1
        );
        assert!(
            s.failed_and_differ[r] > 0,
            "rule {}: no case where the condition fails and the sides differ",
            r + 1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Adjustment formulas

proptest! {
    #![proptest_config(config(40))]
    /// Truncated factorisation and backdoor adjustment (by the parents of X) equal the `do_`
    /// handler's interventional distribution.
    #[test]
    fn truncated_factorisation_and_backdoor_match_do(scm in random_scm(), xi in 0usize..6, yi in 0usize..6) {
        let n = scm.names().len();
        let (x, y) = (xi % n, yi % n);
        prop_assume!(x != y);
        let cards: Vec<usize> = scm.cards().into_iter().map(|c| c.unwrap()).collect();
        let names = scm.names();
        let observational: HashMap<Vec<usize>, f64> = scm.joint().unwrap().into_iter().collect();
        let pa: Vec<usize> = scm.dag().parents(x).to_vec();
        for xv in 0..cards[x] {
            let by_handler = handler_joint(&scm, &[(x, xv)]).unwrap();
            let truncated = scm.joint_do(&[(names[x], xv)]).unwrap();
            for (a, p) in &truncated {
                let h = by_handler.get(a).copied().unwrap_or(0.0);
                prop_assert!((h - p).abs() < 1e-12, "{a:?}: handler {h}, truncated factorisation {p}");
            }
            if pa.contains(&y) {
                continue;
            }
            for yv in 0..cards[y] {
                let target = cond(&by_handler, &[(y, yv)], &[]).unwrap();
                let mut backdoor = 0.0;
                for za in assignments(&cards, &pa) {
                    let pz = cond(&observational, &za, &[]).unwrap();
                    let mut given = za.clone();
                    given.push((x, xv));
                    backdoor += cond(&observational, &[(y, yv)], &given).unwrap() * pz;
                }
                prop_assert!((backdoor - target).abs() < 1e-9, "backdoor {backdoor} vs do {target}");
            }
        }
    }
}

/// Interventional and observational conditionals differ generically (so the test above can
/// fail): confounded X <- Z -> Y, X -> Y.
#[test]
fn intervening_differs_from_conditioning() -> Result<()> {
    let scm = Scm::builder()
        .binary("z", &[], vec![0.4])
        .binary("x", &["z"], vec![0.2, 0.9])
        .binary("y", &["z", "x"], vec![0.1, 0.3, 0.6, 0.8])
        .build()?;
    let obs: HashMap<Vec<usize>, f64> = scm.joint()?.into_iter().collect();
    let by_do = handler_joint(&scm, &[(1, 1)])?;
    let p_do = cond(&by_do, &[(2, 1)], &[]).unwrap();
    let p_cond = cond(&obs, &[(2, 1)], &[(1, 1)]).unwrap();
    assert!((p_do - (0.6 * 0.3 + 0.4 * 0.8)).abs() < 1e-12);
    assert!((p_do - p_cond).abs() > 0.05, "{p_do} vs {p_cond}");
    Ok(())
}

proptest! {
    #![proptest_config(config(50))]
    /// The front-door formula on U -> X -> M -> Y, U -> Y (U latent) equals the do_ handler's
    /// answer: P(y | do(x)) = Σ_m P(m | x) Σ_x' P(y | m, x') P(x').
    #[test]
    fn front_door(ps in prop::collection::vec(0.05f64..0.95, 1 + 2 + 2 + 4)) {
        let scm = Scm::builder()
            .binary("u", &[], vec![ps[0]])
            .binary("x", &["u"], ps[1..3].to_vec())
            .binary("m", &["x"], ps[3..5].to_vec())
            .binary("y", &["u", "m"], ps[5..9].to_vec())
            .build().unwrap();
        let obs: HashMap<Vec<usize>, f64> = scm.joint().unwrap().into_iter().collect();
        let (x, m, y) = (1, 2, 3);
        for xv in 0..2 {
            let by_do = handler_joint(&scm, &[(x, xv)]).unwrap();
            let target = cond(&by_do, &[(y, 1)], &[]).unwrap();
            let mut fd = 0.0;
            for mv in 0..2 {
                let pm = cond(&obs, &[(m, mv)], &[(x, xv)]).unwrap();
                let mut inner = 0.0;
                for xp in 0..2 {
                    inner += cond(&obs, &[(y, 1)], &[(m, mv), (x, xp)]).unwrap() * cond(&obs, &[(x, xp)], &[]).unwrap();
                }
                fd += pm * inner;
            }
            prop_assert!((fd - target).abs() < 1e-12, "front door {fd} vs do {target}");
        }
    }
}

proptest! {
    #![proptest_config(config(30))]
    /// The probability of necessity for Y = X ∨ W, W ~ Bernoulli(p): PN = 1 − p.
    #[test]
    fn probability_of_necessity(p in 0.01f64..0.99, q in 0.05f64..0.95) {
        let model = || {
            let w = sample("w", Bernoulli::from_probs(t(p))?)?;
            let x = sample("x", Bernoulli::from_probs(t(q))?)?;
            sample("y", Bernoulli::from_probs(x.broadcast_maximum(&w)?)?)
        };
        let post = counterfactual_exact(model, [("x", t(1.0)), ("y", t(1.0))], [("x", 0.0)]).unwrap();
        let pn = post.probability(|tr| Ok(one(&cf_value(tr, "y")?) == 0.0)).unwrap();
        prop_assert!((pn - (1.0 - p)).abs() < 1e-12, "PN {pn} vs {}", 1.0 - p);
    }
}

// ---------------------------------------------------------------------------------------------
// Counterfactual axioms (Galles & Pearl 1998), exact over every assignment of the shared noise.

/// A random binary SCM on x -> w -> y with x -> y and an extra root r feeding w and y.
fn axiom_scm() -> impl Strategy<Value = Scm> {
    prop::collection::vec(0.05f64..0.95, 1 + 1 + 4 + 8).prop_map(|p| {
        Scm::builder()
            .binary("r", &[], vec![p[0]])
            .binary("x", &[], vec![p[1]])
            .binary("w", &["r", "x"], p[2..6].to_vec())
            .binary("y", &["r", "x", "w"], p[6..14].to_vec())
            .build()
            .unwrap()
    })
}

proptest! {
    #![proptest_config(config(16))]
    #[test]
    fn galles_pearl_axioms(scm in axiom_scm(), xv in 0usize..2, wv in 0usize..2, yv in 0usize..2) {
        let (xf, wf, yf) = (xv as f64, wv as f64, yv as f64);
        // Effectiveness and consistency: twin world, do(X = x).
        let post = enumerate(|| twin_world(|| do_([("x", xf)], || scm.run()))).unwrap();
        let mut checked = 0.0;
        for (tr, p) in post.iter() {
            prop_assert_eq!(one(&cf_value(tr, "x").unwrap()), xf);
            if one(&factual_value(tr, "x").unwrap()) == xf && p > 0.0 {
                checked += p;
                for v in ["r", "w", "y"] {
                    prop_assert_eq!(one(&cf_value(tr, v).unwrap()), one(&factual_value(tr, v).unwrap()), "consistency at {}", v);
                }
            }
        }
        prop_assert!(checked > 0.0);
        // Composition and reversibility: multi_world with do(X = x), do(W = w), do(Y = y).
        let post = enumerate(|| multi_world(|| do_([("x", xf), ("w", wf), ("y", yf)], || scm.run()))).unwrap();
        let at = |tr: &ppl_core::handlers::Trace, v: &str, ix: &[(&str, usize)]| one(&site_world(tr.site(v).unwrap(), ix).unwrap());
        for (tr, p) in post.iter() {
            if p == 0.0 {
                continue;
            }
            // Composition: W_x = w implies Y_{xw} = Y_x.
            let w_x = at(tr, "w", &[("x", 1), ("w", 0)]);
            let y_xw = at(tr, "y", &[("x", 1), ("w", 1), ("y", 0)]);
            let y_x = at(tr, "y", &[("x", 1), ("w", 0), ("y", 0)]);
            if w_x == wf {
                prop_assert_eq!(y_xw, y_x, "composition");
            }
            // Reversibility: Y_{xw} = y and W_{xy} = w imply Y_x = y.
            let w_xy = at(tr, "w", &[("x", 1), ("w", 0)]);
            if y_xw == yf && w_xy == wf {
                prop_assert_eq!(y_x, yf, "reversibility");
            }
            // Effectiveness in every world: the intervened worlds hold the actions.
            prop_assert_eq!(at(tr, "w", &[("x", 0), ("w", 1)]), wf);
            prop_assert_eq!(at(tr, "y", &[("x", 0), ("w", 0), ("y", 1)]), yf);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identity 11 and B5: discrete counterfactuals are exact.

const P_B: [[f64; 2]; 2] = [[0.02, 0.30], [0.005, 0.08]];

fn b5_scm() -> Result<Scm> {
    let b = |v: [[f64; 2]; 2]| vec![v[0][0], v[0][1], v[1][0], v[1][1]];
    Scm::builder()
        .binary("young", &[], vec![0.75])
        .binary("male", &[], vec![0.42])
        .binary("smiling", &[], vec![0.48])
        .binary("bald", &["young", "male"], b(P_B))
        .binary("mustache", &["male"], vec![0.01, 0.15])
        .binary("lipstick", &["male"], vec![0.80, 0.02])
        .binary(
            "eyeglasses",
            &["young", "male"],
            b([[0.10, 0.20], [0.04, 0.08]]),
        )
        .build()
}

#[test]
fn b5_queries_are_exact_by_enumeration() -> Result<()> {
    let scm = b5_scm()?;
    // Q1: P(bald = 1 | do(young = 0)) = 86/625.
    let post = enumerate(|| do_([("young", 0.0)], || scm.run()))?;
    let q1 = post.probability(|tr| Ok(one(tr.value("bald")?) == 1.0))?;
    assert!((q1 - 86.0 / 625.0).abs() < 1e-12, "Q1 = {q1}");
    // Q2: P(bald_{young <- 0} = 1 | young = 1, bald = 0) = 1011/9635 under threshold noise.
    let post = counterfactual_exact(
        || scm.run(),
        [("young", t(1.0)), ("bald", t(0.0))],
        [("young", 0.0)],
    )?;
    let q2 = post.probability(|tr| Ok(one(&cf_value(tr, "bald")?) == 1.0))?;
    assert!(
        (q2 - 1011.0 / 9635.0).abs() < 1e-12,
        "Q2 = {q2}, want {}",
        1011.0 / 9635.0
    );
    // Every assignment's factual world agrees with the evidence.
    for (tr, p) in post.iter() {
        if p > 0.0 {
            assert_eq!(one(&factual_value(tr, "bald")?), 0.0);
            assert_eq!(one(&factual_value(tr, "young")?), 1.0);
        }
    }
    Ok(())
}

/// B5's structural form: exogenous uniforms, deterministic mechanisms, soft conditioning with a
/// Normal(0, 0.01) kernel, one plate of particles; self-normalised weights are exactly 0 or 1.
#[test]
fn b5_structural_form_with_soft_conditioning() -> Result<()> {
    let n = 200_000;
    let p_b = Tensor::new(&[P_B[0][0], P_B[0][1], P_B[1][0], P_B[1][1]], &Device::Cpu)?
        .to_dtype(DType::F32)?;
    let scm = || -> Result<Tensor> {
        plate("people", n, |_| {
            let u = |name: &str| sample(name, Uniform::new(0.0, 1.0));
            let (uy, um, ub) = (u("u_young")?, u("u_male")?, u("u_bald")?);
            let young = deterministic("young", &uy.lt(0.75)?.to_dtype(DType::F32)?)?;
            let male = deterministic("male", &um.lt(0.42)?.to_dtype(DType::F32)?)?;
            // P(bald | young, male) by index 2·young + male into the table.
            let ix = young.affine(2.0, 0.0)?.broadcast_add(&male)?;
            let shape = ix.dims().to_vec();
            let p = p_b
                .index_select(&ix.flatten_all()?.to_dtype(DType::U32)?, 0)?
                .reshape(shape)?;
            deterministic("bald", &ub.broadcast_lt(&p)?.to_dtype(DType::F32)?)
        })
    };
    let one_f = Tensor::new(1.0f32, &Device::Cpu)?;
    let zero_f = Tensor::new(0.0f32, &Device::Cpu)?;
    let start = std::time::Instant::now();
    let (bald_cf, tr) = seed(0, || {
        trace(|| {
            soft_condition([("young", &one_f), ("bald", &zero_f)], 0.01, || {
                twin_world(|| do_([("young", 0.0)], || world(&scm()?, &[(TWIN, 1)])))
            })
        })
    })?;
    // Per-particle log-weight: every site's factual log-density (the counterfactual worlds of
    // observed sites carry none).
    let mut lw = vec![0.0f64; n];
    for s in tr.iter().filter(|s| s.scores()) {
        let lp = f64s(&factual_log_prob(s)?);
        assert_eq!(lp.len(), n, "site {}", s.name);
        for (a, b) in lw.iter_mut().zip(lp) {
            *a += b;
        }
    }
    let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = lw.iter().map(|l| (l - m).exp()).collect();
    assert!(
        w.iter().all(|&x| x == 0.0 || x == 1.0),
        "weights are exactly 0 or 1"
    );
    let cf = f64s(&bald_cf);
    let accepted: f64 = w.iter().sum();
    let est = w.iter().zip(&cf).map(|(a, b)| a * b).sum::<f64>() / accepted;
    let elapsed = start.elapsed().as_secs_f64();
    let p = 1011.0 / 9635.0;
    let se = (p * (1.0 - p) / accepted).sqrt();
    eprintln!(
        "B5 Q2 structural form, n = {n}: {est:.5} ± {se:.5} ({accepted} accepted), {:.1} ms",
        elapsed * 1e3
    );
    assert!(
        (est - p).abs() < 3.0 * se,
        "estimate {est} vs exact {p} (se {se})"
    );
    Ok(())
}

/// Gumbel-max counterfactual stability (Oberst & Sontag 2019): with y = i observed, a class j
/// whose probability ratio p'_j / p_j does not exceed p'_i / p_i never appears in the
/// counterfactual world; and the counterfactual law matches the exact two-world coupling, by
/// sampling and by enumeration.
#[test]
fn gumbel_max_counterfactual_stability() -> Result<()> {
    let logits = [[0.2f64, -0.4, 0.9, 0.0], [1.0, 0.3, -0.8, 0.5]];
    let n = 40_000;
    let model = |n: usize| {
        move || -> Result<Tensor> {
            plate("units", n, |_| {
                let x = sample("x", Bernoulli::from_probs(t(0.5))?)?;
                let table = Tensor::new(&logits, &Device::Cpu)?;
                let rows = table.index_select(&x.flatten_all()?.to_dtype(DType::U32)?, 0)?;
                let mut shape = x.dims().to_vec();
                shape.push(4);
                sample("y", Categorical::from_logits(rows.reshape(shape)?)?)
            })
        }
    };
    let norm = |l: &[f64]| -> Vec<f64> {
        let z = l.iter().map(|v| v.exp()).sum::<f64>().ln();
        l.iter().map(|v| v - z).collect()
    };
    let (a, b) = (norm(&logits[0]), norm(&logits[1]));
    for i in 0..4 {
        let obs = [
            ("x", Tensor::zeros(n, DType::F64, &Device::Cpu)?),
            ("y", Tensor::full(i as f64, n, &Device::Cpu)?),
        ];
        let (_, tr) = seed(i as u64, || {
            trace(|| twin_world(|| do_([("x", 1.0)], || condition(obs.clone(), model(n)))))
        })?;
        let cf = f64s(&cf_value(&tr, "y")?);
        let mut counts = [0usize; 4];
        for c in &cf {
            counts[*c as usize] += 1;
        }
        let ratio = |k: usize| (b[k] - a[k]).exp();
        for (j, &count) in counts.iter().enumerate() {
            let exact = gumbel_pair_prob(&a, &b, i, j) / a[i].exp();
            if j != i && ratio(j) <= ratio(i) {
                assert_eq!(count, 0, "stability: class {j} appeared from {i}");
                assert_eq!(exact, 0.0);
            }
            let freq = count as f64 / n as f64;
            let se = (exact * (1.0 - exact) / n as f64).sqrt().max(1e-9);
            assert!(
                (freq - exact).abs() < 5.0 * se + 1e-12,
                "P(cf = {j} | y = {i}): {freq} vs {exact}"
            );
        }
        // Exact path: enumerate the same query with one unit.
        let obs1 = [("x", t(0.0)), ("y", t(i as f64))];
        let post = counterfactual_exact(model(1), obs1, [("x", 1.0)])?;
        for j in 0..4 {
            let p = post.probability(|tr| Ok(one(&cf_value(tr, "y")?) == j as f64))?;
            let exact = gumbel_pair_prob(&a, &b, i, j) / a[i].exp();
            assert!(
                (p - exact).abs() < 1e-12,
                "enumerated P(cf = {j} | y = {i}) = {p}, exact {exact}"
            );
        }
    }
    Ok(())
}

/// A latent discrete site downstream of an intervention is enumerable: its worlds' joint law
/// is the coupling of one threshold, so the twin-world joint of (Y, Y_cf) is exact.
#[test]
fn latent_bernoulli_worlds_are_coupled_exactly() -> Result<()> {
    let scm = Scm::builder()
        .binary("x", &[], vec![0.3])
        .binary("y", &["x"], vec![0.2, 0.7])
        .build()?;
    let post = enumerate(|| Worlds::twin().run(|| do_([("x", 1.0)], || scm.run())))?;
    let mut joint = [[0.0; 2]; 2];
    for (tr, p) in post.iter() {
        let (f, c) = (one(&factual_value(tr, "y")?), one(&cf_value(tr, "y")?));
        joint[f as usize][c as usize] += p;
    }
    // Shared threshold: y_f = 1[u < p(x)], y_cf = 1[u < 0.7].
    let pf = 0.7 * 0.2 + 0.3 * 0.7;
    assert!(
        (joint[1][0]).abs() < 1e-12,
        "y = 1 but y_cf = 0 is impossible: p(1) >= p(x)"
    );
    assert!((joint[1][1] - pf).abs() < 1e-12);
    assert!((joint[0][1] - 0.7 * 0.5).abs() < 1e-12);
    assert!((joint[0][0] - 0.3).abs() < 1e-12);
    Ok(())
}
