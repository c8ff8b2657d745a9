//! The embedded storage backend: one sled database in the data directory.

use std::path::Path;

use futures::FutureExt;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Backend, Batch, BatchConflict, CasConflict, Rows, StoreError, Write};

/// sled-backed [`Backend`]. sled batches fsyncs, so concurrent commits share one flush.
pub struct SledBackend {
    db: sled::Db,
}

impl SledBackend {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| StoreError::Backend(format!("opening {}: {e}", dir.display())))?;
        Ok(Self { db })
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db.insert(key, value).map_err(backend)?;
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.db.remove(key).map_err(backend)?.is_some())
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Rows, StoreError> {
        let mut out = Vec::new();
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match after {
            Some(after) => {
                let start = std::ops::Bound::Excluded(after.to_vec());
                Box::new(
                    self.db
                        .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded)),
                )
            }
            None => Box::new(self.db.scan_prefix(prefix)),
        };
        for entry in iter {
            let (key, value) = entry.map_err(backend)?;
            if !key.starts_with(prefix) {
                break;
            }
            if out.len() >= limit {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError> {
        let mut n = 0;
        for entry in self.db.scan_prefix(prefix).keys() {
            entry.map_err(backend)?;
            n += 1;
        }
        Ok(n)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), CasConflict>, StoreError> {
        let outcome = self
            .db
            .compare_and_swap(key, expected, new)
            .map_err(backend)?;
        Ok(outcome.map_err(|_| CasConflict))
    }

    fn apply(&self, batch: &Batch) -> Result<Result<(), BatchConflict>, StoreError> {
        // sled transactions take its concurrency-control write lock, so they are atomic
        // against plain writes and compare-and-swaps too, not only against each other.
        let outcome = self.db.transaction(|tx| {
            for (index, check) in batch.checks.iter().enumerate() {
                let current = tx.get(check.key())?;
                if !check.holds(current.as_deref()) {
                    return Err(ConflictableTransactionError::Abort(BatchConflict {
                        index,
                        key: check.key().to_vec(),
                    }));
                }
            }
            for write in &batch.writes {
                match write {
                    Write::Put(key, value) => {
                        tx.insert(key.as_slice(), value.as_slice())?;
                    }
                    Write::Delete(key) => {
                        tx.remove(key.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(conflict)) => Ok(Err(conflict)),
            Err(TransactionError::Storage(e)) => Err(backend(e)),
        }
    }

    fn delete_prefix(&self, prefix: &[u8]) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in self.db.scan_prefix(prefix).keys() {
            self.db.remove(key.map_err(backend)?).map_err(backend)?;
            removed += 1;
        }
        Ok(removed)
    }

    fn flush(&self) -> futures::future::BoxFuture<'_, Result<(), StoreError>> {
        // Not `flush_async`: it waits on sled's own small I/O pool, and a few dozen
        // concurrent commits (a burst of change orders) left every pool thread waiting
        // for a write only another pool thread could make — a deadlock. The blocking
        // flush waits on a tokio blocking thread instead; sled still shares one fsync
        // between the commits that overlap.
        let db = self.db.clone();
        async move {
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|e| StoreError::Backend(format!("flush task: {e}")))?
                .map_err(backend)?;
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempdir::Dir, SledBackend) {
        let dir = tempdir::Dir::new();
        let backend = SledBackend::open(dir.path()).expect("open sled");
        (dir, backend)
    }

    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path =
                    std::env::temp_dir().join(format!("wharf-store-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).expect("create temp dir");
                Self(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn scan_pages_stay_inside_the_prefix() {
        let (_dir, db) = open();
        for key in ["a/1", "a/2", "a/3", "b/1"] {
            db.put(key.as_bytes(), b"x").unwrap();
        }
        let first = db.scan(b"a/", None, 2).unwrap();
        assert_eq!(first.len(), 2);
        let rest = db.scan(b"a/", Some(&first[1].0), 10).unwrap();
        assert_eq!(
            rest.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>(),
            vec![b"a/3".as_slice()]
        );
        assert_eq!(db.count(b"a/").unwrap(), 3);
    }

    #[test]
    fn a_batch_writes_all_or_nothing() {
        let (_dir, db) = open();
        db.put(b"taken", b"1").unwrap();
        let refused = Batch::new()
            .absent("free")
            .absent("taken")
            .put_raw("free", b"x".to_vec())
            .put_raw("other", b"y".to_vec());
        let conflict = db.apply(&refused).unwrap().unwrap_err();
        assert_eq!(
            (conflict.index, conflict.key.as_slice()),
            (1, b"taken".as_slice())
        );
        assert_eq!(db.get(b"free").unwrap(), None, "nothing written");
        assert_eq!(db.get(b"other").unwrap(), None, "nothing written");

        let accepted = Batch::new()
            .equals("taken", b"1".to_vec())
            .present("taken")
            .put_raw("free", b"x".to_vec())
            .delete("taken");
        db.apply(&accepted).unwrap().unwrap();
        assert_eq!(db.get(b"free").unwrap().as_deref(), Some(b"x".as_slice()));
        assert_eq!(db.get(b"taken").unwrap(), None);
    }

    #[test]
    fn concurrent_batches_claim_a_key_once() {
        let (_dir, db) = open();
        let db = std::sync::Arc::new(db);
        let winners: usize = (0..16)
            .map(|i| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let batch = Batch::new()
                        .absent("name")
                        .put_raw("name", format!("{i}").into_bytes())
                        .put_raw(&format!("row/{i}"), b"r".to_vec());
                    db.apply(&batch).unwrap().is_ok() as usize
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
        assert_eq!(db.count(b"row/").unwrap(), 1);
    }

    #[test]
    fn compare_and_swap_detects_conflicts() {
        let (_dir, db) = open();
        assert_eq!(db.compare_and_swap(b"k", None, Some(b"1")).unwrap(), Ok(()));
        assert_eq!(
            db.compare_and_swap(b"k", None, Some(b"2")).unwrap(),
            Err(CasConflict)
        );
        assert_eq!(db.compare_and_swap(b"k", Some(b"1"), None).unwrap(), Ok(()));
        assert_eq!(db.get(b"k").unwrap(), None);
    }
}
