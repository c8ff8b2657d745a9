//! Kubernetes objects (`wharf:host/cluster`) as typed JSON, limited to the plugin's grant.
//!
//! The manifest asks for the kinds and namespaces the plugin needs, and the admin approves
//! them when enabling:
//!
//! ```toml
//! [grants]
//! cluster = { kinds = ["ConfigMap"], namespaces = ["team-a"] }   # "*" means any
//! ```
//!
//! Every call is checked against that grant inside the host. A kind or namespace outside
//! it is refused with [`ClusterError::AccessDenied`] naming what was refused (and the
//! host logs, counts and audits the attempt); nothing reaches the cluster. Only namespaced
//! kinds Wharf deploys are offered: `Deployment`, `ReplicaSet` (`apps/v1`); `Pod`,
//! `Service`, `Endpoints`, `ConfigMap`, `Secret`, `Event` (`v1`); `Job` (`batch/v1`);
//! `Ingress` (`networking.k8s.io/v1`); `HTTPRoute` (`gateway.networking.k8s.io/v1`).
//!
//! Objects are any serde type in Kubernetes' JSON shape: `serde_json::Value`, your own
//! structs, or `k8s-openapi` types.
//!
//! ```ignore
//! use serde_json::{Value, json};
//! use wharf_sdk::cluster;
//!
//! let stored: Value = cluster::apply(&json!({
//!     "apiVersion": "v1",
//!     "kind": "ConfigMap",
//!     "metadata": { "name": "settings", "namespace": "team-a" },
//!     "data": { "greeting": "hi" },
//! }))?;
//! let again: Option<Value> = cluster::get("v1", "ConfigMap", "team-a", "settings")?;
//! let all: Vec<Value> = cluster::list("v1", "ConfigMap", "team-a", Some("app=web"))?;
//! let existed = cluster::delete("v1", "ConfigMap", "team-a", "settings")?;
//! ```
//!
//! `apply` is server-side apply with the field manager `wharf-plugin-<id>` (never forced:
//! fields another manager owns come back as [`ClusterError::Conflict`]). `list` returns at
//! most 500 objects (16 MiB); a larger match is [`ClusterError::LimitExceeded`]. Each call
//! counts against the invocation's host-call budget. On native targets calls are served by
//! the current [`harness::Host`](crate::harness::Host)'s in-memory cluster.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(target_arch = "wasm32")]
use crate::bindings::wharf::host::cluster as backend;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::cluster as backend;

/// Why a cluster call was refused or failed (the WIT `wharf:host/cluster.cluster-error`).
///
/// The generated bindings use this hand-written type (via `with:`), so its shape must stay
/// identical to the WIT variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// The plugin was not granted this kind or namespace; the text names what was refused.
    AccessDenied(String),
    /// The object (or its namespace) does not exist.
    NotFound,
    /// The cluster refused a conflicting change (e.g. fields owned by another manager).
    Conflict(String),
    /// The arguments or the object were rejected; the text says which and why. Also used
    /// when an object does not decode into the type the plugin asked for.
    Invalid(String),
    /// A size or rate cap was exceeded; the text names the cap.
    LimitExceeded(String),
    /// The cluster could not be reached or failed; retrying later may work.
    Unavailable(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::AccessDenied(m) => write!(f, "access denied: {m}"),
            ClusterError::NotFound => f.write_str("not found"),
            ClusterError::Conflict(m) => write!(f, "conflict: {m}"),
            ClusterError::Invalid(m) => write!(f, "invalid: {m}"),
            ClusterError::LimitExceeded(m) => write!(f, "limit exceeded: {m}"),
            ClusterError::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for ClusterError {}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, ClusterError> {
    serde_json::from_str(json).map_err(|e| {
        ClusterError::Invalid(format!(
            "the object does not decode as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// The object `kind` named `name` in `namespace`; `None` when it does not exist.
pub fn get<T: DeserializeOwned>(
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<T>, ClusterError> {
    backend::get(api_version, kind, namespace, name)?
        .map(|json| decode(&json))
        .transpose()
}

/// The objects of `kind` in `namespace` matching `label_selector` (e.g. `app=web`;
/// `None` for all), in name order.
pub fn list<T: DeserializeOwned>(
    api_version: &str,
    kind: &str,
    namespace: &str,
    label_selector: Option<&str>,
) -> Result<Vec<T>, ClusterError> {
    backend::list(api_version, kind, namespace, label_selector)?
        .iter()
        .map(|json| decode(json))
        .collect()
}

/// Creates or updates `object` (server-side apply) and returns it as the cluster stored it.
/// `object` needs `apiVersion`, `kind`, `metadata.name` and `metadata.namespace`.
pub fn apply<T: Serialize + DeserializeOwned>(object: &T) -> Result<T, ClusterError> {
    apply_raw(object, None)
}

/// [`apply`] as field manager `wharf-plugin-<id>-<field_manager>`, for a plugin that
/// manages separate parts of one object.
pub fn apply_with_manager<T: Serialize + DeserializeOwned>(
    object: &T,
    field_manager: &str,
) -> Result<T, ClusterError> {
    apply_raw(object, Some(field_manager))
}

fn apply_raw<T: Serialize + DeserializeOwned>(
    object: &T,
    field_manager: Option<&str>,
) -> Result<T, ClusterError> {
    let json = serde_json::to_string(object)
        .map_err(|e| ClusterError::Invalid(format!("object: does not serialize: {e}")))?;
    decode(&backend::apply(&json, field_manager)?)
}

/// Deletes the object; returns whether it existed.
pub fn delete(
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<bool, ClusterError> {
    backend::delete(api_version, kind, namespace, name)
}
