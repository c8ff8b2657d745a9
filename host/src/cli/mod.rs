//! The `wharf` command line: `serve`, and admin commands that talk to a running server
//! over REST (`--server`/`WHARF_SERVER`, `--token`/`WHARF_TOKEN`).

mod app;
mod audit;
mod change;
mod client;
mod cluster;
mod deploy_config;
mod deployment;
mod env;
mod gray;
mod image;
mod market;
mod market_progress;
mod package;
mod pipeline;
mod pipeline_watch;
mod plugin;
mod project;
mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::runtime::HostLimits;
use crate::serve::ServeOptions;

pub use client::{Client, ClientError};

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "Application delivery for Kubernetes, extended by WebAssembly plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the admin commands send their requests.
#[derive(clap::Args, Clone)]
pub struct Remote {
    /// Base URL of a running Wharf.
    #[arg(
        long,
        env = "WHARF_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Bearer token (from `wharf login`).
    #[arg(long, env = "WHARF_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print raw JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

impl Remote {
    fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.server, self.token.clone())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs the Wharf server.
    Serve(ServeArgs),
    /// Logs in and prints a bearer token (use it as WHARF_TOKEN).
    Login {
        #[arg(long, default_value = "admin")]
        username: String,
        /// The password; read from WHARF_PASSWORD when not given.
        #[arg(long, env = "WHARF_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Ends the session of the token in use.
    Logout {
        #[command(flatten)]
        remote: Remote,
    },
    /// Changes your own password.
    Password {
        #[arg(long, env = "WHARF_PASSWORD", hide_env_values = true)]
        old: String,
        #[arg(long, env = "WHARF_NEW_PASSWORD", hide_env_values = true)]
        new: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manages users (admin).
    User {
        #[command(subcommand)]
        command: user::UserCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manages your personal API tokens.
    Token {
        #[command(subcommand)]
        command: user::TokenCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Projects and their members.
    Project {
        #[command(subcommand)]
        command: project::ProjectCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Groups of users.
    Group {
        #[command(subcommand)]
        command: project::GroupCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Roles, bindings and permission checks (answered by the authorizer plugin).
    Authz {
        #[command(subcommand)]
        command: project::AuthzCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reads the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Installs, enables, upgrades and inspects plugins.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Regions (which hold resource pools).
    Region {
        #[command(subcommand)]
        command: cluster::RegionCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resource pools (which hold clusters).
    Pool {
        #[command(subcommand)]
        command: cluster::PoolCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Clusters Wharf deploys to: the embedded one, kubeconfigs, in-cluster.
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Namespaces of a cluster.
    Namespace {
        #[command(subcommand)]
        command: cluster::NamespaceCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Nodes of a cluster and their labels.
    Node {
        #[command(subcommand)]
        command: cluster::NodeCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Apps of a project, their groups and favourites.
    App {
        #[command(subcommand)]
        command: app::AppCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Environments of a project and their cluster + namespace bindings.
    Env {
        #[command(subcommand)]
        command: env::EnvCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Config items (ConfigMaps) of an environment.
    ConfigItem {
        #[command(subcommand)]
        command: env::ConfigItemCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reusable deploy configs of an app per environment (env vars, checks, resources).
    DeployConfig {
        #[command(subcommand)]
        command: deploy_config::DeployConfigCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Deploys an image to an environment in batches and follows the rollout.
    Deploy {
        #[command(flatten)]
        args: change::DeployArgs,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change orders: follow, approve, release batches, abort, roll back; scale, start,
    /// stop, restart and delete deployments.
    Change {
        #[command(subcommand)]
        command: change::ChangeCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Gray-rule dry runs: validate a rule with a traffic provider, evaluate sample
    /// requests against it.
    Gray {
        #[command(subcommand)]
        command: gray::GrayCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// App markets: connect stores and local catalogs, browse their apps, install,
    /// upgrade, roll back and uninstall multi-component apps.
    Market {
        #[command(subcommand)]
        command: market::MarketCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pipelines of an app: define, run, watch live, retry, abort, roll back, approve,
    /// replay a step, read logs, outputs and each step's metering.
    Pipeline {
        #[command(subcommand)]
        command: pipeline::PipelineCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Images of a project in the registry: list, retention.
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Generic packages of a project (jar, war, zip, tar.gz, rpm): upload, list,
    /// download, delete.
    Package {
        #[command(subcommand)]
        command: package::PackageCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Kubernetes Services of a deployment.
    Service {
        #[command(subcommand)]
        command: change::ServiceCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// What deployed apps are doing: the apps of an environment, a deployment's replicas,
    /// pods, events, pod logs and history of versions.
    Deployment {
        #[command(subcommand)]
        command: deployment::DeploymentCommand,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WHARF_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where storage and the compiled-plugin cache live.
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "wharf-data")]
    data_dir: PathBuf,
    /// Compiled-plugin cache (default: <data-dir>/cache); safe to share between servers.
    #[arg(long, env = "WHARF_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Password of the `admin` user created on first start (generated when unset).
    #[arg(long, env = "WHARF_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Lifetime of session tokens, in seconds.
    #[arg(long, env = "WHARF_TOKEN_TTL_SECS", default_value_t = 12 * 3600)]
    token_ttl_secs: u64,
    /// Let people register themselves (their accounts wait for an admin's approval).
    #[arg(long, env = "WHARF_ALLOW_REGISTRATION")]
    allow_registration: bool,
    /// Days audit records are kept.
    #[arg(long, env = "WHARF_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    audit_retention_days: u64,
    /// Window over which unauthenticated denials are counted per source, action and
    /// target before one record is written for each, in seconds.
    #[arg(long, env = "WHARF_AUDIT_DENIAL_WINDOW_SECS", default_value_t = 60)]
    audit_denial_window_secs: u64,
    /// Concurrent plugin instances (pooling-allocator slots).
    #[arg(long, env = "WHARF_PLUGIN_SLOTS", default_value_t = 64)]
    plugin_slots: u32,
    /// Ceiling on any plugin's linear memory, in MiB (also sizes each pool slot).
    #[arg(long, env = "WHARF_PLUGIN_MEMORY_CEILING_MIB", default_value_t = 128)]
    plugin_memory_ceiling_mib: u64,
    /// Ceiling on any plugin's kv namespace, in MiB (a manifest may ask for less or more,
    /// never more than this).
    #[arg(long, env = "WHARF_PLUGIN_KV_CEILING_MIB", default_value_t = 1024)]
    plugin_kv_ceiling_mib: u64,
    /// Traps within the window that disable a plugin automatically.
    #[arg(long, env = "WHARF_PLUGIN_TRAP_LIMIT", default_value_t = 5)]
    plugin_trap_limit: u32,
    /// The auto-disable window, in seconds.
    #[arg(long, env = "WHARF_PLUGIN_TRAP_WINDOW_SECS", default_value_t = 60)]
    plugin_trap_window_secs: u64,
    /// Talk to this real cluster (a kubeconfig file) instead of starting the embedded one.
    #[arg(long, env = "WHARF_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The directory whose kubeconfig files clusters registered over the API may name
    /// (`kubeconfigPath`); without it they can only be pasted. Files there, like pasted
    /// ones, may carry only inline credentials (no exec plugins, no file references).
    #[arg(long, env = "WHARF_KUBECONFIG_DIR")]
    kubeconfig_dir: Option<PathBuf>,
    /// Where the embedded cluster serves HTTPS for kubectl (`wharf cluster kubeconfig`).
    #[arg(long, env = "WHARF_KUBE_LISTEN", default_value = "127.0.0.1:16443")]
    kube_listen: SocketAddr,
    /// Where the embedded cluster's gateway serves plain HTTP, routed by its HTTPRoutes,
    /// Ingresses and Services to the simulated pods; `off` starts none.
    #[arg(
        long,
        env = "WHARF_KUBE_GATEWAY_LISTEN",
        default_value = "127.0.0.1:16480"
    )]
    kube_gateway_listen: ListenOrOff,
    /// Keep the embedded cluster's objects in memory only (lost when Wharf stops).
    #[arg(long, env = "WHARF_EPHEMERAL")]
    ephemeral: bool,
    /// Scales the embedded cluster's simulated delays: 1 is real time, 0 makes pods ready at once.
    #[arg(long, env = "WHARF_KUBE_TIME_SCALE", default_value_t = 1.0)]
    kube_time_scale: f64,
    /// How long a pod of the embedded cluster takes from Pending to Ready, in milliseconds
    /// (before the time scale applies).
    #[arg(long, env = "WHARF_KUBE_POD_START_MS", default_value_t = 2000)]
    kube_pod_start_ms: u64,
    /// Simulated nodes in the embedded cluster (110 pods and 8 CPUs each).
    #[arg(long, env = "WHARF_KUBE_NODES", default_value_t = 3)]
    kube_nodes: usize,
    /// Mebibytes of outputs one pipeline run's steps may hold together.
    #[arg(long, env = "WHARF_PIPELINE_MAX_RUN_OUTPUT_MIB", default_value_t = 64)]
    pipeline_max_run_output_mib: usize,
    /// Gibibytes one blob pushed to the registry (`/v2/`) may hold.
    #[arg(long, env = "WHARF_REGISTRY_MAX_BLOB_GIB", default_value_t = 64)]
    registry_max_blob_gib: u64,
    /// Minutes between image retention runs over every project, as the artifact policy
    /// decides (0: only when asked, `POST …/retention/runs`).
    #[arg(long, env = "WHARF_IMAGE_RETENTION_MINUTES", default_value_t = 60)]
    image_retention_minutes: u64,
}

/// A listen address, or `off` for none.
#[derive(Clone, Debug)]
struct ListenOrOff(Option<SocketAddr>);

impl std::str::FromStr for ListenOrOff {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        text.parse()
            .map(|address| Self(Some(address)))
            .map_err(|_| format!("{text:?} is neither an address like 127.0.0.1:16480 nor `off`"))
    }
}

impl ServeArgs {
    fn into_options(self) -> ServeOptions {
        let limits = HostLimits {
            instance_slots: self.plugin_slots.max(1),
            max_memory_bytes: self.plugin_memory_ceiling_mib.max(1) * 1024 * 1024,
            max_kv_bytes: self.plugin_kv_ceiling_mib.max(1) * 1024 * 1024,
            trap_limit: self.plugin_trap_limit.max(1),
            trap_window: Duration::from_secs(self.plugin_trap_window_secs.max(1)),
            ..HostLimits::default()
        };
        let limits = HostLimits {
            default_memory_bytes: limits.default_memory_bytes.min(limits.max_memory_bytes),
            default_kv_bytes: limits.default_kv_bytes.min(limits.max_kv_bytes),
            ..limits
        };
        ServeOptions {
            listen: self.listen,
            cache_dir: self
                .cache_dir
                .unwrap_or_else(|| self.data_dir.join("cache")),
            data_dir: self.data_dir,
            admin_password: self.admin_password.filter(|p| !p.is_empty()),
            token_ttl: Duration::from_secs(self.token_ttl_secs.max(60)),
            allow_registration: self.allow_registration,
            audit_retention: Duration::from_secs(self.audit_retention_days.saturating_mul(86_400)),
            audit_denial_window: Duration::from_secs(self.audit_denial_window_secs.max(1)),
            limits,
            kubeconfig: self.kubeconfig,
            kubeconfig_dir: self.kubeconfig_dir,
            kube_listen: self.kube_listen,
            kube_gateway_listen: self.kube_gateway_listen.0,
            ephemeral: self.ephemeral,
            kube_time_scale: if self.kube_time_scale.is_finite() {
                self.kube_time_scale.max(0.0)
            } else {
                1.0
            },
            kube_pod_start: Duration::from_millis(self.kube_pod_start_ms),
            kube_nodes: self.kube_nodes.clamp(1, 1000),
            pipeline_max_run_output_bytes: self.pipeline_max_run_output_mib.clamp(1, 4096)
                * 1024
                * 1024,
            registry_max_blob_bytes: self.registry_max_blob_gib.clamp(1, 4096) << 30,
            image_retention_interval: (self.image_retention_minutes > 0)
                .then(|| Duration::from_secs(self.image_retention_minutes.min(525_600) * 60)),
        }
    }
}

/// Entry point of the `wharf` binary: parses the command line, runs it, returns the exit code.
pub fn main() -> i32 {
    main_from(std::env::args_os())
}

/// [`main`] with explicit arguments (the first is the program name).
pub fn main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // ring is the only TLS crypto provider in the build; make it the process default
    // before any client (reqwest, wasi-http) builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("wharf_host=info,tower_http=info,warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return 1;
        }
    };
    runtime.block_on(run(cli))
}

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(args) => crate::serve::run(args.into_options()).await,
        Command::Login {
            username,
            password,
            remote,
        } => login(&remote, &username, &password).await,
        Command::Plugin { command, remote } => plugin::run(command, &remote).await,
        Command::Region { command, remote } => cluster::run_region(command, &remote).await,
        Command::Pool { command, remote } => cluster::run_pool(command, &remote).await,
        Command::Cluster { command, remote } => cluster::run_cluster(command, &remote).await,
        Command::Namespace { command, remote } => cluster::run_namespace(command, &remote).await,
        Command::Node { command, remote } => cluster::run_node(command, &remote).await,
        Command::App { command, remote } => app::run(command, &remote).await,
        Command::Env { command, remote } => env::run_env(command, &remote).await,
        Command::ConfigItem { command, remote } => env::run_config_item(command, &remote).await,
        Command::DeployConfig { command, remote } => deploy_config::run(command, &remote).await,
        Command::Audit { command, remote } => audit::run(command, &remote).await,
        Command::Deploy { args, remote } => change::run_deploy(args, &remote).await,
        Command::Change { command, remote } => change::run_change(command, &remote).await,
        Command::Service { command, remote } => change::run_service(command, &remote).await,
        Command::Gray { command, remote } => gray::run(command, &remote).await,
        Command::Market { command, remote } => market::run(command, &remote).await,
        Command::Pipeline { command, remote } => pipeline::run(command, &remote).await,
        Command::Package { command, remote } => package::run(command, &remote).await,
        Command::Image { command, remote } => image::run(command, &remote).await,
        Command::Deployment { command, remote } => deployment::run(command, &remote).await,
        Command::Project { command, remote } => project::run_project(command, &remote).await,
        Command::Group { command, remote } => project::run_group(command, &remote).await,
        Command::Authz { command, remote } => project::run_authz(command, &remote).await,
        Command::Logout { remote } => user::logout(&remote).await,
        Command::Password { old, new, remote } => user::change_password(&remote, old, new).await,
        Command::User { command, remote } => user::run_user(command, &remote).await,
        Command::Token { command, remote } => user::run_token(command, &remote).await,
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    }
}

async fn login(remote: &Remote, username: &str, password: &str) -> anyhow::Result<()> {
    let client = remote.client()?;
    let response = client
        .post(
            "/api/v1/auth/login",
            &serde_json::json!({"username": username, "password": password}),
        )
        .await?;
    if remote.json {
        println!("{response}");
    } else {
        let token = response["token"].as_str().unwrap_or_default();
        println!("{token}");
        eprintln!(
            "token expires at {}; use it with: export WHARF_TOKEN={token}",
            response["expiresAt"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
