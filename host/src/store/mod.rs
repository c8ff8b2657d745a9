//! Durable key-value storage behind one small trait.
//!
//! Every piece of host state (users, tokens, plugin records, plugin kv namespaces) lives
//! here under keys that start with a schema version (`v1/…`), so a later release can
//! migrate by rewriting one prefix. The embedded backend is sled; a PostgreSQL backend
//! implements the same trait later. Writes become durable at [`Store::commit`]: callers
//! commit before they acknowledge, so a `kill -9` after a 2xx loses nothing.

mod sled_backend;

use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};

pub use sled_backend::SledBackend;

/// Version prefix of every key this release writes.
pub const SCHEMA: &str = "v1";

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("stored record at {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Key-value rows as a scan returns them.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A compare-and-swap that lost the race.
#[derive(Debug, PartialEq, Eq)]
pub struct CasConflict;

/// The operations a storage backend provides. Keys and values are bytes; ordering is
/// lexicographic on keys.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Returns whether the key existed.
    fn delete(&self, key: &[u8]) -> Result<bool, StoreError>;
    /// Entries whose key starts with `prefix` and sorts after `after`, at most `limit`.
    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Rows, StoreError>;
    /// Number of keys under `prefix`.
    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError>;
    /// Replaces the value only if the current one equals `expected` (`None` = absent);
    /// `new = None` deletes.
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), CasConflict>, StoreError>;
    /// Removes every key under `prefix`.
    fn delete_prefix(&self, prefix: &[u8]) -> Result<usize, StoreError>;
    /// Waits until every write made so far is on disk.
    fn flush(&self) -> futures::future::BoxFuture<'_, Result<(), StoreError>>;
}

/// The storage handle the host passes around: a backend plus JSON helpers.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    /// Opens the embedded sled store in `dir`.
    pub fn open_sled(dir: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self::new(Arc::new(SledBackend::open(dir)?)))
    }

    /// Builds a versioned key from path segments: `key(&["users", "admin"])` → `v1/users/admin`.
    pub fn key(segments: &[&str]) -> String {
        let mut key = String::from(SCHEMA);
        for segment in segments {
            key.push('/');
            key.push_str(segment);
        }
        key
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.backend.get(key.as_bytes())? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        key: key.to_owned(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    pub fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.backend.put(key.as_bytes(), &bytes)
    }

    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.backend.delete(key.as_bytes())
    }

    /// Every JSON value under `prefix`, in key order.
    pub fn list_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let rows = self.backend.scan(prefix.as_bytes(), None, usize::MAX)?;
        rows.into_iter()
            .map(|(key, value)| {
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Makes every write so far durable. Call before acknowledging a mutation.
    pub async fn commit(&self) -> Result<(), StoreError> {
        self.backend.flush().await
    }
}
