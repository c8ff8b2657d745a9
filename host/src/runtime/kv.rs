//! The `wharf:host/kv` interface: a durable key-value namespace private to each plugin.
//!
//! Keys live under `v1/plugin-kv/<plugin id>/` in the host store, so a plugin can neither
//! see nor touch another plugin's data, and the namespace survives upgrades. Keys are at
//! most [`MAX_KEY_BYTES`], values at most [`MAX_VALUE_BYTES`]; each call counts against
//! the invocation's host-call budget. Writes are made durable when the invocation ends,
//! before its result is returned to anyone.
//!
//! Each namespace has a quota of total bytes (key plus value of every entry) and of keys
//! (see `limits.rs`); a write that would grow past either answers `limit-exceeded`, while
//! writes that shrink the namespace always pass. Usage is a stored record at
//! `v1/plugin-kv-usage/<plugin id>` that every write updates in the same conditional
//! [`Batch`] as the entry, conditioned on both being unchanged since they were read, so
//! concurrent calls (on one host or several) can never lose an update. A namespace
//! without a record (written before quotas existed) is measured once, and the record
//! created on the condition that nobody created it meanwhile.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::store::{Batch, Store, StoreError};

use super::bindings::HostError;
use super::bindings::host::wharf::host::kv::{Host, KeyPage};
use super::journal::{Journal, journaled};
use super::state::CallBudget;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Most keys one `list-prefix` page returns.
pub const MAX_PAGE: u32 = 1000;
/// Attempts of a write that keeps losing races before it answers `unavailable`.
const MAX_WRITE_ATTEMPTS: usize = 64;

/// What a namespace may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    pub max_bytes: u64,
    pub max_keys: u64,
}

/// What a namespace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KvUsage {
    /// Key plus value bytes of every entry.
    pub bytes: u64,
    pub keys: u64,
}

impl KvUsage {
    /// The usage after an entry of `before` bytes (None: absent) becomes `after` bytes.
    fn replacing(self, before: Option<u64>, after: Option<u64>) -> KvUsage {
        let bytes = self.bytes.saturating_sub(before.unwrap_or(0)) + after.unwrap_or(0);
        let keys =
            self.keys - u64::from(before.is_some()).min(self.keys) + u64::from(after.is_some());
        KvUsage { bytes, keys }
    }

    /// Why `next` may not replace `self` under `quota`, if it may not.
    fn refuse(self, next: KvUsage, quota: KvQuota) -> Option<HostError> {
        if next.bytes > quota.max_bytes && next.bytes > self.bytes {
            return Some(HostError::LimitExceeded(format!(
                "kv namespace bytes: {} of {} in use, this write needs {} more",
                self.bytes,
                quota.max_bytes,
                next.bytes - self.bytes
            )));
        }
        if next.keys > quota.max_keys && next.keys > self.keys {
            return Some(HostError::LimitExceeded(format!(
                "kv namespace keys: {} of {} in use",
                self.keys, quota.max_keys
            )));
        }
        None
    }
}

/// Bytes an entry counts for.
fn entry_bytes(key: &str, value_len: usize) -> u64 {
    (key.len() + value_len) as u64
}

/// The storage prefix of one plugin.
#[derive(Clone)]
pub struct KvNamespace {
    store: Store,
    prefix: String,
    usage_key: String,
    quota: KvQuota,
    /// False while `meta.info` runs at install: the package is not trusted with any
    /// grant yet, so every call is refused.
    granted: bool,
}

impl KvNamespace {
    pub fn new(store: Store, plugin_id: &str, quota: KvQuota) -> Self {
        Self {
            store,
            prefix: format!("{}/", Store::key(&["plugin-kv", plugin_id])),
            usage_key: Store::key(&["plugin-kv-usage", plugin_id]),
            quota,
            granted: true,
        }
    }

    /// A namespace every call of which is refused (install-time inspection).
    pub fn refused(store: Store, plugin_id: &str) -> Self {
        Self {
            granted: false,
            ..Self::new(
                store,
                plugin_id,
                KvQuota {
                    max_bytes: 0,
                    max_keys: 0,
                },
            )
        }
    }

    fn check_granted(&self) -> Result<(), HostError> {
        if self.granted {
            Ok(())
        } else {
            Err(HostError::AccessDenied(
                "kv: a package is inspected at install without any grant".into(),
            ))
        }
    }

    fn full_key(&self, key: &str) -> Result<String, HostError> {
        self.check_granted()?;
        if key.is_empty() {
            return Err(HostError::InvalidArgument("key: must not be empty".into()));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(HostError::LimitExceeded(format!(
                "key: {} bytes, the limit is {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        Ok(format!("{}{key}", self.prefix))
    }

    /// Removes the whole namespace and its usage record (on uninstall).
    pub fn clear(&self) -> Result<usize, StoreError> {
        let removed = self.store.backend().delete_prefix(self.prefix.as_bytes())?;
        self.store.delete(&self.usage_key)?;
        Ok(removed)
    }

    /// What the namespace holds now.
    pub fn usage(&self) -> Result<KvUsage, StoreError> {
        Ok(self.read_usage()?.1)
    }

    pub fn quota(&self) -> KvQuota {
        self.quota
    }

    /// The stored usage record as read (for a later `unchanged` check) and its value; a
    /// namespace without one is measured.
    fn read_usage(&self) -> Result<(Option<Vec<u8>>, KvUsage), StoreError> {
        let raw = self.store.get_raw(&self.usage_key)?;
        let usage = match &raw {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                key: self.usage_key.clone(),
                reason: e.to_string(),
            })?,
            None => self.measure()?,
        };
        Ok((raw, usage))
    }

    fn measure(&self) -> Result<KvUsage, StoreError> {
        let rows = self
            .store
            .backend()
            .scan(self.prefix.as_bytes(), None, usize::MAX)?;
        let strip = self.prefix.len();
        Ok(rows
            .iter()
            .fold(KvUsage::default(), |usage, (k, v)| KvUsage {
                bytes: usage.bytes + (k.len() - strip + v.len()) as u64,
                keys: usage.keys + 1,
            }))
    }

    /// Replaces the entry at `key` with `replacement` (None deletes) if it still holds
    /// what `expected` says (None: whatever it holds), within the quota. Returns what the
    /// entry held, or `None` when `expected` did not match (nothing written).
    fn write(
        &self,
        key: &str,
        expected: Expected<'_>,
        replacement: Option<&[u8]>,
    ) -> Result<Option<Option<Vec<u8>>>, HostError> {
        let full = self.full_key(key)?;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.store.get_raw(&full).map_err(unavailable)?;
            if let Expected::Exactly(wanted) = expected
                && current.as_deref() != wanted
            {
                return Ok(None);
            }
            if current.is_none() && replacement.is_none() {
                return Ok(Some(None));
            }
            let (usage_read, usage) = self.read_usage().map_err(unavailable)?;
            let next = usage.replacing(
                current.as_ref().map(|v| entry_bytes(key, v.len())),
                replacement.map(|v| entry_bytes(key, v.len())),
            );
            if let Some(refusal) = usage.refuse(next, self.quota) {
                return Err(refusal);
            }
            let batch = Batch::new()
                .unchanged(&full, current.clone())
                .unchanged(&self.usage_key, usage_read);
            let batch = match replacement {
                Some(value) => batch.put_raw(&full, value.to_vec()),
                None => batch.delete(&full),
            };
            let batch = batch
                .put_json(&self.usage_key, &next)
                .map_err(unavailable)?;
            match self.store.apply(&batch).map_err(unavailable)? {
                Ok(()) => return Ok(Some(current)),
                Err(_lost_a_race) => continue,
            }
        }
        Err(HostError::Unavailable(
            "kv: too many concurrent writes to this namespace; retry".into(),
        ))
    }
}

/// What a write requires of the entry's current value.
#[derive(Clone, Copy)]
enum Expected<'a> {
    Anything,
    /// This value (None: absent).
    Exactly(Option<&'a [u8]>),
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
    pub journal: Option<&'a Journal>,
}

impl KvView<'_> {
    fn charge(&mut self) -> Result<(), HostError> {
        self.budget.take_host_call()
    }
}

impl KvView<'_> {
    fn get_now(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        self.charge()?;
        let key = self.namespace.full_key(&key)?;
        self.namespace.store.get_raw(&key).map_err(unavailable)
    }

    fn set_now(&mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        self.charge()?;
        self.namespace.check_granted()?;
        check_value(&value)?;
        self.namespace
            .write(&key, Expected::Anything, Some(value.as_slice()))?;
        self.budget.wrote_kv = true;
        Ok(())
    }

    fn delete_now(&mut self, key: String) -> Result<bool, HostError> {
        self.charge()?;
        let existed = self
            .namespace
            .write(&key, Expected::Anything, None)?
            .flatten()
            .is_some();
        self.budget.wrote_kv |= existed;
        Ok(existed)
    }

    fn list_prefix_now(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, HostError> {
        self.charge()?;
        self.namespace.check_granted()?;
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
            .scan(
                &full_prefix,
                after.as_ref().map(|a| a.as_bytes()),
                limit + 1,
            )
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

    fn compare_and_swap_now(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        replacement: Option<Vec<u8>>,
    ) -> Result<bool, HostError> {
        self.charge()?;
        self.namespace.check_granted()?;
        if let Some(value) = &replacement {
            check_value(value)?;
        }
        let swapped = self
            .namespace
            .write(
                &key,
                Expected::Exactly(expected.as_deref()),
                replacement.as_deref(),
            )?
            .is_some();
        self.budget.wrote_kv |= swapped;
        Ok(swapped)
    }
}

fn diverged<T>(why: String) -> Result<T, HostError> {
    Err(HostError::Unavailable(format!("replay diverged: {why}")))
}

impl Host for KvView<'_> {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        journaled!(
            self.journal,
            "kv.get",
            json!([&key]),
            diverged,
            self.get_now(key)
        )
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        journaled!(
            self.journal,
            "kv.set",
            json!([&key, &value]),
            diverged,
            self.set_now(key, value)
        )
    }

    fn delete(&mut self, key: String) -> Result<bool, HostError> {
        journaled!(
            self.journal,
            "kv.delete",
            json!([&key]),
            diverged,
            self.delete_now(key)
        )
    }

    fn list_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, HostError> {
        journaled!(
            self.journal,
            "kv.list-prefix",
            json!([&prefix, &cursor, limit]),
            diverged,
            self.list_prefix_now(prefix, cursor, limit)
        )
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        replacement: Option<Vec<u8>>,
    ) -> Result<bool, HostError> {
        journaled!(
            self.journal,
            "kv.compare-and-swap",
            json!([&key, &expected, &replacement]),
            diverged,
            self.compare_and_swap_now(key, expected, replacement)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: KvQuota = KvQuota {
        max_bytes: 1 << 24,
        max_keys: 1000,
    };

    fn namespace(plugin: &str, store: &Store) -> KvNamespace {
        KvNamespace::new(store.clone(), plugin, ROOMY)
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
            journal: None,
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
            journal: None,
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
            journal: None,
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
    fn the_quota_refuses_growth_and_usage_follows_every_write() {
        let (dir, store) = temp_store();
        let quota = KvQuota {
            max_bytes: 100,
            max_keys: 3,
        };
        let ns = KvNamespace::new(store.clone(), "epsilon", quota);
        let mut budget = CallBudget::new(0, 100);
        let mut kv = KvView {
            journal: None,
            namespace: &ns,
            budget: &mut budget,
        };
        kv.set("a".into(), vec![0; 49]).unwrap();
        kv.set("b".into(), vec![0; 49]).unwrap();
        assert_eq!(
            ns.usage().unwrap(),
            KvUsage {
                bytes: 100,
                keys: 2
            }
        );
        assert!(matches!(
            kv.set("c".into(), vec![0; 1]),
            Err(HostError::LimitExceeded(_))
        ));
        // Shrinking passes, and frees room.
        kv.set("a".into(), vec![0; 9]).unwrap();
        kv.set("c".into(), vec![0; 9]).unwrap();
        assert!(matches!(
            kv.set("d".into(), vec![]),
            Err(HostError::LimitExceeded(_))
        ));
        assert!(kv.delete("b".into()).unwrap());
        assert!(
            kv.compare_and_swap("d".into(), None, Some(vec![1]))
                .unwrap()
        );
        assert_eq!(ns.usage().unwrap(), KvUsage { bytes: 22, keys: 3 });
        // A namespace written before quotas existed is measured.
        store.delete(&ns.usage_key).unwrap();
        assert_eq!(ns.usage().unwrap(), KvUsage { bytes: 22, keys: 3 });
        ns.clear().unwrap();
        assert_eq!(ns.usage().unwrap(), KvUsage::default());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn concurrent_writers_keep_usage_exact() {
        let (dir, store) = temp_store();
        let ns = namespace("zeta", &store);
        std::thread::scope(|scope| {
            for writer in 0..8 {
                let ns = &ns;
                scope.spawn(move || {
                    let mut budget = CallBudget::new(0, 1000);
                    let mut kv = KvView {
                        journal: None,
                        namespace: ns,
                        budget: &mut budget,
                    };
                    for i in 0..50 {
                        kv.set(format!("k{}", i % 20), vec![writer as u8; 10 + i])
                            .unwrap();
                    }
                });
            }
        });
        let measured = ns.measure().unwrap();
        assert_eq!(ns.usage().unwrap(), measured);
        assert_eq!(measured.keys, 20);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_inspected_package_gets_no_kv() {
        let (dir, store) = temp_store();
        let ns = KvNamespace::refused(store.clone(), "eta");
        let mut budget = CallBudget::new(0, 100);
        let mut kv = KvView {
            journal: None,
            namespace: &ns,
            budget: &mut budget,
        };
        assert!(matches!(
            kv.set("k".into(), vec![1]),
            Err(HostError::AccessDenied(_))
        ));
        assert!(matches!(
            kv.get("k".into()),
            Err(HostError::AccessDenied(_))
        ));
        assert!(matches!(
            kv.list_prefix(String::new(), None, 10),
            Err(HostError::AccessDenied(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_host_call_budget_ends_a_flood() {
        let (dir, store) = temp_store();
        let ns = namespace("delta", &store);
        let mut budget = CallBudget::new(0, 3);
        let mut kv = KvView {
            journal: None,
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
