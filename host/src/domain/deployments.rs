//! Deployments: one app in one environment (seed 001 `appDeployId`), stored at
//! `v1/deployments/<project>/<app>/<env>` with an id index at `v1/deployment-ids/<id>`.
//! The record says where the app runs (cluster, namespace, workload name), which revision
//! serves, the history of revisions with their specs, and which change order is in
//! flight. Everything that changes a deployment is a change order (`domain::changes`);
//! what the pods are doing is read from the cluster, never from here.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::spec::{DeploySpec, ServiceSpec};
use crate::store::{Store, StoreError};

/// Labels every object Wharf renders for a deployment carries. Selectors use
/// [`NAME_LABEL`] (+ [`MANAGED_LABEL`]); [`REVISION_LABEL`] tells versions apart.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "wharf";
pub const PROJECT_LABEL: &str = "wharf.dev/project";
pub const APP_LABEL: &str = "wharf.dev/app";
pub const ENV_LABEL: &str = "wharf.dev/env";
pub const REVISION_LABEL: &str = "wharf.dev/revision";
/// Annotation naming the change order that last wrote an object.
pub const CHANGE_ANNOTATION: &str = "wharf.dev/change-order";

/// Seed 001 `statusCd` of a deployed app: SOW waiting, SOP running (a change is in
/// flight), SOA success, SOE failed; plus stopped (0 replicas) and deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Waiting,
    Running,
    Succeeded,
    Failed,
    Stopped,
    Deleted,
}

/// One version of a deployment: the spec a deploy (or a rollback) rolled out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision: u64,
    pub image: String,
    pub spec: DeploySpec,
    /// The change order that first rolled it out.
    pub change_order: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// 32 hex digits (seed 001 `appDeployId`).
    pub id: String,
    pub project: String,
    pub app: String,
    pub env: String,
    pub cluster: String,
    pub namespace: String,
    /// Base name of the Kubernetes objects: the app name in lowercase. The Deployment of
    /// revision N is `<workload>-v<N>`; Services are named by the user.
    pub workload: String,
    pub status: DeploymentStatus,
    /// The revision whose pods serve; `None` before the first successful rollout and
    /// after a delete.
    pub stable_revision: Option<u64>,
    /// Replicas the stable revision runs with (0 while stopped).
    pub replicas: u32,
    /// Replicas to come back to on `start` without a count.
    pub replicas_before_stop: Option<u32>,
    pub revisions: Vec<Revision>,
    pub services: Vec<ServiceSpec>,
    /// The change order in flight, if any: at most one per deployment.
    pub active_change: Option<String>,
    /// The change order that last changed this deployment.
    pub last_change: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

impl Deployment {
    pub fn revision(&self, revision: u64) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.revision == revision)
    }

    pub fn stable(&self) -> Option<&Revision> {
        self.stable_revision.and_then(|r| self.revision(r))
    }

    /// Name of the Kubernetes Deployment that runs `revision`.
    pub fn workload_name(&self, revision: u64) -> String {
        format!("{}-v{revision}", self.workload)
    }

    /// Scope path of the deployment for the authorizer and the audit log.
    pub fn scope(&self) -> String {
        format!("project:{}/app:{}/env:{}", self.project, self.app, self.env)
    }
}

pub fn key(project: &str, app: &str, env: &str) -> String {
    Store::key(&["deployments", project, app, env])
}

/// Claim of the one change order in flight on a deployment (its id), taken in the batch
/// that opens the change and released when it finishes.
pub fn in_flight_key(deployment: &Deployment) -> String {
    Store::key(&[
        "deployment-in-flight",
        &deployment.project,
        &deployment.app,
        &deployment.env,
    ])
}

pub fn id_key(id: &str) -> String {
    Store::key(&["deployment-ids", id])
}

/// The deployment of `app` in `env`, if it was ever deployed there.
pub fn get(
    store: &Store,
    project: &str,
    app: &str,
    env: &str,
) -> Result<Option<Deployment>, StoreError> {
    store.get_json(&key(project, app, env))
}

/// Every deployment of an app, by environment code.
pub fn of_app(store: &Store, project: &str, app: &str) -> Result<Vec<Deployment>, StoreError> {
    store.list_json(&format!("{}/", Store::key(&["deployments", project, app])))
}

/// Every deployment of a project, by app then environment.
pub fn of_project(store: &Store, project: &str) -> Result<Vec<Deployment>, StoreError> {
    store.list_json(&format!("{}/", Store::key(&["deployments", project])))
}

/// `(project, app, env)` of a deployment id.
pub fn locate(store: &Store, id: &str) -> Result<Option<(String, String, String)>, StoreError> {
    let Some(path) = store.get_json::<String>(&id_key(id))? else {
        return Ok(None);
    };
    let mut parts = path.splitn(3, '/').map(str::to_owned);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(a), Some(e)) => Ok(Some((p, a, e))),
        _ => Err(StoreError::Corrupt {
            key: id_key(id),
            reason: format!("`{path}` is not project/app/env"),
        }),
    }
}
