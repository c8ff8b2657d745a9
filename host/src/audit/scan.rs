//! Reading the audit log without holding it in memory: [`Records`] walks the store a
//! chunk at a time, newest first, from an optional cursor; pages and the export are
//! built on it. Also the retention sweep, which drops the log's oldest end.

use time::OffsetDateTime;

use super::{AuditLog, Query, Record, corrupt, descending, prefix};
use crate::store::{Batch, Store, StoreError, Write};

/// Rows read from the store per step.
const CHUNK: usize = 256;

/// Where a page ended: the key (after the log's prefix) of its last record. Opaque to
/// clients; only its shape is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

/// A cursor that no page of this log handed out.
#[derive(Debug, thiserror::Error)]
#[error("not a cursor of the audit log: pass `nextCursor` from the previous page")]
pub struct InvalidCursor;

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, InvalidCursor> {
        let (time, id) = text.split_once('-').ok_or(InvalidCursor)?;
        let well_formed = time.len() == 20
            && time.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if well_formed {
            Ok(Cursor(text.to_owned()))
        } else {
            Err(InvalidCursor)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page, newest first; `next` is set when more records match.
#[derive(Debug)]
pub struct RecordPage {
    pub records: Vec<Record>,
    pub next: Option<Cursor>,
}

/// The records matching a query, newest first, each with the cursor just past it.
pub struct Records {
    store: Store,
    query: Query,
    /// The last key read: the next chunk starts after it.
    after: Vec<u8>,
    chunk: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    /// No more chunks to read (the current one may still hold rows).
    exhausted: bool,
    finished: bool,
}

impl Iterator for Records {
    type Item = Result<(Cursor, Record), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let Some((key, value)) = self.chunk.next() else {
                if self.exhausted {
                    self.finished = true;
                    break;
                }
                match self
                    .store
                    .backend()
                    .scan(prefix().as_bytes(), Some(&self.after), CHUNK)
                {
                    Ok(rows) => {
                        self.exhausted = rows.len() < CHUNK;
                        self.chunk = rows.into_iter();
                    }
                    Err(error) => {
                        self.finished = true;
                        return Some(Err(error));
                    }
                }
                continue;
            };
            let record: Record = match serde_json::from_slice(&value) {
                Ok(record) => record,
                Err(error) => {
                    self.finished = true;
                    return Some(Err(corrupt(&key, error)));
                }
            };
            if self.query.from.is_some_and(|from| record.time < from) {
                self.finished = true;
                break;
            }
            let cursor = Cursor(String::from_utf8_lossy(&key[prefix().len()..]).into_owned());
            self.after = key;
            if self.query.matches(&record.entry) {
                return Some(Ok((cursor, record)));
            }
        }
        None
    }
}

impl AuditLog {
    /// The records matching `query`, newest first, after `cursor` if given.
    pub fn records(&self, query: &Query, cursor: Option<&Cursor>) -> Records {
        // A key `<prefix><time part>` sorts just before every record of that instant, so
        // starting after it skips exactly the records newer than `to`.
        let mut after = match query.to {
            Some(to) => format!("{}{}", prefix(), descending(to)),
            None => prefix(),
        };
        if let Some(cursor) = cursor {
            after = after.max(format!("{}{}", prefix(), cursor.as_str()));
        }
        Records {
            store: self.store.clone(),
            query: query.clone(),
            after: after.into_bytes(),
            chunk: Vec::new().into_iter(),
            exhausted: false,
            finished: false,
        }
    }

    /// Up to `size` records after `cursor`.
    pub fn page(
        &self,
        query: &Query,
        cursor: Option<&Cursor>,
        size: usize,
    ) -> Result<RecordPage, StoreError> {
        let mut records = Vec::with_capacity(size);
        let mut last = None;
        let mut matching = self.records(query, cursor);
        for item in matching.by_ref().take(size) {
            let (cursor, record) = item?;
            records.push(record);
            last = Some(cursor);
        }
        let more = matching.next().transpose()?.is_some();
        Ok(RecordPage {
            records,
            next: last.filter(|_| more),
        })
    }

    /// Every record matching `query`, newest first, in memory: for tests and small logs.
    pub fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        self.records(query, None)
            .map(|item| item.map(|(_, record)| record))
            .collect()
    }

    /// Removes records older than `retention`; returns how many.
    pub async fn purge_older_than(
        &self,
        retention: std::time::Duration,
    ) -> Result<usize, StoreError> {
        // `.` sorts after the `-` that follows a key's time part: start after every record
        // of the cutoff instant itself, so exactly the older ones go.
        let cutoff = format!(
            "{}{}.",
            prefix(),
            descending(OffsetDateTime::now_utc() - retention)
        );
        let mut removed = 0;
        loop {
            let rows =
                self.store
                    .backend()
                    .scan(prefix().as_bytes(), Some(cutoff.as_bytes()), CHUNK)?;
            if rows.is_empty() {
                break;
            }
            let mut batch = Batch::new();
            for (key, _) in &rows {
                batch.writes.push(Write::Delete(key.clone()));
            }
            self.store
                .apply(&batch)?
                .map_err(|c| StoreError::Backend(format!("{c:?}")))?;
            removed += rows.len();
        }
        if removed > 0 {
            self.store.commit().await?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Actor, Entry, Outcome};
    use super::*;

    #[tokio::test]
    async fn pages_follow_the_cursor_and_return_each_record_once() {
        let dir = std::env::temp_dir().join(format!("wharf-audit-{}", uuid::Uuid::new_v4()));
        let log = AuditLog::new(Store::open_sled(&dir).unwrap());
        for i in 0..(CHUNK + 20) {
            let action = if i % 2 == 0 { "even.do" } else { "odd.do" };
            log.record(Entry::new(
                Actor::system(),
                action,
                &format!("n:{i}"),
                Outcome::Ok,
            ))
            .await;
        }
        let query = Query {
            action_prefix: Some("even.".into()),
            ..Query::default()
        };
        let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = log.page(&query, cursor.as_ref(), 50).unwrap();
            pages += 1;
            seen.extend(page.records.into_iter().map(|r| r.entry.target));
            match page.next {
                Some(next) => cursor = Some(Cursor::parse(next.as_str()).unwrap()),
                None => break,
            }
        }
        let expected: Vec<String> = (0..(CHUNK + 20))
            .rev()
            .filter(|i| i % 2 == 0)
            .map(|i| format!("n:{i}"))
            .collect();
        assert_eq!(seen, expected, "newest first, each once");
        assert_eq!(pages, expected.len().div_ceil(50));
        assert!(Cursor::parse("../../v1/users/admin").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
