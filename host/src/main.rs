//! The `wharf` binary: the server and its admin CLI.

use clap::Parser;

#[tokio::main]
async fn main() {
    // ring is the only TLS crypto provider in the build; make it the process default
    // before any client (reqwest, wasi-http) builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = wharf_host::cli::Cli::parse();
    std::process::exit(wharf_host::cli::run(cli).await);
}
