//! [`ClusterClient`]: the one kube-rs wrapper every Kubernetes call Wharf makes goes
//! through, whether the cluster is the embedded simulator, a kubeconfig or the service
//! account Wharf runs under. Only the constructors differ; every method speaks typed
//! kube-rs `Api`s, and kube errors become [`ClusterError`]s the API turns into problems.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Simulator;

/// How long one call to a cluster may take before it counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a health check waits for `/version`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong talking to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{kind} `{name}` does not exist in the cluster")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} `{name}` already exists in the cluster")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("the cluster refused a conflicting change: {0}")]
    Conflict(String),
    #[error("the cluster rejected the object: {0}")]
    Invalid(String),
    #[error("the cluster refused Wharf's credentials: {0}")]
    Forbidden(String),
    #[error("the cluster cannot be reached: {0}")]
    Unreachable(String),
    /// The connection settings themselves are unusable (bad kubeconfig, unknown context).
    #[error("{0}")]
    Config(String),
    #[error("the cluster answered unexpectedly: {0}")]
    Other(String),
}

type Result<T> = std::result::Result<T, ClusterError>;

/// Maps a kube error about `kind`/`name` to a [`ClusterError`].
fn map_error(kind: &'static str, name: &str, error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match (status.code, status.reason.as_str()) {
                (404, _) | (_, "NotFound") => ClusterError::NotFound {
                    kind,
                    name: name.to_owned(),
                },
                (409, "AlreadyExists") | (_, "AlreadyExists") => ClusterError::AlreadyExists {
                    kind,
                    name: name.to_owned(),
                },
                (409, _) => ClusterError::Conflict(message),
                (400 | 422, _) => ClusterError::Invalid(message),
                (401 | 403, _) => ClusterError::Forbidden(message),
                _ => ClusterError::Other(format!("HTTP {}: {message}", status.code)),
            }
        }
        kube::Error::HyperError(e) => ClusterError::Unreachable(e.to_string()),
        kube::Error::Service(e) => ClusterError::Unreachable(e.to_string()),
        kube::Error::Auth(e) => ClusterError::Forbidden(e.to_string()),
        kube::Error::InferKubeconfig(e) => ClusterError::Config(e.to_string()),
        other => ClusterError::Other(other.to_string()),
    }
}

/// Runs one cluster call under [`CALL_TIMEOUT`].
async fn bounded<T>(
    kind: &'static str,
    name: &str,
    call: impl Future<Output = kube::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(|e| map_error(kind, name, e)),
        Err(_) => Err(ClusterError::Unreachable(format!(
            "no answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// Runs a client construction on tokio's blocking pool (where the runtime context is still
/// entered, so kube-rs can spawn its connection tasks).
async fn on_blocking_thread(
    build: impl FnOnce() -> Result<ClusterClient> + Send + 'static,
) -> Result<ClusterClient> {
    tokio::task::spawn_blocking(build)
        .await
        .map_err(|e| ClusterError::Config(format!("building the cluster client failed: {e}")))?
}

/// A cluster's answer to a health check.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub reachable: bool,
    /// `gitVersion` of the API server, e.g. `v1.33.0`.
    pub server_version: Option<String>,
    pub platform: Option<String>,
    pub latency_ms: u64,
    /// Why the cluster is not reachable.
    pub error: Option<String>,
}

/// A node with what the scheduler sees of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub name: String,
    pub ready: bool,
    pub unschedulable: bool,
    pub ip: Option<String>,
    pub operating_system: Option<String>,
    pub kernel_version: Option<String>,
    pub kubelet_version: Option<String>,
    /// `cpu`, `memory`, `pods`, … as Kubernetes quantities.
    pub capacity: BTreeMap<String, String>,
    pub allocatable: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<String>,
}

/// One object of a namespace with a one-word state (the environment resources view).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectState {
    /// `Deployment`, `Pod`, `Service` or `ConfigMap`.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Deployments: `Available`, `Progressing`, `Unavailable`, `ScaledDown`; pods: their
    /// phase, or `Ready`; services: their type; config maps: `Present`.
    pub state: String,
    /// `ready/desired` for deployments, `ready/containers` for pods.
    pub ready: Option<String>,
    /// Kind-specific facts: image, node, cluster IP, keys, restarts.
    pub detail: BTreeMap<String, String>,
    pub created_at: Option<String>,
}

/// A namespace as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceView {
    pub name: String,
    /// `Active` or `Terminating`.
    pub phase: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<String>,
}

/// A kube-rs client for one cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterClient {
    client: kube::Client,
}

fn time_of(meta: &ObjectMeta) -> Option<String> {
    meta.creation_timestamp.as_ref().map(|t| t.0.to_string())
}

impl ClusterClient {
    /// Speaks to the embedded simulator in-process.
    pub fn embedded(simulator: &Simulator) -> Self {
        Self {
            client: simulator.client(),
        }
    }

    /// Wraps an existing kube-rs client (tests, plugins' host interface).
    pub fn from_kube(client: kube::Client) -> Self {
        Self { client }
    }

    /// Connects with a kubeconfig and an optional context (default: its current context).
    /// kube-rs may read files and run an exec plugin while it builds the client (only the
    /// operator's own kubeconfig gets that far with either), so this runs on a blocking
    /// thread, never on a tokio worker.
    pub async fn from_kubeconfig(kubeconfig: Kubeconfig, context: Option<&str>) -> Result<Self> {
        if let Some(context) = context
            && !kubeconfig.contexts.iter().any(|c| c.name == context)
        {
            return Err(ClusterError::Config(format!(
                "the kubeconfig has no context `{context}`"
            )));
        }
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let runtime = tokio::runtime::Handle::current();
        on_blocking_thread(move || {
            let config = runtime
                .block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options))
                .map_err(|e| ClusterError::Config(e.to_string()))?;
            Self::from_config(config)
        })
        .await
    }

    /// Connects with the service account of the pod Wharf runs in (reads its token and CA
    /// files on a blocking thread).
    pub async fn in_cluster() -> Result<Self> {
        on_blocking_thread(|| {
            let config = kube::Config::incluster().map_err(|e| {
                ClusterError::Config(format!("Wharf is not running inside a cluster: {e}"))
            })?;
            Self::from_config(config)
        })
        .await
    }

    fn from_config(mut config: kube::Config) -> Result<Self> {
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(CALL_TIMEOUT);
        let client =
            kube::Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Self { client })
    }

    /// The kube-rs client itself, for callers that need other kinds.
    pub fn kube(&self) -> kube::Client {
        self.client.clone()
    }

    /// Asks for the server version and measures how long that took.
    pub async fn health(&self) -> Health {
        let started = Instant::now();
        let answer = tokio::time::timeout(HEALTH_TIMEOUT, self.client.apiserver_version()).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (reachable, version, platform, error) = match answer {
            Ok(Ok(info)) => (true, Some(info.git_version), Some(info.platform), None),
            Ok(Err(e)) => (
                false,
                None,
                None,
                Some(map_error("version", "", e).to_string()),
            ),
            Err(_) => (
                false,
                None,
                None,
                Some(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())),
            ),
        };
        Health {
            reachable,
            server_version: version,
            platform,
            latency_ms,
            error,
        }
    }

    // Namespaces.

    pub async fn list_namespaces(&self) -> Result<Vec<NamespaceView>> {
        let api: Api<Namespace> = Api::all(self.kube());
        let list = bounded("namespace", "", api.list(&ListParams::default())).await?;
        let mut namespaces: Vec<NamespaceView> = list
            .items
            .into_iter()
            .map(|ns| NamespaceView {
                name: ns.metadata.name.clone().unwrap_or_default(),
                phase: ns
                    .status
                    .and_then(|s| s.phase)
                    .unwrap_or_else(|| "Active".into()),
                labels: ns.metadata.labels.clone().unwrap_or_default(),
                created_at: time_of(&ns.metadata),
            })
            .collect();
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(namespaces)
    }

    pub async fn namespace_exists(&self, name: &str) -> Result<bool> {
        let api: Api<Namespace> = Api::all(self.kube());
        Ok(bounded("namespace", name, api.get_opt(name))
            .await?
            .is_some())
    }

    /// Creates a namespace carrying `labels`.
    pub async fn create_namespace(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.kube());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        bounded(
            "namespace",
            name,
            api.create(&PostParams::default(), &namespace),
        )
        .await?;
        Ok(())
    }

    pub async fn delete_namespace(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.kube());
        bounded(
            "namespace",
            name,
            api.delete(name, &DeleteParams::default()),
        )
        .await?;
        Ok(())
    }

    // Nodes.

    pub async fn list_nodes(&self) -> Result<Vec<NodeView>> {
        let api: Api<Node> = Api::all(self.kube());
        let list = bounded("node", "", api.list(&ListParams::default())).await?;
        let mut nodes: Vec<NodeView> = list.items.into_iter().map(node_view).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    pub async fn get_node(&self, name: &str) -> Result<NodeView> {
        let api: Api<Node> = Api::all(self.kube());
        match bounded("node", name, api.get_opt(name)).await? {
            Some(node) => Ok(node_view(node)),
            None => Err(ClusterError::NotFound {
                kind: "node",
                name: name.to_owned(),
            }),
        }
    }

    /// Sets labels (`Some`) and removes them (`None`) with one merge patch.
    pub async fn patch_node_labels(
        &self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<NodeView> {
        let api: Api<Node> = Api::all(self.kube());
        let patch = json!({"metadata": {"labels": labels}});
        let node = bounded(
            "node",
            name,
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await?;
        Ok(node_view(node))
    }

    // Config maps.

    pub async fn get_configmap(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>> {
        let api: Api<ConfigMap> = Api::namespaced(self.kube(), namespace);
        bounded("configmap", name, api.get_opt(name)).await
    }

    pub async fn create_configmap(&self, namespace: &str, configmap: &ConfigMap) -> Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.kube(), namespace);
        let name = configmap.metadata.name.clone().unwrap_or_default();
        bounded(
            "configmap",
            &name,
            api.create(&PostParams::default(), configmap),
        )
        .await?;
        Ok(())
    }

    /// Replaces a config map's data and labels, creating it when it is gone.
    pub async fn replace_configmap(&self, namespace: &str, configmap: &ConfigMap) -> Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.kube(), namespace);
        let name = configmap.metadata.name.clone().unwrap_or_default();
        let Some(current) = bounded("configmap", &name, api.get_opt(&name)).await? else {
            return self.create_configmap(namespace, configmap).await;
        };
        let mut next = configmap.clone();
        next.metadata.resource_version = current.metadata.resource_version;
        bounded(
            "configmap",
            &name,
            api.replace(&name, &PostParams::default(), &next),
        )
        .await?;
        Ok(())
    }

    /// Deletes a config map; one that is already gone is fine.
    pub async fn delete_configmap(&self, namespace: &str, name: &str) -> Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.kube(), namespace);
        match bounded(
            "configmap",
            name,
            api.delete(name, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) | Err(ClusterError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // The objects of a namespace.

    /// Deployments, pods, services and config maps of a namespace with their state.
    pub async fn namespace_objects(&self, namespace: &str) -> Result<Vec<ObjectState>> {
        let lp = ListParams::default();
        let client = self.kube();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        let configmaps: Api<ConfigMap> = Api::namespaced(client, namespace);
        let mut objects = Vec::new();
        for d in bounded("deployment", "", deployments.list(&lp))
            .await?
            .items
        {
            objects.push(deployment_state(d, namespace));
        }
        for p in bounded("pod", "", pods.list(&lp)).await?.items {
            objects.push(pod_state(p, namespace));
        }
        for s in bounded("service", "", services.list(&lp)).await?.items {
            objects.push(service_state(s, namespace));
        }
        for c in bounded("configmap", "", configmaps.list(&lp)).await?.items {
            objects.push(configmap_state(c, namespace));
        }
        Ok(objects)
    }
}

fn quantities(
    map: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, String> {
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn node_view(node: Node) -> NodeView {
    let status = node.status.unwrap_or_default();
    let ready = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let ip = status.addresses.as_ref().and_then(|a| {
        a.iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address.clone())
    });
    let info = status.node_info;
    NodeView {
        name: node.metadata.name.clone().unwrap_or_default(),
        ready,
        unschedulable: node.spec.and_then(|s| s.unschedulable).unwrap_or(false),
        ip,
        operating_system: info.as_ref().map(|i| i.operating_system.clone()),
        kernel_version: info.as_ref().map(|i| i.kernel_version.clone()),
        kubelet_version: info.as_ref().map(|i| i.kubelet_version.clone()),
        capacity: quantities(status.capacity),
        allocatable: quantities(status.allocatable),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        created_at: time_of(&node.metadata),
    }
}

fn object(kind: &str, meta: &ObjectMeta, namespace: &str, state: String) -> ObjectState {
    ObjectState {
        kind: kind.to_owned(),
        name: meta.name.clone().unwrap_or_default(),
        namespace: namespace.to_owned(),
        state,
        ready: None,
        detail: BTreeMap::new(),
        created_at: time_of(meta),
    }
}

fn deployment_state(d: Deployment, namespace: &str) -> ObjectState {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let condition = |kind: &str| {
        status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == kind))
            .map(|c| c.status == "True")
    };
    let state = if desired == 0 {
        "ScaledDown"
    } else if ready >= desired && status.updated_replicas.unwrap_or(0) >= desired {
        "Available"
    } else if condition("Progressing") == Some(false) {
        "Unavailable"
    } else {
        "Progressing"
    };
    let mut view = object("Deployment", &d.metadata, namespace, state.into());
    view.ready = Some(format!("{ready}/{desired}"));
    let images: Vec<String> = d
        .spec
        .iter()
        .flat_map(|s| s.template.spec.iter())
        .flat_map(|p| p.containers.iter())
        .filter_map(|c| c.image.clone())
        .collect();
    if !images.is_empty() {
        view.detail.insert("image".into(), images.join(","));
    }
    view
}

fn pod_state(p: Pod, namespace: &str) -> ObjectState {
    let status = p.status.unwrap_or_default();
    let containers = status.container_statuses.unwrap_or_default();
    let ready = containers.iter().filter(|c| c.ready).count();
    let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
    let waiting = containers
        .iter()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .next();
    let phase = status.phase.unwrap_or_else(|| "Pending".into());
    let state = match waiting {
        Some(reason) => reason,
        None if phase == "Running" && !containers.is_empty() && ready == containers.len() => {
            "Ready".into()
        }
        None => phase,
    };
    let mut view = object("Pod", &p.metadata, namespace, state);
    view.ready = Some(format!("{ready}/{}", containers.len()));
    view.detail.insert("restarts".into(), restarts.to_string());
    if let Some(node) = p.spec.and_then(|s| s.node_name) {
        view.detail.insert("node".into(), node);
    }
    if let Some(ip) = status.pod_ip {
        view.detail.insert("podIP".into(), ip);
    }
    view
}

fn service_state(s: Service, namespace: &str) -> ObjectState {
    let spec = s.spec.unwrap_or_default();
    let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let mut view = object("Service", &s.metadata, namespace, kind);
    if let Some(ip) = spec.cluster_ip {
        view.detail.insert("clusterIP".into(), ip);
    }
    let ports: Vec<String> = spec
        .ports
        .unwrap_or_default()
        .iter()
        .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
        .collect();
    if !ports.is_empty() {
        view.detail.insert("ports".into(), ports.join(","));
    }
    view
}

fn configmap_state(c: ConfigMap, namespace: &str) -> ObjectState {
    let mut view = object("ConfigMap", &c.metadata, namespace, "Present".into());
    let keys = c.data.map(|d| d.len()).unwrap_or(0) + c.binary_data.map(|d| d.len()).unwrap_or(0);
    view.detail.insert("keys".into(), keys.to_string());
    view
}
