//! Actions on Wharf itself (`wharf:host/platform`), for pipeline steps.
//!
//! The manifest asks for the interface, and the admin approves it when enabling:
//!
//! ```toml
//! [grants]
//! platform = {}
//! ```
//!
//! Every call is authorized as the user who started the run, never as the plugin: a step
//! can deploy only where its starter may deploy, and a refusal comes back as
//! [`PlatformError::Denied`] naming the action and resource. Mutations ([`deploy`],
//! [`rollback_change`], [`abort_change`], [`publish_artifact`]) are idempotent per run,
//! step, attempt and call: a step called again after a host restart, making the same calls
//! in the same order, gets the first answers back instead of acting twice. So a step may
//! simply call [`deploy`] again when it does not know whether its first call went through.
//! Outside a pipeline run (e.g. from the plugin console) every call is
//! [`PlatformError::Unavailable`].
//!
//! ```ignore
//! use serde_json::json;
//! use wharf_sdk::platform;
//!
//! let change = platform::deploy("shop", "cart", "prod", &json!({ "image": "cart:1.2", "replicas": 2 }))?;
//! let id = change["id"].as_str().unwrap_or_default();
//! let now = platform::change_order(id)?;          // poll on later calls of the step
//! let settings = platform::config_item("shop", "prod", "cart-settings")?;
//! let votes = platform::decisions()?;             // approvals of the running step
//! ```
//!
//! Change orders are JSON in the shape of `GET /api/v1/…/change-orders/{id}` (camelCase:
//! `id`, `state` — `waiting_approval`, `running`, `paused_between_batches`, `succeeded`,
//! `failed`, … —, `batches`, `error`). On native targets calls are served by the current
//! [`harness::Host`](crate::harness::Host)'s fake platform.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

#[cfg(target_arch = "wasm32")]
use crate::bindings::wharf::host::platform as backend;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::platform as backend;

/// A user's decision on the step being run (`POST …/runs/{run}/steps/{step}/decisions`):
/// `username`, `approve`, `comment` and `at` (RFC 3339).
pub use crate::bindings::wharf::host::platform::Decision;

/// Why a platform call was refused or failed (the WIT `wharf:host/platform.platform-error`).
///
/// The generated bindings use this hand-written type (via `with:`), so its shape must stay
/// identical to the WIT variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformError {
    /// The run's user may not do this; the text names the action and resource.
    Denied(String),
    /// What the call names does not exist; the text says what.
    NotFound(String),
    /// The arguments were rejected; the text names the field. Also used when the host's
    /// answer does not decode as JSON.
    Invalid(String),
    /// The action conflicts with the current state (e.g. a change order in flight).
    Conflict(String),
    /// Not possible now, or not offered by this host; the text says which.
    Unavailable(String),
}

impl PlatformError {
    /// The host's explanation, without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            PlatformError::Denied(m)
            | PlatformError::NotFound(m)
            | PlatformError::Invalid(m)
            | PlatformError::Conflict(m)
            | PlatformError::Unavailable(m) => m,
        }
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            PlatformError::Denied(_) => "denied",
            PlatformError::NotFound(_) => "not found",
            PlatformError::Invalid(_) => "invalid",
            PlatformError::Conflict(_) => "conflict",
            PlatformError::Unavailable(_) => "unavailable",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for PlatformError {}

fn decode(json: &str, what: &str) -> Result<Value, PlatformError> {
    serde_json::from_str(json)
        .map_err(|e| PlatformError::Invalid(format!("the host's {what} is not JSON: {e}")))
}

/// Opens a deploy change order of `app` in `env` of `project`; `request` is the body of
/// `POST /api/v1/projects/{p}/apps/{a}/deployments/{e}/deploy` (`image`, `replicas`,
/// `deploymentStrategy`, `deployConfig`, …). Returns the change order.
pub fn deploy<T: Serialize>(
    project: &str,
    app: &str,
    env: &str,
    request: &T,
) -> Result<Value, PlatformError> {
    let body = serde_json::to_string(request)
        .map_err(|e| PlatformError::Invalid(format!("request: does not serialize: {e}")))?;
    decode(&backend::deploy(project, app, env, &body)?, "change order")
}

/// The change order `id`.
pub fn change_order(id: &str) -> Result<Value, PlatformError> {
    decode(&backend::change_order(id)?, "change order")
}

/// Rolls the finished change order `id` back; returns the new (rollback) change order.
pub fn rollback_change(id: &str) -> Result<Value, PlatformError> {
    decode(&backend::rollback_change(id)?, "change order")
}

/// Aborts the change order `id` while it is in flight; returns it.
pub fn abort_change(id: &str) -> Result<Value, PlatformError> {
    decode(&backend::abort_change(id)?, "change order")
}

/// The entries of config item `name` in `env` of `project`; `None` when it does not exist.
pub fn config_item(
    project: &str,
    env: &str,
    name: &str,
) -> Result<Option<Map<String, Value>>, PlatformError> {
    let Some(json) = backend::config_item(project, env, name)? else {
        return Ok(None);
    };
    match decode(&json, "config item")? {
        Value::Object(entries) => Ok(Some(entries)),
        _ => Err(PlatformError::Invalid(format!(
            "the host's config item `{name}` is not a JSON object"
        ))),
    }
}

/// Publishes `content` as version `version` of a generic package of `project`; `name`
/// ends with the package type (`orders.jar`, `site.tar.gz`: jar, war, zip, tar.gz, rpm).
/// Returns the stored package as JSON (`id`, `name`, `version`, `type`, `size`, `sha256`,
/// `source` = `CODE_GENERATE`). A version is published once: the same content again
/// answers the stored package, other content is [`PlatformError::Conflict`].
pub fn publish_artifact(
    project: &str,
    name: &str,
    version: &str,
    content: &[u8],
) -> Result<String, PlatformError> {
    backend::publish_artifact(project, name, version, content)
}

/// Decisions users took on the step being run, oldest first.
pub fn decisions() -> Result<Vec<Decision>, PlatformError> {
    backend::decisions()
}
