//! A planted bias for the fairness audits: cartoon faces in which the task attribute
//! (`Mustache`) is tied to the protected attribute (`Male`) as strongly as asked.
//!
//! The plant is in the data SCM itself: `Male` becomes a fair coin and
//! `P(Mustache = 1 | Young, Male) = (1 + strength)/2` for men and `(1 − strength)/2` for women,
//! whatever `Young`. Every other table keeps its default. So `strength = 0` makes `Mustache`
//! independent of `Male` with base rate ½ in both groups (the balanced test set), and
//! `strength = 0.9` gives a training set where 95% of men and 5% of women wear a moustache:
//! a classifier trained on it can lean on the (large, easy) male footprint — hair style,
//! brows, lipstick's absence — instead of the (small) moustache, and then misses the
//! moustaches of women on a balanced test set. `Male` keeps its genuine causal effects on
//! `Bald`, `Smiling`, `Narrow_Eyes` and `Wearing_Lipstick`, which are part of how a man looks.
//!
//! ```
//! use models::data::cartoon::Attr;
//! use models::fairness::planted::{planted_bias_faces, PLANTED_PROTECTED, PLANTED_TASK};
//!
//! let train = planted_bias_faces(0.9)?;
//! let test = planted_bias_faces(0.0)?;
//! let m = train.config().cpds.interventional_marginals(&[(PLANTED_PROTECTED, true)]);
//! assert!((m[PLANTED_TASK.index()] - 0.95).abs() < 1e-12);
//! let m = test.config().cpds.interventional_marginals(&[(Attr::Male, false)]);
//! assert!((m[Attr::Mustache.index()] - 0.5).abs() < 1e-12);
//! # Ok::<(), ppl_core::Error>(())
//! ```

use ppl_core::{Error, Result};

use crate::data::cartoon::{Attr, CartoonConfig, CartoonFaces, Cpds};

/// The task attribute of the plant.
pub const PLANTED_TASK: Attr = Attr::Mustache;
/// The protected attribute of the plant.
pub const PLANTED_PROTECTED: Attr = Attr::Male;

/// Cartoon faces with the plant at `strength` ∈ `[0, 1]` (see the module documentation).
pub fn planted_bias_faces(strength: f64) -> Result<CartoonFaces> {
    if !(0.0..=1.0).contains(&strength) {
        return Err(Error::param(
            "planted_bias_faces",
            "strength",
            format!("must lie in [0, 1], got {strength}"),
        ));
    }
    let (women, men) = ((1.0 - strength) / 2.0, (1.0 + strength) / 2.0);
    let mut cpds = Cpds::default();
    cpds.set_table(Attr::Male, &[0.5])?;
    // Parents (Young, Male), Young the most significant bit.
    cpds.set_table(Attr::Mustache, &[women, men, women, men])?;
    CartoonFaces::new(CartoonConfig {
        cpds,
        ..Default::default()
    })
}
