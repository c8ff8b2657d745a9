//! The plugin runtime: one wasmtime engine, the enabled plugins, and the call path.
//!
//! Each enabled plugin version is an [`ActivePlugin`]: a component pre-instantiated
//! against its world with a linker holding only its granted interfaces, plus the context
//! (kv namespace, settings, allow-list, cluster scope, limits) resolved when it was
//! enabled. A call takes the current `Arc<ActivePlugin>`, so an upgrade that swaps the map
//! entry lets calls in flight finish on the old version while new calls use the new one.
//! Every call gets a fresh `Store` and instance; see [`call`] for the limits applied to it
//! and [`lifecycle`] for install, enable, upgrade and the rest.

pub mod authorizer;
pub mod bindings;
mod cache;
mod call;
pub mod catalog;
mod cluster;
mod config;
mod engine;
mod grants;
mod http;
pub mod journal;
mod kv;
pub mod lifecycle;
pub mod limits;
mod log;
pub mod manifest;
pub mod platform;
pub mod policy;
pub mod registry;
pub mod router;
mod state;
mod stats;
pub mod step;
pub mod trust;
pub mod worlds;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use wasmtime::Engine;

use crate::audit::AuditLog;
use crate::store::{Store, StoreError};

pub use call::{CallError, CallFuture, Metering};
pub use lifecycle::{LifecycleError, PackageUpload};
pub use limits::{EffectiveLimits, HostLimits};
pub use log::LogLine;
pub use manifest::{Grants, Manifest, World};
pub use state::PluginState;
pub use stats::StatsView;
pub use worlds::{PluginInfo, WorldPre};

use cache::ComponentCache;
use cluster::ClusterHandle;
use engine::EpochTicker;
use log::LogRing;
use registry::Registry;
use state::PluginContext;
use stats::PluginStats;
use trust::Trust;

/// An enabled plugin version, ready to instantiate.
pub struct ActivePlugin {
    pub(crate) context: Arc<PluginContext>,
    pub(crate) pre: WorldPre,
}

impl ActivePlugin {
    pub fn id(&self) -> &str {
        &self.context.id
    }

    pub fn version(&self) -> &str {
        &self.context.version
    }

    pub fn world(&self) -> World {
        self.pre.world()
    }
}

/// Log ring and stats of one plugin id, kept across versions and re-enables.
#[derive(Default)]
struct Observed {
    ring: Arc<LogRing>,
    stats: Arc<PluginStats>,
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    store: Store,
    registry: Registry,
    trust: Trust,
    /// Records lifecycle changes the runtime makes on its own (auto-disable, bundled installs).
    audit: AuditLog,
    limits: HostLimits,
    cache: ComponentCache,
    /// The cluster plugins reach through `wharf:host/cluster`, once `serve` connects one.
    cluster: ClusterHandle,
    /// Pool slots of plugin calls ([`call::Lane::General`]).
    slots: tokio::sync::Semaphore,
    /// Pool slots only authorizer decisions take ([`call::Lane::Authorization`]).
    authorizer_slots: tokio::sync::Semaphore,
    active: RwLock<HashMap<String, Arc<ActivePlugin>>>,
    decisions: authorizer::DecisionCache,
    observed: Mutex<HashMap<String, Arc<Observed>>>,
    /// Serializes lifecycle changes (install, enable, upgrade, …).
    lifecycle: tokio::sync::Mutex<()>,
    _ticker: EpochTicker,
}

/// Errors starting the runtime.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the wasmtime engine: {0}")]
    Engine(String),
    #[error("creating the component cache in {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Runtime {
    /// Creates the engine and the epoch ticker; no plugin is loaded yet (see
    /// [`Runtime::load_enabled`]).
    pub fn new(
        store: Store,
        limits: HostLimits,
        cache_dir: PathBuf,
    ) -> Result<Runtime, StartError> {
        let engine =
            engine::build_engine(&limits).map_err(|e| StartError::Engine(format!("{e:#}")))?;
        let cache = ComponentCache::new(cache_dir.clone(), &engine).map_err(|source| {
            StartError::Cache {
                path: cache_dir,
                source,
            }
        })?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                slots: tokio::sync::Semaphore::new(limits.instance_slots.max(1) as usize),
                authorizer_slots: tokio::sync::Semaphore::new(
                    limits.authorizer_slots.max(1) as usize
                ),
                registry: Registry::new(store.clone()),
                audit: AuditLog::new(store.clone()),
                trust: Trust::new(store.clone()),
                engine,
                store,
                limits,
                cache,
                cluster: ClusterHandle::default(),
                active: RwLock::new(HashMap::new()),
                decisions: authorizer::DecisionCache::default(),
                observed: Mutex::new(HashMap::new()),
                lifecycle: tokio::sync::Mutex::new(()),
                _ticker: ticker,
            }),
        })
    }

    /// Connects `wharf:host/cluster` to `client`: calls of every plugin, enabled now or
    /// later, go to it. Until it is set those calls fail as `unavailable`.
    pub fn set_cluster(&self, client: kube::Client) {
        self.inner.cluster.set(client);
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn limits(&self) -> &HostLimits {
        &self.inner.limits
    }

    pub fn trust(&self) -> &Trust {
        &self.inner.trust
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The enabled version of `id`, if it is enabled.
    pub fn active(&self, id: &str) -> Option<Arc<ActivePlugin>> {
        self.inner
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn set_active(&self, id: &str, plugin: Option<Arc<ActivePlugin>>) {
        let mut active = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        match plugin {
            Some(p) => active.insert(id.to_owned(), p),
            None => active.remove(id),
        };
        drop(active);
        // A changed set of serving plugins may change who decides and how.
        self.inner.decisions.invalidate();
    }

    fn observed(&self, id: &str) -> Arc<Observed> {
        self.inner
            .observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Drops the log ring and stats of an uninstalled plugin.
    fn forget_observed(&self, id: &str) {
        self.inner
            .observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The newest `limit` log lines of a plugin.
    pub fn logs(&self, id: &str, limit: usize) -> Vec<LogLine> {
        self.observed(id).ring.tail(limit)
    }

    pub fn stats(&self, id: &str) -> StatsView {
        self.observed(id).stats.view()
    }
}
