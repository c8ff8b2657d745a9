//! Change orders (seed 001 变更单, seed 002 audited deployments, seed 003 deploy tasks):
//! the durable record of one mutation of a deployment — what was asked, by whom, whether
//! it was approved, each batch with its pods, the rendered objects, and a timeline.
//! Stored at `v1/changes/<id>`, listed per deployment through
//! `v1/deployment-changes/<deploymentId>/<createdAt>-<id>`. This module holds the record
//! and its rules (which state may go where); `domain::rollout` drives them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::spec::{DeploySpec, ServiceSpec};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    Deploy,
    Redeploy,
    Scale,
    Start,
    Stop,
    Restart,
    Delete,
    ServiceCreate,
    ServiceUpdate,
    ServiceDelete,
    Rollback,
}

impl ChangeKind {
    /// Kinds that roll a revision out in batches.
    pub fn rolls_out(self) -> bool {
        matches!(self, Self::Deploy | Self::Redeploy | Self::Rollback)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    WaitingApproval,
    Approved,
    Rejected,
    Running,
    PausedBetweenBatches,
    RollingBack,
    Succeeded,
    Failed,
    Aborted,
    RolledBack,
}

impl ChangeState {
    /// No further transition: the change order no longer blocks its deployment.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Succeeded | Self::Failed | Self::Aborted | Self::RolledBack
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

/// A pod as it stood when its batch ended (or now, for the running batch).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSnapshot {
    pub name: String,
    pub revision: Option<u64>,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    pub node: Option<String>,
    pub ip: Option<String>,
    pub image: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// 1-based (seed 001 `batchSeq`).
    pub seq: u32,
    /// Replicas this batch moves to the new version (`instNum`).
    pub inst_num: u32,
    /// Replicas of the new version once this batch is done.
    pub target_replicas: u32,
    /// Ready pods of the new version, live while the batch runs.
    pub ready: u32,
    pub state: BatchState,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<OffsetDateTime>,
    /// Who started it: the requester, the user who sent `next-batch`, or `auto`.
    pub started_by: Option<String>,
    pub pods: Vec<PodSnapshot>,
    pub message: Option<String>,
}

/// Seed 003 deploy-task level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Level {
    S,
    A,
    B,
    C,
    I,
}

/// The approval gate of a change order in an environment that requires one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub level: Option<Level>,
    pub checklist: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub planned_at: Option<OffsetDateTime>,
    /// Who is asked to decide (set by `delegate`); anyone allowed to approve when unset.
    pub assignee: Option<String>,
    pub decided_by: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub decided_at: Option<OffsetDateTime>,
    pub comment: Option<String>,
}

/// An object the change order wrote, as YAML.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderedObject {
    pub kind: String,
    pub name: String,
    pub yaml: String,
}

/// One line of the change order's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
    /// A username, or `wharf` for what the engine did on its own.
    pub actor: String,
    pub message: String,
}

/// What the deployment looked like before the change: what a rollback restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Before {
    pub revision: Option<u64>,
    pub replicas: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeOrder {
    /// 32 hex digits (seed 001 `changeOrderId`).
    pub id: String,
    pub deployment_id: String,
    pub project: String,
    pub app: String,
    pub env: String,
    pub kind: ChangeKind,
    pub state: ChangeState,
    pub description: String,
    pub requested_by: String,
    pub before: Before,
    /// The revision rolled out (deploy, redeploy, rollback) or acted on.
    pub target_revision: Option<u64>,
    /// Replicas the deployment has when the change is done.
    pub target_replicas: u32,
    pub spec: Option<DeploySpec>,
    pub service: Option<ServiceSpec>,
    /// The change order a rollback undoes.
    pub rollback_of: Option<String>,
    /// The change order that undid this one.
    pub rolled_back_by: Option<String>,
    /// `MANUAL` waits for `next-batch` between batches; `AUTO` waits `batchWaitSeconds`.
    pub manual: bool,
    pub batch_wait_seconds: u64,
    pub batch_timeout_seconds: u64,
    pub batches: Vec<Batch>,
    /// When an AUTO pause ends.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub resume_at: Option<OffsetDateTime>,
    /// When it began acting on the cluster (after approval); operation deadlines count from here.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<OffsetDateTime>,
    pub approval: Option<Approval>,
    pub resources: Vec<RenderedObject>,
    /// A gray release: the canary, its traffic provider and the objects rendered for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gray: Option<super::gray::release::GrayRelease>,
    pub timeline: Vec<Step>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<OffsetDateTime>,
}

impl ChangeOrder {
    pub fn scope(&self) -> String {
        format!(
            "project:{}/app:{}/env:{}/change-order:{}",
            self.project, self.app, self.env, self.id
        )
    }

    pub fn note(&mut self, actor: &str, message: impl Into<String>) {
        let now = OffsetDateTime::now_utc();
        self.timeline.push(Step {
            at: now,
            actor: actor.to_owned(),
            message: message.into(),
        });
        self.updated_at = now;
    }

    /// Index of the first batch not yet succeeded.
    pub fn next_batch(&self) -> Option<usize> {
        self.batches
            .iter()
            .position(|b| b.state != BatchState::Succeeded)
    }

    /// Moves to a terminal state, stamping the time.
    pub fn finish(&mut self, state: ChangeState) {
        self.state = state;
        let now = OffsetDateTime::now_utc();
        self.finished_at = Some(now);
        self.updated_at = now;
    }
}

/// Batches of a rollout of `total` replicas split as `sizes`.
pub fn plan_batches(sizes: &[u32]) -> Vec<Batch> {
    let mut target = 0;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &inst_num)| {
            target += inst_num;
            Batch {
                seq: i as u32 + 1,
                inst_num,
                target_replicas: target,
                ready: 0,
                state: BatchState::Pending,
                started_at: None,
                finished_at: None,
                started_by: None,
                pods: Vec::new(),
                message: None,
            }
        })
        .collect()
}

/// The id → `project/app/env` index the API's scope resolver reads.
pub fn index_key(id: &str) -> String {
    Store::key(&["change-index", id])
}

pub fn key(id: &str) -> String {
    Store::key(&["changes", id])
}

fn deployment_prefix(deployment: &str) -> String {
    format!("{}/", Store::key(&["deployment-changes", deployment]))
}

fn project_prefix(project: &str) -> String {
    format!("{}/", Store::key(&["project-changes", project]))
}

/// Sortable by creation: RFC 3339 nanoseconds would not sort, a zero-padded count does.
fn order_key(change: &ChangeOrder) -> String {
    format!(
        "{:020}-{}",
        change.created_at.unix_timestamp_nanos(),
        change.id
    )
}

/// Writes a new change order with its indexes (not committed).
pub fn insert(store: &Store, change: &ChangeOrder) -> Result<(), StoreError> {
    store.put_json(&key(&change.id), change)?;
    let order = order_key(change);
    store.put_json(
        &format!("{}{order}", deployment_prefix(&change.deployment_id)),
        &change.id,
    )?;
    store.put_json(
        &format!("{}{order}", project_prefix(&change.project)),
        &change.id,
    )?;
    store.put_json(
        &index_key(&change.id),
        &format!("{}/{}/{}", change.project, change.app, change.env),
    )
}

pub fn get(store: &Store, id: &str) -> Result<Option<ChangeOrder>, StoreError> {
    store.get_json(&key(id))
}

pub fn put(store: &Store, change: &ChangeOrder) -> Result<(), StoreError> {
    store.put_json(&key(&change.id), change)
}

fn resolve(store: &Store, ids: Vec<String>) -> Result<Vec<ChangeOrder>, StoreError> {
    let mut changes = Vec::with_capacity(ids.len());
    for id in ids.into_iter().rev() {
        if let Some(change) = get(store, &id)? {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// The change orders of a deployment, newest first.
pub fn of_deployment(store: &Store, deployment: &str) -> Result<Vec<ChangeOrder>, StoreError> {
    resolve(store, store.list_json(&deployment_prefix(deployment))?)
}

/// The change orders of a project, newest first.
pub fn of_project(store: &Store, project: &str) -> Result<Vec<ChangeOrder>, StoreError> {
    resolve(store, store.list_json(&project_prefix(project))?)
}

/// Removes the change orders of a deployment and their indexes (its app is deleted).
pub fn remove_of_deployment(store: &Store, deployment: &str) -> Result<(), StoreError> {
    for change in of_deployment(store, deployment)? {
        store.delete(&key(&change.id))?;
        store.delete(&index_key(&change.id))?;
        store.delete(&format!(
            "{}{}",
            project_prefix(&change.project),
            order_key(&change)
        ))?;
    }
    store
        .backend()
        .delete_prefix(deployment_prefix(deployment).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_accumulate_their_instances() {
        let batches = plan_batches(&[1, 2, 3]);
        let targets: Vec<u32> = batches.iter().map(|b| b.target_replicas).collect();
        assert_eq!(targets, [1, 3, 6]);
        assert_eq!(batches[2].seq, 3);
    }

    #[test]
    fn terminal_states_are_the_ends() {
        assert!(ChangeState::RolledBack.is_terminal());
        assert!(!ChangeState::PausedBetweenBatches.is_terminal());
        assert!(!ChangeState::WaitingApproval.is_terminal());
    }
}
