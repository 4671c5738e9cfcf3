//! Compile-time behaviour of `#[model]`: one pass case that exercises every form and checks the
//! traces it produces when run, and one compile-fail case per kind of naming error, whose
//! `.stderr` snapshot shows the message and the user's tokens it points at.
//!
//! The runtime is a dev-dependency renamed to `ppl_rt`, so every case also checks that generated
//! code finds the runtime under the name the user's Cargo.toml gives it.
//! Regenerate snapshots with `TRYBUILD=overwrite cargo test -p ppl-macros --test ui`, then read them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
