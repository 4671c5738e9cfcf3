//! The arguments of `#[model(..)]` and the path through which generated code reaches the runtime.

use proc_macro2::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::{Ident, Path};

/// What `#[model(..)]` was given.
#[derive(Default)]
pub(crate) struct ModelArgs {
    /// `crate = path`: where the runtime lives, when the automatic lookup cannot tell.
    krate: Option<Path>,
    /// `no_sites`: emit no module named after the function (an associated function, or a module
    /// of that name already exists).
    pub(crate) no_sites: bool,
}

impl ModelArgs {
    /// Parses the attribute's arguments (`crate = path`, `no_sites`).
    pub(crate) fn parse(attr: proc_macro::TokenStream) -> syn::Result<Self> {
        let mut args = ModelArgs::default();
        let parser = syn::meta::parser(|meta: ParseNestedMeta| {
            if meta.path.is_ident("crate") {
                args.krate = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("no_sites") {
                args.no_sites = true;
                Ok(())
            } else {
                Err(meta.error("unknown #[model] option; expected `crate = path` or `no_sites`"))
            }
        });
        syn::parse::Parser::parse(parser, attr)?;
        Ok(args)
    }

    /// The path of the runtime crate in generated code: the override, else the facade `ppl`
    /// under whatever name the user's Cargo.toml gives it, else `ppl-core`, else `::ppl`.
    pub(crate) fn runtime(&self) -> TokenStream {
        if let Some(p) = &self.krate {
            return quote!(#p);
        }
        use proc_macro_crate::{crate_name, FoundCrate};
        // `Itself` also covers the facade's own doc tests and examples, which reach it as an
        // external crate, so it maps to the absolute name rather than `crate`.
        let found = crate_name("ppl")
            .map(|f| (f, "ppl"))
            .or_else(|_| crate_name("ppl-core").map(|f| (f, "ppl_core")));
        let name = match found {
            Ok((FoundCrate::Name(n), _)) => n,
            Ok((FoundCrate::Itself, own)) => own.to_string(),
            Err(_) => "ppl".to_string(),
        };
        let ident = Ident::new(&name, proc_macro2::Span::call_site());
        quote!(::#ident)
    }
}
