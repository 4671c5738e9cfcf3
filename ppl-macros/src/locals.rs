//! The names a model function binds itself (parameters, `let`s, closure and arm patterns,
//! nested items and imports): a call through one of them is never a call of another model.

use std::collections::HashSet;

use syn::ext::IdentExt;
use syn::visit::{self, Visit};
use syn::ItemFn;

#[derive(Default)]
struct Locals(HashSet<String>);

impl<'ast> Visit<'ast> for Locals {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.0.insert(p.ident.unraw().to_string());
        visit::visit_pat_ident(self, p);
    }

    fn visit_item_fn(&mut self, f: &'ast ItemFn) {
        self.0.insert(f.sig.ident.unraw().to_string());
        visit::visit_item_fn(self, f);
    }

    fn visit_use_name(&mut self, u: &'ast syn::UseName) {
        self.0.insert(u.ident.unraw().to_string());
    }

    fn visit_use_rename(&mut self, u: &'ast syn::UseRename) {
        self.0.insert(u.rename.unraw().to_string());
    }

    fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
        self.0.insert(c.ident.unraw().to_string());
        visit::visit_item_const(self, c);
    }

    fn visit_item_static(&mut self, s: &'ast syn::ItemStatic) {
        self.0.insert(s.ident.unraw().to_string());
        visit::visit_item_static(self, s);
    }
}

/// The names bound by `f`'s parameters and body (not `f`'s own name).
pub(crate) fn collect(f: &ItemFn) -> HashSet<String> {
    let mut l = Locals::default();
    for input in &f.sig.inputs {
        l.visit_fn_arg(input);
    }
    l.visit_block(&f.block);
    l.0
}
