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

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(plugin: &str, store: &Store) -> KvNamespace {
        KvNamespace::new(store.clone(), plugin)
    }

    fn temp_store() -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("wharf-kv-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sled(&dir).expect("open store");
        (dir, store)
    }

    #[test]
    fn namespaces_are_private_and_capped() {
        let (dir, store) = temp_store();
        let (a, b) = (namespace("alpha", &store), namespace("beta", &store));
        let mut budget = CallBudget::new(0, 100);
        let mut view_a = KvView {
            namespace: &a,
            budget: &mut budget,
        };
        view_a.set("k".into(), b"1".to_vec()).unwrap();
        assert!(view_a.budget.wrote_kv);
        assert!(matches!(
            view_a.set(String::new(), vec![]),
            Err(HostError::InvalidArgument(_))
        ));
        assert!(matches!(
            view_a.set("x".repeat(MAX_KEY_BYTES + 1), vec![]),
            Err(HostError::LimitExceeded(_))
        ));
        assert!(matches!(
            view_a.set("big".into(), vec![0; MAX_VALUE_BYTES + 1]),
            Err(HostError::LimitExceeded(_))
        ));
        let mut budget = CallBudget::new(0, 100);
        let mut view_b = KvView {
            namespace: &b,
            budget: &mut budget,
        };
        assert_eq!(view_b.get("k".into()).unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn list_prefix_pages_with_a_cursor_and_cas_detects_changes() {
        let (dir, store) = temp_store();
        let ns = namespace("gamma", &store);
        let mut budget = CallBudget::new(0, 100);
        let mut kv = KvView {
            namespace: &ns,
            budget: &mut budget,
        };
        for key in ["job/1", "job/2", "job/3", "other"] {
            kv.set(key.into(), b"v".to_vec()).unwrap();
        }
        let first = kv.list_prefix("job/".into(), None, 2).unwrap();
        assert_eq!(first.keys, ["job/1", "job/2"]);
        let rest = kv.list_prefix("job/".into(), first.next_cursor, 2).unwrap();
        assert_eq!(
            (rest.keys.as_slice(), rest.next_cursor),
            (["job/3".to_owned()].as_slice(), None)
        );

        assert!(
            kv.compare_and_swap("lock".into(), None, Some(b"me".to_vec()))
                .unwrap()
        );
        assert!(
            !kv.compare_and_swap("lock".into(), None, Some(b"you".to_vec()))
                .unwrap()
        );
        assert!(
            kv.compare_and_swap("lock".into(), Some(b"me".to_vec()), None)
                .unwrap()
        );
        assert!(!kv.delete("lock".into()).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_host_call_budget_ends_a_flood() {
        let (dir, store) = temp_store();
        let ns = namespace("delta", &store);
        let mut budget = CallBudget::new(0, 3);
        let mut kv = KvView {
            namespace: &ns,
            budget: &mut budget,
        };
        for _ in 0..3 {
            kv.get("k".into()).unwrap();
        }
        assert!(matches!(
            kv.get("k".into()),
            Err(HostError::LimitExceeded(_))
        ));
        assert_eq!(budget.refused_host_calls, 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
