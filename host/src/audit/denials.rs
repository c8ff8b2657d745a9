//! Unauthenticated denials, counted instead of written one by one.
//!
//! A request with no token (or one that is not valid) is the cheapest thing anyone can
//! send, and writing each as its own durable record let a stranger buy one fsync per
//! request. Instead each is counted in memory under (source address, action, target) for
//! the current window (a minute unless `serve --audit-denial-window-secs` says otherwise);
//! when the window closes, one record per key is written with `count` and the time of the
//! first attempt, all in one batch and one commit. A key seen again in a later window
//! hands its closed tally over at once, so counts never mix windows. Memory is bounded:
//! past [`MAX_TALLIES`] keys in a window, further new keys are counted together under
//! one `audit.unauthenticated-overflow` record. Shutdown writes what is open. A crash
//! loses at most one window of counts: the price of not writing per request, and these
//! requests changed nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Actor, Entry, Outcome, Record, put};
use crate::store::{Batch, Store, StoreError};

pub const DEFAULT_DENIAL_WINDOW: Duration = Duration::from_secs(60);
/// Distinct (source, action, target) keys counted per window before they share one.
pub const MAX_TALLIES: usize = 4096;
const OVERFLOW_ACTION: &str = "audit.unauthenticated-overflow";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: Option<String>,
    action: String,
    target: String,
}

struct Tally {
    window: i128,
    first: OffsetDateTime,
    entry: Entry,
    count: u64,
}

#[derive(Default)]
struct Tallies {
    open: HashMap<Key, Tally>,
    /// Tallies of windows that closed, not yet written.
    closed: Vec<Tally>,
}

pub struct Denials {
    store: Store,
    window: Duration,
    tallies: Mutex<Tallies>,
    ticking: AtomicBool,
}

impl Denials {
    pub fn new(store: Store, window: Duration) -> Self {
        Self {
            store,
            window: window.max(Duration::from_secs(1)),
            tallies: Mutex::default(),
            ticking: AtomicBool::new(false),
        }
    }

    fn window_of(&self, time: OffsetDateTime) -> i128 {
        time.unix_timestamp_nanos() / self.window.as_nanos() as i128
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tallies> {
        // A panic while counting leaves counts, not broken invariants: keep going.
        self.tallies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one denial (its entry as the guard built it).
    pub fn note(self: &Arc<Self>, entry: Entry) {
        let now = OffsetDateTime::now_utc();
        let window = self.window_of(now);
        let mut key = Key {
            source: entry.source_address.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
        };
        let mut entry = entry;
        let mut guard = self.lock();
        let tallies = &mut *guard;
        if !tallies.open.contains_key(&key) && tallies.open.len() >= MAX_TALLIES {
            key = Key {
                source: None,
                action: OVERFLOW_ACTION.into(),
                target: "system".into(),
            };
            entry = Entry {
                source_address: None,
                request_id: None,
                ..Entry::new(
                    Actor::anonymous(),
                    OVERFLOW_ACTION,
                    "system",
                    Outcome::Denied,
                )
            };
        }
        let fresh = || Tally {
            window,
            first: now,
            entry: entry.clone(),
            count: 0,
        };
        let tally = tallies.open.entry(key).or_insert_with(&fresh);
        if tally.window != window {
            tallies.closed.push(std::mem::replace(tally, fresh()));
        }
        tally.count += 1;
        drop(guard);
        self.start_ticking();
    }

    /// Writes closed windows as they close, for as long as the process lives.
    fn start_ticking(self: &Arc<Self>) {
        if self.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.ticking.store(false, Ordering::Release);
            return;
        };
        let denials = self.clone();
        runtime.spawn(async move {
            loop {
                let window = denials.window.as_nanos() as i128;
                let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
                let until_close = (now / window + 1) * window - now;
                // A few milliseconds past the boundary, so the closing window is complete.
                let wait = Duration::from_nanos(u64::try_from(until_close).unwrap_or(0))
                    + Duration::from_millis(5);
                tokio::time::sleep(wait).await;
                let current = denials.window_of(OffsetDateTime::now_utc());
                denials.flush(Some(current)).await;
            }
        });
    }

    /// Writes every tally of a window before `current` (all of them when `None`).
    async fn flush(&self, current: Option<i128>) {
        let due: Vec<Tally> = {
            let mut tallies = self.lock();
            let mut due = std::mem::take(&mut tallies.closed);
            let keys: Vec<Key> = tallies
                .open
                .iter()
                .filter(|(_, t)| current.is_none_or(|c| t.window < c))
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                if let Some(tally) = tallies.open.remove(&key) {
                    due.push(tally);
                }
            }
            due
        };
        if due.is_empty() {
            return;
        }
        let written = due.len();
        if let Err(error) = self.write(due).await {
            tracing::error!(%error, records = written, "writing counted unauthenticated denials failed");
        }
    }

    async fn write(&self, due: Vec<Tally>) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        for tally in due {
            let record = Record {
                id: uuid::Uuid::new_v4().to_string(),
                time: tally.first,
                entry: Entry {
                    outcome: Outcome::Denied,
                    error_code: Some("unauthenticated".into()),
                    count: Some(tally.count),
                    ..tally.entry
                },
            };
            batch = put(batch, &record)?;
        }
        self.store
            .apply(&batch)?
            .map_err(|c| StoreError::Backend(format!("{c:?}")))?;
        self.store.commit().await
    }

    /// Writes everything counted so far (at shutdown).
    pub async fn flush_all(&self) {
        self.flush(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AuditLog, Query};
    use super::*;

    fn denial(source: &str, action: &str) -> Entry {
        Entry {
            source_address: Some(source.into()),
            ..Entry::new(Actor::anonymous(), action, "system", Outcome::Denied)
        }
    }

    #[tokio::test]
    async fn denials_are_counted_per_source_and_action_and_bounded() {
        let dir = std::env::temp_dir().join(format!("wharf-audit-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sled(&dir).unwrap();
        let log = AuditLog::with_denial_window(store.clone(), Duration::from_secs(3600));
        for _ in 0..150 {
            log.unauthenticated(denial("10.0.0.1", "plugin.list"));
        }
        for _ in 0..50 {
            log.unauthenticated(denial("10.0.0.2", "plugin.list"));
        }
        for i in 0..(MAX_TALLIES + 10) {
            log.unauthenticated(denial(
                &format!("10.1.{}.{}", i / 256, i % 256),
                "user.list",
            ));
        }
        assert!(
            log.query(&Query::default()).unwrap().is_empty(),
            "nothing written per request"
        );
        log.flush_denials().await;
        let records = log.query(&Query::default()).unwrap();
        assert_eq!(
            records.len(),
            MAX_TALLIES + 1,
            "bounded: the rest share one record"
        );
        let count_of = |source: Option<&str>, action: &str| {
            records
                .iter()
                .find(|r| r.entry.source_address.as_deref() == source && r.entry.action == action)
                .and_then(|r| r.entry.count)
        };
        assert_eq!(count_of(Some("10.0.0.1"), "plugin.list"), Some(150));
        assert_eq!(count_of(Some("10.0.0.2"), "plugin.list"), Some(50));
        assert_eq!(count_of(None, OVERFLOW_ACTION), Some(12));
        let total: u64 = records.iter().filter_map(|r| r.entry.count).sum();
        assert_eq!(total, 200 + MAX_TALLIES as u64 + 10);
        let _ = std::fs::remove_dir_all(dir);
    }
}
