//! Wharf's benchmark program. Figures are measured side by side in one run and printed
//! with their ratios, because these machines are too noisy for absolute thresholds.
//!
//! `cargo run --release -p wharf-bench -- plugins` (the plugin runtime)
//! `cargo run --release -p wharf-bench -- authz` (what authorization costs a request)
//!
//! (`wharf-bench wharf …` runs the `wharf` CLI itself; the cold-start figure uses it so
//! the benchmark needs no separately built binary.)

mod authz;
mod plugins;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("wharf") => std::process::exit(wharf_host::cli::main_from(args.into_iter().skip(1))),
        Some(which @ ("plugins" | "authz")) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let outcome = match which {
                "plugins" => runtime.block_on(plugins::run()),
                _ => runtime.block_on(authz::run()),
            };
            if let Err(error) = outcome {
                eprintln!("benchmark failed: {error:#}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: wharf-bench plugins|authz");
            std::process::exit(2);
        }
    }
}
