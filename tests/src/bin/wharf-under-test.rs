//! `wharf` itself, built inside this package so `cargo test` rebuilds it with the tests.

fn main() {
    std::process::exit(wharf_host::cli::main());
}
