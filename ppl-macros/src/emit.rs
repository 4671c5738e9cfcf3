//! What `#[model]` emits: the rewritten function, the `name::sites` module of its statically
//! known site names, and the compile-time checks on its sub-model calls.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{parse_quote, Ident, ItemFn, LitStr, Stmt};

use crate::names::const_name;
use crate::options::ModelArgs;
use crate::sites::Kind;
use crate::walk::{walk_body, CallCheck, Walker};

/// Expands `#[model]` on `f`.
pub(crate) fn model(args: &ModelArgs, mut f: ItemFn) -> TokenStream {
    if let Err(e) = supported(&f) {
        return fallback(&f, e.to_compile_error(), &[], TokenStream::new());
    }
    let rt = args.runtime();
    let name = f.sig.ident.unraw().to_string();
    let locals = crate::locals::collect(&f);
    let mut w = Walker::new(&rt, &name, &locals);
    walk_body(&mut w, &mut f.block);

    let module = (!args.no_sites && f.sig.receiver().is_none())
        .then(|| sites_module(&f, &w.sites, &w.checks));
    let module = module.unwrap_or_default();

    // The front ends are rewritten before they expand, so without these no-op invocations an
    // import of `sample` and the like would be reported unused.
    let used: Vec<Stmt> = w
        .used
        .iter()
        .map(|p| parse_quote!(#p! { @ppl_used }))
        .collect();

    let mut errors = w.errors.into_iter();
    let error = errors.next().map(|mut first| {
        first.extend(errors);
        first.to_compile_error()
    });
    if error.is_some() && w.malformed {
        return fallback(&f, error.unwrap_or_default(), &used, module);
    }

    let guard = Ident::new("__ppl_model", Span::mixed_site());
    let lit = LitStr::new(&name, f.sig.ident.span());
    let enter: Stmt = parse_quote!(let #guard = #rt::handlers::enter_model(#lit););
    f.block.stmts.splice(0..0, used.into_iter().chain([enter]));
    // Naming errors leave well-formed code behind (a nameless site is named ""), so the
    // rewritten function is still emitted and reports nothing more.
    quote!(#error #f #module)
}

/// Model functions run synchronously on the thread whose handler stack they use.
fn supported(f: &ItemFn) -> syn::Result<()> {
    if let Some(a) = &f.sig.asyncness {
        return Err(syn::Error::new_spanned(
            a,
            "#[model] does not support `async fn`: the handler stack is per thread, and a model must \
             run to completion on it",
        ));
    }
    if let Some(c) = &f.sig.constness {
        return Err(syn::Error::new_spanned(
            c,
            "#[model] does not support `const fn`: sampling happens at run time",
        ));
    }
    Ok(())
}

/// The function as written, with its body stubbed (its front ends could not be rewritten into
/// well-formed code) so that the errors found are the only ones reported, plus `extra` (the sites module, so that uses of it do not fail as well).
fn fallback(f: &ItemFn, err: TokenStream, used: &[Stmt], extra: TokenStream) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = f;
    quote! {
        #err
        #(#attrs)*
        #[allow(unused_variables, unused_mut, unreachable_code, clippy::all)]
        #vis #sig {
            #(#used)*
            ::core::unimplemented!("this model has naming errors")
        }
        #extra
    }
}

fn kind_doc(kind: Kind) -> &'static str {
    match kind {
        Kind::Sample => "a sample site",
        Kind::Observe => "an observed sample site",
        Kind::Param => "a learnable parameter",
        Kind::Deterministic => "a deterministic site",
        Kind::Factor => "a factor (extra log-density term)",
        Kind::Plate | Kind::Scope => "a site",
    }
}

/// `mod name { pub mod sites { .. } }`, the sub-model marker and the call checks.
fn sites_module(f: &ItemFn, sites: &[(String, Kind)], checks: &[CallCheck]) -> TokenStream {
    let vis = &f.vis;
    let fn_ident = &f.sig.ident;
    let name = fn_ident.unraw().to_string();

    let mut used = vec!["ALL".to_string()];
    let consts: Vec<(Ident, &String, Kind)> = sites
        .iter()
        .map(|(site, kind)| {
            let mut c = const_name(site);
            if used.contains(&c) {
                c.push_str("_SITE");
            }
            let base = c.clone();
            let mut n = 2;
            while used.contains(&c) {
                c = format!("{base}_{n}");
                n += 1;
            }
            used.push(c.clone());
            (Ident::new(&c, Span::call_site()), site, *kind)
        })
        .collect();
    let defs = consts.iter().map(|(c, site, kind)| {
        let doc = format!("`{site}`: {}.", kind_doc(*kind));
        quote!(#[doc = #doc] pub const #c: &str = #site;)
    });
    let all = consts.iter().map(|(c, _, _)| c);

    let module_doc =
        format!("Companion of the model function `{name}`: its statically known site names.");
    let sites_doc = format!(
        "The site names of `{name}` that are known at compile time (not those of sub-models, nor \
         names formatted at run time), as constants: give them to `condition`/`do_` and a typo \
         becomes a compile error."
    );
    let marker = format_ident!("__ppl_submodel_{}", name);
    let sub = Ident::new("SubModel", fn_ident.span());
    // Spanned at the model's name, where a failed check's note points.
    let struct_def = quote_spanned! {fn_ident.span()=>
        /// What a call of this model names when a caller's check finds it called twice.
        #[doc(hidden)]
        pub struct #sub;
    };
    let calls = call_checks(&name, checks);
    quote! {
        #[doc = #module_doc]
        #[allow(dead_code)]
        #vis mod #fn_ident {
            #[doc = #sites_doc]
            pub mod sites {
                #(#defs)*
                /// Every statically known site name, in order of first appearance.
                pub const ALL: &[&str] = &[#(#all),*];
            }
            #struct_def
            #calls
        }
        /// Marks the function of the same name as a model, for the sub-model call checks.
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis trait #marker {
            /// Names the model.
            fn #marker(self) -> #fn_ident::#sub;
        }
        #[doc(hidden)]
        impl #marker for () {
            fn #marker(self) -> #fn_ident::#sub {
                #fn_ident::#sub
            }
        }
    }
}

/// For each plain function this model calls twice in one scope (or in a loop), a check that
/// fails to compile exactly when that function is a model defined (or glob-imported) in the
/// caller's module. Each model emits a marker trait implemented for `()`; the check calls the
/// marker method (taking `self`) on `()`, which method resolution takes from the marker trait
/// when it is in scope, and otherwise from a fallback implemented for `&()` (found one
/// auto-reference later, so the two never compete). Only
/// the marker's return type fails the check's bound, whose message explains the problem. A
/// function that is not a model, or a model out of sight, compiles as before.
fn call_checks(model: &str, checks: &[CallCheck]) -> TokenStream {
    if checks.is_empty() {
        return TokenStream::new();
    }
    let items = checks.iter().enumerate().map(|(i, c)| {
        let callee = &c.callee;
        let span = c.span;
        let marker = format_ident!("__ppl_submodel_{}", callee, span = span);
        let fallback = format_ident!("__Fallback{}", i, span = span);
        let bound = format_ident!("OneCallPerScope{}", i, span = span);
        let require = format_ident!("__require{}", i, span = span);
        let check = format_ident!("__check{}", i, span = span);
        let (message, label, note) = if c.in_loop {
            (
                format!(
                    "sub-model `{callee}` is called inside a loop of model `{model}`: every iteration would \
                     name its sites `{callee}/..` again"
                ),
                format!("`{callee}` is a model: give each iteration its own scope"),
                format!("write `scope!(\"{callee}_{{i}}\", {callee}(..))`, or vectorise the loop with `plate!`"),
            )
        } else {
            (
                format!(
                    "sub-model `{callee}` is called twice in model `{model}`: both calls would name their \
                     sites `{callee}/..`"
                ),
                format!("second call of the model `{callee}`"),
                format!("give this call its own scope: `scope!(\"{callee}2\", {callee}(..))`"),
            )
        };
        quote_spanned! {span=>
            trait #fallback {
                fn #marker(self);
            }
            impl #fallback for &() {
                fn #marker(self) {}
            }
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            trait #bound {}
            impl #bound for () {}
            fn #require<T: #bound>(_: T) {}
            fn #check() {
                #require(().#marker())
            }
        }
    });
    quote! {
        #[doc(hidden)]
        #[allow(unused_imports, dead_code, non_camel_case_types, non_snake_case, clippy::all)]
        mod __calls {
            use super::super::*;
            #(#items)*
        }
    }
}
