//! The embedded Kubernetes API simulator: one axum [`Router`] that kube-rs reaches
//! in-process (`kube::Client::new(router, "default")`) and kubectl reaches on a loopback
//! port. It stores objects with Kubernetes' metadata semantics (uid, resourceVersion,
//! generation, finalizers, owner references), serves discovery, Tables and watches, and
//! runs small controllers that roll Deployments out through ReplicaSets to Pods on
//! simulated nodes. See `../shared/reference/kube-sim.md` for the behaviour it follows.

use std::time::Duration;

use axum::Router;

use crate::store::Store;

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

/// A running simulator. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    router: Router,
}

impl Simulator {
    /// Loads persisted objects (if any) and starts the controllers.
    pub fn start(_config: SimConfig) -> anyhow::Result<Self> {
        Ok(Self {
            router: Router::new(),
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
}
