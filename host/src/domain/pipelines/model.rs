//! What a pipeline definition is: stages in order, steps inside them, typed variables,
//! triggers and the permission mode. Pure data; checking a definition is `validate.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The step type the host runs itself: its outputs are its params (after substitution).
pub const NATIVE_ECHO: &str = "echo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The run fails with the step.
    #[default]
    Fail,
    /// The run goes on with the next step.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepDef {
    /// Unique in the pipeline: `[a-z0-9-]{1,63}`; `${steps.<id>.outputs.x}` names it.
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// An enabled step plugin's id, or `echo`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub params: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds an attempt may take, from its first invocation (1–86400).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u32,
    /// Further attempts after a retryable failure (0–10).
    #[serde(default)]
    pub retries: u32,
    /// Wait before the first retry, doubling for each later one (0–3600).
    #[serde(default = "default_backoff")]
    pub retry_backoff_secs: u32,
    #[serde(default)]
    pub on_error: OnError,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn yes() -> bool {
    true
}
fn default_timeout() -> u32 {
    3600
}
fn default_backoff() -> u32 {
    5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDef {
    pub name: String,
    /// Seed 001: CODE_BUILD, IMAGE_BUILD, IMAGE_DEPLOY, PACKAGE_PUBLISH, MS_IMAGE_DEPLOY.
    #[serde(default)]
    pub category: String,
    pub steps: Vec<StepDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariableType {
    String,
    Number,
    Boolean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariableDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: VariableType,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Manual,
    Api,
}

/// Seed 001 §5.12: DEFAULT inherits the project's roles; USER_DEFINED honours only the
/// pipeline's own members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PermissionMode {
    #[default]
    Default,
    UserDefined,
}

/// Top-level fields of [`PipelineInput`]; it is flattened into [`Pipeline`], so serde's
/// `deny_unknown_fields` cannot be used there and `validate.rs` checks the keys.
pub const INPUT_FIELDS: &[&str] = &[
    "name",
    "description",
    "stages",
    "variables",
    "triggers",
    "permissionMode",
];

/// What a user writes to create or update a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub stages: Vec<StageDef>,
    #[serde(default)]
    pub variables: Vec<VariableDef>,
    #[serde(default = "default_triggers")]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub permission_mode: PermissionMode,
}

fn default_triggers() -> Vec<Trigger> {
    vec![Trigger::Manual, Trigger::Api]
}

/// A stored pipeline (one version of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub id: String,
    pub project: String,
    pub app: String,
    /// 1 at creation, +1 per update; a run keeps the version it started with.
    pub version: u32,
    #[serde(flatten)]
    pub definition: PipelineInput,
    #[serde(default)]
    pub deleted: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    pub updated_by: String,
}

impl Pipeline {
    /// The authorization scope of the pipeline (authz-rbac's pipeline scope).
    pub fn scope(&self) -> String {
        scope(&self.project, &self.id)
    }

    /// Steps in run order, with the index of their stage.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &StepDef)> {
        self.definition
            .stages
            .iter()
            .enumerate()
            .flat_map(|(i, stage)| stage.steps.iter().map(move |s| (i, s)))
    }
}

pub fn scope(project: &str, pipeline: &str) -> String {
    format!("project:{project}/pipeline:{pipeline}")
}
