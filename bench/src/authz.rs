//! `authz`: what authorization costs a request.
//!
//! An authorized GET (bearer-token lookup + the decision of the `authz-rbac` plugin, which
//! reads the caller's bindings from its kv namespace; repeated decisions come from the
//! host's exact decision cache) vs the same handler served with no guard at all, both on
//! loopback in this process, driven by the same load generator in alternating rounds. The
//! cost of a cache miss (a real plugin call) is printed too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use wharf_host::api::{self, AppState};
use wharf_host::artifacts::BUNDLED;
use wharf_host::audit::AuditLog;
use wharf_host::auth::{Identity, NewUser};
use wharf_host::runtime::authorizer::Subject;
use wharf_host::runtime::{HostLimits, Runtime};
use wharf_host::store::Store;

use crate::plugins::{TempDir, micros, percentile};

const WORKERS: usize = 8;
const REQUESTS_PER_WORKER: usize = 1500;
const ROUNDS: usize = 2;

async fn serve(router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(address)
}

/// Runs the load; returns requests per second and the per-request latencies.
async fn load(url: &str, token: &str) -> anyhow::Result<(f64, Vec<Duration>)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(WORKERS)
        .build()?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS_PER_WORKER);
            for _ in 0..REQUESTS_PER_WORKER {
                let t = Instant::now();
                let response = client.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "GET {url} answered {}",
                    response.status()
                );
                response.bytes().await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(WORKERS * REQUESTS_PER_WORKER);
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok((all.len() as f64 / started.elapsed().as_secs_f64(), all))
}

pub async fn run() -> anyhow::Result<()> {
    let dir = TempDir::new("authz")?;
    let store = Store::open_sled(&dir.0.join("db"))?;
    let runtime = Runtime::new(store.clone(), HostLimits::default(), dir.0.join("cache"))?;
    for bundled in BUNDLED {
        runtime
            .install_bundled(bundled.manifest, bundled.component)
            .await?;
    }
    let identity = Identity::new(store.clone(), Duration::from_secs(3600));
    identity
        .bootstrap_admin(Some("bench-admin-password".into()))
        .await?;
    let user = identity
        .create_user(
            NewUser {
                username: "viewer".into(),
                password: "viewer-password".into(),
                display_name: None,
                email: None,
                is_admin: false,
            },
            "bench",
        )
        .await?;
    // A real policy lookup: the user holds `viewer` through a binding in authz-rbac's kv.
    let authorizer = runtime.authorizer().context("authz-rbac is enabled")?;
    let admin = Subject {
        id: "bench".into(),
        username: "admin".into(),
        groups: vec![],
        is_admin: true,
    };
    let binding = serde_json::json!({"subject": format!("user:{}", user.id), "role": "viewer", "scope": "system"});
    runtime
        .manage(
            &authorizer,
            admin,
            "binding.create".into(),
            binding.to_string(),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("binding.create: {e:?}"))?;
    let token = identity
        .login("viewer", "viewer-password", None)
        .await?
        .token;

    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let clusters =
        wharf_host::domain::clusters::Clusters::open(store.clone(), None, &dir.0, None, None)
            .await?;
    let deployer = wharf_host::domain::rollout::Deployer::new(
        store.clone(),
        clusters.clone(),
        wharf_host::domain::projects::Projects::new(store.clone()),
        AuditLog::new(store.clone()),
        wharf_host::domain::gray::providers::Providers::new(runtime.clone()),
    );
    let registry = wharf_host::domain::artifacts::Registry::open(store.clone(), &dir.0, 1 << 20)?;
    let packages = wharf_host::domain::artifacts::packages::Packages::new(
        store.clone(),
        registry.blob_files().clone(),
    );
    let pipelines = wharf_host::domain::pipelines::engine(
        &store,
        &runtime,
        &identity,
        &AuditLog::new(store.clone()),
        &deployer,
        &clusters,
        &packages,
        wharf_host::domain::pipelines::engine::DEFAULT_MAX_RUN_OUTPUT_BYTES,
    );
    let state = AppState {
        store: store.clone(),
        runtime: runtime.clone(),
        identity,
        audit: AuditLog::new(store.clone()),
        projects: wharf_host::domain::projects::Projects::new(store.clone()),
        clusters: clusters.clone(),
        deployer: deployer.clone(),
        market: wharf_host::domain::market::MarketHost::new(
            store.clone(),
            runtime.clone(),
            clusters.clone(),
            deployer,
        ),
        pipelines,
        registry,
        kube_endpoint: None,
        metrics,
        ready: Arc::new(AtomicBool::new(true)),
    };
    let guarded = serve(api::router(state.clone())).await?;
    let bypassed = serve(api::unguarded_router_for_benchmarks(state)).await?;
    let path = "/api/v1/plugins/hello";

    let (mut guarded_rps, mut bypassed_rps) = (Vec::new(), Vec::new());
    let (mut guarded_lat, mut bypassed_lat) = (Vec::new(), Vec::new());
    load(&format!("http://{guarded}{path}"), &token).await?; // warm-up
    for _ in 0..ROUNDS {
        let (rps, lat) = load(&format!("http://{guarded}{path}"), &token).await?;
        guarded_rps.push(rps);
        guarded_lat.extend(lat);
        let (rps, lat) = load(&format!("http://{bypassed}{path}"), &token).await?;
        bypassed_rps.push(rps);
        bypassed_lat.extend(lat);
    }
    // What a cache miss costs: one authz-rbac check through the plugin call path.
    let viewer = Subject {
        id: user.id.clone(),
        username: "viewer".into(),
        groups: vec![],
        is_admin: false,
    };
    let request = wharf_host::runtime::authorizer::Request {
        action: "plugin.read".into(),
        resource: "plugin:hello".into(),
    };
    let mut misses = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        runtime
            .check(&authorizer, viewer.clone(), vec![request.clone()])
            .await?
            .map_err(|e| anyhow::anyhow!("check: {e:?}"))?;
        misses.push(t.elapsed());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (g, b) = (mean(&guarded_rps), mean(&bypassed_rps));
    println!(
        "# authz benchmark (GET {path}, {WORKERS} keep-alive workers × {REQUESTS_PER_WORKER} requests, {ROUNDS} alternating rounds)"
    );
    println!(
        "  authorized (token + authz-rbac)  {g:9.0} req/s   p99 {:8.1} µs",
        micros(percentile(&mut guarded_lat, 0.99))
    );
    println!(
        "  authorization bypassed           {b:9.0} req/s   p99 {:8.1} µs",
        micros(percentile(&mut bypassed_lat, 0.99))
    );
    println!(
        "  authorized / bypassed = {:.2}x (target ≥ 0.6x: {})",
        g / b,
        if g / b >= 0.6 { "met" } else { "NOT met" }
    );
    println!(
        "  a decision-cache miss (one authz-rbac call, sequential): p50 {:.1} µs, p99 {:.1} µs",
        micros(percentile(&mut misses, 0.5)),
        micros(percentile(&mut misses, 0.99))
    );
    Ok(())
}
