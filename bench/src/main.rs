//! Wharf's benchmark program. Figures are measured side by side in one run and printed
//! with their ratios, because these machines are too noisy for absolute thresholds.
//!
//! `cargo run --release -p wharf-bench -- plugins`
//!
//! (`wharf-bench wharf …` runs the `wharf` CLI itself; the cold-start figure uses it so
//! the benchmark needs no separately built binary.)

mod plugins;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("wharf") => std::process::exit(wharf_host::cli::main_from(args.into_iter().skip(1))),
        Some("plugins") => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            if let Err(error) = runtime.block_on(plugins::run()) {
                eprintln!("benchmark failed: {error:#}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: wharf-bench plugins");
            std::process::exit(2);
        }
    }
}
