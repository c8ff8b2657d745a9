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

/// What a [`Batch`] requires of one key before it writes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The key does not exist.
    Absent(Vec<u8>),
    /// The key exists, whatever its value.
    Present(Vec<u8>),
    /// The key holds exactly this value.
    Equals(Vec<u8>, Vec<u8>),
}

impl Check {
    pub fn key(&self) -> &[u8] {
        match self {
            Check::Absent(k) | Check::Present(k) | Check::Equals(k, _) => k,
        }
    }

    /// Whether `current` (the key's value, `None` = absent) satisfies the check.
    pub fn holds(&self, current: Option<&[u8]>) -> bool {
        match self {
            Check::Absent(_) => current.is_none(),
            Check::Present(_) => current.is_some(),
            Check::Equals(_, v) => current == Some(v.as_slice()),
        }
    }
}

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// A conditional multi-key write: every check holds and every write happens, atomically,
/// or nothing is written. This is what uniqueness and cross-entity rules rest on, on one
/// host or several (PostgreSQL runs it as one serializable transaction).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
}

/// The check of a [`Batch`] that did not hold; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConflict {
    /// Position of the failed check in [`Batch::checks`].
    pub index: usize,
    pub key: Vec<u8>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to be absent.
    pub fn absent(mut self, key: &str) -> Self {
        self.checks.push(Check::Absent(key.as_bytes().to_vec()));
        self
    }

    /// Requires `key` to exist.
    pub fn present(mut self, key: &str) -> Self {
        self.checks.push(Check::Present(key.as_bytes().to_vec()));
        self
    }

    /// Requires `key` to hold exactly `value` (bytes as read, e.g. from [`Store::get_raw`]).
    pub fn equals(mut self, key: &str, value: Vec<u8>) -> Self {
        self.checks
            .push(Check::Equals(key.as_bytes().to_vec(), value));
        self
    }

    /// Requires `key` to still hold what was read: `None` = still absent.
    pub fn unchanged(self, key: &str, read: Option<Vec<u8>>) -> Self {
        match read {
            Some(value) => self.equals(key, value),
            None => self.absent(key),
        }
    }

    pub fn put_raw(mut self, key: &str, value: Vec<u8>) -> Self {
        self.writes.push(Write::Put(key.as_bytes().to_vec(), value));
        self
    }

    pub fn put_json<T: Serialize>(self, key: &str, value: &T) -> Result<Self, StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(self.put_raw(key, bytes))
    }

    pub fn delete(mut self, key: &str) -> Self {
        self.writes.push(Write::Delete(key.as_bytes().to_vec()));
        self
    }

    /// Appends another batch's checks and writes.
    pub fn merge(mut self, other: Batch) -> Self {
        self.checks.extend(other.checks);
        self.writes.extend(other.writes);
        self
    }
}

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
    /// Applies `batch` atomically: all its checks hold and all its writes happen, or it
    /// answers the first check that failed and writes nothing.
    fn apply(&self, batch: &Batch) -> Result<Result<(), BatchConflict>, StoreError>;
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

    /// The stored bytes at `key`, for a later [`Batch::unchanged`] check.
    pub fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.get(key.as_bytes())
    }

    /// Applies a conditional batch (not yet durable: [`Store::commit`] before acking).
    pub fn apply(&self, batch: &Batch) -> Result<Result<(), BatchConflict>, StoreError> {
        self.backend.apply(batch)
    }

    /// Reads the JSON value at `key`, lets `change` decide its new value (`None` deletes)
    /// and writes it only if nobody changed the key meanwhile, retrying on a lost race.
    /// `change` may refuse with an error of its own; it runs once per attempt.
    pub fn update_json<T, E>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<StoreError>,
    {
        loop {
            let read = self.get_raw(key)?;
            let current = match &read {
                None => None,
                Some(bytes) => {
                    Some(
                        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                            key: key.to_owned(),
                            reason: e.to_string(),
                        })?,
                    )
                }
            };
            let next = change(current)?;
            let bytes = match &next {
                None => None,
                Some(value) => Some(
                    serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?,
                ),
            };
            match self.backend.compare_and_swap(
                key.as_bytes(),
                read.as_deref(),
                bytes.as_deref(),
            )? {
                Ok(()) => return Ok(next),
                Err(CasConflict) => continue,
            }
        }
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
