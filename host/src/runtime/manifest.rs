//! Plugin manifests: what a package says it is, needs and may consume.
//!
//! A manifest is TOML or JSON with the same fields. It is validated on install with a
//! message naming the offending field; the grants it requests are only a request — the
//! admin approves grants when enabling.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The worlds a plugin can implement (wit/plugin/plugin.wit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Authorizer,
    Marketplace,
    GrayRouter,
    Step,
    ArtifactPolicy,
}

impl World {
    pub const ALL: [World; 5] = [
        World::Authorizer,
        World::Marketplace,
        World::GrayRouter,
        World::Step,
        World::ArtifactPolicy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Authorizer => "authorizer",
            World::Marketplace => "marketplace",
            World::GrayRouter => "gray-router",
            World::Step => "step",
            World::ArtifactPolicy => "artifact-policy",
        }
    }

    pub fn parse(s: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// Worlds one plugin serves at a time (the authorizer, the artifact policy): enabling
    /// one disables the others. What "the authorizer" or "the policy" is must never be
    /// ambiguous.
    pub fn serves_alone(self) -> bool {
        matches!(self, World::Authorizer | World::ArtifactPolicy)
    }

    /// The role's name in messages (`replaced by authorizer `x``).
    pub fn role(self) -> &'static str {
        match self {
            World::ArtifactPolicy => "artifact policy",
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Host interfaces a plugin asks for (or an admin approves). An absent key is not granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterGrant>,
    /// Actions on Wharf itself (pipeline steps), taken as the run's starter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Empty>,
}

/// A grant without parameters (`log = {}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Outbound HTTP: the `scheme://host:port` patterns the plugin may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Kubernetes access (`wharf:host/cluster`): the object kinds the plugin may touch (e.g.
/// `ConfigMap`) and the namespaces it may touch them in; `"*"` in a list means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterGrant {
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// Per-plugin resource limits; absent fields take the host defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RequestedLimits {
    pub memory_mib: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub max_log_bytes_per_call: Option<u64>,
    /// Total bytes (keys plus values) the plugin's kv namespace may hold.
    pub kv_max_bytes: Option<u64>,
    /// Keys the plugin's kv namespace may hold.
    pub kv_max_keys: Option<u64>,
}

/// How the host treats the plugin's settings (`PUT /api/v1/plugins/{id}/config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SettingsSpec {
    /// Top-level setting keys holding secrets (tokens, passwords): the plugin reads them
    /// through `config`, but the API never shows their values and the audit log never
    /// records them, not even as a digest.
    #[serde(default)]
    pub secret_keys: Vec<String>,
}

impl SettingsSpec {
    pub fn is_empty(&self) -> bool {
        self.secret_keys.is_empty()
    }

    pub fn is_secret(&self, key: &str) -> bool {
        self.secret_keys.iter().any(|k| k == key)
    }
}

/// Most keys a manifest may mark secret.
const MAX_SECRET_KEYS: usize = 64;

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    pub world: World,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: RequestedLimits,
    #[serde(default, skip_serializing_if = "SettingsSpec::is_empty")]
    pub config: SettingsSpec,
}

/// Why a manifest was refused; `field` names the offending field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ManifestError {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ManifestError {
    ManifestError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl Manifest {
    /// Parses TOML or JSON (JSON when the text starts with `{`) and validates it.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = if text.trim_start().starts_with('{') {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| invalid(&format!("manifest.{}", e.path()), e.inner().to_string()))?
        } else {
            toml::from_str(text).map_err(|e| invalid("manifest", e.message().to_owned()))?
        };
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        validate_id(&self.id).map_err(|m| invalid("manifest.id", m))?;
        validate_version(&self.version).map_err(|m| invalid("manifest.version", m))?;
        if self.description.chars().count() > 500 {
            return Err(invalid("manifest.description", "at most 500 characters"));
        }
        if let Some(http) = &self.grants.http {
            for (i, pattern) in http.allow.iter().enumerate() {
                super::http::AllowPattern::parse(pattern)
                    .map_err(|m| invalid(&format!("manifest.grants.http.allow[{i}]"), m))?;
            }
        }
        if let Some(cluster) = &self.grants.cluster {
            super::cluster::ClusterScope::parse(cluster)
                .map_err(|(field, m)| invalid(&format!("manifest.grants.cluster.{field}"), m))?;
        }
        let secret_keys = &self.config.secret_keys;
        if secret_keys.len() > MAX_SECRET_KEYS {
            return Err(invalid(
                "manifest.config.secret-keys",
                format!("at most {MAX_SECRET_KEYS} keys"),
            ));
        }
        for (i, key) in secret_keys.iter().enumerate() {
            if key.is_empty() || key.len() > 128 {
                return Err(invalid(
                    &format!("manifest.config.secret-keys[{i}]"),
                    "a setting key of 1-128 bytes",
                ));
            }
        }
        Ok(())
    }
}

/// Plugin ids: 3–64 characters, a lowercase letter first, then `[a-z0-9-]`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let ok_len = (3..=64).contains(&id.len());
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok_len && first_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a plugin id: use 3-64 characters, a lowercase letter first, then a-z, 0-9 or -"
        ))
    }
}

/// Versions are `MAJOR.MINOR.PATCH` with an optional `-prerelease`.
pub fn validate_version(version: &str) -> Result<(), String> {
    let core = version.split_once('-').map_or(version, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()));
    if numeric && version.len() <= 64 && !version.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!(
            "`{version}` is not a version: use MAJOR.MINOR.PATCH"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_parse_to_the_same_manifest() {
        let toml = r#"
            id = "hello"
            version = "0.1.0"
            world = "step"
            [grants]
            kv = {}
            http = { allow = ["https://example.com:443"] }
            [limits]
            memory-mib = 8
        "#;
        let json = r#"{"id":"hello","version":"0.1.0","world":"step",
            "grants":{"kv":{},"http":{"allow":["https://example.com:443"]}},
            "limits":{"memory-mib":8}}"#;
        assert_eq!(
            Manifest::parse(toml).unwrap(),
            Manifest::parse(json).unwrap()
        );
    }

    #[test]
    fn a_manifest_marks_secret_settings_and_asks_for_a_kv_quota() {
        let manifest = Manifest::parse(
            r#"
            id = "hello"
            version = "0.1.0"
            world = "step"
            [limits]
            kv-max-bytes = 4096
            kv-max-keys = 10
            [config]
            secret-keys = ["token"]
            "#,
        )
        .unwrap();
        assert!(manifest.config.is_secret("token"));
        assert!(!manifest.config.is_secret("url"));
        assert_eq!(manifest.limits.kv_max_bytes, Some(4096));
        assert_eq!(manifest.limits.kv_max_keys, Some(10));
        let err = Manifest::parse(
            r#"{"id":"hello","version":"1.0.0","world":"step","config":{"secret-keys":[""]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "manifest.config.secret-keys[0]");
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            Manifest::parse(r#"{"id":"Hello","version":"0.1.0","world":"step"}"#).unwrap_err();
        assert_eq!(err.field, "manifest.id");
        let err = Manifest::parse(r#"{"id":"hello","version":"1","world":"step"}"#).unwrap_err();
        assert_eq!(err.field, "manifest.version");
        let err =
            Manifest::parse(r#"{"id":"hello","version":"1.0.0","world":"nope"}"#).unwrap_err();
        assert_eq!(err.field, "manifest.world");
        let err = Manifest::parse(
            r#"{"id":"hello","version":"1.0.0","world":"step","grants":{"http":{"allow":["ftp://x"]}}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "manifest.grants.http.allow[0]");
        let err = Manifest::parse(
            r#"{"id":"hello","version":"1.0.0","world":"step","grants":{"cluster":{"kinds":["ConfigMap","Node"]}}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "manifest.grants.cluster.kinds[1]");
    }

    #[test]
    fn a_cluster_grant_names_kinds_and_namespaces() {
        let manifest = Manifest::parse(
            r#"
            id = "hello"
            version = "0.1.0"
            world = "step"
            [grants]
            cluster = { kinds = ["ConfigMap"], namespaces = ["plugin-space"] }
            "#,
        )
        .unwrap();
        assert_eq!(
            manifest.grants.cluster,
            Some(ClusterGrant {
                kinds: vec!["ConfigMap".into()],
                namespaces: vec!["plugin-space".into()],
            })
        );
    }
}
