//! `wharf serve`: open storage, make sure an admin exists, start the runtime and the
//! HTTP server, then load plugins. `/readyz` turns 200 once every enabled plugin is
//! loaded and the bundled plugins are installed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::api::{self, AppState};
use crate::artifacts::BUNDLED;
use crate::audit::AuditLog;
use crate::auth::{AdminBootstrap, Identity};
use crate::runtime::{HostLimits, Runtime};
use crate::store::Store;

/// Everything `wharf serve` is configured with.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub admin_password: Option<String>,
    pub token_ttl: Duration,
    pub allow_registration: bool,
    /// Audit records older than this are removed.
    pub audit_retention: Duration,
    /// Unauthenticated denials are counted per source over this window, then written.
    pub audit_denial_window: Duration,
    pub limits: HostLimits,
    /// A real cluster to use instead of the embedded one.
    pub kubeconfig: Option<PathBuf>,
    /// Where requests may name kubeconfig files (`kubeconfigPath`); none: nowhere.
    pub kubeconfig_dir: Option<PathBuf>,
    /// The embedded cluster's HTTPS address for kubectl.
    pub kube_listen: SocketAddr,
    /// The embedded cluster's gateway address; `None`: no gateway.
    pub kube_gateway_listen: Option<SocketAddr>,
    /// Keep the embedded cluster in memory only.
    pub ephemeral: bool,
    /// Scale of the embedded cluster's simulated delays.
    pub kube_time_scale: f64,
    /// Pending → Ready time of an embedded-cluster pod at time scale 1.
    pub kube_pod_start: Duration,
    /// Simulated nodes in the embedded cluster.
    pub kube_nodes: usize,
    /// Bytes of outputs one pipeline run's steps may hold together.
    pub pipeline_max_run_output_bytes: usize,
    /// The largest blob the registry accepts.
    pub registry_max_blob_bytes: u64,
    /// How often image retention runs over every project (`None`: never on its own).
    pub image_retention_interval: Option<Duration>,
}

pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating the data directory {}", options.data_dir.display()))?;
    let store = Store::open_sled(&options.data_dir.join("db"))?;
    let identity = Identity::new(store.clone(), options.token_ttl)
        .with_registration(options.allow_registration);
    match identity.bootstrap_admin(options.admin_password).await? {
        AdminBootstrap::CreatedWithGeneratedPassword(password) => println!(
            "created user `admin` with password {password} (shown only now; set WHARF_ADMIN_PASSWORD to choose it)"
        ),
        AdminBootstrap::CreatedWithGivenPassword => {
            println!("created user `admin` with the password from WHARF_ADMIN_PASSWORD")
        }
        AdminBootstrap::AlreadyPresent => {}
    }

    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let runtime = Runtime::new(store.clone(), options.limits, options.cache_dir)?;
    let ready = Arc::new(AtomicBool::new(false));
    let audit = AuditLog::with_denial_window(store.clone(), options.audit_denial_window);
    let prepared = audit.prepare().await.context("preparing the audit log")?;
    if prepared.interrupted > 0 {
        tracing::warn!(
            records = prepared.interrupted,
            "requests in flight when the server stopped are audited as interrupted"
        );
    }
    spawn_retention(audit.clone(), options.audit_retention);
    let simulator = match options.kubeconfig {
        Some(_) => None,
        None => Some(crate::cluster::Simulator::start(
            crate::cluster::SimConfig {
                store: (!options.ephemeral).then(|| store.clone()),
                time_scale: options.kube_time_scale,
                pod_start_delay: options.kube_pod_start,
                nodes: options.kube_nodes,
            },
        )?),
    };
    let kube_endpoint = match &simulator {
        Some(simulator) => {
            runtime.set_cluster(simulator.client());
            let endpoint = crate::cluster::loopback::serve(
                simulator.router(),
                options.kube_listen,
                &options.data_dir.join("embedded-cluster"),
            )
            .await?;
            println!(
                "embedded cluster listening on {} (`wharf cluster kubeconfig` prints a kubeconfig)",
                endpoint.server_url()
            );
            if let Some(address) = options.kube_gateway_listen {
                let bound = simulator.serve_gateway(address).await?;
                println!("embedded cluster gateway listening on http://{bound}");
            }
            Some(endpoint)
        }
        None => None,
    };
    let clusters = crate::domain::clusters::Clusters::open(
        store.clone(),
        simulator.clone(),
        &options.data_dir,
        options.kubeconfig.as_deref(),
        options.kubeconfig_dir.as_deref(),
    )
    .await?;
    if simulator.is_none() {
        // Plugins reach the `--kubeconfig` cluster; a broken one is reported, not fatal,
        // so the admin can fix it through the API.
        match clusters.client("default").await {
            Ok(client) => runtime.set_cluster(client.kube()),
            Err(error) => {
                tracing::error!(%error, "the --kubeconfig cluster is not usable");
                eprintln!("the cluster in --kubeconfig is not usable: {error}");
            }
        }
    }
    let deployer = crate::domain::rollout::Deployer::new(
        store.clone(),
        clusters.clone(),
        crate::domain::projects::Projects::new(store.clone()),
        audit.clone(),
        crate::domain::gray::providers::Providers::new(runtime.clone()),
    );
    let market = crate::domain::market::MarketHost::new(
        store.clone(),
        runtime.clone(),
        clusters.clone(),
        deployer.clone(),
    );
    let registry = crate::domain::artifacts::Registry::open(
        store.clone(),
        &options.data_dir,
        options.registry_max_blob_bytes,
    )?;
    let packages = crate::domain::artifacts::packages::Packages::new(
        store.clone(),
        registry.blob_files().clone(),
    );
    let pipelines = crate::domain::pipelines::engine(
        &store,
        &runtime,
        &identity,
        &audit,
        &deployer,
        &clusters,
        &packages,
        options.pipeline_max_run_output_bytes,
    );
    let retention_task = options.image_retention_interval.map(|interval| {
        (
            registry.clone(),
            crate::domain::projects::Projects::new(store.clone()),
            interval,
        )
    });
    let state = AppState {
        registry,
        store: store.clone(),
        runtime: runtime.clone(),
        identity,
        audit: audit.clone(),
        projects: crate::domain::projects::Projects::new(store.clone()),
        clusters,
        deployer: deployer.clone(),
        market: market.clone(),
        pipelines: pipelines.clone(),
        kube_endpoint,
        metrics,
        ready: ready.clone(),
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let address = listener.local_addr()?;
    println!("wharf listening on http://{address}");

    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });

    runtime.load_enabled().await?;
    for bundled in BUNDLED {
        if let Err(error) = runtime
            .install_bundled(bundled.manifest, bundled.component)
            .await
        {
            tracing::error!(plugin = bundled.name, %error, "installing a bundled plugin failed");
            eprintln!(
                "bundled plugin {} could not be installed: {error}",
                bundled.name
            );
        }
    }
    // After the plugins: a resumed gray release renders through its traffic provider.
    let resumed = deployer.resume()?;
    if resumed > 0 {
        tracing::info!(resumed, "change orders in flight resumed");
    }
    // After the change orders: an install follows the change orders it opened.
    let installs = market.driver.resume()?;
    if installs > 0 {
        tracing::info!(installs, "market installs in flight resumed");
    }
    // After the plugins too: every step is a plugin call.
    let runs = pipelines.resume()?;
    if runs > 0 {
        tracing::info!(runs, "pipeline runs in flight resumed");
    }
    if let Some((registry, projects, interval)) = retention_task {
        crate::domain::artifacts::retention::schedule(
            runtime.clone(),
            registry,
            projects,
            audit.clone(),
            interval,
        );
    }
    ready.store(true, Ordering::Release);
    tracing::info!(%address, "ready");

    let served = server.await.context("server task")?;
    audit.flush_denials().await;
    served.context("serving HTTP")?;
    Ok(())
}

/// Drops audit records past the retention period, at start and then hourly.
fn spawn_retention(audit: AuditLog, retention: Duration) {
    tokio::spawn(async move {
        loop {
            match audit.purge_older_than(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "audit records past retention removed"),
                Err(error) => tracing::error!(%error, "audit retention sweep failed"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
