//! The embedded Kubernetes API simulator: one axum [`Router`] that kube-rs reaches
//! in-process (`kube::Client::new(router, "default")`) and kubectl reaches on a loopback
//! port. It stores objects with Kubernetes' metadata semantics (uid, resourceVersion,
//! generation, finalizers, owner references), serves discovery, Tables and watches, and
//! runs small controllers that roll Deployments out through ReplicaSets to Pods on
//! simulated nodes. Its `gateway` is the data plane: real HTTP routed by the cluster's
//! HTTPRoutes, Ingresses and Services to simulated pods. See
//! `../shared/reference/kube-sim.md` for the behaviour it follows.

mod admission;
pub(crate) mod controllers;
mod discovery;
mod gateway;
mod http;
pub mod meta;
mod patch;
pub mod resources;
mod selector;
mod status;
mod table;
mod world;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use serde_json::json;

use crate::store::Store;
use resources::kinds;
use world::World;

/// How the simulator behaves.
#[derive(Clone)]
pub struct SimConfig {
    /// Where objects are kept across restarts; `None` keeps them in memory only (`--ephemeral`).
    pub store: Option<Store>,
    /// Multiplies every simulated delay: 1.0 is real time, 0.0 makes pods ready on the next tick.
    pub time_scale: f64,
    /// How long a pod takes from Pending to Ready at time scale 1.
    pub pod_start_delay: Duration,
    /// How many simulated nodes exist.
    pub nodes: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            store: None,
            time_scale: 1.0,
            pod_start_delay: Duration::from_secs(2),
            nodes: 3,
        }
    }
}

/// State shared by the HTTP handlers and the controllers.
pub(crate) struct Shared {
    world: Mutex<World>,
    /// Wakes the controllers after a write.
    wake: Wake,
    config: SimConfig,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves the map consistent (every write is one
        // insert or remove), so a poisoned lock is still usable.
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A doorbell for the controller thread: rung by every API write.
#[derive(Default)]
pub(crate) struct Wake {
    rung: Mutex<bool>,
    signal: Condvar,
}

impl Wake {
    fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.signal.notify_one();
    }

    /// Waits until rung or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        if !*rung {
            rung = self
                .signal
                .wait_timeout(rung, timeout)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *rung = false;
    }
}

/// A running simulator. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    router: Router,
}

impl Simulator {
    /// Loads persisted objects (if any), creates what a fresh cluster has (the default
    /// namespaces, the `kubernetes` Service, the nodes) and starts the controllers on
    /// their own thread (they stop once every clone of the simulator is gone).
    pub fn start(config: SimConfig) -> anyhow::Result<Self> {
        let mut world = World::load(config.store.clone())?;
        bootstrap(&mut world, config.nodes);
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            wake: Wake::default(),
            config,
        });
        let controllers = Arc::downgrade(&shared);
        let clock = controllers::Clock {
            time_scale: shared.config.time_scale,
            pod_start_delay: shared.config.pod_start_delay,
        };
        std::thread::Builder::new()
            .name("wharf-kube-controllers".into())
            .spawn(move || controllers::run(controllers, clock))?;
        Ok(Self {
            router: http::router(shared.clone()),
            shared,
        })
    }

    /// The API server as a tower service.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// A kube-rs client that talks to this simulator in-process.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves the cluster's data plane (HTTPRoutes, Ingresses, Services → simulated pods)
    /// on `address` until the process ends; the address it bound.
    pub async fn serve_gateway(
        &self,
        address: std::net::SocketAddr,
    ) -> anyhow::Result<std::net::SocketAddr> {
        gateway::serve(self.shared.clone(), address).await
    }

    /// The current global resourceVersion (for tests and benchmarks).
    pub fn resource_version(&self) -> u64 {
        self.shared.world().resource_version()
    }
}

/// The `Status` kubectl gets without a valid token.
pub fn unauthorized() -> impl axum::response::IntoResponse {
    status::Status::unauthorized()
}

fn bootstrap(world: &mut World, nodes: usize) {
    for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if world.get(kinds::namespace(), "", namespace).is_none() {
            let _ = world.create(
                kinds::namespace(),
                "",
                json!({"metadata": {"name": namespace}}),
            );
        }
    }
    if world
        .get(kinds::service(), "default", "kubernetes")
        .is_none()
    {
        let service = json!({
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
        });
        let _ = world.create(kinds::service(), "default", service);
    }
    controllers::kubelet::ensure_nodes(world, nodes);
}
