//! Plugin lifecycle: installed → enabled ⇄ disabled → removed, plus upgrade and rollback.
//!
//! Install verifies a package (manifest, digest, signature), compiles it into the cache,
//! checks it implements its declared world and that `meta.info` agrees with the manifest;
//! `meta.info` runs without any grant (its kv, cluster and http calls are refused, its log
//! dropped), since nothing about the package is approved yet. Enable resolves the
//! admin-approved grants into a linker and a context and publishes the result; upgrade and
//! rollback publish another version the same way, atomically. Every change is stored
//! durably before the serving plugin is swapped and before it is answered, so a failed
//! save never leaves a plugin serving what its record does not say.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use wasmtime::component::Component;

use crate::audit::{Actor, Entry, Outcome};
use crate::store::StoreError;

use super::call::CallError;
use super::cluster::{ClusterAccess, ClusterScope};
use super::grants::{self, UngrantedImport};
use super::http::AllowList;
use super::kv::{KvNamespace, KvQuota, KvUsage};
use super::limits::EffectiveLimits;
use super::manifest::{Grants, Manifest, ManifestError};
use super::registry::{Event, PluginRecord, PluginStatus, Source, VersionRecord};
use super::state::PluginContext;
use super::stats::StatsView;
use super::trust::{PackageSignature, TrustError, sha256_hex};
use super::worlds::{self, Invocation, InvokeError, WorldPre};
use super::{ActivePlugin, Runtime};

/// A package as uploaded.
pub struct PackageUpload {
    pub manifest_text: String,
    pub component: Vec<u8>,
    pub signature: Option<PackageSignature>,
    /// When given, the component's digest must match (pinning).
    pub expected_sha256: Option<String>,
}

/// What an upgrade moves to.
pub enum UpgradeTarget {
    Package(PackageUpload),
    Version(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("plugin `{0}` is not installed")]
    NotFound(String),
    #[error("plugin `{0}` is already installed; upload new versions with upgrade")]
    AlreadyInstalled(String),
    #[error("plugin `{0}` is not enabled")]
    NotEnabled(String),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the component does not implement the `{world}` world its manifest declares: {detail}")]
    WorldMismatch { world: String, detail: String },
    #[error("meta.info says {field} is `{actual}`, the manifest says `{expected}`")]
    MetaMismatch {
        field: String,
        expected: String,
        actual: String,
    },
    #[error("cannot enable: {0}")]
    Ungranted(#[from] UngrantedImport),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(
        "version {version} of `{id}` is already installed with a different {what}; give the new package a new version"
    )]
    VersionConflict {
        id: String,
        version: String,
        /// What differs: the digest (with the installed one) or the manifest.
        what: String,
    },
    #[error("plugin `{id}` has no version {version}")]
    UnknownVersion { id: String, version: String },
    #[error("version {0} is already the active version")]
    AlreadyActive(String),
    #[error("plugin `{0}` has no previous version to roll back to")]
    NothingToRollBack(String),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> LifecycleError {
    LifecycleError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// One version as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    pub version: String,
    pub sha256: String,
    pub source: Source,
    pub signed_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub installed_at: OffsetDateTime,
    pub installed_by: String,
    pub active: bool,
}

/// Grants asked for by the active version vs approved by the admin.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantsView {
    pub requested: Grants,
    pub approved: Option<Grants>,
}

/// A plugin as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    pub id: String,
    pub status: PluginStatus,
    pub world: super::World,
    pub description: String,
    pub active_version: String,
    /// The version actually serving calls now (differs from `activeVersion` only while disabled).
    pub serving_version: Option<String>,
    pub manifest: Manifest,
    pub grants: GrantsView,
    pub limits: EffectiveLimits,
    /// What the plugin's kv namespace holds (its quota is in `limits`).
    pub kv_usage: Option<KvUsage>,
    /// The settings; values of keys the manifest marks secret are never shown.
    pub config: Value,
    /// Secret setting keys that have a value.
    pub secret_keys_set: Vec<String>,
    pub versions: Vec<VersionView>,
    /// Versions rollback returns to, most recent last.
    pub history: Vec<String>,
    pub disabled_reason: Option<String>,
    pub stats: StatsView,
    pub events: Vec<Event>,
    pub functions: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

/// A version checked and compiled, not yet stored.
struct PreparedVersion {
    record: VersionRecord,
    bytes: Vec<u8>,
}

impl Runtime {
    /// The API view of a record.
    pub fn view(&self, record: &PluginRecord) -> PluginView {
        let active = record.active();
        let manifest = active
            .map(|v| v.manifest.clone())
            .unwrap_or_else(|| Manifest {
                id: record.id.clone(),
                version: record.active_version.clone(),
                world: super::World::Step,
                description: String::new(),
                grants: Grants::default(),
                limits: Default::default(),
                config: Default::default(),
            });
        let limits = self.inner.limits.resolve(&manifest.limits);
        let kv = KvNamespace::new(self.inner.store.clone(), &record.id, kv_quota(&limits));
        let kv_usage = match kv.usage() {
            Ok(usage) => Some(usage),
            Err(error) => {
                tracing::warn!(plugin = %record.id, %error, "reading kv usage failed");
                None
            }
        };
        let (config, secret_keys_set) = shown_settings(&record.settings, &manifest);
        PluginView {
            id: record.id.clone(),
            status: record.status,
            world: manifest.world,
            description: manifest.description.clone(),
            active_version: record.active_version.clone(),
            serving_version: self.active(&record.id).map(|p| p.version().to_owned()),
            grants: GrantsView {
                requested: manifest.grants.clone(),
                approved: record.approved_grants.clone(),
            },
            limits,
            kv_usage,
            config,
            secret_keys_set,
            versions: record
                .versions
                .iter()
                .map(|v| VersionView {
                    version: v.version.clone(),
                    sha256: v.sha256.clone(),
                    source: v.source,
                    signed_by: v.signed_by.clone(),
                    installed_at: v.installed_at,
                    installed_by: v.installed_by.clone(),
                    active: v.version == record.active_version,
                })
                .collect(),
            history: record.history.clone(),
            disabled_reason: record.disabled_reason.clone(),
            stats: self.stats(&record.id),
            events: record.events.clone(),
            functions: worlds::functions(manifest.world)
                .iter()
                .map(|s| s.to_string())
                .collect(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            created_by: record.created_by.clone(),
            manifest,
        }
    }

    fn record(&self, id: &str) -> Result<PluginRecord, LifecycleError> {
        self.inner
            .registry
            .get(id)?
            .ok_or_else(|| LifecycleError::NotFound(id.to_owned()))
    }

    /// Loads (or compiles) the component pinned by `sha256`.
    async fn component(
        &self,
        sha256: &str,
        bytes: Option<Vec<u8>>,
    ) -> Result<Component, LifecycleError> {
        let runtime = self.clone();
        let sha = sha256.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            let registry = runtime.inner.registry.clone();
            runtime
                .inner
                .cache
                .load_or_compile(&runtime.inner.engine, &sha, || match bytes {
                    Some(b) => Ok(b),
                    None => registry
                        .get_blob(&sha)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("the component {sha} is missing from storage")),
                })
        })
        .await
        .map_err(|e| LifecycleError::Compile(e.to_string()))?;
        loaded
            .map(|(component, _)| component)
            .map_err(LifecycleError::Compile)
    }

    /// Links `component` with `grants` into a ready-to-call plugin.
    fn link(
        &self,
        id: &str,
        manifest: &Manifest,
        component: &Component,
        grants: &Grants,
        settings: Value,
    ) -> Result<ActivePlugin, LifecycleError> {
        let engine = &self.inner.engine;
        grants::check_imports(engine, component, grants)?;
        let linker =
            grants::linker_for(engine, grants).map_err(|e| invalid("grants", format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| invalid("component", format!("{e:#}")))?;
        let pre =
            WorldPre::new(manifest.world, pre).map_err(|e| LifecycleError::WorldMismatch {
                world: manifest.world.to_string(),
                detail: format!("{e:#}"),
            })?;
        let allow_patterns = grants
            .http
            .as_ref()
            .map(|h| h.allow.clone())
            .unwrap_or_default();
        let allow =
            AllowList::parse(&allow_patterns).map_err(|m| invalid("grants.http.allow", m))?;
        let scope = match &grants.cluster {
            Some(grant) => ClusterScope::parse(grant)
                .map_err(|(field, m)| invalid(&format!("grants.cluster.{field}"), m))?,
            None => ClusterScope::default(),
        };
        let cluster = ClusterAccess::new(
            self.inner.cluster.clone(),
            scope,
            self.inner.audit.clone(),
            id,
        );
        let observed = self.observed(id);
        let limits = self.inner.limits.resolve(&manifest.limits);
        let context = PluginContext {
            id: id.to_owned(),
            version: manifest.version.clone(),
            kv: KvNamespace::new(self.inner.store.clone(), id, kv_quota(&limits)),
            settings: Arc::new(settings),
            ring: observed.ring.clone(),
            stats: observed.stats.clone(),
            allow: Arc::new(allow),
            cluster: Arc::new(cluster),
            limits,
        };
        Ok(ActivePlugin {
            context: Arc::new(context),
            pre,
        })
    }

    /// Links an uploaded component for `meta.info` at install: every import resolves, but
    /// to nothing the package was granted. kv, cluster and http are refused, the log is
    /// dropped, settings are empty, and its calls count in stats of their own, so neither
    /// a new package nor an upgrade can touch the live plugin's data or trap counts.
    fn link_for_inspection(
        &self,
        manifest: &Manifest,
        component: &Component,
    ) -> Result<ActivePlugin, LifecycleError> {
        let engine = &self.inner.engine;
        let linker = grants::linker_for(engine, &grants::everything())
            .map_err(|e| invalid("grants", format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| invalid("component", format!("{e:#}")))?;
        let pre =
            WorldPre::new(manifest.world, pre).map_err(|e| LifecycleError::WorldMismatch {
                world: manifest.world.to_string(),
                detail: format!("{e:#}"),
            })?;
        let unobserved = super::Observed::default();
        let limits = EffectiveLimits {
            max_log_bytes_per_call: 0,
            ..self.inner.limits.resolve(&manifest.limits)
        };
        let context = PluginContext {
            id: manifest.id.clone(),
            version: manifest.version.clone(),
            kv: KvNamespace::refused(self.inner.store.clone(), &manifest.id),
            settings: Arc::new(Value::Object(Default::default())),
            ring: unobserved.ring,
            stats: unobserved.stats,
            allow: Arc::new(AllowList::parse(&[]).map_err(|m| invalid("grants.http.allow", m))?),
            cluster: Arc::new(ClusterAccess::new(
                self.inner.cluster.clone(),
                ClusterScope::default(),
                self.inner.audit.clone(),
                &manifest.id,
            )),
            limits,
        };
        Ok(ActivePlugin {
            context: Arc::new(context),
            pre,
        })
    }

    async fn activate(
        &self,
        record: &PluginRecord,
        version: &VersionRecord,
        grants: &Grants,
        settings: Value,
    ) -> Result<Arc<ActivePlugin>, LifecycleError> {
        let component = self.component(&version.sha256, None).await?;
        Ok(Arc::new(self.link(
            &record.id,
            &version.manifest,
            &component,
            grants,
            settings,
        )?))
    }

    /// Validates, verifies, compiles and inspects a package.
    async fn prepare(
        &self,
        upload: PackageUpload,
        source: Source,
        actor: &str,
    ) -> Result<PreparedVersion, LifecycleError> {
        let manifest = Manifest::parse(&upload.manifest_text)?;
        if upload.component.is_empty() {
            return Err(invalid("component", "the component is empty"));
        }
        let sha256 = sha256_hex(&upload.component);
        if let Some(expected) = &upload.expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(invalid(
                "sha256",
                format!("the component's digest is {sha256}, not the pinned {expected}"),
            ));
        }
        let signed_by = match source {
            Source::Bundled => None,
            Source::Upload => self.inner.trust.verify(
                &sha256,
                &upload.manifest_text,
                upload.signature.as_ref(),
            )?,
        };

        let component = self
            .component(&sha256, Some(upload.component.clone()))
            .await?;
        grants::check_imports(&self.inner.engine, &component, &grants::everything())
            .map_err(|e| invalid("component", e.to_string()))?;
        let inspect = Arc::new(self.link_for_inspection(&manifest, &component)?);
        let info = self
            .call_version(&inspect, |store, pre| {
                Box::pin(async move {
                    let info = worlds::meta_info(store, pre).await?;
                    Ok((info, 0))
                })
            })
            .await?;
        for (field, expected, actual) in [
            ("id", &manifest.id, &info.id),
            ("version", &manifest.version, &info.version),
            ("world", &manifest.world.to_string(), &info.world),
        ] {
            if expected != actual {
                return Err(LifecycleError::MetaMismatch {
                    field: field.to_owned(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                });
            }
        }
        Ok(PreparedVersion {
            record: VersionRecord {
                version: manifest.version.clone(),
                sha256,
                manifest_text: upload.manifest_text,
                manifest,
                source,
                signed_by,
                installed_at: OffsetDateTime::now_utc(),
                installed_by: actor.to_owned(),
            },
            bytes: upload.component,
        })
    }

    /// Installs a new plugin (disabled until an admin enables it).
    pub async fn install(
        &self,
        upload: PackageUpload,
        actor: &str,
    ) -> Result<PluginView, LifecycleError> {
        let _guard = self.inner.lifecycle.lock().await;
        self.install_locked(upload, Source::Upload, actor).await
    }

    async fn install_locked(
        &self,
        upload: PackageUpload,
        source: Source,
        actor: &str,
    ) -> Result<PluginView, LifecycleError> {
        let id = Manifest::parse(&upload.manifest_text)?.id;
        if self.inner.registry.get(&id)?.is_some() {
            return Err(LifecycleError::AlreadyInstalled(id));
        }
        let prepared = self.prepare(upload, source, actor).await?;
        let now = OffsetDateTime::now_utc();
        let mut record = PluginRecord {
            id: id.clone(),
            status: PluginStatus::Installed,
            active_version: prepared.record.version.clone(),
            history: Vec::new(),
            versions: Vec::new(),
            approved_grants: None,
            settings: Value::Object(Default::default()),
            disabled_reason: None,
            events: Vec::new(),
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        record.push_event(
            "installed",
            actor,
            format!(
                "installed {} ({})",
                prepared.record.version, prepared.record.sha256
            ),
        );
        self.inner
            .registry
            .put_blob(&prepared.record.sha256, &prepared.bytes)?;
        record.versions.push(prepared.record);
        self.inner.registry.save(&record).await?;
        Ok(self.view(&record))
    }

    /// Enables the active version with the approved grants (default: what it requests).
    pub async fn enable(
        &self,
        id: &str,
        approved: Option<Grants>,
        actor: &str,
    ) -> Result<PluginView, LifecycleError> {
        let _guard = self.inner.lifecycle.lock().await;
        self.enable_locked(id, approved, actor).await
    }

    async fn enable_locked(
        &self,
        id: &str,
        approved: Option<Grants>,
        actor: &str,
    ) -> Result<PluginView, LifecycleError> {
        let mut record = self.record(id)?;
        let version = record
            .active()
            .cloned()
            .ok_or_else(|| LifecycleError::UnknownVersion {
                id: id.into(),
                version: record.active_version.clone(),
            })?;
        let grants = approved.unwrap_or_else(|| version.manifest.grants.clone());
        if let Some(http) = &grants.http {
            for (i, pattern) in http.allow.iter().enumerate() {
                super::http::AllowPattern::parse(pattern)
                    .map_err(|m| invalid(&format!("grants.http.allow[{i}]"), m))?;
            }
        }
        if let Some(cluster) = &grants.cluster {
            ClusterScope::parse(cluster)
                .map_err(|(field, m)| invalid(&format!("grants.cluster.{field}"), m))?;
        }
        let plugin = match self
            .activate(&record, &version, &grants, record.settings.clone())
            .await
        {
            Ok(plugin) => plugin,
            Err(error) => {
                record.push_event("enable-failed", actor, error.to_string());
                self.inner.registry.save(&record).await?;
                return Err(error);
            }
        };
        if plugin.world().serves_alone() {
            self.retire_others_serving(plugin.world(), id, actor)
                .await?;
        }
        record.status = PluginStatus::Enabled;
        record.approved_grants = Some(grants);
        record.disabled_reason = None;
        record.push_event("enabled", actor, format!("enabled {}", version.version));
        self.inner.registry.save(&record).await?;
        self.set_active(id, Some(plugin));
        self.observed(id).stats.reset_trap_window();
        Ok(self.view(&record))
    }

    /// One plugin of a [`super::World::serves_alone`] world serves at a time: enabling one
    /// disables the others, recorded on each.
    async fn retire_others_serving(
        &self,
        world: super::World,
        id: &str,
        actor: &str,
    ) -> Result<(), LifecycleError> {
        let others: Vec<String> = self
            .inner
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(other, p)| other.as_str() != id && p.world() == world)
            .map(|(other, _)| other.clone())
            .collect();
        for other in others {
            self.set_active(&other, None);
            let Some(mut record) = self.inner.registry.get(&other)? else {
                continue;
            };
            let reason = format!("replaced by {} `{id}`", world.role());
            record.status = PluginStatus::Disabled;
            record.disabled_reason = Some(reason.clone());
            record.push_event("disabled", actor, reason.clone());
            self.inner.registry.save(&record).await?;
            let entry = Entry::new(
                Actor::system(),
                "plugin.disable",
                &format!("plugin:{other}"),
                Outcome::Ok,
            );
            self.inner
                .audit
                .record(Entry {
                    plugin: Some(format!("{other}@{}", record.active_version)),
                    before: Some(serde_json::json!({"status": "enabled"})),
                    after: Some(serde_json::json!({"status": "disabled", "reason": reason})),
                    ..entry
                })
                .await;
        }
        Ok(())
    }

    /// Stops new calls; calls in flight finish.
    pub async fn disable(&self, id: &str, actor: &str) -> Result<PluginView, LifecycleError> {
        let _guard = self.inner.lifecycle.lock().await;
        let mut record = self.record(id)?;
        self.set_active(id, None);
        record.status = PluginStatus::Disabled;
        record.disabled_reason = Some(format!("disabled by {actor}"));
        record.push_event(
            "disabled",
            actor,
            format!("disabled {}", record.active_version),
        );
        self.inner.registry.save(&record).await?;
        Ok(self.view(&record))
    }

    /// Moves to another version: a new package or one already installed.
    pub async fn upgrade(
        &self,
        id: &str,
        target: UpgradeTarget,
        actor: &str,
    ) -> Result<PluginView, LifecycleError> {
        let _guard = self.inner.lifecycle.lock().await;
        let mut record = self.record(id)?;
        let version = match target {
            UpgradeTarget::Version(version) => version,
            UpgradeTarget::Package(upload) => {
                let manifest = Manifest::parse(&upload.manifest_text)?;
                if manifest.id != id {
                    return Err(invalid(
                        "manifest.id",
                        format!("the package is `{}`, not `{id}`", manifest.id),
                    ));
                }
                let sha256 = sha256_hex(&upload.component);
                match record.version(&manifest.version) {
                    Some(existing) if existing.sha256 != sha256 => {
                        return Err(LifecycleError::VersionConflict {
                            id: id.into(),
                            version: manifest.version,
                            what: format!("digest ({})", existing.sha256),
                        });
                    }
                    // Same code, other grants or limits: switching to the stored version
                    // would silently drop what the new manifest says.
                    Some(existing) if existing.manifest != manifest => {
                        return Err(LifecycleError::VersionConflict {
                            id: id.into(),
                            version: manifest.version,
                            what: "manifest".into(),
                        });
                    }
                    Some(existing) => existing.version.clone(),
                    None => {
                        let prepared = self.prepare(upload, Source::Upload, actor).await?;
                        let version = prepared.record.version.clone();
                        self.inner
                            .registry
                            .put_blob(&prepared.record.sha256, &prepared.bytes)?;
                        record.push_event("version-added", actor, format!("added {version}"));
                        record.versions.push(prepared.record);
                        self.inner.registry.save(&record).await?;
                        version
                    }
                }
            }
        };
        self.switch_version(&mut record, &version, actor, false)
            .await?;
        Ok(self.view(&record))
    }

    /// Returns to the version that was active before the current one.
    pub async fn rollback(&self, id: &str, actor: &str) -> Result<PluginView, LifecycleError> {
        let _guard = self.inner.lifecycle.lock().await;
        let mut record = self.record(id)?;
        let previous = record
            .history
            .last()
            .cloned()
            .ok_or_else(|| LifecycleError::NothingToRollBack(id.to_owned()))?;
        self.switch_version(&mut record, &previous, actor, true)
            .await?;
        Ok(self.view(&record))
    }

    /// Makes `version` active; when enabled, swaps the serving version atomically.
    async fn switch_version(
        &self,
        record: &mut PluginRecord,
        version: &str,
        actor: &str,
        rolling_back: bool,
    ) -> Result<(), LifecycleError> {
        if version == record.active_version {
            return Err(LifecycleError::AlreadyActive(version.to_owned()));
        }
        let target =
            record
                .version(version)
                .cloned()
                .ok_or_else(|| LifecycleError::UnknownVersion {
                    id: record.id.clone(),
                    version: version.to_owned(),
                })?;
        let serving = if record.status == PluginStatus::Enabled {
            let grants = record.approved_grants.clone().unwrap_or_default();
            Some(
                self.activate(record, &target, &grants, record.settings.clone())
                    .await?,
            )
        } else {
            None
        };
        let from = std::mem::replace(&mut record.active_version, version.to_owned());
        if rolling_back {
            record.history.pop();
            record.push_event(
                "rolled-back",
                actor,
                format!("rolled back from {from} to {version}"),
            );
        } else {
            record.history.push(from.clone());
            record.push_event(
                "upgraded",
                actor,
                format!("upgraded from {from} to {version}"),
            );
        }
        self.inner.registry.save(record).await?;
        if let Some(plugin) = serving {
            self.set_active(&record.id, Some(plugin));
        }
        Ok(())
    }

    /// Replaces the plugin's settings; an enabled plugin sees them on its next call.
    pub async fn configure(
        &self,
        id: &str,
        settings: Value,
        actor: &str,
    ) -> Result<PluginView, LifecycleError> {
        if !settings.is_object() {
            return Err(invalid("config", "settings must be a JSON object"));
        }
        let _guard = self.inner.lifecycle.lock().await;
        let mut record = self.record(id)?;
        record.settings = settings.clone();
        record.push_event("configured", actor, "settings replaced");
        self.inner.registry.save(&record).await?;
        if let Some(current) = self.active(id) {
            let refreshed = ActivePlugin {
                context: Arc::new(PluginContext {
                    settings: Arc::new(settings),
                    ..current.context.as_ref().clone()
                }),
                pre: current.pre.clone(),
            };
            self.set_active(id, Some(Arc::new(refreshed)));
        }
        Ok(self.view(&record))
    }

    /// Removes the plugin, its versions and its kv namespace.
    pub async fn uninstall(&self, id: &str, actor: &str) -> Result<(), LifecycleError> {
        let _guard = self.inner.lifecycle.lock().await;
        let record = self.record(id)?;
        self.set_active(id, None);
        self.inner.registry.remove(id).await?;
        KvNamespace::refused(self.inner.store.clone(), id).clear()?;
        let shas: Vec<String> = record.versions.iter().map(|v| v.sha256.clone()).collect();
        self.inner.registry.collect_blobs(&shas)?;
        self.inner.store.commit().await?;
        self.forget_observed(id);
        tracing::info!(plugin = id, actor, "plugin uninstalled");
        Ok(())
    }

    /// Runs one world function from the admin console. An authorizer function runs as
    /// `caller`, whatever the input says.
    pub async fn invoke(
        &self,
        id: &str,
        function: &str,
        input: &Value,
        caller: super::authorizer::Subject,
    ) -> Result<Value, LifecycleError> {
        let plugin = self
            .active(id)
            .ok_or_else(|| LifecycleError::NotEnabled(id.to_owned()))?;
        worlds::check_function(plugin.world(), function)?;
        let invocation = Invocation::parse(function, input, caller)?;
        // The console can run policy administration too; cached decisions must not outlive it.
        let manages_policy = matches!(invocation, Invocation::AuthorizeManage(..));
        let output = self
            .call_version(&plugin, move |store, pre| {
                Box::pin(async move {
                    let value = invocation.run(store, pre).await?;
                    let size = value.to_string().len();
                    Ok((value, size))
                })
            })
            .await;
        if manages_policy {
            self.invalidate_decisions();
        }
        Ok(output?)
    }

    /// At start: serves every plugin that was enabled. A version that no longer loads is
    /// disabled with the reason recorded.
    pub async fn load_enabled(&self) -> Result<(), StoreError> {
        let _guard = self.inner.lifecycle.lock().await;
        for mut record in self.inner.registry.list()? {
            if record.status != PluginStatus::Enabled {
                continue;
            }
            let Some(version) = record.active().cloned() else {
                continue;
            };
            let grants = record.approved_grants.clone().unwrap_or_default();
            match self
                .activate(&record, &version, &grants, record.settings.clone())
                .await
            {
                Ok(plugin) => self.set_active(&record.id, Some(plugin)),
                Err(error) => {
                    tracing::error!(plugin = %record.id, %error, "plugin failed to load; disabling it");
                    let entry = Entry::new(
                        Actor::system(),
                        "plugin.disable",
                        &format!("plugin:{}", record.id),
                        Outcome::Ok,
                    );
                    self.inner
                        .audit
                        .record(Entry {
                            plugin: Some(format!("{}@{}", record.id, version.version)),
                            after: Some(serde_json::json!({"status": "disabled", "reason": error.to_string()})),
                            ..entry
                        })
                        .await;
                    record.status = PluginStatus::Disabled;
                    record.disabled_reason = Some(format!("failed to load at start: {error}"));
                    record.push_event("enable-failed", "wharf", error.to_string());
                    self.inner.registry.save(&record).await?;
                }
            }
        }
        Ok(())
    }

    /// Installs and enables the plugins embedded in the binary. A plugin the admin
    /// uninstalled stays uninstalled; a newer bundled version replaces an older bundled one.
    pub async fn install_bundled(
        &self,
        manifest_text: &str,
        component: &[u8],
    ) -> Result<(), LifecycleError> {
        let manifest = Manifest::parse(manifest_text)?;
        let _guard = self.inner.lifecycle.lock().await;
        if self.inner.registry.was_removed(&manifest.id)? {
            return Ok(());
        }
        let upload = || PackageUpload {
            manifest_text: manifest_text.to_owned(),
            component: component.to_vec(),
            signature: None,
            expected_sha256: None,
        };
        let Some(mut record) = self.inner.registry.get(&manifest.id)? else {
            self.install_locked(upload(), Source::Bundled, "wharf")
                .await?;
            // A second bundled authorizer (or policy) stays installed, ready to swap in.
            let enable = !manifest.world.serves_alone() || self.serving(manifest.world).is_none();
            let mut actions = vec!["plugin.install"];
            if enable {
                self.enable_locked(&manifest.id, None, "wharf").await?;
                actions.push("plugin.enable");
            }
            let plugin = format!("{}@{}", manifest.id, manifest.version);
            for action in actions {
                let entry = Entry::new(
                    Actor::system(),
                    action,
                    &format!("plugin:{}", manifest.id),
                    Outcome::Ok,
                );
                self.inner
                    .audit
                    .record(Entry {
                        plugin: Some(plugin.clone()),
                        ..entry
                    })
                    .await;
            }
            return Ok(());
        };
        if record.version(&manifest.version).is_some() {
            return Ok(());
        }
        let prepared = self.prepare(upload(), Source::Bundled, "wharf").await?;
        self.inner
            .registry
            .put_blob(&prepared.record.sha256, &prepared.bytes)?;
        record.push_event(
            "version-added",
            "wharf",
            format!("bundled {} added", manifest.version),
        );
        record.versions.push(prepared.record);
        let replace = record.active().is_some_and(|v| v.source == Source::Bundled);
        if replace {
            self.switch_version(&mut record, &manifest.version, "wharf", false)
                .await?;
        } else {
            self.inner.registry.save(&record).await?;
        }
        Ok(())
    }

    /// Stops serving a plugin that trapped too often and records why.
    pub(super) async fn auto_disable(&self, id: &str, version: &str, traps: u32, last: &CallError) {
        let serving_this = self.active(id).is_some_and(|p| p.version() == version);
        if !serving_this {
            return;
        }
        self.set_active(id, None);
        let reason = format!(
            "auto-disabled: {traps} traps within {} s (last: {last})",
            self.inner.limits.trap_window.as_secs()
        );
        tracing::warn!(plugin = id, version, %reason);
        let runtime = self.clone();
        let id = id.to_owned();
        let version = version.to_owned();
        // Persist outside the caller's path: the caller may hold the lifecycle lock.
        tokio::spawn(async move {
            let _guard = runtime.inner.lifecycle.lock().await;
            let Ok(Some(mut record)) = runtime.inner.registry.get(&id) else {
                return;
            };
            record.status = PluginStatus::Disabled;
            record.disabled_reason = Some(reason.clone());
            record.push_event("auto-disabled", "wharf", reason.clone());
            let entry = Entry::new(
                Actor::system(),
                "plugin.auto-disable",
                &format!("plugin:{id}"),
                Outcome::Ok,
            );
            runtime
                .inner
                .audit
                .record(Entry {
                    plugin: Some(format!("{id}@{version}")),
                    before: Some(serde_json::json!({"status": "enabled"})),
                    after: Some(serde_json::json!({"status": "disabled", "reason": reason})),
                    ..entry
                })
                .await;
            if let Err(e) = runtime.inner.registry.save(&record).await {
                tracing::error!(plugin = %id, error = %e, "recording an auto-disable failed");
            }
        });
    }
}

fn kv_quota(limits: &EffectiveLimits) -> KvQuota {
    KvQuota {
        max_bytes: limits.kv_max_bytes,
        max_keys: limits.kv_max_keys,
    }
}

/// The settings as the API shows them: values of secret keys left out, and which secret
/// keys have a value.
fn shown_settings(settings: &Value, manifest: &Manifest) -> (Value, Vec<String>) {
    let Value::Object(all) = settings else {
        return (settings.clone(), Vec::new());
    };
    let mut shown = serde_json::Map::new();
    let mut secret = Vec::new();
    for (key, value) in all {
        if manifest.config.is_secret(key) {
            secret.push(key.clone());
        } else {
            shown.insert(key.clone(), value.clone());
        }
    }
    (Value::Object(shown), secret)
}
