//! The site macros (`sample!`, `observe!`, `param!`, `deterministic!`, `factor!`): which one an
//! invocation is, how its arguments split into name, positional and keyed ones, and what it
//! expands to once its name is known.

use proc_macro2::{Span, TokenStream};
use quote::{quote_spanned, ToTokens};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, LitStr, Macro, Token};

/// The front ends `#[model]` rewrites.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sample,
    Observe,
    Param,
    Deterministic,
    Factor,
    Plate,
    Scope,
}

impl Kind {
    /// The front end a macro invocation names, if any: `sample!`, `ppl::sample!`, ..
    pub(crate) fn of(mac: &Macro) -> Option<Kind> {
        let segs = &mac.path.segments;
        let last = segs.last()?.ident.to_string();
        let first = segs.first()?.ident.to_string();
        if segs.len() > 1 && first != "ppl" && first != "ppl_core" {
            return None;
        }
        Some(match last.as_str() {
            "sample" => Kind::Sample,
            "observe" => Kind::Observe,
            "param" => Kind::Param,
            "deterministic" => Kind::Deterministic,
            "factor" => Kind::Factor,
            "plate" => Kind::Plate,
            "scope" => Kind::Scope,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Sample => "sample",
            Kind::Observe => "observe",
            Kind::Param => "param",
            Kind::Deterministic => "deterministic",
            Kind::Factor => "factor",
            Kind::Plate => "plate",
            Kind::Scope => "scope",
        }
    }

    /// Positional arguments besides the name, and what they are (for messages).
    fn positional(self) -> (usize, &'static str) {
        match self {
            Kind::Sample => (1, "dist"),
            Kind::Observe => (2, "dist, value"),
            Kind::Param => (1, "init"),
            Kind::Deterministic => (1, "value"),
            Kind::Factor => (1, "log_factor"),
            Kind::Plate | Kind::Scope => (0, ""),
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Sample => &["infer"],
            Kind::Param => &["constraint"],
            _ => &[],
        }
    }
}

/// A site macro's arguments, split.
pub(crate) struct SiteCall {
    pub(crate) kind: Kind,
    /// The explicit name argument, if given.
    pub(crate) name: Option<Expr>,
    positional: Vec<Expr>,
    keyed: Vec<(Ident, Expr)>,
    /// The invocation, for spans.
    pub(crate) span: Span,
    /// The invocation's tokens, for errors that underline all of it.
    pub(crate) tokens: TokenStream,
}

/// `key = value` as an argument: an assignment to a plain identifier.
pub(crate) fn as_keyed(e: &Expr) -> Option<(Ident, Expr)> {
    let Expr::Assign(a) = e else { return None };
    let Expr::Path(p) = &*a.left else { return None };
    let id = p.path.get_ident()?;
    Some((id.clone(), (*a.right).clone()))
}

/// Positional arguments, then `key = value` options.
pub(crate) type Args = (Vec<Expr>, Vec<(Ident, Expr)>);

/// Splits a macro's comma-separated arguments into positional ones and `key = value` ones,
/// checking the keys against `allowed`.
pub(crate) fn split_args(mac: &Macro, what: &str, allowed: &[&str]) -> syn::Result<Args> {
    let args = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)?;
    let mut positional = Vec::new();
    let mut keyed = Vec::new();
    for arg in args {
        match as_keyed(&arg) {
            Some((k, v)) => {
                if !allowed.iter().any(|a| k == a) {
                    let expected = if allowed.is_empty() {
                        format!("`{what}!` takes no `key = value` options")
                    } else {
                        format!(
                            "unknown option `{k}` of `{what}!`; expected one of: {}",
                            allowed.join(", ")
                        )
                    };
                    return Err(syn::Error::new_spanned(&k, expected));
                }
                keyed.push((k, v));
            }
            None if !keyed.is_empty() => {
                return Err(syn::Error::new_spanned(
                    &arg,
                    format!("`{what}!`: positional arguments come before `key = value` options"),
                ))
            }
            None => positional.push(arg),
        }
    }
    Ok((positional, keyed))
}

impl SiteCall {
    /// Parses `kind!(args)`: `(args..)` unnamed, or `(name, args..)`, then `key = value` options.
    pub(crate) fn parse(kind: Kind, mac: &Macro) -> syn::Result<Self> {
        let (mut positional, keyed) = split_args(mac, kind.name(), kind.keys())?;
        let (n, what) = kind.positional();
        let name = if positional.len() == n + 1 {
            Some(positional.remove(0))
        } else if positional.len() == n {
            None
        } else {
            return Err(syn::Error::new_spanned(
                mac,
                format!(
                    "`{k}!` takes ({what}) or (name, {what}); got {} argument(s)",
                    positional.len(),
                    k = kind.name()
                ),
            ));
        };
        Ok(SiteCall {
            kind,
            name,
            positional,
            keyed,
            span: mac.span(),
            tokens: mac.to_token_stream(),
        })
    }

    /// Mutable access to every argument expression, so nested front ends get rewritten too.
    pub(crate) fn exprs_mut(&mut self) -> impl Iterator<Item = &mut Expr> {
        self.name
            .iter_mut()
            .chain(self.positional.iter_mut())
            .chain(self.keyed.iter_mut().map(|(_, e)| e))
    }

    /// The call of the runtime primitive, with the site named by `name` (tokens of an
    /// `impl Into<String>` expression).
    pub(crate) fn expand(&self, rt: &TokenStream, name: TokenStream) -> TokenStream {
        let rt = &respan(rt, self.span.resolved_at(Span::mixed_site()));
        let p = &self.positional;
        let key = |k: &str| self.keyed.iter().find(|(i, _)| i == k).map(|(_, e)| e);
        // Every generated token is located at the invocation, so an error about the call (a
        // runtime path that does not resolve, a `?` in a function that returns no `Result`)
        // points at the user's macro; it resolves as generated code, so lints of code style
        // (clippy's `needless_question_mark`, `let_and_return`) leave it alone.
        let s = self.span.resolved_at(Span::mixed_site());
        let call = match self.kind {
            Kind::Sample => match key("infer") {
                Some(infer) => {
                    quote_spanned!(s=> #rt::runtime::sample_with(#name, #(#p)*, #infer))
                }
                None => quote_spanned!(s=> #rt::runtime::sample(#name, #(#p)*)),
            },
            Kind::Observe => {
                let (d, v) = (&p[0], &p[1]);
                quote_spanned!(s=> #rt::runtime::observe(#name, #d, &(#v)))
            }
            Kind::Param => match key("constraint") {
                Some(c) => quote_spanned!(s=> #rt::runtime::param_constrained(#name, #(#p)*, #c)),
                None => quote_spanned!(s=> #rt::runtime::param(#name, #(#p)*)),
            },
            Kind::Deterministic => {
                quote_spanned!(s=> #rt::runtime::deterministic(#name, &(#(#p)*)))
            }
            Kind::Factor => quote_spanned!(s=> #rt::runtime::factor(#name, &(#(#p)*))),
            Kind::Plate | Kind::Scope => unreachable!("plate! and scope! are not sites"),
        };
        quote_spanned!(s=> #call?)
    }
}

/// `tokens` carrying `span`, so that an error about generated code (a runtime path that does
/// not resolve, a `?` in a function that returns no `Result`) points at the user's macro.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

/// How a name argument reads: a constant string, a format string capturing variables
/// (`"x_{t}"`), or any other expression.
pub(crate) enum NameArg<'a> {
    Static(&'a LitStr),
    Format(&'a LitStr),
    Dynamic(&'a Expr),
}

impl<'a> NameArg<'a> {
    pub(crate) fn of(e: &'a Expr) -> Self {
        if let Expr::Lit(l) = e {
            if let Lit::Str(s) = &l.lit {
                let v = s.value();
                return if v.contains('{') || v.contains('}') {
                    NameArg::Format(s)
                } else {
                    NameArg::Static(s)
                };
            }
        }
        NameArg::Dynamic(e)
    }

    /// The expression to pass to the runtime.
    pub(crate) fn tokens(&self) -> TokenStream {
        match self {
            NameArg::Static(s) => s.to_token_stream(),
            NameArg::Format(s) => quote_spanned!(s.span()=> ::std::format!(#s)),
            NameArg::Dynamic(e) => e.to_token_stream(),
        }
    }
}
