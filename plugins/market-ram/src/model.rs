//! The normalized template: what a Rainbond application model means once read, in the
//! shape of the marketplace world's `template` record (camelCase when serialized, the
//! same as Wharf's REST API shows it).

use serde::{Deserialize, Serialize};

/// One installable version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// RAM `group_key`: the app model id.
    pub app_id: String,
    /// RAM `group_name`.
    pub app_name: String,
    /// RAM `group_version`.
    pub version: String,
    /// RAM `annotations.version_alias` (Rainbond's app import reads it there).
    pub version_alias: String,
    /// The version's description: RAM `annotations.version_info`.
    pub description: String,
    /// The app's own description (RAM `annotations.describe`, else `describe`), for a
    /// catalog's listing; not part of the world's `template` record.
    #[serde(skip)]
    pub app_description: String,
    /// RFC 3339; the template itself has none, the catalog sets it.
    pub updated_at: String,
    /// In the template's order; at least one.
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// RAM `service_key`: stable across versions, unique in the template.
    pub key: String,
    /// RAM `service_cname`, `default-name` when the template names none.
    pub name: String,
    /// RAM `k8s_component_name`; empty when none.
    pub k8s_name: String,
    /// RAM `share_image` when present, else `image`.
    pub image: String,
    /// RAM `cmd`; none when empty.
    pub command: Option<String>,
    pub version: String,
    pub category: String,
    /// RAM `extend_method`, legacy `state`/`stateless` mapped to their `*_multiple`.
    pub extend_method: String,
    /// The extend method is `state_*`.
    pub stateful: bool,
    pub resources: Resources,
    pub ports: Vec<Port>,
    pub envs: Vec<EnvVar>,
    pub volumes: Vec<Volume>,
    /// Keys of the components this one depends on, in the template's order.
    pub depends_on: Vec<String>,
    pub connection_info: Vec<EnvVar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub instances: u32,
    pub cpu_millicores: u32,
    pub memory_mb: u32,
    /// GPU memory in MB; 0 for none.
    pub gpu: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub container_port: u16,
    /// Lowercase; `tcp` when the template names none.
    pub protocol: String,
    pub alias: String,
    pub inner: bool,
    pub outer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    /// Absolute.
    pub path: String,
    /// `share-file`, `local`, `memoryfs`, `config-file` or a storage class name.
    pub kind: String,
    /// 0 when the template names none.
    pub capacity_mb: u32,
    /// The file of a `config-file` volume; none for other kinds.
    pub content: Option<String>,
    /// Permission bits (RAM writes octal as decimal digits: 644 is 0o644 = 420).
    pub mode: Option<u32>,
}

/// One version as a catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionSummary {
    pub version: String,
    pub alias: String,
    pub description: String,
    /// RFC 3339, empty when unknown.
    pub updated_at: String,
}

impl Template {
    /// How a catalog lists this version.
    pub fn version_summary(&self) -> VersionSummary {
        VersionSummary {
            version: self.version.clone(),
            alias: self.version_alias.clone(),
            description: self.description.clone(),
            updated_at: self.updated_at.clone(),
        }
    }
}
