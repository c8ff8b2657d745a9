//! Wharf's benchmark program. Figures are measured side by side in one run and printed
//! with their ratios, because these machines are too noisy for absolute thresholds.
//!
//! `cargo run --release -p wharf-bench -- plugins` (the plugin runtime)
//! `cargo run --release -p wharf-bench -- authz` (what authorization costs a request)
//! `cargo run --release -p wharf-bench -- cluster [DEPLOYMENTS]` (the embedded Kubernetes
//! API simulator: a 1,000-Deployment rollout, watch latency, RSS, `kubectl get pods -A`)
//! `cargo run --release -p wharf-bench -- deploys [APPS] [CONCURRENT]` (change orders over
//! REST: 1,000 apps deployed once, then 100 concurrent batched rollouts; GET latencies, RSS)
//! `cargo run --release -p wharf-bench -- gray` (gray-rule evaluation through the
//! gray-router plugin vs the same rules natively)
//! `cargo run --release -p wharf-bench -- market` (a 10-component template installed with
//! deploy from a local catalog: time to all running, split into plugin and host)
//! `cargo run --release -p wharf-bench -- pipelines [CONCURRENT]` (concurrent runs of a
//! 5-step pipeline: runs/s, step scheduling latency, plugin vs native step cost, RSS)
//!
//! (`wharf-bench wharf …` runs the `wharf` CLI itself; the cold-start figure uses it so
//! the benchmark needs no separately built binary.)

mod authz;
mod cluster;
mod deploys;
mod gray;
mod market;
mod pipelines;
mod plugins;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("wharf") => std::process::exit(wharf_host::cli::main_from(args.into_iter().skip(1))),
        Some(
            which @ ("plugins" | "authz" | "cluster" | "deploys" | "gray" | "market" | "pipelines"),
        ) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let outcome = match which {
                "plugins" => runtime.block_on(plugins::run()),
                "gray" => runtime.block_on(gray::run()),
                "market" => runtime.block_on(market::run()),
                "pipelines" => {
                    let concurrent = match args.get(2).map(|a| a.to_str().map(str::parse::<usize>))
                    {
                        None => 100,
                        Some(Some(Ok(n))) if n > 0 => n,
                        _ => {
                            eprintln!("usage: wharf-bench pipelines [CONCURRENT]");
                            std::process::exit(2);
                        }
                    };
                    runtime.block_on(pipelines::run(concurrent))
                }
                "deploys" => {
                    let number = |i: usize, default: usize| match args
                        .get(i)
                        .map(|a| a.to_str().map(str::parse::<usize>))
                    {
                        None => default,
                        Some(Some(Ok(n))) if n > 0 => n,
                        _ => {
                            eprintln!("usage: wharf-bench deploys [APPS] [CONCURRENT]");
                            std::process::exit(2);
                        }
                    };
                    runtime.block_on(deploys::run(number(2, 1000), number(3, 100)))
                }
                "cluster" => {
                    let deployments = match args.get(2).map(|a| a.to_str().map(str::parse)) {
                        None => 1000,
                        Some(Some(Ok(n))) if n > 0 => n,
                        _ => {
                            eprintln!("usage: wharf-bench cluster [DEPLOYMENTS]");
                            std::process::exit(2);
                        }
                    };
                    runtime.block_on(cluster::run(deployments))
                }
                _ => runtime.block_on(authz::run()),
            };
            if let Err(error) = outcome {
                eprintln!("benchmark failed: {error:#}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: wharf-bench plugins|authz|gray|market|cluster [DEPLOYMENTS]|deploys [APPS] [CONCURRENT]"
            );
            std::process::exit(2);
        }
    }
}
