#![doc = include_str!("../doc/tutorial.md")]
#![warn(missing_docs)]

mod emit;
mod locals;
mod names;
mod options;
mod sites;
mod walk;

use proc_macro::TokenStream;

/// Turns an ordinary function into a model: names its sites from their `let` bindings, scopes
/// the sites of the models it calls under their names, and checks the naming rules at compile
/// time. See the [crate documentation](crate) for the forms it understands.
///
/// Options: `#[model(crate = path)]` names the runtime crate when the automatic lookup (the
/// facade `ppl` under any name in Cargo.toml, else `ppl-core`) cannot tell, e.g.
/// `#[model(crate = ppl_core)]`; `#[model(no_sites)]` emits no companion module (needed for an
/// associated function without `self`, or where a module of the function's name exists).
#[proc_macro_attribute]
pub fn model(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match options::ModelArgs::parse(attr) {
        Ok(a) => a,
        Err(e) => {
            let mut out: TokenStream = e.to_compile_error().into();
            out.extend(item);
            return out;
        }
    };
    match syn::parse::<syn::ItemFn>(item.clone()) {
        Ok(f) => emit::model(&args, f).into(),
        Err(_) => {
            let item2: proc_macro2::TokenStream = item.clone().into();
            let mut out: TokenStream = syn::Error::new_spanned(
                item2,
                "#[model] applies to a function (free or associated)",
            )
            .to_compile_error()
            .into();
            out.extend(item);
            out
        }
    }
}

/// What a front end expands to outside a `#[model]` function: an error saying where it belongs.
fn stray(input: TokenStream, name: &str, runtime: &str) -> TokenStream {
    // `#[model]` invokes each front end it rewrote once this way, so the user's import of it
    // counts as used.
    let tokens: Vec<_> = input.into_iter().collect();
    if let [proc_macro::TokenTree::Punct(at), proc_macro::TokenTree::Ident(id)] = &tokens[..] {
        if at.as_char() == '@' && id.to_string() == "ppl_used" {
            return TokenStream::new();
        }
    }
    let msg = format!(
        "`{name}!` can only be used in the body of a `#[model]` function (not in a nested fn, nor \
         inside another macro's arguments such as `vec![..]`); elsewhere call `{runtime}`"
    );
    quote::quote!(::core::compile_error!(#msg)).into()
}

/// A random variable: `let x = sample!(dist)` draws the site `"x"` from `dist` and evaluates to
/// its value (a `Tensor`); `sample!("name", dist)` names it explicitly, and a literal name is a
/// format string that may capture variables (`sample!("x_{t}", dist)`). `dist` may be a
/// distribution or the `Result` of its constructor. `sample!(dist, infer = config)` passes
/// settings for inference algorithms. Errors propagate with `?`. Only inside `#[model]`.
#[proc_macro]
pub fn sample(input: TokenStream) -> TokenStream {
    stray(input, "sample", "ppl::runtime::sample(name, dist)")
}

/// An observed random variable: `let y = observe!(dist, value)` scores `value` (a `Tensor` or
/// `&Tensor`) under `dist` as the site `"y"` and evaluates to it; `observe!("y", dist, value)`
/// names it explicitly (and may stand alone as a statement). Only inside `#[model]`.
#[proc_macro]
pub fn observe(input: TokenStream) -> TokenStream {
    stray(
        input,
        "observe",
        "ppl::runtime::observe(name, dist, &value)",
    )
}

/// A learnable parameter: `let w = param!(|| init)` reads the parameter `"w"` from the current
/// parameter store, creating it with the closure the first time; `param!("w", || init)` names it
/// explicitly; `param!(|| init, constraint = Constraint::Positive)` constrains it. Only inside
/// `#[model]`.
#[proc_macro]
pub fn param(input: TokenStream) -> TokenStream {
    stray(input, "param", "ppl::runtime::param(name, init)")
}

/// A named deterministic value: `let m = deterministic!(value)` records `value` as the site
/// `"m"` (interventions may replace it) and evaluates to it; `deterministic!("m", value)` names
/// it explicitly. Only inside `#[model]`.
#[proc_macro]
pub fn deterministic(input: TokenStream) -> TokenStream {
    stray(
        input,
        "deterministic",
        "ppl::runtime::deterministic(name, &value)",
    )
}

/// An extra log-density term: `factor!("penalty", log_factor)` adds the tensor `log_factor` to
/// the model's log-joint. Only inside `#[model]`.
#[proc_macro]
pub fn factor(input: TokenStream) -> TokenStream {
    stray(input, "factor", "ppl::runtime::factor(name, &log_factor)")
}

/// A vectorised plate: `plate!("data", n, { body })` runs `body` (a block, whose value the
/// plate! takes) inside a plate of `n` conditionally independent members; the sites in it get a
/// batch dimension of size `n`. `plate!("data", n, |p| { body })` binds the plate's guard to `p`
/// (for `p.indices()`; the body is not a closure: `?` and `return` act on the model).
/// Options before the body: `subsample_size = m`, `subsample = indices`, `dim = -2`,
/// `device = &dev`. Only inside `#[model]`.
#[proc_macro]
pub fn plate(input: TokenStream) -> TokenStream {
    stray(input, "plate", "ppl::runtime::plate(name, size, |p| ..)")
}

/// Scopes an expression's sites under a prefix: `scope!("enc2", encoder(&x))` names the sites of
/// that call of the sub-model `encoder` `enc2/..` instead of `encoder/..`, which is how one model
/// calls the same sub-model twice. Only inside `#[model]`.
#[proc_macro]
pub fn scope(input: TokenStream) -> TokenStream {
    stray(input, "scope", "ppl::handlers::scope(prefix, || ..)")
}
