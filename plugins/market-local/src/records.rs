//! The catalog's kv records and their reads and writes: an app's index updated with
//! compare-and-swap (two publishes of one app never lose a version), listings that follow
//! kv cursors to the end, and host failures as `unavailable`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wharf_sdk::kv;
use wharf_sdk::marketplace::CatalogError;

use market_ram::VersionSummary;

/// Keys asked for per `list-prefix` page (the host caps it).
const PAGE: u32 = 1000;
/// Attempts of an index update that keeps losing races.
const MAX_ATTEMPTS: usize = 16;

/// `app/<market>/<app>`: what listing an app needs, without reading its templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Newest first.
    pub versions: Vec<VersionSummary>,
}

/// `version/<market>/<app>/<version>`: the template as published (its JSON document).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredVersion {
    /// RFC 3339.
    pub published_at: String,
    pub template: Value,
}

pub fn storage_failed(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Unavailable(format!("the local catalog's storage failed: {e}"))
}

fn corrupt(key: &str, e: serde_json::Error) -> CatalogError {
    CatalogError::Unavailable(format!(
        "the local catalog's record `{key}` is unreadable: {e}"
    ))
}

pub fn get<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, CatalogError> {
    match kv::get(key).map_err(storage_failed)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(key, e)),
        None => Ok(None),
    }
}

pub fn set(key: &str, bytes: &[u8]) -> Result<(), CatalogError> {
    kv::set(key, bytes).map_err(storage_failed)
}

pub fn delete(key: &str) -> Result<bool, CatalogError> {
    kv::delete(key).map_err(storage_failed)
}

/// Every key under `prefix`, page after page.
pub fn keys(prefix: &str) -> Result<Vec<String>, CatalogError> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = kv::list_prefix(prefix, cursor.as_deref(), PAGE).map_err(storage_failed)?;
        keys.extend(page.keys);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Changes the app index at `key` with `change` (given the current record, if any; it
/// returns the new one, `None` to delete it) until no concurrent writer got in between.
pub fn update_app(
    key: &str,
    mut change: impl FnMut(Option<AppRecord>) -> Option<AppRecord>,
) -> Result<Option<AppRecord>, CatalogError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = kv::get(key).map_err(storage_failed)?;
        let record = match &current {
            Some(bytes) => Some(serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))?),
            None => None,
        };
        let next = change(record);
        let bytes = match &next {
            Some(record) => Some(serde_json::to_vec(record).map_err(|e| corrupt(key, e))?),
            None => None,
        };
        if kv::compare_and_swap(key, current.as_deref(), bytes.as_deref())
            .map_err(storage_failed)?
        {
            return Ok(next);
        }
    }
    Err(CatalogError::Unavailable(format!(
        "the local catalog's record `{key}` kept changing under {MAX_ATTEMPTS} attempts; try again"
    )))
}
