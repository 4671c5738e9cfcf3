//! The statically known names of one model run: site addresses and sub-model calls, with the
//! branch bookkeeping that lets exclusive `if`/`else` and `match` arms reuse a name.

use std::collections::BTreeMap;

use proc_macro2::Span;

/// Names bound so far on the path through the body being walked.
#[derive(Clone, Default)]
pub(crate) struct Bound {
    /// Site address -> where it was first bound.
    sites: BTreeMap<String, Span>,
    /// `scope prefix + callee` -> where the sub-model candidate was first called.
    calls: BTreeMap<String, Span>,
}

impl Bound {
    /// Binds the site `name`; `Err(first)` if the path already bound it.
    pub(crate) fn site(&mut self, name: &str, at: Span) -> Result<(), Span> {
        match self.sites.get(name) {
            Some(first) => Err(*first),
            None => {
                self.sites.insert(name.to_string(), at);
                Ok(())
            }
        }
    }

    /// Records a call of `callee` within the scope `prefix`; `false` if the path already
    /// called it there.
    pub(crate) fn call(&mut self, prefix: &str, callee: &str, at: Span) -> bool {
        let key = format!("{prefix}\u{0}{callee}");
        if self.calls.contains_key(&key) {
            return false;
        }
        self.calls.insert(key, at);
        true
    }

    /// What either of two exclusive branches bound: a later name clashes with both.
    pub(crate) fn union(&mut self, other: Bound) {
        for (k, v) in other.sites {
            self.sites.entry(k).or_insert(v);
        }
        for (k, v) in other.calls {
            self.calls.entry(k).or_insert(v);
        }
    }
}

/// The Rust constant name for a site address: `thickness` -> `THICKNESS`,
/// `encoder/z` -> `ENCODER_Z`.
pub(crate) fn const_name(site: &str) -> String {
    let mut out = String::new();
    for c in site.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    let mut out = if trimmed.is_empty() {
        "SITE".to_string()
    } else {
        trimmed.to_string()
    };
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn const_names_are_screaming_identifiers() {
        assert_eq!(const_name("thickness"), "THICKNESS");
        assert_eq!(const_name("encoder/z"), "ENCODER_Z");
        assert_eq!(const_name("x.1-b"), "X_1_B");
        assert_eq!(const_name("2nd"), "_2ND");
        assert_eq!(const_name("//"), "SITE");
    }

    #[test]
    fn exclusive_branches_may_reuse_a_name_but_later_code_may_not() {
        let s = Span::call_site();
        let mut before = Bound::default();
        before.site("a", s).unwrap();
        let mut then = before.clone();
        then.site("x", s).unwrap();
        let mut els = before.clone();
        els.site("x", s).unwrap();
        assert!(els.site("a", s).is_err());
        then.union(els);
        assert!(then.site("x", s).is_err());
        assert!(then.call("", "enc", s));
        assert!(!then.call("", "enc", s));
        assert!(then.call("enc2/", "enc", s));
    }
}
