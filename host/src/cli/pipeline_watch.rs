//! Following a pipeline run from `wharf pipeline watch`, `run --watch`, `retry --watch`,
//! `rollback --watch` and `logs --follow`: reads the run's server-sent events
//! (`GET …/runs/{run}/events`: `log`, `step` and `run` events) and shows one progress bar
//! per step when stdout is a terminal, or one line per state change otherwise, with the
//! steps' log lines printed as they come. Following ends at the run's terminal state.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::client::{Client, ClientError};
use super::cluster::encode;
use super::market::text;

/// The largest line (and event) accepted from the stream. A `run` event carries every
/// step with outputs of up to 64 KiB each, so this leaves room for large pipelines while
/// still refusing a stream that never ends a line.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// How often a stream that ended before the run did is opened again (a restarting
/// server), and how long to wait before each attempt.
const RECONNECTS: u32 = 10;
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Run states after which nothing more happens unless someone acts.
pub fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "Succeeded" | "Failed" | "Aborted" | "RolledBack" | "RollbackFailed"
    )
}

/// A stream that is not server-sent events as expected.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the event stream sent a line longer than {MAX_EVENT_BYTES} bytes")]
    LineTooLong,
    #[error("the event stream sent an event larger than {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
    #[error("a `{event}` event is not JSON: {source}")]
    NotJson {
        event: String,
        source: serde_json::Error,
    },
}

/// One server-sent event: its `event:` name (`message` when it has none) and its data
/// lines joined by newlines.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Splits a byte stream into server-sent events (the WHATWG `text/event-stream` rules:
/// lines end in LF, CR LF or CR; a blank line dispatches; `:` starts a comment; a space
/// after the colon is dropped), holding at most [`MAX_EVENT_BYTES`] of it at a time.
#[derive(Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The last byte seen was a CR, so a following LF belongs to the same line end.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Feeds bytes; the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, StreamError> {
        let mut events = Vec::new();
        for &byte in bytes {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&String::from_utf8_lossy(&line))? {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= MAX_EVENT_BYTES {
                        return Err(StreamError::LineTooLong);
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, line: &str) -> Result<Option<SseEvent>, StreamError> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return Ok(None);
            }
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            return Ok(Some(SseEvent { event, data }));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
                    return Err(StreamError::EventTooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter to browsers reconnecting on their own; following
            // here reconnects by reading the run again instead.
            _ => {}
        }
        Ok(None)
    }
}

/// What following shows.
#[derive(Clone)]
pub enum Show {
    /// Step states and log lines.
    Everything,
    /// Log lines only (of one step when given): `wharf pipeline logs --follow`.
    Logs { step: Option<String> },
}

/// Bars (on a terminal) or lines (otherwise), one per step, keyed by step id.
struct Display {
    show: Show,
    json: bool,
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    last_step: BTreeMap<String, String>,
    last_run: String,
    hinted: HashSet<String>,
    /// Log lines already printed (a reconnect may send them again), as hashes.
    printed_logs: HashSet<u64>,
    /// `PROJECT APP PIPELINE RUN` of the run, for the hints printed to the user.
    hint_prefix: String,
}

impl Display {
    fn new(show: Show, json: bool, hint_prefix: String) -> Self {
        let bars_wanted = matches!(show, Show::Everything) && !json;
        let multi = (bars_wanted && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self {
            show,
            json,
            multi,
            bars: BTreeMap::new(),
            last_step: BTreeMap::new(),
            last_run: String::new(),
            hinted: HashSet::new(),
            printed_logs: HashSet::new(),
            hint_prefix,
        }
    }

    fn print(&self, line: String) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => println!("{line}"),
        }
    }

    fn log(&mut self, log: &Value) {
        let step = text(&log["step"]);
        if let Show::Logs { step: Some(wanted) } = &self.show
            && *wanted != step
        {
            return;
        }
        let mut hasher = DefaultHasher::new();
        log.to_string().hash(&mut hasher);
        if !self.printed_logs.insert(hasher.finish()) {
            return;
        }
        if self.json {
            if matches!(self.show, Show::Logs { .. }) {
                println!("{log}");
            }
            return;
        }
        self.print(log_line(log));
    }

    fn run(&mut self, run: &Value) {
        for step in run["steps"].as_array().into_iter().flatten() {
            self.step(step);
        }
        let status = text(&run["status"]);
        if status == self.last_run || self.json || !matches!(self.show, Show::Everything) {
            return;
        }
        self.last_run.clone_from(&status);
        let message = text(&run["message"]);
        self.print(format!(
            "run #{} {status}{}",
            text(&run["number"]),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ));
    }

    fn step(&mut self, step: &Value) {
        if self.json || !matches!(self.show, Show::Everything) {
            return;
        }
        let id = text(&step["id"]);
        let status = text(&step["status"]);
        let message = text(&step["message"]);
        let label = format!("{}/{id}", text(&step["stage"]));
        let state = format!("{status} (attempt {})", text(&step["attempt"]));
        // A step of the bundled `approval` type waits on people: say how they decide.
        if status == "Waiting"
            && step["type"] == "approval"
            && self
                .hinted
                .insert(format!("{id}#{}", text(&step["attempt"])))
        {
            self.print(format!(
                "{label} waits for a decision: {message} (another user runs `wharf pipeline approve {} {id}`)",
                self.hint_prefix
            ));
        }
        match &self.multi {
            Some(multi) => {
                let bar = self.bars.entry(id.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(100));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>24} [{bar:24.cyan/blue}] {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(label.clone());
                    bar
                });
                let position = match status.as_str() {
                    "Succeeded" | "Skipped" | "Compensated" => 100,
                    _ => step["progress"].as_u64().unwrap_or(0).min(100),
                };
                bar.set_position(position);
                bar.set_message(if message.is_empty() {
                    state
                } else {
                    format!("{state}: {message}")
                });
            }
            None => {
                if self.last_step.get(&id) == Some(&state) {
                    return;
                }
                self.last_step.insert(id, state.clone());
                self.print(format!(
                    "{label}: {state}{}",
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    }
                ));
            }
        }
    }

    fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}

/// A log line for people: `step#attempt LEVEL message`.
pub fn log_line(log: &Value) -> String {
    format!(
        "{}#{} {:<5} {}",
        text(&log["step"]),
        text(&log["attempt"]),
        text(&log["level"]).to_uppercase(),
        text(&log["message"])
    )
}

/// Follows the run at `run_path` (`/api/v1/…/runs/{run}`) until it is in a terminal
/// state; returns its last state. `hint_prefix` is `PROJECT APP PIPELINE RUN` for hints.
pub async fn follow(
    client: &Client,
    run_path: &str,
    show: Show,
    json: bool,
    hint_prefix: String,
) -> anyhow::Result<Value> {
    let logs_path = match &show {
        Show::Logs { step: Some(step) } => format!("{run_path}/logs?step={}", encode(step)),
        _ => format!("{run_path}/logs"),
    };
    let mut display = Display::new(show, json, hint_prefix);
    let events_path = format!("{run_path}/events");
    let mut attempts = 0;
    let mut first = true;
    let last = loop {
        let mut response = match client.open_stream(&events_path).await {
            Ok(response) => response,
            Err(ClientError::Unreachable { .. }) if attempts < RECONNECTS => {
                attempts += 1;
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        // What was logged before the stream opened comes first (the stream may repeat
        // it; each line is printed once).
        if std::mem::take(&mut first) {
            let logs: Value = client.get(&logs_path).await?;
            for line in logs["items"].as_array().into_iter().flatten() {
                display.log(line);
            }
        }
        // The run may have ended before the stream opened: read it once with the stream
        // open, so its end is seen whether or not the stream repeats it.
        let current: Value = client.get(run_path).await?;
        display.run(&current);
        if is_terminal(current["status"].as_str().unwrap_or_default()) {
            break current;
        }
        if let Some(run) = read_stream(&mut response, &mut display).await? {
            break run;
        }
        attempts += 1;
        if attempts > RECONNECTS {
            anyhow::bail!(
                "the event stream of {run_path} kept ending before the run did; see `wharf pipeline status`"
            );
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    };
    display.run(&last);
    display.finish();
    Ok(last)
}

/// Reads events until the run's terminal `run` event (returned) or the end of the stream
/// (`None`).
async fn read_stream(
    response: &mut reqwest::Response,
    display: &mut Display,
) -> anyhow::Result<Option<Value>> {
    let mut decoder = SseDecoder::default();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            // A dropped connection is an early end: the caller reads the run again.
            Ok(None) | Err(_) => return Ok(None),
        };
        for event in decoder.push(&chunk)? {
            let value: Value =
                serde_json::from_str(&event.data).map_err(|source| StreamError::NotJson {
                    event: event.event.clone(),
                    source,
                })?;
            match event.event.as_str() {
                "log" => display.log(&value),
                "step" => display.step(&value),
                "run" => {
                    display.run(&value);
                    if is_terminal(value["status"].as_str().unwrap_or_default()) {
                        return Ok(Some(value));
                    }
                }
                // Events this CLI does not know yet are someone else's business.
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        chunks
            .iter()
            .flat_map(|c| decoder.push(c).expect("valid stream"))
            .collect()
    }

    #[test]
    fn events_split_across_chunks_and_line_ends_are_reassembled() {
        let events = decode(&[
            b"event: step\r\ndata: {\"id\":",
            b"\"build\"}\r",
            b"\n\r\n: keep-alive\n\nevent:run\ndata:{}\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "step".into(),
                    data: "{\"id\":\"build\"}".into()
                },
                SseEvent {
                    event: "run".into(),
                    data: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn several_data_lines_join_with_newlines_and_an_unnamed_event_is_a_message() {
        let events = decode(&[b"data: a\ndata: b\nid: 7\n\n"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: "message".into(),
                data: "a\nb".into()
            }]
        );
    }

    #[test]
    fn a_line_without_an_end_is_refused_once_it_is_too_long() {
        let mut decoder = SseDecoder::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=MAX_EVENT_BYTES / chunk.len() {
            result = decoder.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(StreamError::LineTooLong)));
    }

    #[test]
    fn terminal_states_are_the_ones_nothing_follows() {
        for status in [
            "Succeeded",
            "Failed",
            "Aborted",
            "RolledBack",
            "RollbackFailed",
        ] {
            assert!(is_terminal(status), "{status}");
        }
        for status in ["Queued", "Running", "Waiting", "RollingBack"] {
            assert!(!is_terminal(status), "{status}");
        }
    }
}
