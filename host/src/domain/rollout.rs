//! The change-order engine: opens change orders (one in flight per deployment), gates
//! them on approval, and drives each through the cluster with kube-rs — batch by batch
//! for rollouts, in one step for scale, start, stop, restart, delete and services.
//!
//! Durability: every transition is written and committed before the engine acts on it,
//! and every cluster write states an absolute target (replicas = N, object = rendered),
//! so a driver that restarts after `kill -9` re-applies the step it stood on and waits
//! again: nothing runs twice, nothing is forgotten. [`Deployer::resume`] restarts a
//! driver for every deployment whose change order was in flight.
//!
//! A rollout to revision T keeps one Kubernetes Deployment per revision
//! (`<workload>-v<T>`): batch k scales T up to the batch's cumulative target and the
//! stable revision down by as much, so both versions serve behind the app's Services
//! until the last batch; then the older Deployments are removed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment as KubeDeployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use utoipa::ToSchema;

use super::changes::{
    self, Approval, BatchState, Before, ChangeKind, ChangeOrder, ChangeState, Level, PodSnapshot,
    RenderedObject,
};
use super::clusters::Clusters;
use super::deployments::{
    self, Deployment, DeploymentStatus, MANAGED_BY, MANAGED_LABEL, NAME_LABEL, REVISION_LABEL,
    Revision,
};
use super::environments::{EnvError, Environments};
use super::gray::objects as gray_objects;
use super::gray::providers::Providers;
use super::gray::release::{self as gray, GrayRelease};
use super::gray::rules::{self as gray_rules, GrayError};
use super::projects::Projects;
use super::render::{self, Workload};
use super::spec::{DeploySpec, ServiceSpec, SpecError};
use crate::audit::{Actor, AuditLog, Entry, Outcome};
use crate::store::{Batch, Store, StoreError};

/// What a finished operation does to the deployment record.
type Effect = Box<dyn Fn(&mut Deployment) + Send + Sync>;

/// The actor name of what the engine does on its own.
pub const ENGINE: &str = "wharf";
/// How often a driver looks at the cluster while it waits for pods.
const POLL: Duration = Duration::from_millis(200);
const FIELD_MANAGER: &str = "wharf";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("app `{0}` does not exist")]
    AppNotFound(String),
    #[error("app `{0}` is disabled; enable it before deploying")]
    AppDisabled(String),
    #[error("app `{app}` has never been deployed to environment `{env}`")]
    NotDeployed { app: String, env: String },
    #[error(
        "the deployment of `{app}` in `{env}` was deleted (应用已删除，本次发布的应用已下线); deploy it again first"
    )]
    Deleted { app: String, env: String },
    #[error(
        "change order {change_order} is still in flight for this deployment (应用正在变更中，请等待变更完成); wait for it, or abort or roll it back"
    )]
    InFlight { change_order: String },
    #[error("change order `{0}` does not exist")]
    ChangeNotFound(String),
    #[error("change order {id} is {state}; {action} needs it to be {needed}")]
    WrongState {
        id: String,
        state: String,
        action: &'static str,
        needed: &'static str,
    },
    #[error("the requester of a change order cannot approve or reject it; ask another reviewer")]
    SelfApproval,
    #[error("change order {id} was delegated to `{assignee}`; only they can decide it")]
    NotAssignee { id: String, assignee: String },
    #[error("{0}")]
    NothingToRollBack(String),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Gray(#[from] GrayError),
    #[error("the cluster failed: {0}")]
    Cluster(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> DeployError {
    DeployError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl From<SpecError> for DeployError {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Invalid { field, message } => DeployError::Invalid { field, message },
        }
    }
}

fn state_name(state: ChangeState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn wrong_state(change: &ChangeOrder, action: &'static str, needed: &'static str) -> DeployError {
    DeployError::WrongState {
        id: change.id.clone(),
        state: state_name(change.state),
        action,
        needed,
    }
}

fn cluster_error(e: impl std::fmt::Display) -> DeployError {
    DeployError::Cluster(e.to_string())
}

/// Seed 003 deploy-task fields an approver reads.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ticket {
    pub level: Option<Level>,
    pub checklist: Option<String>,
    /// RFC 3339.
    pub planned_at: Option<String>,
}

/// Who asks, and what they say about it.
#[derive(Debug, Clone)]
pub struct Requester {
    pub username: String,
    pub description: Option<String>,
    pub ticket: Option<Ticket>,
}

/// A deploy request: the spec (seed 001 5.3.18 field names) plus where and why.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub spec: DeploySpec,
    /// A deploy config of the app whose env vars, probes, resources and command apply.
    pub deploy_config: Option<String>,
    /// Which of the environment's bindings to use (default: its first).
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub description: Option<String>,
    pub ticket: Option<Ticket>,
}

impl DeployRequest {
    /// Reads the flat seed-style body: the spec's fields next to `deployConfig`,
    /// `cluster`, `namespace`, `description` and `ticket`.
    pub fn from_json(mut body: Value) -> Result<Self, DeployError> {
        let Some(object) = body.as_object_mut() else {
            return Err(invalid("", "the body must be a JSON object"));
        };
        let mut take = |name: &str| object.remove(name);
        let text = |value: Option<Value>, field: &str| -> Result<Option<String>, DeployError> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(invalid(field, "must be a string")),
            }
        };
        let deploy_config = text(take("deployConfig"), "deployConfig")?;
        let cluster = text(take("cluster"), "cluster")?;
        let namespace = text(take("namespace"), "namespace")?;
        let description = text(take("description"), "description")?;
        let ticket = match take("ticket") {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse::<Ticket>(value, "ticket")?),
        };
        let spec = parse::<DeploySpec>(body, "")?;
        Ok(Self {
            spec,
            deploy_config,
            cluster,
            namespace,
            description,
            ticket,
        })
    }
}

/// Deserializes `value`, naming the failing field under `prefix`.
pub fn parse<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, DeployError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let path = match (prefix.is_empty(), path == ".") {
            (true, _) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        invalid(&crate::input::field_of(&path, &inner), inner)
    })
}

/// The live history of a deployment (seed 001 5.3.19).
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub revision: u64,
    pub image: String,
    pub deploy_ver: Option<String>,
    pub change_order: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    /// Whether this revision serves now.
    pub current: bool,
}

struct Inner {
    store: Store,
    clusters: Clusters,
    environments: Environments,
    providers: Providers,
    audit: AuditLog,
    /// Serializes every read-modify-write of one deployment and its change orders.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Wakes a change order's driver when someone acts on it.
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Change orders this host drives now (one driver each).
    drivers: Mutex<std::collections::HashSet<String>>,
    /// Latest state of each watched change order (server-sent events).
    feeds: Mutex<HashMap<String, watch::Sender<ChangeOrder>>>,
}

/// The change-order service. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The status a deployment settles in when no change is in flight.
fn settled(deployment: &Deployment) -> DeploymentStatus {
    match (deployment.stable_revision, deployment.replicas) {
        (None, _) => DeploymentStatus::Waiting,
        (Some(_), 0) => DeploymentStatus::Stopped,
        (Some(_), _) => DeploymentStatus::Succeeded,
    }
}

impl Deployer {
    pub fn new(
        store: Store,
        clusters: Clusters,
        projects: Projects,
        audit: AuditLog,
        providers: Providers,
    ) -> Self {
        let environments = Environments::new(clusters.clone(), projects, providers.clone());
        Self {
            inner: Arc::new(Inner {
                store,
                clusters,
                environments,
                providers,
                audit,
                locks: Mutex::default(),
                wakers: Mutex::default(),
                drivers: Mutex::default(),
                feeds: Mutex::default(),
            }),
        }
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn lock_of(&self, deployment: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(deployment.to_owned()).or_default().clone()
    }

    fn waker(&self, change: &str) -> Arc<Notify> {
        let mut wakers = self.inner.wakers.lock().unwrap_or_else(|p| p.into_inner());
        wakers.entry(change.to_owned()).or_default().clone()
    }

    fn publish(&self, change: &ChangeOrder) {
        let mut feeds = self.inner.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(feed) = feeds.get(&change.id) {
            feed.send_replace(change.clone());
            if change.state.is_terminal() {
                feeds.remove(&change.id);
            }
        }
    }

    /// Follows a change order: the receiver holds its latest state.
    pub fn subscribe(&self, id: &str) -> Result<watch::Receiver<ChangeOrder>, DeployError> {
        let change = self.change(id)?;
        let mut feeds = self.inner.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if change.state.is_terminal() {
            // Nothing will change any more: a feed nobody updates, holding the end state.
            return Ok(watch::channel(change).1);
        }
        Ok(feeds
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(change).0)
            .subscribe())
    }

    // Reads.

    pub fn deployment(
        &self,
        project: &str,
        app: &str,
        env: &str,
    ) -> Result<Deployment, DeployError> {
        deployments::get(self.store(), project, app, env)?.ok_or_else(|| DeployError::NotDeployed {
            app: app.to_owned(),
            env: env.to_owned(),
        })
    }

    pub fn change(&self, id: &str) -> Result<ChangeOrder, DeployError> {
        changes::get(self.store(), id)?.ok_or_else(|| DeployError::ChangeNotFound(id.to_owned()))
    }

    pub fn changes_of(
        &self,
        project: &str,
        app: &str,
        env: &str,
    ) -> Result<Vec<ChangeOrder>, DeployError> {
        let deployment = self.deployment(project, app, env)?;
        Ok(changes::of_deployment(self.store(), &deployment.id)?)
    }

    pub fn changes_of_project(&self, project: &str) -> Result<Vec<ChangeOrder>, DeployError> {
        Ok(changes::of_project(self.store(), project)?)
    }

    pub fn history(
        &self,
        project: &str,
        app: &str,
        env: &str,
    ) -> Result<Vec<HistoryEntry>, DeployError> {
        let deployment = self.deployment(project, app, env)?;
        Ok(deployment
            .revisions
            .iter()
            .rev()
            .map(|r| HistoryEntry {
                revision: r.revision,
                image: r.image.clone(),
                deploy_ver: r.spec.deploy_ver.clone(),
                change_order: r.change_order.clone(),
                created_at: r.created_at,
                created_by: r.created_by.clone(),
                current: deployment.stable_revision == Some(r.revision),
            })
            .collect())
    }

    // Opening change orders.

    /// Checks the app exists and may be deployed.
    fn check_app(&self, project: &str, app: &str) -> Result<(), DeployError> {
        let record: Option<Value> = self
            .store()
            .get_json(&crate::store::Store::key(&["apps", project, app]))?;
        match record {
            None => Err(DeployError::AppNotFound(app.to_owned())),
            Some(app_record) if app_record["disabled"] == Value::Bool(true) => {
                Err(DeployError::AppDisabled(app.to_owned()))
            }
            Some(_) => Ok(()),
        }
    }

    /// Deploys (or redeploys with a new spec) an app to an environment: a new revision,
    /// rolled out in the spec's batches.
    pub async fn deploy(
        &self,
        project: &str,
        app: &str,
        env: &str,
        mut request: DeployRequest,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        self.check_app(project, app)?;
        let environment = self.inner.environments.get(project, env)?;
        if let Some(config) = &request.deploy_config {
            let config =
                super::deploy_configs::find_in_env(self.store(), project, app, env, config)?
                    .ok_or_else(|| {
                        invalid(
                            "deployConfig",
                            format!("app `{app}` has no deploy config `{config}`"),
                        )
                    })?;
            if config.env != env {
                return Err(invalid(
                    "deployConfig",
                    format!(
                        "deploy config `{}` is for environment `{}`, not `{env}`",
                        config.name, config.env
                    ),
                ));
            }
            config.apply_to(&mut request.spec);
        }
        request.spec.validate()?;
        let existing = deployments::get(self.store(), project, app, env)?;
        let (cluster, namespace) = match &existing {
            Some(d) if d.status != DeploymentStatus::Deleted => {
                for (field, asked, current) in [
                    ("cluster", &request.cluster, &d.cluster),
                    ("namespace", &request.namespace, &d.namespace),
                ] {
                    if asked.as_ref().is_some_and(|a| a != current) {
                        return Err(invalid(
                            field,
                            format!(
                                "this deployment runs in {}/{}; delete it to move it",
                                d.cluster, d.namespace
                            ),
                        ));
                    }
                }
                (d.cluster.clone(), d.namespace.clone())
            }
            _ => {
                let binding = environment
                    .bindings
                    .iter()
                    .find(|b| {
                        request.cluster.as_ref().is_none_or(|c| &b.cluster == c)
                            && request.namespace.as_ref().is_none_or(|n| &b.namespace == n)
                    })
                    .ok_or_else(|| match (&request.cluster, &request.namespace) {
                        (None, None) => invalid(
                            "env",
                            format!(
                                "environment `{env}` has no cluster namespace bound; bind one first"
                            ),
                        ),
                        _ => invalid(
                            "namespace",
                            format!(
                                "environment `{env}` has no binding to that cluster and namespace"
                            ),
                        ),
                    })?;
                (binding.cluster.clone(), binding.namespace.clone())
            }
        };
        let items = super::config_items::names_in(
            self.store(),
            project,
            env,
            Some((&cluster, &namespace)),
        )?;
        for (field, name) in request.spec.config_item_refs() {
            if !items.contains(&name) {
                return Err(invalid(
                    &field,
                    format!(
                        "environment `{env}` has no config item `{name}` in {cluster}/{namespace}"
                    ),
                ));
            }
        }
        if let Some(rule) = request.spec.gray_rule() {
            gray_rules::require_renderable(
                &self.inner.providers,
                &environment.traffic_provider,
                rule,
                "deploymentStrategy.grayRule",
            )
            .await?;
        }
        let lock = self.lock_of(&format!("{project}/{app}/{env}"));
        let _guard = lock.lock().await;
        let mut deployment = match deployments::get(self.store(), project, app, env)? {
            Some(d) => d,
            None => {
                let at = now();
                Deployment {
                    id: new_id(),
                    project: project.to_owned(),
                    app: app.to_owned(),
                    env: env.to_owned(),
                    cluster: cluster.clone(),
                    namespace: namespace.clone(),
                    workload: app.to_lowercase(),
                    status: DeploymentStatus::Waiting,
                    stable_revision: None,
                    replicas: 0,
                    replicas_before_stop: None,
                    revisions: Vec::new(),
                    services: Vec::new(),
                    active_change: None,
                    last_change: None,
                    created_at: at,
                    updated_at: at,
                    created_by: requester.username.clone(),
                }
            }
        };
        if let Some(active) = &deployment.active_change {
            return Err(DeployError::InFlight {
                change_order: active.clone(),
            });
        }
        if deployment.status == DeploymentStatus::Deleted {
            deployment.cluster = cluster;
            deployment.namespace = namespace;
        }
        let kind = if deployment.stable_revision.is_some() {
            ChangeKind::Redeploy
        } else {
            ChangeKind::Deploy
        };
        let revision = deployment
            .revisions
            .iter()
            .map(|r| r.revision)
            .max()
            .unwrap_or(0)
            + 1;
        let mut change =
            self.draft(&deployment, kind, &requester, environment.approval_required)?;
        change.target_revision = Some(revision);
        change.target_replicas = request.spec.replicas;
        change.manual = request.spec.manual();
        change.batch_wait_seconds = request.spec.batch_wait().as_secs();
        change.batch_timeout_seconds = request.spec.batch_timeout().as_secs();
        change.batches = changes::plan_batches(&request.spec.batches());
        if let Some(rule) = request.spec.gray_rule() {
            let mut release = open_gray(&deployment, &environment.traffic_provider, rule)?;
            release.gateway = environment.traffic_gateway.clone();
            change.gray = Some(release);
        }
        change.resources = rendered(
            &deployment,
            &request.spec,
            revision,
            &change.id,
            request.spec.replicas,
        );
        change.note(
            &requester.username,
            format!(
                "{} revision {revision} ({}) with {} replicas in {} batch(es), {}",
                if kind == ChangeKind::Deploy {
                    "deploy"
                } else {
                    "redeploy"
                },
                request.spec.image(),
                request.spec.replicas,
                change.batches.len().max(1),
                if change.manual { "MANUAL" } else { "AUTO" }
            ),
        );
        deployment.revisions.push(Revision {
            revision,
            image: request.spec.image().to_owned(),
            spec: request.spec.clone(),
            change_order: change.id.clone(),
            created_at: change.created_at,
            created_by: requester.username.clone(),
        });
        change.spec = Some(request.spec);
        self.open(deployment, change).await
    }

    /// Seed 001 5.3.18 without a new spec: the serving spec again, as a new revision.
    pub async fn redeploy(
        &self,
        project: &str,
        app: &str,
        env: &str,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let deployment = self.deployment(project, app, env)?;
        if deployment.status == DeploymentStatus::Deleted {
            return Err(DeployError::Deleted {
                app: app.to_owned(),
                env: env.to_owned(),
            });
        }
        let (_, spec) = Self::needs_stable(&deployment)?;
        let request = DeployRequest {
            // Redeploying what serves is no canary: the promoted rule served its purpose.
            spec: spec.without_gray(),
            deploy_config: None,
            cluster: None,
            namespace: None,
            description: requester.description.clone(),
            ticket: requester.ticket.clone(),
        };
        self.deploy(project, app, env, request, requester).await
    }

    /// A change order for `deployment` in its first state, not yet stored.
    fn draft(
        &self,
        deployment: &Deployment,
        kind: ChangeKind,
        requester: &Requester,
        approval_required: bool,
    ) -> Result<ChangeOrder, DeployError> {
        let at = now();
        let approval = match approval_required {
            false => None,
            true => {
                let ticket = requester.ticket.clone().unwrap_or_default();
                let planned_at = ticket
                    .planned_at
                    .as_deref()
                    .map(|t| {
                        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                            .map_err(|_| {
                                invalid(
                                    "ticket.plannedAt",
                                    "must be an RFC 3339 time, e.g. 2026-12-01T08:00:00Z",
                                )
                            })
                    })
                    .transpose()?;
                Some(Approval {
                    level: ticket.level,
                    checklist: ticket.checklist,
                    planned_at,
                    ..Approval::default()
                })
            }
        };
        if let Some(description) = &requester.description
            && description.chars().count() > 500
        {
            return Err(invalid("description", "must be at most 500 characters"));
        }
        Ok(ChangeOrder {
            id: new_id(),
            deployment_id: deployment.id.clone(),
            project: deployment.project.clone(),
            app: deployment.app.clone(),
            env: deployment.env.clone(),
            kind,
            state: if approval.is_some() {
                ChangeState::WaitingApproval
            } else {
                ChangeState::Running
            },
            description: requester.description.clone().unwrap_or_default(),
            requested_by: requester.username.clone(),
            before: Before {
                revision: deployment.stable_revision,
                replicas: deployment.replicas,
            },
            target_revision: deployment.stable_revision,
            target_replicas: deployment.replicas,
            spec: None,
            service: None,
            rollback_of: None,
            rolled_back_by: None,
            manual: false,
            batch_wait_seconds: 0,
            batch_timeout_seconds: deployment
                .stable()
                .map_or(600, |r| r.spec.batch_timeout().as_secs()),
            batches: Vec::new(),
            resume_at: None,
            started_at: (approval.is_none()).then_some(at),
            approval,
            resources: Vec::new(),
            gray: None,
            timeline: Vec::new(),
            error: None,
            created_at: at,
            updated_at: at,
            finished_at: None,
        })
    }

    /// Stores a new change order as the deployment's one in flight and starts its driver.
    /// The caller holds the deployment's lock.
    async fn open(
        &self,
        mut deployment: Deployment,
        mut change: ChangeOrder,
    ) -> Result<ChangeOrder, DeployError> {
        if change.state == ChangeState::WaitingApproval {
            change.note(ENGINE, "waiting for approval");
        }
        deployment.active_change = Some(change.id.clone());
        deployment.status = if change.state == ChangeState::WaitingApproval {
            DeploymentStatus::Waiting
        } else {
            DeploymentStatus::Running
        };
        deployment.updated_at = now();
        let store = self.store();
        let record = deployments::key(&deployment.project, &deployment.app, &deployment.env);
        let in_flight = deployments::in_flight_key(&deployment);
        // The claim of the one change in flight and the app's existence are conditions of
        // the same batch that opens the change, so they hold across hosts: a second open
        // or a racing app delete makes one of the two fail.
        loop {
            let is_new = store.get_raw(&record)?.is_none();
            let mut batch = Batch::new().absent(&in_flight);
            batch = super::apps::exists(batch, &deployment.project, &deployment.app)
                .put_json(&in_flight, &change.id)?
                .put_json(&record, &deployment)?
                .put_json(
                    &deployments::id_key(&deployment.id),
                    &format!(
                        "{}/{}/{}",
                        deployment.project, deployment.app, deployment.env
                    ),
                )?;
            if is_new {
                let owner = super::apps::dependents(store, &deployment.project, &deployment.app)?;
                batch = owner.add("deployments").write(batch.absent(&record))?;
            }
            match store.apply(&batch)? {
                Ok(()) => break,
                Err(conflict) if conflict.index == 0 => {
                    let holder = store.get_json::<String>(&in_flight)?.unwrap_or_default();
                    return Err(DeployError::InFlight {
                        change_order: holder,
                    });
                }
                Err(conflict) if conflict.index == 1 => {
                    return Err(DeployError::AppNotFound(deployment.app.clone()));
                }
                // The record appeared or the app's counts moved: read them again.
                Err(_) => continue,
            }
        }
        changes::insert(store, &change)?;
        store.commit().await?;
        self.spawn(change.id.clone(), false);
        Ok(change)
    }

    /// An operation on the deployment's stable revision (scale, start, stop, restart,
    /// delete, services).
    async fn operate(
        &self,
        project: &str,
        app: &str,
        env: &str,
        kind: ChangeKind,
        requester: Requester,
        shape: impl FnOnce(&mut Deployment, &mut ChangeOrder) -> Result<(), DeployError>,
    ) -> Result<ChangeOrder, DeployError> {
        let approval_required = self.inner.environments.get(project, env)?.approval_required;
        let lock = self.lock_of(&format!("{project}/{app}/{env}"));
        let _guard = lock.lock().await;
        let mut deployment = self.deployment(project, app, env)?;
        if let Some(active) = &deployment.active_change {
            return Err(DeployError::InFlight {
                change_order: active.clone(),
            });
        }
        if deployment.status == DeploymentStatus::Deleted {
            return Err(DeployError::Deleted {
                app: app.to_owned(),
                env: env.to_owned(),
            });
        }
        let mut change = self.draft(&deployment, kind, &requester, approval_required)?;
        shape(&mut deployment, &mut change)?;
        self.open(deployment, change).await
    }

    fn needs_stable(deployment: &Deployment) -> Result<(u64, DeploySpec), DeployError> {
        deployment
            .stable()
            .map(|r| (r.revision, r.spec.clone()))
            .ok_or_else(|| DeployError::NotDeployed {
                app: deployment.app.clone(),
                env: deployment.env.clone(),
            })
    }

    /// Seed 001 5.3.13: replicas ≥ 0; 0 takes the app offline.
    pub async fn scale(
        &self,
        project: &str,
        app: &str,
        env: &str,
        replicas: u32,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        if replicas > 1000 {
            return Err(invalid("replicas", "must be from 0 to 1000"));
        }
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::Scale,
            requester,
            |deployment, change| {
                let (revision, spec) = Self::needs_stable(deployment)?;
                change.target_replicas = replicas;
                change.resources = rendered(deployment, &spec, revision, &change.id, replicas);
                change.note(
                    &who,
                    format!("scale from {} to {replicas} replicas", deployment.replicas),
                );
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.14: back to `replicas` (≥ 1), or to what ran before the stop.
    pub async fn start(
        &self,
        project: &str,
        app: &str,
        env: &str,
        replicas: Option<u32>,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        if replicas.is_some_and(|r| !(1..=1000).contains(&r)) {
            return Err(invalid("replicas", "must be from 1 to 1000"));
        }
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::Start,
            requester,
            |deployment, change| {
                let (revision, spec) = Self::needs_stable(deployment)?;
                let replicas = replicas
                    .or(deployment.replicas_before_stop)
                    .unwrap_or(spec.replicas)
                    .max(1);
                change.target_replicas = replicas;
                change.resources = rendered(deployment, &spec, revision, &change.id, replicas);
                change.note(&who, format!("start with {replicas} replicas"));
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.15: scales to 0, remembering the replicas for `start`.
    pub async fn stop(
        &self,
        project: &str,
        app: &str,
        env: &str,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::Stop,
            requester,
            |deployment, change| {
                let (revision, spec) = Self::needs_stable(deployment)?;
                change.target_replicas = 0;
                change.resources = rendered(deployment, &spec, revision, &change.id, 0);
                change.note(&who, format!("stop ({} replicas → 0)", deployment.replicas));
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.12: replaces every pod, one rolling update.
    pub async fn restart(
        &self,
        project: &str,
        app: &str,
        env: &str,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::Restart,
            requester,
            |deployment, change| {
                Self::needs_stable(deployment)?;
                if deployment.replicas == 0 {
                    return Err(invalid("replicas", "the app is stopped; start it instead"));
                }
                change.note(&who, "restart every pod");
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.2: removes the app's objects from the cluster; history stays.
    pub async fn delete(
        &self,
        project: &str,
        app: &str,
        env: &str,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::Delete,
            requester,
            |_, change| {
                change.target_replicas = 0;
                change.note(
                    &who,
                    "delete the app's Deployments, autoscalers and Services",
                );
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.1 / 5.3.16: creates or replaces a Service of the app.
    pub async fn put_service(
        &self,
        project: &str,
        app: &str,
        env: &str,
        service: ServiceSpec,
        create: bool,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        service.validate()?;
        let kind = if create {
            ChangeKind::ServiceCreate
        } else {
            ChangeKind::ServiceUpdate
        };
        let who = requester.username.clone();
        self.operate(project, app, env, kind, requester, |deployment, change| {
            let exists = deployment.services.iter().any(|s| s.name == service.name);
            match (create, exists) {
                (true, true) => {
                    return Err(invalid(
                        "name",
                        format!("service `{}` exists; update it instead", service.name),
                    ));
                }
                (false, false) => {
                    return Err(invalid(
                        "name",
                        format!("service `{}` does not exist", service.name),
                    ));
                }
                _ => {}
            }
            let workload = workload_of(
                deployment,
                deployment.stable_revision.unwrap_or(0),
                &change.id,
            );
            change.resources = vec![object(
                "Service",
                &service.name,
                &render::service(&service, &workload),
            )];
            change.note(
                &who,
                format!(
                    "{} service {}",
                    if create { "create" } else { "update" },
                    service.name
                ),
            );
            change.service = Some(service);
            Ok(())
        })
        .await
    }

    /// Seed 001 5.3.3.
    pub async fn delete_service(
        &self,
        project: &str,
        app: &str,
        env: &str,
        name: &str,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::ServiceDelete,
            requester,
            |deployment, change| {
                let service = deployment
                    .services
                    .iter()
                    .find(|s| s.name == name)
                    .cloned()
                    .ok_or_else(|| invalid("name", format!("service `{name}` does not exist")))?;
                change.note(&who, format!("delete service {name}"));
                change.service = Some(service);
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.21: rolls the deployment back to a revision from its history.
    pub async fn rollback_to(
        &self,
        project: &str,
        app: &str,
        env: &str,
        revision: u64,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let who = requester.username.clone();
        self.operate(
            project,
            app,
            env,
            ChangeKind::Rollback,
            requester,
            |deployment, change| {
                let spec = deployment
                    .revision(revision)
                    .map(|r| r.spec.clone())
                    .ok_or_else(|| {
                        invalid(
                            "revision",
                            format!("this deployment has no revision {revision}; see its history"),
                        )
                    })?;
                if deployment.stable_revision == Some(revision) {
                    return Err(DeployError::NothingToRollBack(format!(
                        "revision {revision} is already the one serving"
                    )));
                }
                let replicas = if deployment.replicas > 0 {
                    deployment.replicas
                } else {
                    spec.replicas
                };
                prepare_rollback(deployment, change, revision, replicas, &spec);
                change.note(
                    &who,
                    format!("roll back to revision {revision} ({})", spec.image()),
                );
                Ok(())
            },
        )
        .await
    }

    /// Seed 001 5.3.20: undoes a change order. In flight, it is reverted where it stands;
    /// finished (and still the deployment's latest), a new rollback change order restores
    /// what the deployment was before it.
    pub async fn rollback_change(
        &self,
        id: &str,
        requester: Requester,
    ) -> Result<ChangeOrder, DeployError> {
        let target = self.change(id)?;
        let lock = self.lock_of(&format!("{}/{}/{}", target.project, target.app, target.env));
        let guard = lock.lock().await;
        let mut target = self.change(id)?;
        let deployment = self.deployment(&target.project, &target.app, &target.env)?;
        if !target.state.is_terminal() {
            match target.state {
                ChangeState::RollingBack => {
                    return Err(wrong_state(
                        &target,
                        "rollback",
                        "in flight and not already rolling back",
                    ));
                }
                ChangeState::WaitingApproval | ChangeState::Approved => {
                    target.note(
                        &requester.username,
                        "rolled back before it ran: nothing to undo",
                    );
                    target.finish(ChangeState::RolledBack);
                    self.close(&mut target, None).await?;
                }
                _ => {
                    target.state = ChangeState::RollingBack;
                    target.started_at = Some(now());
                    target.note(
                        &requester.username,
                        "roll back: restore the version that served before",
                    );
                    self.save(&target).await?;
                    self.waker(&target.id).notify_one();
                }
            }
            return Ok(target);
        }
        if let Some(active) = &deployment.active_change {
            return Err(DeployError::InFlight {
                change_order: active.clone(),
            });
        }
        if deployment.last_change.as_deref() != Some(id) {
            return Err(DeployError::NothingToRollBack(
                "only the deployment's latest change order can be rolled back; roll back to a revision from the history instead".into(),
            ));
        }
        if target.state == ChangeState::RolledBack || target.state == ChangeState::Rejected {
            return Err(DeployError::NothingToRollBack(format!(
                "change order {id} has nothing left to undo"
            )));
        }
        if matches!(
            target.kind,
            ChangeKind::ServiceCreate
                | ChangeKind::ServiceUpdate
                | ChangeKind::ServiceDelete
                | ChangeKind::Delete
        ) {
            return Err(DeployError::NothingToRollBack(format!(
                "a {} change cannot be rolled back; make the opposite change instead",
                serde_json::to_value(target.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )));
        }
        drop(guard);
        let before = target.before;
        let who = requester.username.clone();
        let target_id = target.id.clone();
        self.operate(&target.project, &target.app, &target.env, ChangeKind::Rollback, requester, |deployment, change| {
            change.rollback_of = Some(target_id.clone());
            match before.revision {
                Some(revision) => {
                    let spec = deployment
                        .revision(revision)
                        .map(|r| r.spec.clone())
                        .ok_or_else(|| DeployError::NothingToRollBack(format!("revision {revision} is no longer in the history")))?;
                    prepare_rollback(deployment, change, revision, before.replicas, &spec);
                    change.note(&who, format!("roll back change order {target_id}: revision {revision} with {} replicas", before.replicas));
                }
                None => {
                    change.target_revision = None;
                    change.target_replicas = 0;
                    change.note(&who, format!("roll back change order {target_id}: the app was not deployed before, so remove it"));
                }
            }
            Ok(())
        })
        .await
    }

    // Acting on a change order in flight.

    async fn act(
        &self,
        id: &str,
        apply: impl FnOnce(&mut ChangeOrder) -> Result<(), DeployError>,
    ) -> Result<ChangeOrder, DeployError> {
        let change = self.change(id)?;
        let lock = self.lock_of(&format!("{}/{}/{}", change.project, change.app, change.env));
        let _guard = lock.lock().await;
        let mut change = self.change(id)?;
        apply(&mut change)?;
        if change.state.is_terminal() {
            self.close(&mut change, None).await?;
        } else {
            self.save(&change).await?;
        }
        self.waker(id).notify_one();
        Ok(change)
    }

    fn decide_checks(
        change: &ChangeOrder,
        who: &str,
        action: &'static str,
    ) -> Result<(), DeployError> {
        if change.state != ChangeState::WaitingApproval {
            return Err(wrong_state(change, action, "waiting_approval"));
        }
        if change.requested_by == who {
            return Err(DeployError::SelfApproval);
        }
        if let Some(assignee) = change.approval.as_ref().and_then(|a| a.assignee.as_ref())
            && assignee != who
        {
            return Err(DeployError::NotAssignee {
                id: change.id.clone(),
                assignee: assignee.clone(),
            });
        }
        Ok(())
    }

    pub async fn approve(
        &self,
        id: &str,
        who: &str,
        comment: Option<String>,
    ) -> Result<ChangeOrder, DeployError> {
        self.act(id, |change| {
            Self::decide_checks(change, who, "approve")?;
            let approval = change.approval.get_or_insert_with(Approval::default);
            approval.decided_by = Some(who.to_owned());
            approval.decided_at = Some(now());
            approval.comment = comment.clone();
            change.state = ChangeState::Approved;
            change.note(
                who,
                match &comment {
                    Some(c) => format!("approved: {c}"),
                    None => "approved".to_owned(),
                },
            );
            Ok(())
        })
        .await
    }

    pub async fn reject(
        &self,
        id: &str,
        who: &str,
        comment: Option<String>,
    ) -> Result<ChangeOrder, DeployError> {
        self.act(id, |change| {
            Self::decide_checks(change, who, "reject")?;
            let approval = change.approval.get_or_insert_with(Approval::default);
            approval.decided_by = Some(who.to_owned());
            approval.decided_at = Some(now());
            approval.comment = comment.clone();
            change.note(
                who,
                match &comment {
                    Some(c) => format!("rejected: {c}"),
                    None => "rejected".to_owned(),
                },
            );
            change.finish(ChangeState::Rejected);
            Ok(())
        })
        .await
    }

    /// Seed 003 `delegate`: hands the decision to another user (who must exist: the API
    /// checks) other than the requester.
    pub async fn delegate(
        &self,
        id: &str,
        who: &str,
        to: &str,
    ) -> Result<ChangeOrder, DeployError> {
        self.act(id, |change| {
            if change.state != ChangeState::WaitingApproval {
                return Err(wrong_state(change, "delegate", "waiting_approval"));
            }
            if change.requested_by == to {
                return Err(invalid(
                    "user",
                    "the requester cannot decide their own change order",
                ));
            }
            change
                .approval
                .get_or_insert_with(Approval::default)
                .assignee = Some(to.to_owned());
            change.note(who, format!("delegated the decision to {to}"));
            Ok(())
        })
        .await
    }

    /// Seed 001 5.3.17 (执行下一批发布): starts the next batch of a paused rollout.
    pub async fn next_batch(&self, id: &str, who: &str) -> Result<ChangeOrder, DeployError> {
        self.act(id, |change| {
            if change.state != ChangeState::PausedBetweenBatches {
                return Err(wrong_state(change, "next-batch", "paused_between_batches"));
            }
            let Some(index) = change.next_batch() else {
                let target = change.target_revision.unwrap_or_default();
                if let Some(gray) = change.gray.as_mut().filter(|g| !g.promoting) {
                    gray.promoting = true;
                    change.state = ChangeState::Running;
                    change.note(
                        who,
                        format!("promote: canary revision {target} becomes stable"),
                    );
                    return Ok(());
                }
                return Err(wrong_state(
                    change,
                    "next-batch",
                    "paused with a batch left",
                ));
            };
            change.batches[index].started_by = Some(who.to_owned());
            change.resume_at = None;
            change.state = ChangeState::Running;
            change.note(who, format!("release batch {}", index + 1));
            Ok(())
        })
        .await
    }

    /// Stops a change order where it stands: no further cluster writes. Roll it back to
    /// restore the previous version.
    pub async fn abort(&self, id: &str, who: &str) -> Result<ChangeOrder, DeployError> {
        self.act(id, |change| {
            if change.state.is_terminal() || change.state == ChangeState::RollingBack {
                return Err(wrong_state(change, "abort", "in flight"));
            }
            if change.gray.as_ref().is_some_and(|g| g.promoting) {
                return Err(wrong_state(change, "abort", "not promoting its canary"));
            }
            let canary_started = change
                .batches
                .iter()
                .any(|b| b.state != BatchState::Pending);
            if let Some(gray) = change.gray.as_mut().filter(|_| canary_started) {
                // A canary left running would keep taking traffic: take it away first.
                gray.aborting = true;
                change.state = ChangeState::RollingBack;
                change.started_at = Some(now());
                change.note(
                    who,
                    "aborted: removing the canary and its routing; stable keeps serving",
                );
                return Ok(());
            }
            change.note(who, "aborted");
            change.finish(ChangeState::Aborted);
            Ok(())
        })
        .await
    }

    // Persistence.

    async fn save(&self, change: &ChangeOrder) -> Result<(), DeployError> {
        changes::put(self.store(), change)?;
        self.store().commit().await?;
        self.publish(change);
        Ok(())
    }

    /// Ends a change order (already in a terminal state): frees its deployment and
    /// settles the deployment's status. `effect` applies what the change achieved. The
    /// caller holds the deployment's lock.
    async fn close(
        &self,
        change: &mut ChangeOrder,
        effect: Option<&(dyn Fn(&mut Deployment) + Sync)>,
    ) -> Result<(), DeployError> {
        let store = self.store();
        let mut deployment = self.deployment(&change.project, &change.app, &change.env)?;
        if let Some(effect) = effect {
            effect(&mut deployment);
        }
        let touched_cluster = change.batches.iter().any(|b| b.started_at.is_some())
            || (!change.kind.rolls_out()
                && change.state != ChangeState::Rejected
                && change
                    .approval
                    .as_ref()
                    .is_none_or(|a| a.decided_by.is_some()));
        deployment.status = match change.state {
            ChangeState::Failed => DeploymentStatus::Failed,
            // A gray abort reverted completely: the stable version serves as before.
            ChangeState::Aborted if touched_cluster && change.gray.is_none() => {
                DeploymentStatus::Failed
            }
            _ if deployment.status == DeploymentStatus::Deleted => DeploymentStatus::Deleted,
            _ => settled(&deployment),
        };
        if deployment.active_change.as_deref() == Some(&change.id) {
            deployment.active_change = None;
            store.delete(&deployments::in_flight_key(&deployment))?;
        }
        if change.state != ChangeState::Rejected
            && (touched_cluster || change.state == ChangeState::Succeeded)
        {
            deployment.last_change = Some(change.id.clone());
        }
        deployment.updated_at = now();
        if change.state == ChangeState::Succeeded
            && let Some(undone) = &change.rollback_of
            && let Some(mut original) = changes::get(store, undone)?
        {
            original.rolled_back_by = Some(change.id.clone());
            original.note(
                &change.requested_by,
                format!("rolled back by change order {}", change.id),
            );
            original.state = ChangeState::RolledBack;
            changes::put(store, &original)?;
        }
        changes::put(store, change)?;
        store.put_json(
            &deployments::key(&deployment.project, &deployment.app, &deployment.env),
            &deployment,
        )?;
        store.commit().await?;
        self.publish(change);
        let outcome = match change.state {
            ChangeState::Succeeded | ChangeState::RolledBack => Outcome::Ok,
            _ => Outcome::Error,
        };
        let mut entry = Entry::new(
            Actor::system(),
            "change-order.finish",
            &change.scope(),
            outcome,
        );
        entry.after = Some(json!({
            "kind": change.kind,
            "state": change.state,
            "targetRevision": change.target_revision,
            "error": change.error,
        }));
        self.inner.audit.record(entry).await;
        Ok(())
    }

    // Drivers.

    /// Restarts a driver for every change order in flight (at start-up).
    pub fn resume(&self) -> Result<usize, DeployError> {
        let all: Vec<Deployment> = self
            .store()
            .list_json(&format!("{}/", crate::store::Store::key(&["deployments"])))?;
        let mut resumed = 0;
        for deployment in all {
            if let Some(id) = deployment.active_change {
                self.spawn(id, true);
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Starts the driver of change order `id`, unless this host already drives it.
    fn spawn(&self, id: String, resumed: bool) {
        let fresh = self
            .inner
            .drivers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        if !fresh {
            return;
        }
        let deployer = self.clone();
        tokio::spawn(async move {
            deployer.drive(&id, resumed).await;
            deployer
                .inner
                .wakers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            deployer
                .inner
                .drivers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Runs one change order until it ends. Errors reading the store end the driver
    /// (the next start resumes it); cluster errors are retried until the batch deadline.
    async fn drive(&self, id: &str, resumed: bool) {
        let waker = self.waker(id);
        let mut resumed_note = resumed;
        loop {
            let change = match self.change(id) {
                Ok(change) => change,
                Err(error) => {
                    tracing::error!(change_order = id, %error, "change order unreadable; its driver stops");
                    return;
                }
            };
            if change.state.is_terminal() {
                return;
            }
            if std::mem::take(&mut resumed_note) && change.state != ChangeState::WaitingApproval {
                let _ = self
                    .with_change(id, |c| {
                        c.note(
                            ENGINE,
                            "Wharf restarted: resuming where the change order stood",
                        );
                        Ok(())
                    })
                    .await;
            }
            let step = match change.state {
                ChangeState::WaitingApproval => {
                    waker.notified().await;
                    continue;
                }
                ChangeState::Approved => {
                    self.with_change(id, |c| {
                        c.state = ChangeState::Running;
                        c.started_at = Some(now());
                        c.note(ENGINE, "running");
                        Ok(())
                    })
                    .await
                }
                ChangeState::PausedBetweenBatches => self.pause(&change, &waker).await,
                ChangeState::RollingBack => self.revert(&change).await,
                ChangeState::Running if change.kind.rolls_out() => self.rollout_step(&change).await,
                ChangeState::Running => self.operation(&change).await,
                _ => return,
            };
            if let Err(error) = step {
                tracing::warn!(change_order = id, %error, "change order step failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = waker.notified() => {}
                }
            }
        }
    }

    /// Re-reads, changes and saves a change order under its deployment's lock; skips
    /// the change if the order ended meanwhile (aborted from the API).
    async fn with_change(
        &self,
        id: &str,
        apply: impl FnOnce(&mut ChangeOrder) -> Result<(), DeployError>,
    ) -> Result<ChangeOrder, DeployError> {
        let change = self.change(id)?;
        let lock = self.lock_of(&format!("{}/{}/{}", change.project, change.app, change.env));
        let _guard = lock.lock().await;
        let mut change = self.change(id)?;
        if change.state.is_terminal() {
            return Ok(change);
        }
        apply(&mut change)?;
        if change.state.is_terminal() {
            self.close(&mut change, None).await?;
        } else {
            self.save(&change).await?;
        }
        Ok(change)
    }

    /// Like [`Self::with_change`] for the end of a change, applying its effect to the
    /// deployment in the same write.
    async fn finish_with(
        &self,
        id: &str,
        state: ChangeState,
        message: String,
        effect: &(dyn Fn(&mut Deployment) + Sync),
    ) -> Result<(), DeployError> {
        let change = self.change(id)?;
        let lock = self.lock_of(&format!("{}/{}/{}", change.project, change.app, change.env));
        let _guard = lock.lock().await;
        let mut change = self.change(id)?;
        if change.state.is_terminal() {
            return Ok(());
        }
        change.note(ENGINE, message);
        if state == ChangeState::Failed {
            change.error = change.timeline.last().map(|s| s.message.clone());
        }
        change.finish(state);
        self.close(&mut change, Some(effect)).await
    }

    /// [`Self::finish_with`] for the forward path of a rollout: only a change order still
    /// running ends this way (an abort or rollback accepted meanwhile stands).
    async fn finish_forward(
        &self,
        id: &str,
        state: ChangeState,
        message: String,
        effect: &(dyn Fn(&mut Deployment) + Sync),
    ) -> Result<(), DeployError> {
        if self.change(id)?.state != ChangeState::Running {
            return Ok(());
        }
        self.finish_with(id, state, message, effect).await
    }

    async fn client(&self, change: &ChangeOrder) -> Result<(Client, Deployment), DeployError> {
        let deployment = self.deployment(&change.project, &change.app, &change.env)?;
        let client = self
            .inner
            .clusters
            .client(&deployment.cluster)
            .await
            .map_err(cluster_error)?
            .kube();
        Ok((client, deployment))
    }

    async fn pause(
        &self,
        change: &ChangeOrder,
        waker: &Notify,
    ) -> Result<ChangeOrder, DeployError> {
        match change.resume_at {
            None => {
                waker.notified().await;
                self.change(&change.id)
            }
            Some(at) => {
                let wait = (at - now()).try_into().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = waker.notified() => return self.change(&change.id),
                }
                self.with_change(&change.id, |c| {
                    if c.state == ChangeState::PausedBetweenBatches {
                        c.resume_at = None;
                        c.state = ChangeState::Running;
                        if let Some(i) = c.next_batch() {
                            c.batches[i].started_by = Some("auto".to_owned());
                            c.note(ENGINE, format!("batch wait over: release batch {}", i + 1));
                        }
                    }
                    Ok(())
                })
                .await
            }
        }
    }

    /// One batch of a rollout (or its end).
    async fn rollout_step(&self, change: &ChangeOrder) -> Result<ChangeOrder, DeployError> {
        let (client, deployment) = self.client(change).await?;
        let api: Api<KubeDeployment> = Api::namespaced(client.clone(), &deployment.namespace);
        let Some(target) = change.target_revision else {
            // Rolling back a first deploy: nothing served before.
            remove_workload(&client, &deployment, None).await?;
            self.finish_with(
                &change.id,
                ChangeState::Succeeded,
                "removed the app: it was not deployed before".into(),
                &|d: &mut Deployment| {
                    d.stable_revision = None;
                    d.replicas = 0;
                },
            )
            .await?;
            return self.change(&change.id);
        };
        let spec = deployment
            .revision(target)
            .map(|r| r.spec.clone())
            .ok_or_else(|| {
                DeployError::NothingToRollBack(format!(
                    "revision {target} is missing from the history"
                ))
            })?;
        let total = change.target_replicas;
        let Some(index) = change.next_batch() else {
            if change.gray.as_ref().is_some_and(|g| !g.promoting) {
                return self
                    .with_change(&change.id, |c| {
                        c.state = ChangeState::PausedBetweenBatches;
                        c.note(ENGINE, "the canary is at full size; next-batch promotes it");
                        Ok(())
                    })
                    .await;
            }
            // Every batch is done: the target serves alone.
            self.apply_revision(
                &client,
                &deployment,
                &spec,
                target,
                &change.id,
                total as i32,
            )
            .await?;
            if change.gray.is_some() {
                // The app's Services send everything to the promoted revision before the
                // routing goes, so no request reaches the old one on the way out.
                pin_services(&client, &deployment, Some(target)).await?;
            }
            // Any rollout ends without gray routing, also one after a failed canary.
            gray_objects::remove(&client, &deployment.namespace, &deployment.workload)
                .await
                .map_err(cluster_error)?;
            remove_others(&client, &deployment, target).await?;
            if change.gray.is_some() {
                pin_services(&client, &deployment, None).await?;
            }
            if let Some(hpa) = render::hpa(&spec, &workload_of(&deployment, target, &change.id)) {
                apply(
                    &Api::<HorizontalPodAutoscaler>::namespaced(
                        client.clone(),
                        &deployment.namespace,
                    ),
                    &hpa,
                )
                .await?;
            }
            let how = match (change.kind, &change.gray) {
                (ChangeKind::Rollback, _) => " (rolled back)",
                (_, Some(_)) => " (canary promoted, gray routing removed)",
                _ => "",
            };
            self.finish_forward(
                &change.id,
                ChangeState::Succeeded,
                format!("revision {target} serves with {total} replicas{how}"),
                &|d: &mut Deployment| {
                    d.stable_revision = Some(target);
                    d.replicas = total;
                },
            )
            .await?;
            return self.change(&change.id);
        };
        let batch = change.batches[index].clone();
        let change = if batch.state == BatchState::Pending {
            self.with_change(&change.id, |c| {
                let b = &mut c.batches[index];
                b.state = BatchState::Running;
                b.started_at = Some(now());
                let by = b
                    .started_by
                    .get_or_insert_with(|| c.requested_by.clone())
                    .clone();
                let (seq, inst, to) = (b.seq, b.inst_num, b.target_replicas);
                c.note(
                    &by,
                    format!("batch {seq}: {inst} more on revision {target} (→ {to} of {total})"),
                );
                Ok(())
            })
            .await?
        } else {
            change.clone()
        };
        if change.state != ChangeState::Running {
            return Ok(change);
        }
        let batch = change.batches[index].clone();
        let deadline = batch.started_at.unwrap_or_else(now)
            + Duration::from_secs(change.batch_timeout_seconds);
        // Idempotent targets: the new revision at the batch's count, the stable one at
        // the rest, any other revision at zero.
        self.apply_revision(
            &client,
            &deployment,
            &spec,
            target,
            &change.id,
            batch.target_replicas as i32,
        )
        .await?;
        let others = live_revisions(&api, &deployment).await?;
        for (name, revision, _) in &others {
            if *revision == Some(target) {
                continue;
            }
            let keep = match (*revision == deployment.stable_revision, &change.gray) {
                (false, _) => 0,
                // A canary runs beside the stable revision, which keeps all its pods.
                (true, Some(_)) => change.before.replicas,
                (true, None) => total.saturating_sub(batch.target_replicas),
            };
            scale(&api, name, keep as i32).await?;
        }
        // Wait until the batch's pods are ready, the change is acted on, or time is up.
        loop {
            let current = self.change(&change.id)?;
            if current.state != ChangeState::Running {
                return Ok(current);
            }
            let (available, settled) = observe(
                &api,
                &deployment.workload_name(target),
                batch.target_replicas,
            )
            .await?;
            if available != current.batches[index].ready {
                self.with_change(&change.id, |c| {
                    c.batches[index].ready = available;
                    c.updated_at = now();
                    Ok(())
                })
                .await?;
            }
            let ready = settled && others_settled(&api, &deployment, target).await?;
            if ready && change.gray.is_some() {
                // Traffic moves only once the canary's pods can take it.
                if let Err(message) = self
                    .route_canary(&current, &client, &deployment, target, index)
                    .await?
                {
                    self.finish_forward(&change.id, ChangeState::Failed, message, &|_| {})
                        .await?;
                    return self.change(&change.id);
                }
            }
            if ready {
                let pods = pod_snapshots(&client, &deployment, Some(target))
                    .await
                    .unwrap_or_default();
                let last = index + 1 == change.batches.len();
                return self
                    .with_change(&change.id, |c| {
                        // Aborted or rolled back while the pods came up: that stands.
                        if c.state != ChangeState::Running {
                            return Ok(());
                        }
                        let b = &mut c.batches[index];
                        b.state = BatchState::Succeeded;
                        b.finished_at = Some(now());
                        b.pods = pods;
                        let message = format!(
                            "batch {} ready: {} of {total} on revision {target}",
                            b.seq, b.target_replicas
                        );
                        c.note(ENGINE, message);
                        if !last || c.gray.is_some() {
                            c.state = ChangeState::PausedBetweenBatches;
                            if c.gray.is_some() && last {
                                c.note(ENGINE, "waiting for next-batch to promote the canary");
                            } else if c.manual {
                                c.note(ENGINE, "waiting for next-batch");
                            } else {
                                c.resume_at =
                                    Some(now() + Duration::from_secs(c.batch_wait_seconds));
                                c.note(ENGINE, format!("next batch in {} s", c.batch_wait_seconds));
                            }
                        }
                        Ok(())
                    })
                    .await;
            }
            if now() >= deadline {
                let pods = pod_snapshots(&client, &deployment, Some(target))
                    .await
                    .unwrap_or_default();
                let reasons = pod_reasons(&pods);
                let message = format!(
                    "batch {} timed out after {} s waiting for {} ready pods of revision {target}{reasons}",
                    batch.seq, change.batch_timeout_seconds, batch.target_replicas
                );
                self.with_change(&change.id, |c| {
                    let b = &mut c.batches[index];
                    b.state = BatchState::Failed;
                    b.finished_at = Some(now());
                    b.pods = pods;
                    b.message = Some(message.clone());
                    Ok(())
                })
                .await?;
                self.finish_forward(&change.id, ChangeState::Failed, message, &|_| {})
                    .await?;
                return self.change(&change.id);
            }
            let waker = self.waker(&change.id);
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = waker.notified() => {}
            }
        }
    }

    /// Reverts a change order in flight: the revision that served before comes back to
    /// its replicas, the new one goes.
    async fn revert(&self, change: &ChangeOrder) -> Result<ChangeOrder, DeployError> {
        let (client, deployment) = self.client(change).await?;
        let api: Api<KubeDeployment> = Api::namespaced(client.clone(), &deployment.namespace);
        let deadline = change.started_at.unwrap_or(change.updated_at)
            + Duration::from_secs(change.batch_timeout_seconds);
        // Routing first: the stable revision never stopped serving, so taking a gray
        // split away sends everything back to it before the canary goes.
        gray_objects::remove(&client, &deployment.namespace, &deployment.workload)
            .await
            .map_err(cluster_error)?;
        match change.before.revision {
            None => remove_workload(&client, &deployment, None).await?,
            Some(before) => {
                let spec = deployment
                    .revision(before)
                    .map(|r| r.spec.clone())
                    .ok_or_else(|| {
                        DeployError::NothingToRollBack(format!(
                            "revision {before} is missing from the history"
                        ))
                    })?;
                self.apply_revision(
                    &client,
                    &deployment,
                    &spec,
                    before,
                    &change.id,
                    change.before.replicas as i32,
                )
                .await?;
                if change.target_revision != Some(before) {
                    remove_others(&client, &deployment, before).await?;
                }
                loop {
                    if settled_at(
                        &api,
                        &deployment.workload_name(before),
                        change.before.replicas,
                    )
                    .await?
                    {
                        break;
                    }
                    if now() >= deadline {
                        let message = format!(
                            "rolling back timed out: revision {before} did not get {} ready pods",
                            change.before.replicas
                        );
                        self.finish_with(&change.id, ChangeState::Failed, message, &|_| {})
                            .await?;
                        return self.change(&change.id);
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
        if change.gray.is_some() {
            pin_services(&client, &deployment, None).await?;
        }
        let before = change.before;
        let (state, message) = match &change.gray {
            Some(g) if g.aborting => (
                ChangeState::Aborted,
                "aborted: the canary and its routing are removed; the stable version serves alone",
            ),
            Some(_) => (
                ChangeState::RolledBack,
                "rolled back: the canary and its routing are removed; the stable version serves alone",
            ),
            None => (
                ChangeState::RolledBack,
                "rolled back: the previous version serves again",
            ),
        };
        self.finish_with(
            &change.id,
            state,
            message.into(),
            &move |d: &mut Deployment| {
                d.stable_revision = before.revision;
                d.replicas = before.replicas;
            },
        )
        .await?;
        self.change(&change.id)
    }

    /// Scale, start, stop, restart, delete and service changes: one step, then wait.
    async fn operation(&self, change: &ChangeOrder) -> Result<ChangeOrder, DeployError> {
        let (client, deployment) = self.client(change).await?;
        let api: Api<KubeDeployment> = Api::namespaced(client.clone(), &deployment.namespace);
        let deadline = change.started_at.unwrap_or(change.created_at)
            + Duration::from_secs(change.batch_timeout_seconds);
        let replicas = change.target_replicas;
        let (message, effect): (String, Effect) = match change.kind {
            ChangeKind::Scale | ChangeKind::Start | ChangeKind::Stop => {
                let revision = change
                    .target_revision
                    .ok_or_else(|| DeployError::NotDeployed {
                        app: change.app.clone(),
                        env: change.env.clone(),
                    })?;
                let name = deployment.workload_name(revision);
                scale(&api, &name, replicas as i32).await?;
                if !self.wait(&api, &name, replicas, change, deadline).await? {
                    return self.change(&change.id);
                }
                let kind = change.kind;
                let previous = deployment.replicas;
                (
                    format!("{name} runs {replicas} ready replicas"),
                    Box::new(move |d: &mut Deployment| {
                        if kind == ChangeKind::Stop {
                            d.replicas_before_stop = Some(previous);
                        }
                        d.replicas = replicas;
                    }),
                )
            }
            ChangeKind::Restart => {
                let revision = change
                    .target_revision
                    .ok_or_else(|| DeployError::NotDeployed {
                        app: change.app.clone(),
                        env: change.env.clone(),
                    })?;
                let name = deployment.workload_name(revision);
                // The change order's id as the marker: re-applying after a restart of
                // Wharf changes nothing, so pods are replaced once.
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {"wharf.dev/restarted-by": change.id}}}}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(cluster_error)?;
                if !self
                    .wait(&api, &name, deployment.replicas, change, deadline)
                    .await?
                {
                    return self.change(&change.id);
                }
                (
                    format!("every pod of {name} was replaced"),
                    Box::new(|_: &mut Deployment| {}),
                )
            }
            ChangeKind::Delete => {
                gray_objects::remove(&client, &deployment.namespace, &deployment.workload)
                    .await
                    .map_err(cluster_error)?;
                remove_workload(&client, &deployment, None).await?;
                let services: Api<Service> = Api::namespaced(client.clone(), &deployment.namespace);
                for service in &deployment.services {
                    delete(&services, &service.name).await?;
                }
                (
                    "removed the app's Deployments, autoscalers and Services".into(),
                    Box::new(|d: &mut Deployment| {
                        d.status = DeploymentStatus::Deleted;
                        d.stable_revision = None;
                        d.replicas = 0;
                        d.services.clear();
                    }),
                )
            }
            ChangeKind::ServiceCreate | ChangeKind::ServiceUpdate => {
                let service = change
                    .service
                    .clone()
                    .ok_or_else(|| invalid("service", "missing"))?;
                let rendered = render::service(
                    &service,
                    &workload_of(
                        &deployment,
                        deployment.stable_revision.unwrap_or(0),
                        &change.id,
                    ),
                );
                apply(
                    &Api::<Service>::namespaced(client.clone(), &deployment.namespace),
                    &rendered,
                )
                .await?;
                (
                    format!("service {} applied", service.name),
                    Box::new(move |d: &mut Deployment| {
                        d.services.retain(|s| s.name != service.name);
                        d.services.push(service.clone());
                    }),
                )
            }
            ChangeKind::ServiceDelete => {
                let name = change
                    .service
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                delete(
                    &Api::<Service>::namespaced(client.clone(), &deployment.namespace),
                    &name,
                )
                .await?;
                (
                    format!("service {name} deleted"),
                    Box::new(move |d: &mut Deployment| d.services.retain(|s| s.name != name)),
                )
            }
            ChangeKind::Deploy | ChangeKind::Redeploy | ChangeKind::Rollback => {
                unreachable_kind(change)?
            }
        };
        self.finish_with(&change.id, ChangeState::Succeeded, message, &*effect)
            .await?;
        self.change(&change.id)
    }

    /// Waits until `name` runs `replicas` ready, updated pods; fails the change at the
    /// deadline. `false` when the change ended (failed or acted on) instead.
    async fn wait(
        &self,
        api: &Api<KubeDeployment>,
        name: &str,
        replicas: u32,
        change: &ChangeOrder,
        deadline: OffsetDateTime,
    ) -> Result<bool, DeployError> {
        loop {
            if self.change(&change.id)?.state != ChangeState::Running {
                return Ok(false);
            }
            if settled_at(api, name, replicas).await? {
                return Ok(true);
            }
            if now() >= deadline {
                let (client, deployment) = self.client(change).await?;
                let pods = pod_snapshots(&client, &deployment, change.target_revision)
                    .await
                    .unwrap_or_default();
                let message = format!(
                    "timed out after {} s waiting for {replicas} ready pods of {name}{}",
                    change.batch_timeout_seconds,
                    pod_reasons(&pods)
                );
                self.finish_with(&change.id, ChangeState::Failed, message, &|_| {})
                    .await?;
                return Ok(false);
            }
            let waker = self.waker(&change.id);
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = waker.notified() => {}
            }
        }
    }

    /// Renders and applies the traffic split of batch `index` of a gray release, and
    /// records it (with the objects as YAML in the timeline) when it changed. `Err`
    /// carries why the provider or its output failed the change order.
    async fn route_canary(
        &self,
        change: &ChangeOrder,
        client: &Client,
        deployment: &Deployment,
        canary: u64,
        index: usize,
    ) -> Result<Result<(), String>, DeployError> {
        let Some(release) = &change.gray else {
            return Ok(Ok(()));
        };
        let Some(stable) = change.before.revision else {
            return Ok(Err(
                "a gray release needs the revision that served before".into()
            ));
        };
        let mut release = release.clone();
        if let Some(rate) = release.rate {
            let canary_replicas = change.batches[index].target_replicas;
            release.weight = gray::weight_at(rate, canary_replicas, change.target_replicas);
        }
        let target = gray::target(deployment, &change.id, &release, stable, canary);
        let provider = release.provider.clone();
        let rendered = match self
            .inner
            .providers
            .runtime()
            .render_rule(&provider, &release.rule, target.clone())
            .await
        {
            Ok(Ok(objects)) => objects,
            Ok(Err(error)) => {
                return Ok(Err(gray_rules::route_error(
                    &provider,
                    error,
                    "deploymentStrategy.grayRule",
                )
                .to_string()));
            }
            Err(error) => return Ok(Err(gray_rules::call_error(&provider, error).to_string())),
        };
        let checked = match gray_objects::check(rendered, &target) {
            Ok(checked) => checked,
            Err(refused) => return Ok(Err(refused.to_string())),
        };
        match gray_objects::apply(
            client,
            &deployment.namespace,
            &checked,
            &deployment.workload,
        )
        .await
        {
            Ok(()) => {}
            Err(gray_objects::ApplyError::Refused(refused)) => return Ok(Err(refused.to_string())),
            Err(gray_objects::ApplyError::Cluster(error)) => return Err(cluster_error(error)),
        }
        // Callers that do not go through the gray routing reach the stable revision only.
        pin_services(client, deployment, Some(stable)).await?;
        release.objects = checked.iter().map(|c| c.reference.clone()).collect();
        let current = change.gray.as_ref();
        let changed = current
            .is_none_or(|g| g.weight != release.weight || g.objects != release.objects)
            || change.batches[index].message.is_none();
        if changed {
            let yaml = checked
                .iter()
                .map(gray_objects::Checked::yaml)
                .collect::<Vec<_>>()
                .join("---\n");
            let share = match release.rate {
                Some(_) => format!("{}% of traffic", release.weight),
                None => "the requests the rule matches".to_owned(),
            };
            let summary = format!(
                "{provider} routes {share} to canary revision {canary} (tag {})",
                release.tag
            );
            self.with_change(&change.id, |c| {
                c.batches[index].message = Some(summary.clone());
                for object in &checked {
                    let rendered = RenderedObject {
                        kind: object.reference.kind.clone(),
                        name: object.reference.name.clone(),
                        yaml: object.yaml(),
                    };
                    match c
                        .resources
                        .iter_mut()
                        .find(|r| r.kind == rendered.kind && r.name == rendered.name)
                    {
                        Some(existing) => *existing = rendered,
                        None => c.resources.push(rendered),
                    }
                }
                // Only what this step rendered: abort or promotion may have been asked
                // meanwhile, and their flags stand.
                if let Some(gray) = c.gray.as_mut() {
                    gray.weight = release.weight;
                    gray.objects = release.objects.clone();
                }
                c.note(ENGINE, format!("{summary}:\n{yaml}"));
                Ok(())
            })
            .await?;
        }
        Ok(Ok(()))
    }

    async fn apply_revision(
        &self,
        client: &Client,
        deployment: &Deployment,
        spec: &DeploySpec,
        revision: u64,
        change: &str,
        replicas: i32,
    ) -> Result<(), DeployError> {
        let object = render::deployment(spec, &workload_of(deployment, revision, change), replicas);
        apply(
            &Api::<KubeDeployment>::namespaced(client.clone(), &deployment.namespace),
            &object,
        )
        .await
    }

    /// Pods of the deployment now (of one revision, or all).
    pub async fn pods(
        &self,
        deployment: &Deployment,
        revision: Option<u64>,
    ) -> Result<Vec<PodSnapshot>, DeployError> {
        let client = self
            .inner
            .clusters
            .client(&deployment.cluster)
            .await
            .map_err(cluster_error)?
            .kube();
        pod_snapshots(&client, deployment, revision).await
    }
}

/// The gray release a deploy of `rule` opens over `deployment`'s serving revision.
fn open_gray(
    deployment: &Deployment,
    provider: &str,
    rule: &Value,
) -> Result<GrayRelease, DeployError> {
    let field = "deploymentStrategy.grayUpdate";
    if deployment.stable_revision.is_none()
        || deployment.replicas == 0
        || deployment.status == DeploymentStatus::Deleted
    {
        return Err(invalid(
            field,
            "a gray release runs a canary beside a serving revision; deploy without grayUpdate first",
        ));
    }
    let service = gray::routed_service(deployment).ok_or_else(|| {
        invalid(
            field,
            "a gray release routes through the deployment's Service; create one first",
        )
    })?;
    let tag = gray::tag_of(rule)
        .filter(|t| gray::is_label_value(t))
        .ok_or_else(|| {
            invalid(
                "deploymentStrategy.grayRule",
                "needs a tag for the canary: 1-63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit",
            )
        })?;
    Ok(GrayRelease {
        provider: provider.to_owned(),
        rule: rule.clone(),
        tag,
        rate: gray::rate_of(rule),
        weight: 0,
        service: service.name.clone(),
        hostname: gray::hostname_of(&service.name, &deployment.namespace),
        gateway: None,
        promoting: false,
        aborting: false,
        objects: Vec::new(),
    })
}

fn unreachable_kind(change: &ChangeOrder) -> Result<(String, Effect), DeployError> {
    Err(invalid(
        "kind",
        format!("change order {} is a rollout, not an operation", change.id),
    ))
}

/// Sets a rollback change order up to roll `revision` out again at `replicas`, in one
/// batch (a rollback is urgent; seed 001 立即回滚).
fn prepare_rollback(
    deployment: &Deployment,
    change: &mut ChangeOrder,
    revision: u64,
    replicas: u32,
    spec: &DeploySpec,
) {
    change.target_revision = Some(revision);
    change.target_replicas = replicas;
    change.manual = false;
    change.batch_timeout_seconds = spec.batch_timeout().as_secs();
    change.batches = if replicas == 0 {
        Vec::new()
    } else {
        changes::plan_batches(&[replicas])
    };
    change.resources = rendered(deployment, spec, revision, &change.id, replicas);
}

fn workload_of<'a>(deployment: &'a Deployment, revision: u64, change: &'a str) -> Workload<'a> {
    Workload {
        project: &deployment.project,
        app: &deployment.app,
        env: &deployment.env,
        workload: &deployment.workload,
        namespace: &deployment.namespace,
        revision,
        change_order: change,
    }
}

fn object<T: serde::Serialize>(kind: &str, name: &str, value: &T) -> RenderedObject {
    RenderedObject {
        kind: kind.to_owned(),
        name: name.to_owned(),
        yaml: render::to_yaml(value),
    }
}

/// The objects a rollout of `revision` ends with, as YAML.
fn rendered(
    deployment: &Deployment,
    spec: &DeploySpec,
    revision: u64,
    change: &str,
    replicas: u32,
) -> Vec<RenderedObject> {
    let workload = workload_of(deployment, revision, change);
    let mut objects = vec![object(
        "Deployment",
        &deployment.workload_name(revision),
        &render::deployment(spec, &workload, replicas as i32),
    )];
    if let Some(hpa) = render::hpa(spec, &workload) {
        objects.push(object(
            "HorizontalPodAutoscaler",
            &deployment.workload_name(revision),
            &hpa,
        ));
    }
    objects
}

async fn apply<K>(api: &Api<K>, object: &K) -> Result<(), DeployError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map(|_| ())
    .map_err(cluster_error)
}

async fn scale(api: &Api<KubeDeployment>, name: &str, replicas: i32) -> Result<(), DeployError> {
    let patch = json!({"spec": {"replicas": replicas}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(cluster_error)
}

async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), DeployError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(cluster_error(e)),
    }
}

fn selector(deployment: &Deployment) -> ListParams {
    ListParams::default().labels(&format!(
        "{NAME_LABEL}={},{MANAGED_LABEL}={MANAGED_BY}",
        deployment.workload
    ))
}

/// `(name, revision, spec replicas)` of every live Deployment of the workload.
async fn live_revisions(
    api: &Api<KubeDeployment>,
    deployment: &Deployment,
) -> Result<Vec<(String, Option<u64>, i32)>, DeployError> {
    let list = api
        .list(&selector(deployment))
        .await
        .map_err(cluster_error)?;
    Ok(list
        .items
        .into_iter()
        .map(|d| {
            let revision = d
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL))
                .and_then(|r| r.parse().ok());
            let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            (d.metadata.name.unwrap_or_default(), revision, replicas)
        })
        .collect())
}

/// Narrows the app's own Services to one revision's pods during a gray release (`None`
/// widens them to every revision again, as they are rendered).
async fn pin_services(
    client: &Client,
    deployment: &Deployment,
    revision: Option<u64>,
) -> Result<(), DeployError> {
    let api: Api<Service> = Api::namespaced(client.clone(), &deployment.namespace);
    let value = revision.map_or(Value::Null, |r| Value::String(r.to_string()));
    let patch = json!({"spec": {"selector": {REVISION_LABEL: value}}});
    for service in &deployment.services {
        match api
            .patch(
                &service.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(cluster_error(e)),
        }
    }
    Ok(())
}

/// Removes every Deployment (and autoscaler) of the workload except `keep`'s.
async fn remove_others(
    client: &Client,
    deployment: &Deployment,
    keep: u64,
) -> Result<(), DeployError> {
    remove_workload(client, deployment, Some(keep)).await
}

async fn remove_workload(
    client: &Client,
    deployment: &Deployment,
    keep: Option<u64>,
) -> Result<(), DeployError> {
    let api: Api<KubeDeployment> = Api::namespaced(client.clone(), &deployment.namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &deployment.namespace);
    for (name, revision, _) in live_revisions(&api, deployment).await? {
        if revision.is_some() && revision == keep {
            continue;
        }
        delete(&hpas, &name).await.ok();
        delete(&api, &name).await?;
    }
    Ok(())
}

/// Whether `name` has caught up with its spec and runs `replicas` available pods of
/// its current template (and no more).
async fn settled_at(
    api: &Api<KubeDeployment>,
    name: &str,
    replicas: u32,
) -> Result<bool, DeployError> {
    Ok(observe(api, name, replicas).await?.1)
}

/// Available pods of `name`, and whether it is settled at `replicas`.
async fn observe(
    api: &Api<KubeDeployment>,
    name: &str,
    replicas: u32,
) -> Result<(u32, bool), DeployError> {
    let Some(object) = api.get_opt(name).await.map_err(cluster_error)? else {
        return Ok((0, replicas == 0));
    };
    let generation = object.metadata.generation.unwrap_or(0);
    let status = object.status.unwrap_or_default();
    let available = status.available_replicas.unwrap_or(0);
    let wanted = replicas as i32;
    let settled = status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) >= wanted
        && available >= wanted
        && status.replicas.unwrap_or(0) == wanted;
    Ok((available.max(0) as u32, settled))
}

/// Whether every other revision has shrunk to its spec.
async fn others_settled(
    api: &Api<KubeDeployment>,
    deployment: &Deployment,
    target: u64,
) -> Result<bool, DeployError> {
    let list = api
        .list(&selector(deployment))
        .await
        .map_err(cluster_error)?;
    Ok(list.items.into_iter().all(|d| {
        let revision: Option<u64> = d
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .and_then(|r| r.parse().ok());
        if revision == Some(target) {
            return true;
        }
        let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        d.status.and_then(|s| s.replicas).unwrap_or(0) <= wanted
    }))
}

async fn pod_snapshots(
    client: &Client,
    deployment: &Deployment,
    revision: Option<u64>,
) -> Result<Vec<PodSnapshot>, DeployError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &deployment.namespace);
    let mut labels = format!(
        "{NAME_LABEL}={},{MANAGED_LABEL}={MANAGED_BY}",
        deployment.workload
    );
    if let Some(revision) = revision {
        labels.push_str(&format!(",{REVISION_LABEL}={revision}"));
    }
    let pods = api
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(cluster_error)?;
    let mut snapshots: Vec<PodSnapshot> = pods.items.into_iter().map(snapshot).collect();
    snapshots.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(snapshots)
}

fn snapshot(pod: Pod) -> PodSnapshot {
    let status = pod.status.unwrap_or_default();
    let container = status.container_statuses.as_ref().and_then(|c| c.first());
    let waiting = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let reason = waiting
        .and_then(|w| w.reason.clone())
        .or_else(|| {
            status
                .conditions
                .as_ref()
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status != "True"))
                .and_then(|c| c.reason.clone())
        })
        .or(status.reason.clone());
    PodSnapshot {
        name: pod.metadata.name.unwrap_or_default(),
        revision: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .and_then(|r| r.parse().ok()),
        phase: status.phase.clone().unwrap_or_else(|| "Pending".into()),
        ready,
        restarts: container.map_or(0, |c| c.restart_count),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ip: status.pod_ip.clone(),
        image: container.map(|c| c.image.clone()).or_else(|| {
            pod.spec
                .and_then(|s| s.containers.first().and_then(|c| c.image.clone()))
        }),
        reason,
    }
}

/// `: pod a: CrashLoopBackOff; pod b: …` for a failure message.
fn pod_reasons(pods: &[PodSnapshot]) -> String {
    let reasons: Vec<String> = pods
        .iter()
        .filter(|p| !p.ready)
        .take(3)
        .map(|p| format!("{} {}", p.name, p.reason.as_deref().unwrap_or(&p.phase)))
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" (not ready: {})", reasons.join("; "))
    }
}
