//! What each step invocation left behind: its inputs, every host call it made and what
//! it answered, its outcome (`pipeline-invocations/<run>/<step>/<attempt>/<phase>/<n>`),
//! and its log lines (`pipeline-logs/<run>/<time>-<n>`). Replaying an invocation runs the
//! same plugin on the same inputs against the recorded host answers and compares the
//! outcome: the answer to "why did this step decide that?", and a check that a plugin is
//! deterministic.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::PipelineError;
use crate::runtime::LogLine as PluginLogLine;
use crate::runtime::Runtime;
use crate::runtime::journal::Recording;
use crate::runtime::step::{
    Outcome, Phase, RunContext, StepError, StepInvocation, StepOutputs, Variable,
};
use crate::store::{Batch, Store, StoreError};

/// Log lines kept per run.
pub const MAX_LOG_LINES: usize = 20_000;

/// An outcome as records and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum OutcomeView {
    #[serde(rename = "done")]
    Done {
        #[schema(value_type = Object)]
        outputs: Value,
    },
    #[serde(rename = "pending")]
    Pending {
        state: String,
        recheck_after_ms: u32,
        progress: Option<u8>,
        message: String,
    },
    #[serde(rename = "failed")]
    Failed { reason: String, retryable: bool },
    /// The plugin answered an error, or could not be called (trap, limits, deadline).
    #[serde(rename = "error")]
    Error { message: String },
}

impl OutcomeView {
    pub fn of(result: &Result<Result<Outcome, StepError>, String>) -> OutcomeView {
        match result {
            Ok(Ok(Outcome::Done(text))) => OutcomeView::Done {
                outputs: serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
            },
            Ok(Ok(Outcome::Pending(p))) => OutcomeView::Pending {
                state: p.state.clone(),
                recheck_after_ms: p.recheck_after_ms,
                progress: p.progress,
                message: p.message.clone(),
            },
            Ok(Ok(Outcome::Failed(f))) => OutcomeView::Failed {
                reason: f.reason.clone(),
                retryable: f.retryable,
            },
            Ok(Err(StepError::InvalidParams(violations))) => OutcomeView::Error {
                message: format!(
                    "invalid params: {}",
                    violations
                        .iter()
                        .map(|v| format!("{}: {}", v.field, v.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            },
            Ok(Err(StepError::Internal(m))) => OutcomeView::Error {
                message: format!("the step failed: {m}"),
            },
            Err(e) => OutcomeView::Error { message: e.clone() },
        }
    }

    /// The outcome's kind: `done`, `pending`, `failed` or `error`.
    pub fn label(&self) -> &'static str {
        match self {
            OutcomeView::Done { .. } => "done",
            OutcomeView::Pending { .. } => "pending",
            OutcomeView::Failed { .. } => "failed",
            OutcomeView::Error { .. } => "error",
        }
    }

    /// Where `other` first parts from this outcome, in words; `None` when they are equal.
    pub fn difference(&self, other: &OutcomeView) -> Option<String> {
        if self == other {
            return None;
        }
        if self.label() != other.label() {
            return Some(format!(
                "the outcome was {}, the replay's is {}",
                self.label(),
                other.label()
            ));
        }
        let (was, now) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(other).unwrap_or_default(),
        );
        Some(match first_difference(&was, &now, String::new()) {
            Some((path, was, now)) => format!("{path} was {was}, the replay's is {now}"),
            None => "the outcome differs".to_owned(),
        })
    }
}

/// The JSON path of the first place `a` and `b` differ, with both values there.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<(String, Value, Value)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => first_difference(l, r, at),
                    (l, r) => Some((
                        at,
                        l.cloned().unwrap_or(Value::Null),
                        r.cloned().unwrap_or(Value::Null),
                    )),
                }
            })
        }
        _ if a == b => None,
        _ => Some((path, a.clone(), b.clone())),
    }
}

/// The inputs of an invocation, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedInputs {
    pub phase: Phase,
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    pub started_by: String,
    pub variables: Vec<(String, String)>,
    pub previous: Vec<(String, String)>,
    pub state: Option<String>,
    pub params: String,
    pub outputs: String,
}

impl RecordedInputs {
    pub fn of(invocation: &StepInvocation) -> Self {
        let c = &invocation.context;
        RecordedInputs {
            phase: invocation.phase,
            run_id: c.run_id.clone(),
            step_id: c.step_id.clone(),
            attempt: c.attempt,
            started_by: c.started_by.clone(),
            variables: c
                .variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .collect(),
            previous: c
                .previous
                .iter()
                .map(|p| (p.step_id.clone(), p.outputs.clone()))
                .collect(),
            state: c.state.clone(),
            params: invocation.params.clone(),
            outputs: invocation.outputs.clone(),
        }
    }

    pub fn invocation(&self) -> StepInvocation {
        StepInvocation {
            phase: self.phase,
            context: RunContext {
                run_id: self.run_id.clone(),
                step_id: self.step_id.clone(),
                attempt: self.attempt,
                started_by: self.started_by.clone(),
                variables: self
                    .variables
                    .iter()
                    .map(|(name, value)| Variable {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                previous: self
                    .previous
                    .iter()
                    .map(|(step_id, outputs)| StepOutputs {
                        step_id: step_id.clone(),
                        outputs: outputs.clone(),
                    })
                    .collect(),
                state: self.state.clone(),
            },
            params: self.params.clone(),
            outputs: self.outputs.clone(),
        }
    }
}

/// One invocation, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    /// The step plugin id (replay runs the version enabled now).
    pub kind: String,
    pub plugin: String,
    pub inputs: RecordedInputs,
    pub recording: Recording,
    pub outcome: OutcomeView,
}

/// A step's log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub step: String,
    pub attempt: u32,
    pub level: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
}

fn invocation_prefix(run: &str, step: &str) -> String {
    format!("{}/", Store::key(&["pipeline-invocations", run, step]))
}

fn invocation_key(run: &str, step: &str, attempt: u32, phase: Phase, call: u32) -> String {
    Store::key(&[
        "pipeline-invocations",
        run,
        step,
        &format!("{attempt:04}"),
        phase.name(),
        &format!("{call:06}"),
    ])
}

fn log_prefix(run: &str) -> String {
    format!("{}/", Store::key(&["pipeline-logs", run]))
}

fn log_count_key(run: &str) -> String {
    Store::key(&["pipeline-log-count", run])
}

/// The writes that keep an invocation and its log lines (added to the batch that stores
/// its outcome, so both land or neither).
pub fn keep(
    store: &Store,
    batch: Batch,
    call: u32,
    record: &InvocationRecord,
    lines: &[PluginLogLine],
) -> Result<Batch, StoreError> {
    let i = &record.inputs;
    let mut batch = batch.put_json(
        &invocation_key(&i.run_id, &i.step_id, i.attempt, i.phase, call),
        record,
    )?;
    let kept: u64 = store.get_json(&log_count_key(&i.run_id))?.unwrap_or(0);
    let room = (MAX_LOG_LINES as u64).saturating_sub(kept) as usize;
    let take = lines.len().min(room);
    for (n, line) in lines.iter().take(take).enumerate() {
        let nanos = line.time.unix_timestamp_nanos();
        let key = format!(
            "{}{:020}-{:04}-{}-{n:04}",
            log_prefix(&i.run_id),
            nanos,
            i.attempt,
            i.step_id
        );
        batch = batch.put_json(
            &key,
            &LogLine {
                step: i.step_id.clone(),
                attempt: i.attempt,
                level: line.level.to_owned(),
                message: line.message.clone(),
                at: line.time,
            },
        )?;
    }
    if take > 0 {
        batch = batch.put_json(&log_count_key(&i.run_id), &(kept + take as u64))?;
    }
    Ok(batch)
}

/// Log lines of `run` after `cursor` (a key suffix from an earlier page), at most `limit`;
/// also the cursor to continue from.
pub fn logs(
    store: &Store,
    run: &str,
    step: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<LogLine>, Option<String>), PipelineError> {
    let prefix = log_prefix(run);
    let after = cursor.map(|c| format!("{prefix}{c}"));
    let rows = store.backend().scan(
        prefix.as_bytes(),
        after.as_deref().map(str::as_bytes),
        limit,
    )?;
    let mut last = None;
    let mut lines = Vec::with_capacity(rows.len());
    for (k, v) in rows {
        last = Some(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        let line: LogLine = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
            key: String::from_utf8_lossy(&k).into_owned(),
            reason: e.to_string(),
        })?;
        if step.is_none_or(|s| s == line.step) {
            lines.push(line);
        }
    }
    Ok((lines, last))
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub attempt: u32,
    pub phase: String,
    /// Which invocation of the attempt was replayed (1 first).
    pub call: u32,
    /// The plugin version that ran the replay (the one enabled now).
    pub plugin: String,
    pub recorded_plugin: String,
    pub host_calls: usize,
    pub same: bool,
    pub recorded: OutcomeView,
    pub replayed: OutcomeView,
    /// Where the replay left the recorded host calls, or else where its outcome parts
    /// from the recorded one; `None` when it decided the same.
    pub divergence: Option<String>,
}

/// The invocations kept for `step` of `run`, oldest first.
fn invocations(
    store: &Store,
    run: &str,
    step: &str,
) -> Result<Vec<(u32, InvocationRecord)>, PipelineError> {
    let prefix = invocation_prefix(run, step);
    let rows = store.backend().scan(prefix.as_bytes(), None, usize::MAX)?;
    rows.into_iter()
        .map(|(k, v)| {
            let key = String::from_utf8_lossy(&k).into_owned();
            let call = key
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let record = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                key,
                reason: e.to_string(),
            })?;
            Ok((call, record))
        })
        .collect()
}

/// Replays the last `run` invocation of `step` (of `attempt` when given).
pub async fn replay(
    store: &Store,
    runtime: &Runtime,
    run: &str,
    step: &str,
    attempt: Option<u32>,
) -> Result<ReplayReport, PipelineError> {
    let (call, record) = invocations(store, run, step)?
        .into_iter()
        .filter(|(_, r)| {
            r.inputs.phase == Phase::Run && attempt.is_none_or(|a| r.inputs.attempt == a)
        })
        .next_back()
        .ok_or_else(|| {
            PipelineError::Conflict(format!(
                "step `{step}` has no recorded invocation{} to replay",
                attempt
                    .map(|a| format!(" in attempt {a}"))
                    .unwrap_or_default()
            ))
        })?;
    if record.recording.truncated {
        return Err(PipelineError::Conflict(format!(
            "the invocation made more host calls than a journal keeps; it cannot be replayed"
        )));
    }
    let plugin = runtime.step_version(&record.kind).ok_or_else(|| {
        PipelineError::Unavailable(format!("step plugin `{}` is not enabled", record.kind))
    })?;
    let executed = runtime
        .execute_step(
            &record.kind,
            record.inputs.invocation(),
            None,
            Some(record.recording.calls.clone()),
        )
        .await
        .map_err(|e| PipelineError::Unavailable(e.to_string()))?;
    let replayed = OutcomeView::of(&executed.result.map_err(|e| e.to_string()));
    Ok(ReplayReport {
        attempt: record.inputs.attempt,
        phase: record.inputs.phase.name().to_owned(),
        call,
        plugin,
        recorded_plugin: record.plugin.clone(),
        host_calls: record.recording.calls.len(),
        same: replayed == record.outcome && executed.divergence.is_none(),
        divergence: executed
            .divergence
            .or_else(|| record.outcome.difference(&replayed)),
        recorded: record.outcome,
        replayed,
    })
}

/// The audit view of an invocation: what ran, what it cost, how it ended.
pub fn audit_view(record: &InvocationRecord, metering: &crate::runtime::Metering) -> Value {
    json!({
        "run": record.inputs.run_id,
        "step": record.inputs.step_id,
        "attempt": record.inputs.attempt,
        "phase": record.inputs.phase.name(),
        "plugin": metering.plugin,
        "fuel": metering.fuel,
        "peakMemoryBytes": metering.peak_memory_bytes,
        "durationUs": metering.duration_us,
        "hostCalls": record.recording.calls.len(),
        "outcome": record.outcome.label(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_names_the_first_output_that_parts() {
        let done = |nonce: &str| OutcomeView::Done {
            outputs: json!({"counter": 2, "nonce": nonce}),
        };
        assert_eq!(done("1").difference(&done("1")), None);
        assert_eq!(
            done("1").difference(&done("7")).as_deref(),
            Some(r#"outputs.nonce was "1", the replay's is "7""#)
        );
        let failed = OutcomeView::Failed {
            reason: "no".into(),
            retryable: false,
        };
        assert_eq!(
            done("1").difference(&failed).as_deref(),
            Some("the outcome was done, the replay's is failed")
        );
    }
}
