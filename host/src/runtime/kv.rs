//! The `wharf:host/kv` interface: a durable key-value namespace private to each plugin.
//!
//! Keys live under `v1/plugin-kv/<plugin id>/` in the host store, so a plugin can neither
//! see nor touch another plugin's data, and the namespace survives upgrades. Keys are at
//! most [`MAX_KEY_BYTES`], values at most [`MAX_VALUE_BYTES`]; each call counts against
//! the invocation's host-call budget. Writes are made durable when the invocation ends,
//! before its result is returned to anyone.

use crate::store::{Store, StoreError};

use super::bindings::HostError;
use super::bindings::host::wharf::host::kv::{Host, KeyPage};
use super::state::CallBudget;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Most keys one `list-prefix` page returns.
pub const MAX_PAGE: u32 = 1000;

/// The storage prefix of one plugin.
#[derive(Clone)]
pub struct KvNamespace {
    store: Store,
    prefix: String,
}

impl KvNamespace {
    pub fn new(store: Store, plugin_id: &str) -> Self {
        Self {
            store,
            prefix: format!("{}/", Store::key(&["plugin-kv", plugin_id])),
        }
    }

    fn full_key(&self, key: &str) -> Result<Vec<u8>, HostError> {
        if key.is_empty() {
            return Err(HostError::InvalidArgument("key: must not be empty".into()));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(HostError::LimitExceeded(format!(
                "key: {} bytes, the limit is {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        Ok(format!("{}{key}", self.prefix).into_bytes())
    }

    /// Removes the whole namespace (on uninstall).
    pub fn clear(&self) -> Result<usize, StoreError> {
        self.store.backend().delete_prefix(self.prefix.as_bytes())
    }
}

fn check_value(value: &[u8]) -> Result<(), HostError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(HostError::LimitExceeded(format!(
            "value: {} bytes, the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

fn unavailable(e: StoreError) -> HostError {
    tracing::warn!(error = %e, "plugin kv call failed");
    HostError::Unavailable("storage is unavailable".into())
}

/// What a call's `kv` import sees.
pub struct KvView<'a> {
    pub namespace: &'a KvNamespace,
    pub budget: &'a mut CallBudget,
}

impl KvView<'_> {
    fn charge(&mut self) -> Result<(), HostError> {
        self.budget.take_host_call()
    }
}

impl Host for KvView<'_> {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        self.charge()?;
        let key = self.namespace.full_key(&key)?;
        self.namespace
            .store
            .backend()
            .get(&key)
            .map_err(unavailable)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        self.charge()?;
        let key = self.namespace.full_key(&key)?;
        check_value(&value)?;
        self.namespace
            .store
            .backend()
            .put(&key, &value)
            .map_err(unavailable)?;
        self.budget.wrote_kv = true;
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<bool, HostError> {
        self.charge()?;
        let key = self.namespace.full_key(&key)?;
        let existed = self
            .namespace
            .store
            .backend()
            .delete(&key)
            .map_err(unavailable)?;
        self.budget.wrote_kv = true;
        Ok(existed)
    }

    fn list_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, HostError> {
        self.charge()?;
        if prefix.len() > MAX_KEY_BYTES {
            return Err(HostError::LimitExceeded(format!(
                "prefix: {} bytes, the limit is {MAX_KEY_BYTES}",
                prefix.len()
            )));
        }
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let full_prefix = format!("{}{prefix}", self.namespace.prefix).into_bytes();
        let after = match &cursor {
            Some(c) => Some(self.namespace.full_key(c)?),
            None => None,
        };
        // One extra row tells whether another page exists.
        let mut rows = self
            .namespace
            .store
            .backend()
            .scan(&full_prefix, after.as_deref(), limit + 1)
            .map_err(unavailable)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let strip = self.namespace.prefix.len();
        let keys: Vec<String> = rows
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[strip..]).into_owned())
            .collect();
        let next_cursor = if more { keys.last().cloned() } else { None };
        Ok(KeyPage { keys, next_cursor })
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        replacement: Option<Vec<u8>>,
    ) -> Result<bool, HostError> {
        self.charge()?;
        let key = self.namespace.full_key(&key)?;
        if let Some(value) = &replacement {
            check_value(value)?;
        }
        let swapped = self
            .namespace
            .store
            .backend()
            .compare_and_swap(&key, expected.as_deref(), replacement.as_deref())
            .map_err(unavailable)?
            .is_ok();
        self.budget.wrote_kv |= swapped;
        Ok(swapped)
    }
}
