//! The audit log: an append-only record of every mutation and every denied attempt.
//!
//! Files: `mod.rs` (the record types, writing: write-ahead intents, completions, system
//! records, crash recovery), `scan.rs` (reading: cursor pages and streams, newest first,
//! and the retention sweep), `denials.rs` (anonymous 401s counted per source and window
//! instead of written one by one).
//!
//! Keys are `v1/audit-log/<newest-first time>-<uuid>`: the time part is `10^20 - 1 - unix
//! nanos`, zero-padded, so a forward scan of the store (all [`crate::store::Backend::scan`]
//! offers) reads the newest record first, a page's last key is the next page's cursor,
//! and retention drops the tail. Release 1 keyed by plain time under `v1/audit/`;
//! [`AuditLog::prepare`] moves such records at start.
//!
//! A request cannot mutate without its record (write-ahead): the guard first writes an
//! intent ([`AuditLog::begin`], outcome `pending`) and makes it durable before the
//! handler runs, so even a handler whose effect is outside the store (a cluster apply, a
//! plugin call) has its record on disk first; if that write fails the handler does not
//! run (503). Afterwards the guard completes the same key with the outcome and detail
//! ([`AuditLog::complete`]); if that fails the request fails (500) and the record stays
//! `pending`. An intent also writes a marker under `v1/audit-pending/`, removed by its
//! completion in the same batch, so after a crash [`AuditLog::prepare`] finds the
//! records left pending without reading the log and marks them `interrupted`: the
//! mutation may or may not have happened, and the record says so. (With several hosts on
//! one backend, the marker will have to name the host that wrote it.)
//! Nothing in the API modifies or deletes a record; only the retention sweep removes
//! records older than the configured number of days.

mod denials;
mod scan;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::store::{Batch, Store, StoreError};

pub use denials::DEFAULT_DENIAL_WINDOW;
pub use scan::{Cursor, InvalidCursor, RecordPage, Records};

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    Denied,
    Error,
    /// Written before the handler ran; the request is still being served.
    Pending,
    /// Was still pending when the server stopped: the request may or may not have taken
    /// effect.
    Interrupted,
}

impl Outcome {
    /// The outcome named `name` in queries.
    pub fn parse(name: &str) -> Option<Outcome> {
        Some(match name {
            "ok" => Outcome::Ok,
            "denied" => Outcome::Denied,
            "error" => Outcome::Error,
            "pending" => Outcome::Pending,
            "interrupted" => Outcome::Interrupted,
            _ => return None,
        })
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `user`, `anonymous` or `system`.
    pub kind: String,
    pub id: Option<String>,
    pub name: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            kind: "system".into(),
            id: None,
            name: "wharf".into(),
        }
    }

    pub fn anonymous() -> Actor {
        Actor {
            kind: "anonymous".into(),
            id: None,
            name: "anonymous".into(),
        }
    }

    pub fn user(id: &str, name: &str) -> Actor {
        Actor {
            kind: "user".into(),
            id: Some(id.to_owned()),
            name: name.to_owned(),
        }
    }
}

/// One audit record: an [`Entry`] stamped with id and time (same JSON fields, flattened).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub time: OffsetDateTime,
    #[serde(flatten)]
    pub entry: Entry,
}

/// What happened, before it is stamped with id and time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub actor: Actor,
    /// `resource.verb`, e.g. `plugin.enable`.
    pub action: String,
    /// What was acted on, e.g. `plugin:hello`.
    pub target: String,
    pub outcome: Outcome,
    /// The problem `code` when the outcome is not `ok`.
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub source_address: Option<String>,
    /// `id@version` of the plugin that decided or acted, if any.
    pub plugin: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// How many attempts this record stands for, when it counts several (unauthenticated
    /// denials of one source, action and target within one window; `time` is the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Entry {
    /// An entry with only the essentials; fill in the rest with struct update syntax.
    pub fn new(actor: Actor, action: &str, target: &str, outcome: Outcome) -> Entry {
        Entry {
            actor,
            action: action.to_owned(),
            target: target.to_owned(),
            outcome,
            error_code: None,
            request_id: None,
            source_address: None,
            plugin: None,
            before: None,
            after: None,
            count: None,
        }
    }
}

/// Filters of an audit query; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub actor: Option<String>,
    pub action_prefix: Option<String>,
    pub target_prefix: Option<String>,
    pub outcome: Option<Outcome>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl Query {
    fn matches(&self, r: &Entry) -> bool {
        self.actor
            .as_ref()
            .is_none_or(|a| *a == r.actor.name || r.actor.id.as_ref() == Some(a))
            && self
                .action_prefix
                .as_ref()
                .is_none_or(|p| r.action.starts_with(p.as_str()))
            && self
                .target_prefix
                .as_ref()
                .is_none_or(|p| r.target.starts_with(p.as_str()))
            && self.outcome.is_none_or(|o| o == r.outcome)
    }
}

fn prefix() -> String {
    format!("{}/", Store::key(&["audit-log"]))
}

fn pending_prefix() -> String {
    format!("{}/", Store::key(&["audit-pending"]))
}

/// Release 1's keys: `v1/audit/<unix nanos>-<uuid>`, oldest first.
fn legacy_prefix() -> String {
    format!("{}/", Store::key(&["audit"]))
}

/// The newest-first time part of a key: later times sort first.
fn descending(time: OffsetDateTime) -> String {
    const END: u128 = 100_000_000_000_000_000_000 - 1; // 10^20 - 1: 20 digits until year 5138
    let nanos = u128::try_from(time.unix_timestamp_nanos()).unwrap_or(0);
    format!("{:020}", END.saturating_sub(nanos))
}

/// The part of a record's key after the prefix (what a cursor names).
fn suffix(time: OffsetDateTime, id: &str) -> String {
    format!("{}-{id}", descending(time))
}

fn corrupt(key: &[u8], error: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: error.to_string(),
    }
}

/// Adds the write of `record` under its key to `batch`.
fn put(batch: Batch, record: &Record) -> Result<Batch, StoreError> {
    let key = format!("{}{}", prefix(), suffix(record.time, &record.id));
    let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(batch.put_raw(&key, bytes))
}

/// A request's record between [`AuditLog::begin`] and [`AuditLog::complete`].
#[derive(Debug)]
pub struct Intent {
    suffix: String,
    id: String,
    time: OffsetDateTime,
}

/// What [`AuditLog::prepare`] did at start.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// Records left pending by a crash, now `interrupted`.
    pub interrupted: usize,
    /// Release 1 records moved to the newest-first keys.
    pub migrated: usize,
}

/// The audit log over the host store.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    denials: Arc<denials::Denials>,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        Self::with_denial_window(store, DEFAULT_DENIAL_WINDOW)
    }

    /// A log that counts unauthenticated denials per `window` (see `denials.rs`).
    pub fn with_denial_window(store: Store, window: Duration) -> Self {
        Self {
            denials: Arc::new(denials::Denials::new(store.clone(), window)),
            store,
        }
    }

    /// Appends a record durably: for what the system does on its own (an auto-disable, a
    /// rollout step). Failures are logged; the action being recorded already happened.
    pub async fn record(&self, entry: Entry) {
        let record = Record {
            id: uuid::Uuid::new_v4().to_string(),
            time: OffsetDateTime::now_utc(),
            entry,
        };
        let written = async {
            let batch = put(Batch::new(), &record)?;
            match self.store.apply(&batch)? {
                Ok(()) => self.store.commit().await,
                Err(conflict) => Err(StoreError::Backend(format!("{conflict:?}"))),
            }
        };
        if let Err(error) = written.await {
            tracing::error!(%error, action = %record.entry.action, "writing an audit record failed");
        }
    }

    /// Writes `entry` as `pending` and makes it durable: the intent a request's handler
    /// may run only after.
    pub async fn begin(&self, mut entry: Entry) -> Result<Intent, StoreError> {
        entry.outcome = Outcome::Pending;
        let record = Record {
            id: uuid::Uuid::new_v4().to_string(),
            time: OffsetDateTime::now_utc(),
            entry,
        };
        let intent = Intent {
            suffix: suffix(record.time, &record.id),
            id: record.id.clone(),
            time: record.time,
        };
        let marker = format!("{}{}", pending_prefix(), intent.suffix);
        let batch = put(Batch::new().absent(&marker), &record)?;
        self.store
            .apply(&batch.put_raw(&marker, Vec::new()))?
            .map_err(|conflict| {
                StoreError::Backend(format!("audit intent exists: {conflict:?}"))
            })?;
        self.store.commit().await?;
        Ok(intent)
    }

    /// Replaces the intent with how the request ended, durably.
    pub async fn complete(&self, intent: Intent, entry: Entry) -> Result<(), StoreError> {
        let record = Record {
            id: intent.id,
            time: intent.time,
            entry,
        };
        let marker = format!("{}{}", pending_prefix(), intent.suffix);
        let batch = put(Batch::new().present(&marker), &record)?.delete(&marker);
        self.store
            .apply(&batch)?
            .map_err(|_| StoreError::Backend("the audit intent was completed already".into()))?;
        self.store.commit().await
    }

    /// Counts an unauthenticated denial; its record is written when the window closes.
    pub fn unauthenticated(&self, entry: Entry) {
        self.denials.note(entry);
    }

    /// Writes the counted denials now (at shutdown).
    pub async fn flush_denials(&self) {
        self.denials.flush_all().await;
    }

    /// At start, before serving: moves release 1 records to the newest-first keys and
    /// marks the records a crash left pending as `interrupted`.
    pub async fn prepare(&self) -> Result<Prepared, StoreError> {
        let mut prepared = Prepared::default();
        let backend = self.store.backend();
        loop {
            let rows = backend.scan(legacy_prefix().as_bytes(), None, 256)?;
            if rows.is_empty() {
                break;
            }
            let mut batch = Batch::new();
            for (key, value) in &rows {
                let record: Record = serde_json::from_slice(value).map_err(|e| corrupt(key, e))?;
                batch = put(batch, &record)?;
                batch.writes.push(crate::store::Write::Delete(key.clone()));
            }
            self.store
                .apply(&batch)?
                .map_err(|c| StoreError::Backend(format!("{c:?}")))?;
            prepared.migrated += rows.len();
        }
        loop {
            let markers = backend.scan(pending_prefix().as_bytes(), None, 256)?;
            if markers.is_empty() {
                break;
            }
            let mut batch = Batch::new();
            for (marker, _) in &markers {
                let name = String::from_utf8_lossy(&marker[pending_prefix().len()..]).into_owned();
                let key = format!("{}{name}", prefix());
                batch
                    .writes
                    .push(crate::store::Write::Delete(marker.clone()));
                let Some(bytes) = backend.get(key.as_bytes())? else {
                    continue;
                };
                let mut record: Record =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(key.as_bytes(), e))?;
                record.entry.outcome = Outcome::Interrupted;
                record.entry.error_code = Some("interrupted".into());
                batch = put(batch, &record)?;
                prepared.interrupted += 1;
            }
            self.store
                .apply(&batch)?
                .map_err(|c| StoreError::Backend(format!("{c:?}")))?;
        }
        if prepared != Prepared::default() {
            self.store.commit().await?;
        }
        Ok(prepared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (std::path::PathBuf, AuditLog) {
        let dir = std::env::temp_dir().join(format!("wharf-audit-{}", uuid::Uuid::new_v4()));
        let log = AuditLog::new(Store::open_sled(&dir).unwrap());
        (dir, log)
    }

    #[tokio::test]
    async fn records_are_filtered_newest_first_and_purged_by_age() {
        let (dir, log) = open();
        log.record(Entry::new(
            Actor::user("1", "ann"),
            "plugin.enable",
            "plugin:hello",
            Outcome::Ok,
        ))
        .await;
        log.record(Entry::new(
            Actor::anonymous(),
            "plugin.enable",
            "plugin:hello",
            Outcome::Denied,
        ))
        .await;
        log.record(Entry::new(
            Actor::user("1", "ann"),
            "plugin-trust.add-key",
            "key:acme",
            Outcome::Ok,
        ))
        .await;

        let all = log.query(&Query::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].entry.action, "plugin-trust.add-key", "newest first");
        let by_ann = log
            .query(&Query {
                actor: Some("ann".into()),
                action_prefix: Some("plugin.".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(by_ann.len(), 1);
        let denied = log
            .query(&Query {
                outcome: Some(Outcome::Denied),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(denied[0].entry.actor.kind, "anonymous");
        let future = log
            .query(&Query {
                from: Some(OffsetDateTime::now_utc() + Duration::from_secs(60)),
                ..Default::default()
            })
            .unwrap();
        assert!(future.is_empty());
        let past = log
            .query(&Query {
                to: Some(OffsetDateTime::now_utc() - Duration::from_secs(60)),
                ..Default::default()
            })
            .unwrap();
        assert!(past.is_empty());

        assert_eq!(
            log.purge_older_than(Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(log.purge_older_than(Duration::ZERO).await.unwrap(), 3);
        assert!(log.query(&Query::default()).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_intent_left_pending_by_a_crash_is_marked_interrupted_at_start() {
        let (dir, log) = open();
        let entry = Entry::new(
            Actor::user("1", "ann"),
            "user.create",
            "system",
            Outcome::Ok,
        );
        let done = log.begin(entry.clone()).await.unwrap();
        log.complete(done, entry.clone()).await.unwrap();
        let _crashed = log.begin(entry).await.unwrap();
        let pending = log
            .query(&Query {
                outcome: Some(Outcome::Pending),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(pending.len(), 1);

        let prepared = log.prepare().await.unwrap();
        assert_eq!((prepared.interrupted, prepared.migrated), (1, 0));
        let all = log.query(&Query::default()).unwrap();
        let outcomes: Vec<Outcome> = all.iter().map(|r| r.entry.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Interrupted, Outcome::Ok]);
        assert_eq!(log.prepare().await.unwrap(), Prepared::default());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn release_one_records_move_to_newest_first_keys() {
        let (dir, log) = open();
        for (i, action) in ["a.first", "a.second"].iter().enumerate() {
            let record = Record {
                id: format!("id-{i}"),
                time: OffsetDateTime::now_utc() - Duration::from_secs(10 - i as u64),
                entry: Entry::new(Actor::system(), action, "system", Outcome::Ok),
            };
            let key = format!(
                "{}{:020}-{}",
                legacy_prefix(),
                record.time.unix_timestamp_nanos(),
                record.id
            );
            log.store.put_json(&key, &record).unwrap();
        }
        assert_eq!(log.prepare().await.unwrap().migrated, 2);
        let all = log.query(&Query::default()).unwrap();
        let actions: Vec<&str> = all.iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(actions, vec!["a.second", "a.first"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
