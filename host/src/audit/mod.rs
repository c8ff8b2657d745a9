//! The audit log: an append-only record of every mutation and every denied attempt.
//!
//! Records are keyed by time (`v1/audit/<nanos>-<uuid>`), so listing is a range scan and
//! retention drops a prefix of the log. Nothing in the API modifies or deletes a record;
//! only the retention sweep removes records older than the configured number of days.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::store::{Store, StoreError};

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    Denied,
    Error,
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
    format!("{}/", Store::key(&["audit"]))
}

fn time_key(time: OffsetDateTime) -> String {
    format!("{}{:020}", prefix(), time.unix_timestamp_nanos().max(0))
}

/// The audit log over the host store.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Appends a record durably. Failures are logged, never surfaced to the caller whose
    /// action is being recorded (the action already happened).
    pub async fn record(&self, entry: Entry) {
        let time = OffsetDateTime::now_utc();
        let id = uuid::Uuid::new_v4().to_string();
        let record = Record {
            id: id.clone(),
            time,
            entry,
        };
        let key = format!("{}-{id}", time_key(time));
        let written = match self.store.put_json(&key, &record) {
            Ok(()) => self.store.commit().await,
            Err(e) => Err(e),
        };
        if let Err(error) = written {
            tracing::error!(%error, action = %record.entry.action, "writing an audit record failed");
        }
    }

    /// Records matching `query`, newest first.
    pub fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        let start = query.from.map(time_key);
        let mut records = Vec::new();
        let rows = self.store.backend().scan(
            prefix().as_bytes(),
            start.as_deref().map(str::as_bytes),
            usize::MAX,
        )?;
        for (key, value) in rows {
            let record: Record =
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: e.to_string(),
                })?;
            if query.to.is_some_and(|to| record.time > to) {
                break;
            }
            if query.matches(&record.entry) {
                records.push(record);
            }
        }
        records.reverse();
        Ok(records)
    }

    /// Removes records older than `retention`; returns how many.
    pub async fn purge_older_than(&self, retention: Duration) -> Result<usize, StoreError> {
        let cutoff = time_key(OffsetDateTime::now_utc() - retention);
        let rows = self
            .store
            .backend()
            .scan(prefix().as_bytes(), None, usize::MAX)?;
        let mut removed = 0;
        for (key, _) in rows {
            if key.as_slice() >= cutoff.as_bytes() {
                break;
            }
            self.store.backend().delete(&key)?;
            removed += 1;
        }
        if removed > 0 {
            self.store.commit().await?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_filtered_newest_first_and_purged_by_age() {
        let dir = std::env::temp_dir().join(format!("wharf-audit-{}", uuid::Uuid::new_v4()));
        let log = AuditLog::new(Store::open_sled(&dir).unwrap());
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
}
