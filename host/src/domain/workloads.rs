//! Runtime views of deployed apps (seed 001 §5.3.4, 5.3.5, 5.3.8, 5.3.10; seed 003 instance
//! logs): replica counts, pods, events and pod logs of a deployment, and the deployed apps
//! of an environment with their live pod counts. Everything here is read from the cluster
//! through kube-rs at the moment it is asked for; the deployment record
//! ([`super::deployments`]) only says where to look.
//!
//! A deployment's objects are found by label, never by a table Wharf keeps: the
//! Deployments `<workload>-v<N>` and their pods carry [`NAME_LABEL`] = workload and
//! [`MANAGED_LABEL`] = wharf, and [`REVISION_LABEL`] tells revisions apart. Events name
//! their object only, so they are matched by the names those objects get
//! (`<workload>-v<N>`, `…-<hash>`, `…-<hash>-<suffix>`).
//!
//! No watch-backed cache: the environment list asks for the pods of one page of apps with
//! one set-based selector per namespace, which costs the cluster one list call whatever the
//! number of apps in it (see `deployed_apps`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncBufReadExt, Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment as KubeDeployment;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use utoipa::ToSchema;

use super::clusters::{Clusters, ClustersError};
use super::deployments::{
    self, Deployment, DeploymentStatus, MANAGED_BY, MANAGED_LABEL, NAME_LABEL, REVISION_LABEL,
};
use crate::cluster::client::ClusterError;
use crate::store::{Store, StoreError};

/// How long one call to a cluster may take before it counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Events a deployment shows unless `limit` says otherwise, and the most it may ask for.
pub const DEFAULT_EVENTS: usize = 100;
pub const MAX_EVENTS: usize = 1000;
/// The most log text one plain (not followed) request returns; also its default.
pub const MAX_LOG_BYTES: i64 = 8 * 1024 * 1024;
/// The most lines `tailLines` may ask for.
pub const MAX_TAIL_LINES: i64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("app `{app}` of project `{project}` is not deployed to environment `{env}`")]
    DeploymentNotFound {
        project: String,
        app: String,
        env: String,
    },
    #[error("pod `{0}` does not exist or does not belong to this deployment")]
    PodNotFound(String),
    /// The cluster has no logs to give yet (a container waiting to start).
    #[error("no logs yet: {0}")]
    LogsUnavailable(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Clusters(#[from] ClustersError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, WorkloadError>;

fn invalid(field: &str, message: impl Into<String>) -> WorkloadError {
    WorkloadError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

// Views.

/// Replica counts of a deployment summed over its live revisions (seed 001 5.3.5, 5.3.8).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Replicas the live Deployments ask for.
    pub desired: u32,
    pub ready: u32,
    /// Replicas running the newest template of their Deployment.
    pub updated: u32,
    pub available: u32,
    pub unavailable: u32,
    /// Pods running and ready (seed `runningPod`).
    pub running_pods: u32,
    /// Pods of the deployment, whatever their state (seed `totalPod`).
    pub total_pods: u32,
    /// The live Kubernetes Deployments, one per revision (two during a batched rollout).
    pub revisions: Vec<RevisionStatus>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    pub revision: Option<u64>,
    /// The Kubernetes Deployment, `<workload>-v<N>`.
    pub name: String,
    pub image: Option<String>,
    /// Whether this is the revision the deployment record says serves.
    pub stable: bool,
    pub replicas: u32,
    pub ready: u32,
    pub updated: u32,
    pub available: u32,
    pub unavailable: u32,
    pub created_at: Option<String>,
}

/// Seed 001 pod `statusCd` (§6.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStatus {
    Starting = 1,
    Running = 2,
    Stopping = 3,
    Stopped = 4,
    StopFailed = 5,
    UnknownError = 6,
    Changing = 7,
}

impl PodStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::StopFailed => "error while stopping",
            Self::UnknownError => "unknown error",
            Self::Changing => "changing",
        }
    }
}

/// One pod of a deployment (seed 001 5.3.4).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    pub name: String,
    pub revision: Option<u64>,
    /// Kubernetes phase: Pending, Running, Succeeded, Failed, Unknown.
    pub phase: String,
    pub ready: bool,
    /// Restarts of all its containers.
    pub restarts: u32,
    pub node: Option<String>,
    pub ip: Option<String>,
    pub image: Option<String>,
    /// Why it is not running and ready: a container's waiting or terminated reason
    /// (CrashLoopBackOff, ImagePullBackOff, Error), the pod's own (Evicted), a failing
    /// condition (Unschedulable, ContainersNotReady), or Terminating.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The app's container (the first one).
    pub container_name: Option<String>,
    /// Every container, for `logs?container=`.
    pub containers: Vec<String>,
    pub created_at: Option<String>,
    /// Seed 001 pod status: 1 starting, 2 running, 3 stopping, 4 stopped, 5 error while
    /// stopping, 6 unknown error, 7 changing (a pod of the revision a change order is
    /// rolling out or replacing).
    pub status_cd: u8,
    pub status_cd_name: String,
}

/// A Kubernetes event about one of the deployment's objects.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// Kind of the object: Deployment, ReplicaSet, Pod, HorizontalPodAutoscaler.
    pub kind: String,
    pub name: String,
    pub revision: Option<u64>,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub count: u32,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub source: Option<String>,
}

/// A deployed app of an environment with its live pod counts (seed 001 5.3.7, 5.3.10).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployedApp {
    pub deployment_id: String,
    pub project: String,
    pub app: String,
    pub env: String,
    pub cluster: String,
    pub namespace: String,
    pub workload: String,
    pub status: DeploymentStatus,
    pub stable_revision: Option<u64>,
    /// Image of the stable revision.
    pub image: Option<String>,
    pub replicas: u32,
    pub active_change: Option<String>,
    /// `None` when the cluster could not be asked (see `clusterError`).
    pub running_pods: Option<u32>,
    pub total_pods: Option<u32>,
    pub cluster_error: Option<String>,
    #[schema(value_type = String)]
    pub created_at: String,
    #[schema(value_type = String)]
    pub updated_at: String,
    pub created_by: String,
}

/// What part of a pod's log to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Needed only for pods with several containers.
    pub container: Option<String>,
    /// The last N lines.
    pub tail_lines: Option<i64>,
    /// At most N bytes of the selected lines (Kubernetes `limitBytes`: the output stops
    /// after that many bytes).
    pub limit_bytes: Option<i64>,
}

impl LogQuery {
    /// Reads the query values as the REST API receives them.
    pub fn parse(
        container: Option<String>,
        tail_lines: Option<&str>,
        limit_bytes: Option<&str>,
    ) -> Result<Self> {
        Ok(Self {
            container: container.filter(|c| !c.is_empty()),
            tail_lines: tail_lines
                .map(|t| number("tailLines", t, 0, MAX_TAIL_LINES))
                .transpose()?,
            limit_bytes: limit_bytes
                .map(|b| number("limitBytes", b, 1, MAX_LOG_BYTES))
                .transpose()?,
        })
    }
}

/// A whole number in `min..=max`, or a 422 naming `field`.
pub fn number(field: &str, text: &str, min: i64, max: i64) -> Result<i64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| invalid(field, format!("must be a whole number from {min} to {max}")))
}

/// `true`/`false` (also `1`/`0`), or a 422 naming `field`.
pub fn flag(field: &str, text: Option<&str>) -> Result<bool> {
    match text {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(invalid(field, "must be true or false")),
    }
}

/// `limit` of the events view.
pub fn events_limit(text: Option<&str>) -> Result<usize> {
    match text {
        None => Ok(DEFAULT_EVENTS),
        Some(t) => Ok(number("limit", t, 1, MAX_EVENTS as i64)? as usize),
    }
}

// Finding a deployment and its cluster.

/// Deployment records over the store, and the clients of their clusters.
#[derive(Clone)]
pub struct Workloads {
    store: Store,
    clusters: Clusters,
}

impl Workloads {
    pub fn new(clusters: Clusters) -> Self {
        Self {
            store: clusters.store().clone(),
            clusters,
        }
    }

    /// The record of `app` in `env`, or 404.
    pub fn deployment(&self, project: &str, app: &str, env: &str) -> Result<Deployment> {
        deployments::get(&self.store, project, app, env)?.ok_or_else(|| {
            WorkloadError::DeploymentNotFound {
                project: project.to_owned(),
                app: app.to_owned(),
                env: env.to_owned(),
            }
        })
    }

    /// The record and a kube-rs client of the cluster it runs in.
    pub async fn locate(
        &self,
        project: &str,
        app: &str,
        env: &str,
    ) -> Result<(Deployment, kube::Client)> {
        let deployment = self.deployment(project, app, env)?;
        let client = self.clusters.client(&deployment.cluster).await?.kube();
        Ok((deployment, client))
    }

    /// The deployments of `env` that were not deleted, by app; `app` filters on the app
    /// name (a substring, any case).
    pub fn deployed_records(
        &self,
        project: &str,
        env: &str,
        app: Option<&str>,
    ) -> Result<Vec<Deployment>> {
        let needle = app.map(str::to_lowercase).filter(|a| !a.is_empty());
        let mut records = deployments::of_project(&self.store, project)?;
        records.retain(|d| {
            d.env == env
                && d.status != DeploymentStatus::Deleted
                && needle
                    .as_deref()
                    .is_none_or(|n| d.app.to_lowercase().contains(n))
        });
        records.sort_by(|a, b| a.app.cmp(&b.app));
        Ok(records)
    }

    /// `records` with their live pod counts: one pod list per cluster + namespace, asking
    /// only for these workloads. A cluster that cannot be asked leaves the counts empty
    /// and says why in `clusterError`; the others still answer.
    pub async fn deployed_apps(&self, records: Vec<Deployment>) -> Vec<DeployedApp> {
        let mut by_namespace: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for d in &records {
            by_namespace
                .entry((d.cluster.clone(), d.namespace.clone()))
                .or_default()
                .push(d.workload.clone());
        }
        let mut counts: BTreeMap<(String, String), std::result::Result<Counts, String>> =
            BTreeMap::new();
        for ((cluster, namespace), workloads) in by_namespace {
            let result = match self.clusters.client(&cluster).await {
                Ok(client) => pod_counts(&client.kube(), &namespace, &workloads)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            counts.insert((cluster, namespace), result);
        }
        records
            .into_iter()
            .map(|d| {
                let (running, total, error) =
                    match counts.get(&(d.cluster.clone(), d.namespace.clone())) {
                        Some(Ok(c)) => {
                            let (running, total) = c.get(&d.workload).copied().unwrap_or((0, 0));
                            (Some(running), Some(total), None)
                        }
                        Some(Err(e)) => (None, None, Some(e.clone())),
                        None => (None, None, None),
                    };
                deployed_app(d, running, total, error)
            })
            .collect()
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn deployed_app(
    d: Deployment,
    running: Option<u32>,
    total: Option<u32>,
    error: Option<String>,
) -> DeployedApp {
    DeployedApp {
        image: d.stable().map(|r| r.image.clone()),
        deployment_id: d.id,
        project: d.project,
        app: d.app,
        env: d.env,
        cluster: d.cluster,
        namespace: d.namespace,
        workload: d.workload,
        status: d.status,
        stable_revision: d.stable_revision,
        replicas: d.replicas,
        active_change: d.active_change,
        running_pods: running,
        total_pods: total,
        cluster_error: error,
        created_at: rfc3339(d.created_at),
        updated_at: rfc3339(d.updated_at),
        created_by: d.created_by,
    }
}

/// `(running and ready, all)` pods by workload.
type Counts = BTreeMap<String, (u32, u32)>;

async fn pod_counts(
    client: &kube::Client,
    namespace: &str,
    workloads: &[String],
) -> Result<Counts> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut names = workloads.to_vec();
    names.sort();
    names.dedup();
    let selector = format!(
        "{NAME_LABEL} in ({}),{MANAGED_LABEL}={MANAGED_BY}",
        names.join(",")
    );
    let pods = bounded(api.list(&ListParams::default().labels(&selector))).await?;
    let mut counts = Counts::new();
    for pod in &pods.items {
        let Some(workload) = label(&pod.metadata, NAME_LABEL) else {
            continue;
        };
        let entry = counts.entry(workload.to_owned()).or_default();
        entry.1 += 1;
        if is_running(pod) {
            entry.0 += 1;
        }
    }
    Ok(counts)
}

// Calls to the cluster.

/// Runs one cluster call under [`CALL_TIMEOUT`], its error as a [`ClusterError`].
async fn bounded<T>(call: impl Future<Output = kube::Result<T>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(|e| cluster_error(e).into()),
        Err(_) => Err(ClusterError::Unreachable(format!(
            "no answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))
        .into()),
    }
}

fn cluster_error(error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                400 | 422 => ClusterError::Invalid(message),
                401 | 403 => ClusterError::Forbidden(message),
                409 => ClusterError::Conflict(message),
                code => ClusterError::Other(format!("HTTP {code}: {message}")),
            }
        }
        kube::Error::HyperError(e) => ClusterError::Unreachable(e.to_string()),
        kube::Error::Service(e) => ClusterError::Unreachable(e.to_string()),
        kube::Error::Auth(e) => ClusterError::Forbidden(e.to_string()),
        other => ClusterError::Other(other.to_string()),
    }
}

fn selector(deployment: &Deployment) -> ListParams {
    ListParams::default().labels(&format!(
        "{NAME_LABEL}={},{MANAGED_LABEL}={MANAGED_BY}",
        deployment.workload
    ))
}

fn label<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn revision_of(meta: &kube::api::ObjectMeta) -> Option<u64> {
    label(meta, REVISION_LABEL).and_then(|r| r.parse().ok())
}

fn count(value: Option<i32>) -> u32 {
    value.unwrap_or(0).max(0) as u32
}

/// Replica counts over the live `<workload>-v*` Deployments, and pod counts.
pub async fn status(client: &kube::Client, deployment: &Deployment) -> Result<WorkloadStatus> {
    let api: Api<KubeDeployment> = Api::namespaced(client.clone(), &deployment.namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &deployment.namespace);
    let lp = selector(deployment);
    let live = bounded(api.list(&lp)).await?;
    let pods = bounded(pods.list(&lp)).await?;
    let mut status = WorkloadStatus::default();
    for d in live.items {
        let spec = d.spec.as_ref();
        let observed = d.status.clone().unwrap_or_default();
        let revision = revision_of(&d.metadata).or_else(|| {
            d.metadata
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix(&format!("{}-v", deployment.workload)))
                .and_then(|r| r.parse().ok())
        });
        let view = RevisionStatus {
            revision,
            name: d.metadata.name.clone().unwrap_or_default(),
            image: spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone()),
            stable: revision.is_some() && revision == deployment.stable_revision,
            replicas: count(Some(spec.and_then(|s| s.replicas).unwrap_or(1))),
            ready: count(observed.ready_replicas),
            updated: count(observed.updated_replicas),
            available: count(observed.available_replicas),
            unavailable: count(observed.unavailable_replicas),
            created_at: d
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string()),
        };
        status.desired += view.replicas;
        status.ready += view.ready;
        status.updated += view.updated;
        status.available += view.available;
        status.unavailable += view.unavailable;
        status.revisions.push(view);
    }
    status.revisions.sort_by_key(|r| r.revision);
    status.total_pods = pods.items.len() as u32;
    status.running_pods = pods.items.iter().filter(|p| is_running(p)).count() as u32;
    Ok(status)
}

/// Running, ready and not on its way out.
fn is_running(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    pod.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// The deployment's pods, by revision then name.
pub async fn pods(client: &kube::Client, deployment: &Deployment) -> Result<Vec<PodView>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &deployment.namespace);
    let list = bounded(api.list(&selector(deployment))).await?;
    let mut views: Vec<PodView> = list.items.iter().map(|p| pod_view(p, deployment)).collect();
    views.sort_by(|a, b| (a.revision, &a.name).cmp(&(b.revision, &b.name)));
    Ok(views)
}

/// Waiting reasons that mean the container will not start without a change.
const ERROR_REASONS: [&str; 8] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
];

fn pod_view(pod: &Pod, deployment: &Deployment) -> PodView {
    let status = pod.status.clone().unwrap_or_default();
    let spec_containers: Vec<&k8s_openapi::api::core::v1::Container> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().collect())
        .unwrap_or_default();
    let main = spec_containers.first().map(|c| c.name.clone());
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let main_status = statuses
        .iter()
        .find(|c| Some(&c.name) == main.as_ref())
        .or(statuses.first());
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let ready = condition(pod, "Ready").is_some_and(|c| c.status == "True");
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let revision = revision_of(&pod.metadata);

    let waiting = statuses
        .iter()
        .filter(|c| !c.ready)
        .find_map(|c| c.state.as_ref()?.waiting.clone());
    let terminated = statuses
        .iter()
        .filter(|c| !c.ready)
        .find_map(|c| c.state.as_ref()?.terminated.clone());
    let failing_condition = ["PodScheduled", "Ready", "ContainersReady"]
        .into_iter()
        .filter_map(|kind| condition(pod, kind))
        .find(|c| c.status != "True" && c.reason.is_some());
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let (reason, message) = if let Some(w) = &waiting
        && w.reason.is_some()
    {
        (w.reason.clone(), w.message.clone())
    } else if let Some(t) = &terminated {
        let message = t
            .message
            .clone()
            .or_else(|| Some(format!("exited with code {}", t.exit_code)));
        (t.reason.clone(), message)
    } else if status.reason.is_some() {
        (status.reason.clone(), status.message.clone())
    } else if let Some(c) = failing_condition {
        (c.reason.clone(), c.message.clone())
    } else if terminating {
        (Some("Terminating".into()), None)
    } else if phase == "Running" && !ready && !unready.is_empty() {
        // What the kubelet puts on the Ready condition; some clusters leave it out.
        (
            Some("ContainersNotReady".into()),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    } else {
        (None, None)
    };

    let failed = phase == "Failed"
        || phase == "Unknown"
        || waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .is_some_and(|r| ERROR_REASONS.contains(&r))
        || terminated.as_ref().is_some_and(|t| t.exit_code != 0);
    let changing = deployment.active_change.is_some()
        && revision.is_some()
        && revision != deployment.stable_revision;
    let code = if terminating {
        if failed {
            PodStatus::StopFailed
        } else {
            PodStatus::Stopping
        }
    } else if failed {
        PodStatus::UnknownError
    } else if phase == "Succeeded" {
        PodStatus::Stopped
    } else if changing {
        PodStatus::Changing
    } else if ready {
        PodStatus::Running
    } else {
        PodStatus::Starting
    };

    PodView {
        name: pod.metadata.name.clone().unwrap_or_default(),
        revision,
        phase,
        ready,
        restarts: statuses.iter().map(|c| c.restart_count.max(0) as u32).sum(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ip: status.pod_ip.clone(),
        image: main_status
            .map(|c| c.image.clone())
            .filter(|i| !i.is_empty())
            .or_else(|| spec_containers.first().and_then(|c| c.image.clone())),
        reason,
        message,
        container_name: main,
        containers: spec_containers.iter().map(|c| c.name.clone()).collect(),
        created_at: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        status_cd: code.code(),
        status_cd_name: code.name().to_owned(),
    }
}

/// Events about the deployment's Deployments, ReplicaSets, Pods and autoscalers, newest
/// first, at most `limit`.
pub async fn events(
    client: &kube::Client,
    deployment: &Deployment,
    limit: usize,
) -> Result<Vec<EventView>> {
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), &deployment.namespace);
    let list = bounded(api.list(&ListParams::default())).await?;
    let mut events: Vec<(Option<Timestamp>, EventView)> = list
        .items
        .into_iter()
        .filter_map(|e| {
            let kind = e.involved_object.kind.clone().unwrap_or_default();
            let name = e.involved_object.name.clone().unwrap_or_default();
            let revision = owned_revision(&deployment.workload, &kind, &name)?;
            let last = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(e.first_timestamp.as_ref().map(|t| t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let first = e
                .first_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(last);
            let view = EventView {
                kind,
                name,
                revision: Some(revision),
                event_type: e.type_,
                reason: e.reason,
                message: e.message,
                count: count(e.count).max(1),
                first_seen: first.map(|t| t.to_string()),
                last_seen: last.map(|t| t.to_string()),
                source: e
                    .reporting_component
                    .filter(|c| !c.is_empty())
                    .or(e.source.and_then(|s| s.component)),
            };
            Some((last, view))
        })
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(events.into_iter().take(limit).map(|(_, e)| e).collect())
}

/// The revision of an object named after the workload: `<workload>-v<N>` for a
/// Deployment or autoscaler, one more `-<hash>` for a ReplicaSet, one more `-<suffix>`
/// for a Pod. Counting the segments keeps app `cart` from claiming `cart-v2`'s objects.
fn owned_revision(workload: &str, kind: &str, name: &str) -> Option<u64> {
    let rest = name.strip_prefix(workload)?.strip_prefix("-v")?;
    let mut parts = rest.split('-');
    let revision = parts.next()?;
    if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let extra: Vec<&str> = parts.collect();
    if extra
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return None;
    }
    let wanted = match kind {
        "Deployment" | "HorizontalPodAutoscaler" => 0,
        "ReplicaSet" => 1,
        "Pod" => 2,
        _ => return None,
    };
    (extra.len() == wanted).then(|| revision.parse().ok())?
}

/// The pod, if it belongs to the deployment (by label; otherwise it is "not found").
async fn owned_pod(api: &Api<Pod>, deployment: &Deployment, name: &str) -> Result<Pod> {
    let pod = bounded(api.get_opt(name))
        .await?
        .ok_or_else(|| WorkloadError::PodNotFound(name.to_owned()))?;
    let ours = label(&pod.metadata, NAME_LABEL) == Some(deployment.workload.as_str())
        && label(&pod.metadata, MANAGED_LABEL) == Some(MANAGED_BY);
    if ours {
        Ok(pod)
    } else {
        Err(WorkloadError::PodNotFound(name.to_owned()))
    }
}

/// Checks `container` against the pod's containers (a 422 naming the choices).
fn check_container(pod: &Pod, container: Option<&str>) -> Result<()> {
    let names: Vec<&str> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    match container {
        Some(c) if names.contains(&c) => Ok(()),
        Some(c) => Err(invalid(
            "container",
            format!("pod has no container `{c}`; it has: {}", names.join(", ")),
        )),
        None if names.len() > 1 => Err(invalid(
            "container",
            format!(
                "the pod has several containers; name one of: {}",
                names.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn log_params(query: &LogQuery, follow: bool) -> LogParams {
    LogParams {
        container: query.container.clone(),
        follow,
        tail_lines: query.tail_lines,
        limit_bytes: if follow {
            query.limit_bytes
        } else {
            Some(query.limit_bytes.unwrap_or(MAX_LOG_BYTES))
        },
        ..LogParams::default()
    }
}

/// A 400 from the log endpoint means there is nothing to read yet (a container waiting
/// to start); anything else is the cluster's fault.
fn log_error(error: WorkloadError) -> WorkloadError {
    match error {
        WorkloadError::Cluster(ClusterError::Invalid(message)) => {
            WorkloadError::LogsUnavailable(message)
        }
        other => other,
    }
}

/// The log text of a pod of the deployment (at most [`MAX_LOG_BYTES`]).
pub async fn logs(
    client: &kube::Client,
    deployment: &Deployment,
    pod: &str,
    query: &LogQuery,
) -> Result<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &deployment.namespace);
    let found = owned_pod(&api, deployment, pod).await?;
    check_container(&found, query.container.as_deref())?;
    bounded(api.logs(pod, &log_params(query, false)))
        .await
        .map_err(log_error)
}

/// Lines of a pod's log as they are written, until the pod goes away, the cluster ends
/// the stream, or the caller drops it.
pub async fn follow_logs(
    client: &kube::Client,
    deployment: &Deployment,
    pod: &str,
    query: &LogQuery,
) -> Result<impl Stream<Item = std::result::Result<String, String>> + Send + 'static> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &deployment.namespace);
    let found = owned_pod(&api, deployment, pod).await?;
    check_container(&found, query.container.as_deref())?;
    let reader = bounded(api.log_stream(pod, &log_params(query, true)))
        .await
        .map_err(log_error)?;
    Ok(Box::pin(reader.lines()).map(|line| line.map_err(|e| e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_of_another_app_whose_name_extends_this_one_are_not_claimed() {
        assert_eq!(owned_revision("cart", "Deployment", "cart-v3"), Some(3));
        assert_eq!(
            owned_revision("cart", "ReplicaSet", "cart-v3-5d4f8"),
            Some(3)
        );
        assert_eq!(
            owned_revision("cart", "Pod", "cart-v3-5d4f8-x2x9k"),
            Some(3)
        );
        assert_eq!(
            owned_revision("cart", "HorizontalPodAutoscaler", "cart-v12"),
            Some(12)
        );
        // App `cart-v2` (workload cart-v2) and app `carts`.
        assert_eq!(owned_revision("cart", "Deployment", "cart-v2-v1"), None);
        assert_eq!(
            owned_revision("cart", "ReplicaSet", "cart-v2-v1-abcde"),
            None
        );
        assert_eq!(
            owned_revision("cart", "Pod", "cart-v2-v1-abcde-fghij"),
            None
        );
        assert_eq!(owned_revision("cart", "Pod", "carts-v1-abcde-fghij"), None);
        assert_eq!(owned_revision("cart", "Service", "cart-v1"), None);
        assert_eq!(owned_revision("cart", "Deployment", "cart-v"), None);
        assert_eq!(owned_revision("cart", "Pod", "cart-v1--x"), None);
    }

    #[test]
    fn query_values_out_of_range_name_their_field() {
        let field = |e: WorkloadError| match e {
            WorkloadError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(LogQuery::parse(None, Some("-1"), None).unwrap_err()),
            "tailLines"
        );
        assert_eq!(
            field(LogQuery::parse(None, None, Some("lots")).unwrap_err()),
            "limitBytes"
        );
        assert_eq!(field(events_limit(Some("0")).unwrap_err()), "limit");
        assert_eq!(field(flag("follow", Some("yes")).unwrap_err()), "follow");
        let q = LogQuery::parse(Some("app".into()), Some("10"), Some("100")).unwrap();
        assert_eq!(
            (q.container.as_deref(), q.tail_lines, q.limit_bytes),
            (Some("app"), Some(10), Some(100))
        );
        assert_eq!(events_limit(None).unwrap(), DEFAULT_EVENTS);
        assert!(flag("follow", Some("true")).unwrap());
    }

    use crate::cluster::{SimConfig, Simulator};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{DeleteParams, PostParams};
    use serde_json::json;

    fn simulator() -> (Simulator, kube::Client) {
        let simulator = Simulator::start(SimConfig {
            time_scale: 0.0,
            ..Default::default()
        })
        .expect("simulator");
        let client = simulator.client();
        (simulator, client)
    }

    async fn namespace(client: &kube::Client, name: &str) {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
    }

    /// A Deployment as Wharf renders revision `revision` of `workload`.
    async fn revision(
        client: &kube::Client,
        namespace: &str,
        workload: &str,
        revision: u64,
        image: &str,
        replicas: i32,
    ) {
        let labels = json!({
            "app.kubernetes.io/name": workload,
            "app.kubernetes.io/managed-by": "wharf",
            "wharf.dev/revision": revision.to_string(),
        });
        let object: KubeDeployment = serde_json::from_value(json!({
            "metadata": {"name": format!("{workload}-v{revision}"), "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": workload, "image": image}]},
                },
            },
        }))
        .unwrap();
        Api::<KubeDeployment>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &object)
            .await
            .expect("deployment created");
    }

    fn record(workload: &str, namespace: &str, stable: u64, active: Option<&str>) -> Deployment {
        let now = time::OffsetDateTime::now_utc();
        Deployment {
            id: "0".repeat(32),
            project: "shop".into(),
            app: workload.into(),
            env: "dev".into(),
            cluster: "embedded".into(),
            namespace: namespace.into(),
            workload: workload.into(),
            status: DeploymentStatus::Succeeded,
            stable_revision: Some(stable),
            replicas: 2,
            replicas_before_stop: None,
            revisions: Vec::new(),
            services: Vec::new(),
            active_change: active.map(str::to_owned),
            last_change: None,
            created_at: now,
            updated_at: now,
            created_by: "admin".into(),
        }
    }

    /// Polls the pods (bounded: 20 s) until `done` holds.
    async fn until_pods(
        client: &kube::Client,
        deployment: &Deployment,
        done: impl Fn(&[PodView]) -> bool,
    ) -> Vec<PodView> {
        let mut last = Vec::new();
        for _ in 0..400 {
            last = pods(client, deployment).await.expect("pods");
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pods never got there: {last:#?}");
    }

    #[tokio::test]
    async fn a_running_deployment_shows_its_replicas_pods_events_and_logs() {
        let (_sim, client) = simulator();
        namespace(&client, "shop-dev").await;
        revision(&client, "shop-dev", "cart", 1, "nginx:1.25", 2).await;
        // Another app whose name extends this one's, in the same namespace.
        revision(&client, "shop-dev", "carts", 1, "nginx:1.25", 1).await;
        let cart = record("cart", "shop-dev", 1, None);
        let pods = until_pods(&client, &cart, |p| {
            p.len() == 2 && p.iter().all(|p| p.ready)
        })
        .await;
        for pod in &pods {
            assert_eq!(pod.revision, Some(1));
            assert_eq!(pod.phase, "Running");
            assert_eq!((pod.status_cd, pod.status_cd_name.as_str()), (2, "running"));
            assert_eq!(pod.image.as_deref(), Some("nginx:1.25"));
            assert_eq!(pod.container_name.as_deref(), Some("cart"));
            assert!(pod.node.is_some() && pod.ip.is_some(), "{pod:?}");
            assert_eq!((pod.reason.as_deref(), pod.restarts), (None, 0));
            assert!(pod.name.starts_with("cart-v1-"), "{}", pod.name);
        }

        let status = status(&client, &cart).await.expect("status");
        assert_eq!(
            (
                status.desired,
                status.ready,
                status.updated,
                status.available,
                status.unavailable
            ),
            (2, 2, 2, 2, 0)
        );
        assert_eq!((status.running_pods, status.total_pods), (2, 2));
        assert_eq!(status.revisions.len(), 1, "{status:?}");
        let live = &status.revisions[0];
        assert_eq!(
            (
                live.revision,
                live.name.as_str(),
                live.image.as_deref(),
                live.stable
            ),
            (Some(1), "cart-v1", Some("nginx:1.25"), true)
        );

        let seen = events(&client, &cart, 100).await.expect("events");
        assert!(
            seen.iter()
                .any(|e| e.kind == "Deployment" && e.name == "cart-v1"),
            "{seen:#?}"
        );
        assert!(seen.iter().any(|e| e.kind == "ReplicaSet"), "{seen:#?}");
        assert!(
            seen.iter().all(|e| !e.name.starts_with("carts")),
            "{seen:#?}"
        );
        assert!(
            seen.windows(2).all(|w| w[0].last_seen >= w[1].last_seen),
            "newest first: {seen:#?}"
        );
        assert_eq!(events(&client, &cart, 1).await.expect("events").len(), 1);

        let pod = &pods[0].name;
        let text = logs(&client, &cart, pod, &LogQuery::default())
            .await
            .expect("logs");
        assert!(
            text.contains("starting container cart from image nginx:1.25"),
            "{text}"
        );
        assert!(text.lines().count() > 1, "{text}");
        let last = logs(
            &client,
            &cart,
            pod,
            &LogQuery::parse(None, Some("1"), None).unwrap(),
        )
        .await
        .expect("tail");
        assert_eq!(
            last.lines().collect::<Vec<_>>(),
            text.lines().last().into_iter().collect::<Vec<_>>()
        );
        let cut = logs(
            &client,
            &cart,
            pod,
            &LogQuery::parse(None, None, Some("10")).unwrap(),
        )
        .await
        .expect("limited");
        assert_eq!(cut, text[..10]);
        let wrong = logs(
            &client,
            &cart,
            pod,
            &LogQuery::parse(Some("sidecar".into()), None, None).unwrap(),
        )
        .await;
        assert!(
            matches!(&wrong, Err(WorkloadError::Invalid { field, .. }) if field == "container"),
            "{wrong:?}"
        );

        // The pod of `carts` is not `cart`'s to show.
        let carts = record("carts", "shop-dev", 1, None);
        let theirs = until_pods(&client, &carts, |p| p.len() == 1).await;
        let refused = logs(&client, &cart, &theirs[0].name, &LogQuery::default()).await;
        assert!(
            matches!(&refused, Err(WorkloadError::PodNotFound(_))),
            "{refused:?}"
        );
        let missing = logs(&client, &cart, "cart-v1-nothing-here", &LogQuery::default()).await;
        assert!(
            matches!(&missing, Err(WorkloadError::PodNotFound(_))),
            "{missing:?}"
        );

        let counts = pod_counts(
            &client,
            "shop-dev",
            &["cart".into(), "carts".into(), "gone".into()],
        )
        .await
        .expect("counts");
        assert_eq!(counts.get("cart"), Some(&(2, 2)));
        assert_eq!(counts.get("carts"), Some(&(1, 1)));
        assert_eq!(counts.get("gone"), None);
    }

    #[tokio::test]
    async fn following_a_log_ends_when_the_pod_is_deleted() {
        let (_sim, client) = simulator();
        namespace(&client, "shop-dev").await;
        revision(&client, "shop-dev", "cart", 1, "nginx:1.25", 1).await;
        let cart = record("cart", "shop-dev", 1, None);
        let pods = until_pods(&client, &cart, |p| p.len() == 1 && p[0].ready).await;
        let name = pods[0].name.clone();
        let mut lines = Box::pin(
            follow_logs(&client, &cart, &name, &LogQuery::default())
                .await
                .expect("follow"),
        );
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next())
            .await
            .expect("a line in time")
            .expect("a line")
            .expect("no error");
        assert!(first.contains("starting container cart"), "{first}");
        Api::<Pod>::namespaced(client.clone(), "shop-dev")
            .delete(&name, &DeleteParams::default())
            .await
            .expect("pod deleted");
        let rest = tokio::time::timeout(Duration::from_secs(10), async {
            let mut rest = Vec::new();
            while let Some(line) = lines.next().await {
                rest.push(line);
            }
            rest
        })
        .await
        .expect("the stream ends once the pod is gone");
        assert!(rest.iter().all(|l| l.is_ok()), "{rest:?}");
    }

    #[tokio::test]
    async fn failing_pods_say_why_and_a_rollout_in_flight_shows_as_changing() {
        let (_sim, client) = simulator();
        namespace(&client, "shop-dev").await;
        revision(&client, "shop-dev", "cart", 1, "nginx:1.25", 1).await;
        revision(&client, "shop-dev", "cart", 2, "shop/cart:never-ready", 1).await;
        revision(&client, "shop-dev", "crash", 1, "shop/crash:crash-loop", 1).await;
        revision(
            &client,
            "shop-dev",
            "pull",
            1,
            "shop/pull:image-pull-error",
            1,
        )
        .await;

        let cart = record("cart", "shop-dev", 1, Some("change-1"));
        let pods = until_pods(&client, &cart, |p| {
            p.len() == 2 && p.iter().all(|p| p.phase == "Running")
        })
        .await;
        let (old, new) = (&pods[0], &pods[1]);
        assert_eq!((old.revision, old.ready, old.status_cd), (Some(1), true, 2));
        assert_eq!((new.revision, new.ready), (Some(2), false));
        assert_eq!(new.reason.as_deref(), Some("ContainersNotReady"), "{new:?}");
        assert_eq!(
            (new.status_cd, new.status_cd_name.as_str()),
            (7, "changing")
        );
        let status = status(&client, &cart).await.expect("status");
        assert_eq!(
            (
                status.desired,
                status.ready,
                status.running_pods,
                status.total_pods
            ),
            (2, 1, 1, 2)
        );
        assert_eq!(
            status
                .revisions
                .iter()
                .map(|r| (r.revision, r.stable))
                .collect::<Vec<_>>(),
            [(Some(1), true), (Some(2), false)]
        );
        // Once no change is in flight, a pod that never gets ready is still starting.
        let settled = record("cart", "shop-dev", 1, None);
        let pods = pods_of(&client, &settled).await;
        assert_eq!(pods[1].status_cd, PodStatus::Starting.code());

        let crash = record("crash", "shop-dev", 1, None);
        let pods = until_pods(&client, &crash, |p| {
            p.len() == 1 && p[0].reason.as_deref() == Some("CrashLoopBackOff")
        })
        .await;
        assert_eq!((pods[0].status_cd, pods[0].ready), (6, false), "{pods:?}");

        let pull = record("pull", "shop-dev", 1, None);
        let pods = until_pods(&client, &pull, |p| {
            p.len() == 1 && p[0].reason.as_deref() == Some("ImagePullBackOff")
        })
        .await;
        assert_eq!((pods[0].status_cd, pods[0].phase.as_str()), (6, "Pending"));
        let warned = events(&client, &pull, 100).await.expect("events");
        assert!(
            warned.iter().any(|e| e.kind == "Pod"
                && e.event_type.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("Failed")),
            "{warned:#?}"
        );
        let waiting = logs(&client, &pull, &pods[0].name, &LogQuery::default()).await;
        assert!(
            matches!(&waiting, Err(WorkloadError::LogsUnavailable(_))),
            "{waiting:?}"
        );
    }

    async fn pods_of(client: &kube::Client, deployment: &Deployment) -> Vec<PodView> {
        pods(client, deployment).await.expect("pods")
    }
}
