//! The `wharf:host/log` interface: a bounded ring of log lines per plugin.
//!
//! Lines are kept in memory (the last [`RING_LINES`] per plugin) and served by the
//! plugin-logs API. A call may log at most its `max-log-bytes-per-call`; further lines are
//! dropped, counted, and summarized by one line when the call ends.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::bindings::host::wharf::host::log::{Host, Level};
use super::state::CallBudget;

/// Lines kept per plugin.
pub const RING_LINES: usize = 2000;
/// Longest line kept; longer lines are cut.
const MAX_LINE_BYTES: usize = 4096;
/// What a line costs against the per-call budget beyond its text.
const LINE_OVERHEAD_BYTES: u64 = 32;

/// One captured line.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub time: OffsetDateTime,
    pub level: &'static str,
    pub version: String,
    pub message: String,
}

/// The ring of one plugin (shared by all its versions).
#[derive(Debug, Default)]
pub struct LogRing {
    lines: Mutex<VecDeque<LogLine>>,
}

impl LogRing {
    pub fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == RING_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The newest `limit` lines, oldest first.
    pub fn tail(&self, limit: usize) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let skip = lines.len().saturating_sub(limit);
        lines.iter().skip(skip).cloned().collect()
    }

    /// Records a line on behalf of the host (trap reasons, denied requests, drops).
    pub fn host_line(&self, level: &'static str, version: &str, message: String) {
        self.push(LogLine {
            time: OffsetDateTime::now_utc(),
            level,
            version: version.to_owned(),
            message,
        });
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// What a call's `log` import sees: the ring and the call's byte budget.
pub struct LogView<'a> {
    pub ring: &'a LogRing,
    pub version: &'a str,
    pub budget: &'a mut CallBudget,
    /// A pipeline step's own copy of its lines.
    pub capture: Option<&'a Mutex<Vec<LogLine>>>,
    /// A replay's lines were logged when the step really ran; they are not logged again.
    pub replaying: bool,
}

impl Host for LogView<'_> {
    fn log(&mut self, level: Level, mut message: String) {
        // Each line costs its overhead too, so a flood of empty lines still hits the cap.
        let cost = message.len() as u64 + LINE_OVERHEAD_BYTES;
        if !self.budget.take_log_bytes(cost) {
            return;
        }
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if self.replaying {
            return;
        }
        tracing::debug!(target: "wharf::plugin", level = level_name(level), %message);
        let line = LogLine {
            time: OffsetDateTime::now_utc(),
            level: level_name(level),
            version: self.version.to_owned(),
            message,
        };
        if let Some(capture) = self.capture {
            capture
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.clone());
        }
        self.ring.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines() {
        let ring = LogRing::default();
        for i in 0..RING_LINES + 10 {
            ring.host_line("info", "1.0.0", format!("line {i}"));
        }
        let tail = ring.tail(RING_LINES * 2);
        assert_eq!(tail.len(), RING_LINES);
        assert_eq!(tail[0].message, "line 10");
        assert_eq!(ring.tail(1)[0].message, format!("line {}", RING_LINES + 9));
    }

    #[test]
    fn lines_past_the_budget_are_dropped_and_counted() {
        let ring = LogRing::default();
        let mut budget = CallBudget::new(2 * LINE_OVERHEAD_BYTES + 10, 100);
        let mut view = LogView {
            ring: &ring,
            version: "1.0.0",
            budget: &mut budget,
            capture: None,
            replaying: false,
        };
        view.log(Level::Info, "12345".into());
        view.log(Level::Info, "123456".into());
        assert_eq!(ring.tail(10).len(), 1);
        assert_eq!(budget.dropped_log_lines, 1);
    }
}
