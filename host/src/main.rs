//! The `wharf` binary: the server and its admin CLI.

fn main() {
    std::process::exit(wharf_host::cli::main());
}
