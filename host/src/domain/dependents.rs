//! Parent–child rules that must hold with several hosts on one store: "a project that owns
//! apps cannot be deleted", "an app is created only in a project that exists".
//!
//! A parent keeps, at `v1/dependents/<parent>`, how many children of each kind it has.
//! Every batch that creates or removes a child rewrites that count on the condition that
//! it is still what was read, and the batch that removes the parent requires the count as
//! read to be zero. A child created while its parent is being removed therefore makes one
//! of the two batches conflict, whichever host runs them; the loser reads again.
//!
//! Parents written before counts existed have none: the first reader counts the
//! children by scanning their prefixes and writes the count under an `absent` check, so
//! two first readers cannot both install one.

use std::collections::BTreeMap;

use crate::store::{Batch, Store, StoreError};

/// The children counts of one parent, as read, and as a batch will leave them.
#[derive(Debug)]
pub struct Dependents {
    key: String,
    read: Option<Vec<u8>>,
    counts: BTreeMap<String, u64>,
}

impl Dependents {
    /// Reads the counts of `parent` (e.g. `project:shop`); `kinds` names each kind of
    /// child with the key prefix its records live under, for parents without a count yet.
    pub fn read(store: &Store, parent: &str, kinds: &[(&str, String)]) -> Result<Self, StoreError> {
        let key = Store::key(&["dependents", parent]);
        let read = store.get_raw(&key)?;
        let counts = match &read {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?,
            None => {
                let mut counts = BTreeMap::new();
                for (kind, prefix) in kinds {
                    let n = store.backend().count(prefix.as_bytes())? as u64;
                    counts.insert((*kind).to_owned(), n);
                }
                counts
            }
        };
        Ok(Self { key, read, counts })
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// The first kind that has children, with how many.
    pub fn any(&self) -> Option<(&str, u64)> {
        self.counts
            .iter()
            .find(|(_, n)| **n > 0)
            .map(|(k, n)| (k.as_str(), *n))
    }

    /// One more child of `kind`.
    pub fn add(mut self, kind: &str) -> Self {
        *self.counts.entry(kind.to_owned()).or_default() += 1;
        self
    }

    /// One child of `kind` fewer.
    pub fn remove(mut self, kind: &str) -> Self {
        let n = self.counts.entry(kind.to_owned()).or_default();
        *n = n.saturating_sub(1);
        self
    }

    /// `batch` plus the check that the counts are still as read and the write of the
    /// new counts.
    pub fn write(self, batch: Batch) -> Result<Batch, StoreError> {
        let key = self.key.clone();
        batch
            .unchanged(&key, self.read)
            .put_json(&key, &self.counts)
    }

    /// `batch` plus the check that the counts are still as read and their removal (with
    /// the parent itself).
    pub fn remove_all(self, batch: Batch) -> Batch {
        let key = self.key.clone();
        batch.unchanged(&key, self.read).delete(&key)
    }
}

/// Whether a batch conflict was on one of the keys a caller retries on (counts and
/// records read before the batch), as opposed to a rule the caller reports.
pub fn is_dependents_key(key: &[u8]) -> bool {
    key.starts_with(format!("{}/", Store::key(&["dependents"])).as_bytes())
}
