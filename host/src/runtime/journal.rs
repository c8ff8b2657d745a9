//! The journal of one plugin invocation: every host-call result, in order, so the same
//! invocation can be run again against them (a pipeline step's replay).
//!
//! Recording keeps each call's name, arguments and result as JSON. Replaying answers each
//! call from the recording instead of acting — no kv write, no cluster call, no deploy, no
//! network — and notes the first call that differs from what was recorded (another call,
//! other arguments, or one call too many): a plugin that decides differently on the same
//! inputs and host answers is not deterministic, and the divergence says where.

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Host calls kept per invocation; a longer invocation is recorded as truncated.
pub const MAX_JOURNAL_CALLS: usize = 2000;
/// Bytes of recorded arguments and results kept per invocation.
pub const MAX_JOURNAL_BYTES: usize = 16 * 1024 * 1024;

/// One host call and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCall {
    /// `interface.function`, e.g. `kv.get`.
    pub call: String,
    pub args: Value,
    pub result: Value,
}

/// What a recording holds once the invocation ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub calls: Vec<HostCall>,
    /// The invocation made more calls (or bigger ones) than a journal keeps.
    pub truncated: bool,
}

#[derive(Debug)]
enum Mode {
    Record {
        recording: Recording,
        bytes: usize,
    },
    Replay {
        recorded: Vec<HostCall>,
        next: usize,
        divergence: Option<String>,
    },
}

/// The journal of one invocation, shared by its host interfaces.
#[derive(Debug, Clone)]
pub struct Journal(Arc<Mutex<Mode>>);

impl Journal {
    pub fn recording() -> Self {
        Self(Arc::new(Mutex::new(Mode::Record {
            recording: Recording::default(),
            bytes: 0,
        })))
    }

    pub fn replaying(recorded: Vec<HostCall>) -> Self {
        Self(Arc::new(Mutex::new(Mode::Replay {
            recorded,
            next: 0,
            divergence: None,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mode> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_replay(&self) -> bool {
        matches!(*self.lock(), Mode::Replay { .. })
    }

    /// Notes a call that really ran.
    pub fn note<R: Serialize>(&self, call: &str, args: Value, result: &R) {
        let mut mode = self.lock();
        let Mode::Record { recording, bytes } = &mut *mode else {
            return;
        };
        if recording.truncated {
            return;
        }
        let result = serde_json::to_value(result).unwrap_or(Value::Null);
        let size = args.to_string().len() + result.to_string().len() + call.len();
        if recording.calls.len() >= MAX_JOURNAL_CALLS || *bytes + size > MAX_JOURNAL_BYTES {
            recording.truncated = true;
            return;
        }
        *bytes += size;
        recording.calls.push(HostCall {
            call: call.to_owned(),
            args,
            result,
        });
    }

    /// In a replay, the recorded answer to this call; `Err` when it diverges (the reason
    /// is kept, and every later call diverges too). `None` when recording.
    pub fn answer<R: DeserializeOwned>(
        &self,
        call: &str,
        args: &Value,
    ) -> Option<Result<R, String>> {
        let mut mode = self.lock();
        let Mode::Replay {
            recorded,
            next,
            divergence,
        } = &mut *mode
        else {
            return None;
        };
        if let Some(why) = divergence {
            return Some(Err(why.clone()));
        }
        let position = *next + 1;
        let why = match recorded.get(*next) {
            None => format!("host call {position} `{call}` was not made when recorded"),
            Some(expected) if expected.call != call => format!(
                "host call {position} is `{call}`, the recording has `{}`",
                expected.call
            ),
            Some(expected) if &expected.args != args => format!(
                "host call {position} `{call}` has arguments {args}, the recording has {}",
                expected.args
            ),
            Some(expected) => {
                *next += 1;
                return Some(
                    serde_json::from_value(expected.result.clone()).map_err(|e| {
                        format!("host call {position} `{call}`: recorded result unreadable: {e}")
                    }),
                );
            }
        };
        *divergence = Some(why.clone());
        Some(Err(why))
    }

    /// What was recorded (empty for a replay).
    pub fn finish_recording(&self) -> Recording {
        match &*self.lock() {
            Mode::Record { recording, .. } => recording.clone(),
            Mode::Replay { .. } => Recording::default(),
        }
    }

    /// For a replay: the first divergence, or calls recorded but never made.
    pub fn finish_replay(&self) -> Option<String> {
        match &*self.lock() {
            Mode::Replay {
                divergence: Some(why),
                ..
            } => Some(why.clone()),
            Mode::Replay { recorded, next, .. } if *next < recorded.len() => Some(format!(
                "the replay made {next} host calls, the recording has {} (next: `{}`)",
                recorded.len(),
                recorded[*next].call
            )),
            _ => None,
        }
    }
}

/// Runs a host call through `$journal` (an `Option<&Journal>`): a replay answers from
/// the recording (a divergence answers `$diverged(reason)`), otherwise `$body` runs and
/// its result is recorded.
macro_rules! journaled {
    ($journal:expr, $call:literal, $args:expr, $diverged:expr, $body:expr) => {{
        let args = $args;
        let journal: Option<&$crate::runtime::journal::Journal> = $journal;
        match journal.and_then(|j| j.answer($call, &args)) {
            Some(answer) => answer.unwrap_or_else($diverged),
            None => {
                let result = $body;
                if let Some(journal) = journal {
                    journal.note($call, args, &result);
                }
                result
            }
        }
    }};
}
pub(super) use journaled;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_replay_answers_what_was_recorded_and_names_the_first_divergence() {
        let journal = Journal::recording();
        journal.note("kv.get", json!(["n"]), &Ok::<_, String>(Some(vec![1u8])));
        journal.note("kv.set", json!(["n", [2]]), &Ok::<(), String>(()));
        let recorded = journal.finish_recording();
        assert_eq!(recorded.calls.len(), 2);

        let replay = Journal::replaying(recorded.calls.clone());
        let first: Result<Option<Vec<u8>>, String> =
            replay.answer("kv.get", &json!(["n"])).unwrap().unwrap();
        assert_eq!(first, Ok(Some(vec![1])));
        let second = replay.answer::<Result<(), String>>("kv.set", &json!(["n", [3]]));
        assert!(
            second
                .unwrap()
                .unwrap_err()
                .contains("host call 2 `kv.set` has arguments")
        );
        assert!(replay.finish_replay().unwrap().contains("host call 2"));

        let short = Journal::replaying(recorded.calls);
        let _ = short.answer::<Result<Option<Vec<u8>>, String>>("kv.get", &json!(["n"]));
        assert!(
            short
                .finish_replay()
                .unwrap()
                .contains("made 1 host calls, the recording has 2")
        );
    }
}
