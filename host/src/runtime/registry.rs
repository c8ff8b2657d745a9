//! Persisted plugin records: versions, status, approved grants, settings, events.
//!
//! One record per plugin id at `v1/plugins/<id>`; component bytes at
//! `v1/plugin-blobs/<sha256>` (shared by every record that pins the same digest).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::store::{Store, StoreError};

use super::manifest::{Grants, Manifest};

/// Events kept per plugin (oldest dropped first).
const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginStatus {
    /// Installed, never enabled.
    Installed,
    Enabled,
    Disabled,
}

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Embedded in the Wharf binary.
    Bundled,
    /// Uploaded by an admin.
    Upload,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionRecord {
    pub version: String,
    pub sha256: String,
    /// The manifest text as uploaded.
    pub manifest_text: String,
    pub manifest: Manifest,
    pub source: Source,
    /// Id of the trusted key that signed the package, if it was signed.
    pub signed_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub installed_at: OffsetDateTime,
    pub installed_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub time: OffsetDateTime,
    /// `installed`, `enabled`, `disabled`, `auto-disabled`, `upgraded`, `rolled-back`,
    /// `configured`, `version-added`, `enable-failed`.
    pub kind: String,
    pub actor: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRecord {
    pub id: String,
    pub status: PluginStatus,
    pub active_version: String,
    /// Versions that were active before, most recent last (what rollback returns to).
    pub history: Vec<String>,
    pub versions: Vec<VersionRecord>,
    pub approved_grants: Option<Grants>,
    pub settings: serde_json::Value,
    pub disabled_reason: Option<String>,
    pub events: Vec<Event>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

impl PluginRecord {
    pub fn version(&self, version: &str) -> Option<&VersionRecord> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn active(&self) -> Option<&VersionRecord> {
        self.version(&self.active_version)
    }

    pub fn push_event(&mut self, kind: &str, actor: &str, message: impl Into<String>) {
        let now = OffsetDateTime::now_utc();
        if self.events.len() == MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(Event {
            time: now,
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            message: message.into(),
        });
        self.updated_at = now;
    }
}

fn record_key(id: &str) -> String {
    Store::key(&["plugins", id])
}

fn blob_key(sha256: &str) -> String {
    Store::key(&["plugin-blobs", sha256])
}

fn removed_key(id: &str) -> String {
    Store::key(&["plugins-removed", id])
}

/// Typed access to plugin records in the host store.
#[derive(Clone)]
pub struct Registry {
    store: Store,
}

impl Registry {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn get(&self, id: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.store.get_json(&record_key(id))
    }

    pub fn list(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.store
            .list_json(&format!("{}/", Store::key(&["plugins"])))
    }

    /// Writes the record durably.
    pub async fn save(&self, record: &PluginRecord) -> Result<(), StoreError> {
        self.store.put_json(&record_key(&record.id), record)?;
        self.store.delete(&removed_key(&record.id))?;
        self.store.commit().await
    }

    /// Deletes the record and remembers the id was removed on purpose, so a bundled
    /// plugin an admin uninstalled is not reinstalled at the next start.
    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete(&record_key(id))?;
        self.store.put_json(&removed_key(id), &true)?;
        self.store.commit().await
    }

    pub fn was_removed(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .get_json::<bool>(&removed_key(id))?
            .unwrap_or(false))
    }

    pub fn put_blob(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.store.backend().put(blob_key(sha256).as_bytes(), bytes)
    }

    pub fn get_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.backend().get(blob_key(sha256).as_bytes())
    }

    /// Deletes blobs no remaining record pins.
    pub fn collect_blobs(&self, candidates: &[String]) -> Result<(), StoreError> {
        let records = self.list()?;
        for sha in candidates {
            let pinned = records
                .iter()
                .any(|r| r.versions.iter().any(|v| &v.sha256 == sha));
            if !pinned {
                self.store.delete(&blob_key(sha))?;
            }
        }
        Ok(())
    }
}
