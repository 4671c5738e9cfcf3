//! The walk over a model's body: rewrites each front-end macro into a call of the runtime with
//! the site's name, checks the naming rules, and records the statically known site names and
//! the calls that may be sub-models called twice.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprClosure, Ident, LitStr, Macro, Pat, Stmt, Token};

use crate::names::Bound;
use crate::sites::{as_keyed, respan, split_args, Kind, NameArg, SiteCall};

/// Where a `let` would name a site: an identifier, or a pattern that cannot name one.
enum Binding {
    Name(Ident),
    Pattern(Pat),
}

fn binding(pat: &Pat) -> Binding {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() => Binding::Name(p.ident.clone()),
        Pat::Type(t) => binding(&t.pat),
        other => Binding::Pattern(other.clone()),
    }
}

/// A call that is a sub-model call if its callee turns out to be a model.
pub(crate) struct CallCheck {
    pub(crate) callee: String,
    pub(crate) span: Span,
    /// Called inside a loop (rather than twice in one scope).
    pub(crate) in_loop: bool,
}

/// The walk's state.
pub(crate) struct Walker<'a> {
    rt: &'a TokenStream,
    model: &'a str,
    /// Names bound locally in the function (parameters, lets, nested items): never models.
    locals: &'a HashSet<String>,
    pub(crate) errors: Vec<syn::Error>,
    /// Some front end could not be rewritten into well-formed code (bad arguments, a pattern
    /// where a name belongs).
    pub(crate) malformed: bool,
    /// Inside a loop, and not under a `scope!` with a run-time prefix entered in it: what runs
    /// here runs repeatedly under the same prefix.
    repeats: bool,
    closures: usize,
    /// The scope prefix of names bound here (`""` at the top, `"enc2/"` in `scope!("enc2", ..)`);
    /// `None` inside a scope whose name is only known at run time.
    prefix: Option<String>,
    bound: Bound,
    /// Statically known sites, in order of first appearance: (address, front end).
    pub(crate) sites: Vec<(String, Kind)>,
    pub(crate) checks: Vec<CallCheck>,
    /// The paths through which the body invoked front ends (`sample`, `ppl::sample`, ..).
    pub(crate) used: Vec<syn::Path>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(rt: &'a TokenStream, model: &'a str, locals: &'a HashSet<String>) -> Self {
        Walker {
            rt,
            model,
            locals,
            errors: Vec::new(),
            malformed: false,
            repeats: false,
            closures: 0,
            prefix: Some(String::new()),
            bound: Bound::default(),
            sites: Vec::new(),
            checks: Vec::new(),
            used: Vec::new(),
        }
    }

    fn error(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, msg));
    }

    /// Binds the statically known site `name` in the current scope, reporting a clash.
    fn bind(&mut self, name: &str, at: Span, kind: Kind) {
        let Some(prefix) = &self.prefix else { return };
        let full = format!("{prefix}{name}");
        match self.bound.site(&full, at) {
            Ok(()) => {
                if !self.sites.iter().any(|(s, _)| *s == full) {
                    self.sites.push((full, kind));
                }
            }
            Err(first) => {
                self.errors.push(syn::Error::new(
                    at,
                    format!(
                        "site `{full}` is named twice in model `{}`: a site address may appear only once per run \
                         (exclusive `if`/`else` or `match` arms may reuse a name)",
                        self.model
                    ),
                ));
                self.errors.push(syn::Error::new(
                    first,
                    format!("site `{full}` is first named here"),
                ));
            }
        }
    }

    /// The tokens naming a site, after checking the naming rules.
    fn site_name(&mut self, call: &SiteCall, binding: Option<Binding>) -> TokenStream {
        let k = call.kind.name();
        if let Some(name) = &call.name {
            let arg = NameArg::of(name);
            if let NameArg::Static(s) = &arg {
                if self.repeats {
                    self.error(
                        s,
                        format!(
                            "site `{}` is inside a loop, where a constant name repeats every iteration: \
                             name it per iteration (`{k}!(\"{}_{{i}}\", ..)`), or vectorise the loop with `plate!`",
                            s.value(),
                            s.value()
                        ),
                    );
                } else {
                    self.bind(&s.value(), s.span(), call.kind);
                }
            }
            return arg.tokens();
        }
        match binding {
            Some(Binding::Name(id)) => {
                let name = id.unraw().to_string();
                if self.repeats {
                    self.error(
                        &id,
                        format!(
                            "site `{name}` is inside a loop, where `let {name} = {k}!(..)` would repeat its name \
                             every iteration: name it per iteration (`{k}!(\"{name}_{{i}}\", ..)`), or vectorise \
                             the loop with `plate!`"
                        ),
                    );
                } else if self.closures > 0 {
                    self.error(
                        &id,
                        format!(
                            "site `{name}` is inside a closure, which may run any number of times: name it \
                             explicitly (`{k}!(\"{name}\", ..)`, or `{k}!(\"{name}_{{i}}\", ..)` if it runs repeatedly)"
                        ),
                    );
                } else {
                    self.bind(&name, id.span(), call.kind);
                }
                LitStr::new(&name, id.span()).to_token_stream()
            }
            Some(Binding::Pattern(p)) => {
                self.malformed = true;
                self.error(
                    &p,
                    format!(
                        "a site takes its name from a single identifier (`let x = {k}!(..)` names it \"x\"); \
                         this pattern cannot name it: bind one identifier, or give the name (`{k}!(\"x\", ..)`)"
                    ),
                );
                quote!("")
            }
            None => {
                let (n, what) = match call.kind {
                    Kind::Observe => ("y", "dist, value"),
                    Kind::Param => ("w", "init"),
                    Kind::Deterministic => ("m", "value"),
                    Kind::Factor => ("f", "log_factor"),
                    _ => ("x", "dist"),
                };
                self.errors.push(syn::Error::new_spanned(
                    &call.tokens,
                    format!(
                        "this `{k}!` site has no name: bind it (`let {n} = {k}!({what})` names the site \"{n}\") \
                         or name it (`{k}!(\"{n}\", {what})`)"
                    ),
                ));
                quote!("")
            }
        }
    }

    /// Rewrites one front-end invocation; `binding` is the `let` pattern when the invocation is
    /// a `let`'s whole initialiser.
    fn front_end(&mut self, kind: Kind, mac: &Macro, binding: Option<Binding>) -> TokenStream {
        if !self.used.contains(&mac.path) {
            self.used.push(mac.path.clone());
        }
        let out = match kind {
            Kind::Plate => self.plate(mac),
            Kind::Scope => self.scope(mac),
            _ => self.site(kind, mac, binding),
        };
        out.unwrap_or_else(|e| {
            self.errors.push(e);
            self.malformed = true;
            quote!(())
        })
    }

    fn site(
        &mut self,
        kind: Kind,
        mac: &Macro,
        binding: Option<Binding>,
    ) -> syn::Result<TokenStream> {
        let mut call = SiteCall::parse(kind, mac)?;
        for e in call.exprs_mut() {
            self.visit_expr_mut(e);
        }
        let name = self.site_name(&call, binding);
        Ok(call.expand(self.rt, name))
    }

    /// `plate!(name, size, [option = value,].. body)`, the body `{ .. }` or `|p| { .. }`.
    fn plate(&mut self, mac: &Macro) -> syn::Result<TokenStream> {
        const OPTIONS: &[&str] = &["subsample_size", "subsample", "dim", "device"];
        let usage = "`plate!` takes (name, size, { body }) or (name, size, |p| { body }), with options \
                     `subsample_size = m`, `subsample = indices`, `dim = -2`, `device = &dev` before the body";
        let mut args: Vec<Expr> = mac
            .parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)?
            .into_iter()
            .collect();
        let Some(body) = args.pop() else {
            return Err(syn::Error::new_spanned(mac, usage));
        };
        let (guard_pat, mut body) = match body {
            Expr::Block(b) => (None, Expr::Block(b)),
            Expr::Closure(c) if plate_closure(&c) => (Some(c.inputs[0].clone()), *c.body),
            other => return Err(syn::Error::new_spanned(other, usage)),
        };
        let mut positional = Vec::new();
        let mut keyed = Vec::new();
        for a in args {
            match as_keyed(&a) {
                Some((k, v)) if OPTIONS.iter().any(|o| k == o) => keyed.push((k, v)),
                Some((k, _)) => {
                    return Err(syn::Error::new_spanned(
                        k,
                        format!(
                            "unknown `plate!` option; expected one of: {}",
                            OPTIONS.join(", ")
                        ),
                    ))
                }
                None if keyed.is_empty() => positional.push(a),
                None => return Err(syn::Error::new_spanned(a, usage)),
            }
        }
        if positional.len() != 2 {
            return Err(syn::Error::new_spanned(mac, usage));
        }
        for e in positional
            .iter_mut()
            .chain(keyed.iter_mut().map(|(_, e)| e))
        {
            self.visit_expr_mut(e);
        }
        self.visit_expr_mut(&mut body);
        let at = generated_at(mac);
        let rt = &respan(self.rt, at);
        let name = NameArg::of(&positional[0]).tokens();
        let size = &positional[1];
        let opts = keyed.iter().map(|(k, v)| quote!(.#k(#v)));
        let guard = Ident::new("__ppl_plate", Span::mixed_site());
        // The user's `|p|` borrows the guard, so `|_|` cannot drop it (and leave the plate) early.
        let bind = guard_pat.map(|p| quote!(let #p = &#guard;));
        Ok(quote_spanned! {at=> {
            let #guard = #rt::runtime::Plate::new(#name, #size) #(#opts)* .enter()?;
            #bind
            #body
        }})
    }

    /// `scope!(prefix, expr)`: `expr` under `prefix/`, its sub-models named by the prefix.
    fn scope(&mut self, mac: &Macro) -> syn::Result<TokenStream> {
        let (mut positional, _) = split_args(mac, "scope", &[])?;
        if positional.len() != 2 {
            return Err(syn::Error::new_spanned(
                mac,
                "`scope!` takes (prefix, expression): `scope!(\"enc2\", encoder(&x))`",
            ));
        }
        let mut expr = positional.pop().expect("two arguments");
        let mut prefix = positional.pop().expect("two arguments");
        self.visit_expr_mut(&mut prefix);
        let (inner, fixed) = match (&self.prefix, NameArg::of(&prefix)) {
            (Some(outer), NameArg::Static(s)) => (Some(format!("{outer}{}/", s.value())), true),
            (None, NameArg::Static(_)) => (None, true),
            _ => (None, false),
        };
        // A prefix formatted at run time can differ per iteration, so what runs under it does
        // not repeat names.
        let repeats = self.repeats && fixed;
        let outer = std::mem::replace(&mut self.prefix, inner);
        let outer_repeats = std::mem::replace(&mut self.repeats, repeats);
        self.visit_expr_mut(&mut expr);
        self.prefix = outer;
        self.repeats = outer_repeats;
        let at = generated_at(mac);
        let rt = &respan(self.rt, at);
        let prefix = NameArg::of(&prefix).tokens();
        let guard = Ident::new("__ppl_scope", Span::mixed_site());
        Ok(quote_spanned! {at=> {
            let #guard = #rt::handlers::enter_scope_as(#prefix);
            #expr
        }})
    }

    /// Records a call of a plain function that may be a sub-model.
    fn call(&mut self, callee: &Ident) {
        let name = callee.unraw().to_string();
        let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name != "drop"
            && !self.locals.contains(&name);
        if !plain || self.closures > 0 {
            return;
        }
        if self.repeats {
            if !self.checks.iter().any(|c| c.in_loop && c.callee == name) {
                self.checks.push(CallCheck {
                    callee: name,
                    span: callee.span(),
                    in_loop: true,
                });
            }
            return;
        }
        let Some(prefix) = &self.prefix else { return };
        if !self.bound.call(prefix, &name, callee.span())
            && !self.checks.iter().any(|c| !c.in_loop && c.callee == name)
        {
            self.checks.push(CallCheck {
                callee: name,
                span: callee.span(),
                in_loop: false,
            });
        }
    }
}

/// Located at the user's invocation (for error messages), resolved as generated code (so that
/// style lints leave it alone).
fn generated_at(mac: &Macro) -> Span {
    mac.span().resolved_at(Span::mixed_site())
}

/// `|p| body` as a plate body: one plain parameter, nothing else.
fn plate_closure(c: &ExprClosure) -> bool {
    c.inputs.len() == 1
        && c.lifetimes.is_none()
        && c.constness.is_none()
        && c.movability.is_none()
        && c.asyncness.is_none()
        && c.capture.is_none()
        && matches!(c.output, syn::ReturnType::Default)
}

impl VisitMut for Walker<'_> {
    fn visit_stmt_mut(&mut self, s: &mut Stmt) {
        let (mac, semi) = match s {
            Stmt::Macro(m) => (&m.mac, m.semi_token),
            Stmt::Expr(Expr::Macro(m), semi) => (&m.mac, *semi),
            _ => return visit_mut::visit_stmt_mut(self, s),
        };
        let Some(kind) = Kind::of(mac) else {
            return visit_mut::visit_stmt_mut(self, s);
        };
        let mac = mac.clone();
        let out = self.front_end(kind, &mac, None);
        *s = Stmt::Expr(Expr::Verbatim(out), semi);
    }

    fn visit_local_mut(&mut self, l: &mut syn::Local) {
        let front = match l.init.as_ref().map(|i| &*i.expr) {
            Some(Expr::Macro(m)) => Kind::of(&m.mac).map(|k| (k, m.mac.clone())),
            _ => None,
        };
        let Some((kind, mac)) = front else {
            return visit_mut::visit_local_mut(self, l);
        };
        let out = self.front_end(kind, &mac, Some(binding(&l.pat)));
        let init = l.init.as_mut().expect("checked above");
        *init.expr = Expr::Verbatim(out);
        if let Some((_, diverge)) = &mut init.diverge {
            self.visit_expr_mut(diverge);
        }
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        if let Expr::Macro(m) = e {
            if let Some(kind) = Kind::of(&m.mac) {
                let mac = m.mac.clone();
                let out = self.front_end(kind, &mac, None);
                // A block in the middle of an expression (`plate!(..)?`) needs parentheses, or a
                // statement starting with it would end at its closing brace.
                *e = Expr::Verbatim(match kind {
                    Kind::Plate | Kind::Scope => quote!((#out)),
                    _ => out,
                });
                return;
            }
        }
        if let Expr::Call(c) = e {
            if let Expr::Path(p) = &*c.func {
                if let (None, Some(id)) = (&p.qself, p.path.get_ident()) {
                    let id = id.clone();
                    self.call(&id);
                }
            }
        }
        visit_mut::visit_expr_mut(self, e);
    }

    fn visit_expr_if_mut(&mut self, i: &mut syn::ExprIf) {
        self.visit_expr_mut(&mut i.cond);
        let before = self.bound.clone();
        self.visit_block_mut(&mut i.then_branch);
        if let Some((_, els)) = &mut i.else_branch {
            let then = std::mem::replace(&mut self.bound, before);
            self.visit_expr_mut(els);
            let els = std::mem::replace(&mut self.bound, then);
            self.bound.union(els);
        }
    }

    fn visit_expr_match_mut(&mut self, m: &mut syn::ExprMatch) {
        self.visit_expr_mut(&mut m.expr);
        let before = self.bound.clone();
        let mut after = before.clone();
        for arm in &mut m.arms {
            self.bound = before.clone();
            if let Some((_, guard)) = &mut arm.guard {
                self.visit_expr_mut(guard);
            }
            self.visit_expr_mut(&mut arm.body);
            after.union(std::mem::take(&mut self.bound));
        }
        self.bound = after;
    }

    fn visit_expr_for_loop_mut(&mut self, f: &mut syn::ExprForLoop) {
        self.visit_expr_mut(&mut f.expr);
        let outer = std::mem::replace(&mut self.repeats, true);
        self.visit_block_mut(&mut f.body);
        self.repeats = outer;
    }

    fn visit_expr_while_mut(&mut self, w: &mut syn::ExprWhile) {
        let outer = std::mem::replace(&mut self.repeats, true);
        self.visit_expr_mut(&mut w.cond);
        self.visit_block_mut(&mut w.body);
        self.repeats = outer;
    }

    fn visit_expr_loop_mut(&mut self, l: &mut syn::ExprLoop) {
        let outer = std::mem::replace(&mut self.repeats, true);
        self.visit_block_mut(&mut l.body);
        self.repeats = outer;
    }

    fn visit_expr_closure_mut(&mut self, c: &mut ExprClosure) {
        self.closures += 1;
        self.visit_expr_mut(&mut c.body);
        self.closures -= 1;
    }

    fn visit_expr_async_mut(&mut self, a: &mut syn::ExprAsync) {
        self.closures += 1;
        self.visit_block_mut(&mut a.block);
        self.closures -= 1;
    }

    // A nested item is not part of the model: front ends there stay unexpanded and report
    // that they are outside a model.
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

/// Rewrites a model body in place.
pub(crate) fn walk_body(w: &mut Walker<'_>, body: &mut Block) {
    w.visit_block_mut(body);
}
