//! `wait`: a pipeline step that waits a number of seconds.
//!
//! Params: `{"seconds": 0–604800}`. The first call fixes the deadline (milliseconds since
//! the Unix epoch, from the wall clock every plugin has) and answers `pending` with it as
//! state; later calls compare the clock with it, so the wait survives a host restart and
//! holds no instance. Progress is the share of the wait elapsed; the step is called again
//! at least every 10 s to update it. It finishes with `{"seconds"}`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use wharf_sdk::step::{
    Descriptor, Meta, Outcome, OutputSpec, Params, PendingInfo, PluginInfo, RunContext, Step,
    StepError,
};

const DESCRIPTION: &str = "Waits a number of seconds without holding an instance.";
const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "seconds": {"type": "integer", "minimum": 0, "maximum": 604800, "description": "How long to wait (at most 7 days)."}
  },
  "required": ["seconds"],
  "additionalProperties": false
}"#;
const MAX_SECONDS: u64 = 7 * 24 * 3600;
/// Longest pause between calls, so progress moves while a long wait runs.
const MAX_RECHECK_MS: u64 = 10_000;

pub struct Wait;

/// What `meta.info()` returns.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "wait".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

impl Meta for Wait {
    fn info() -> PluginInfo {
        info()
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> Result<u64, StepError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .ok_or_else(|| StepError::Internal("the wall clock is before 1970".to_string()))
}

/// The outcome of a call at `now` (ms since the epoch) for a wait of `seconds`, with the
/// deadline from an earlier call's `state`.
fn decide(seconds: u64, state: Option<&str>, now: u64) -> Result<Outcome, StepError> {
    let total = seconds * 1000;
    let deadline = match state {
        None => now + total,
        Some(state) => state.parse::<u64>().map_err(|_| {
            StepError::Internal(format!("the step's state `{state}` is not a deadline"))
        })?,
    };
    if now >= deadline {
        return Ok(Outcome::done_json(&json!({ "seconds": seconds })));
    }
    let remaining = deadline - now;
    let elapsed = total.saturating_sub(remaining);
    Ok(Outcome::Pending(PendingInfo {
        state: deadline.to_string(),
        recheck_after_ms: u32::try_from(remaining.min(MAX_RECHECK_MS)).unwrap_or(u32::MAX),
        progress: u8::try_from(elapsed * 100 / total.max(1)).ok(),
        message: format!("waiting {} s more of {seconds} s", remaining.div_ceil(1000)),
    }))
}

impl Step for Wait {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "wait".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: vec![OutputSpec {
                name: "seconds".to_string(),
                description: "How long the step waited.".to_string(),
            }],
            can_compensate: false,
        }
    }

    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let mut params = Params::parse(&params_json, &["seconds"])?;
        let seconds = params.integer("seconds", 0..=MAX_SECONDS, None);
        params.finish()?;
        let seconds = seconds.ok_or_else(|| {
            StepError::Internal("params passed validation without seconds".into())
        })?;
        decide(seconds, context.state.as_deref(), now_ms()?)
    }
}

wharf_sdk::export_step!(Wait);

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use wharf_sdk::harness::{self, Host};

    use super::*;

    #[test]
    fn the_first_call_fixes_the_deadline() {
        let Ok(Outcome::Pending(first)) = decide(60, None, 1_000_000) else {
            panic!("expected pending");
        };
        assert_eq!(first.state, "1060000");
        assert_eq!(first.progress, Some(0));
        assert_eq!(first.recheck_after_ms, 10_000);
        assert_eq!(first.message, "waiting 60 s more of 60 s");
    }

    #[test]
    fn later_calls_count_down_to_done() {
        let Ok(Outcome::Pending(halfway)) = decide(60, Some("1060000"), 1_030_000) else {
            panic!("expected pending");
        };
        assert_eq!(halfway.state, "1060000");
        assert_eq!(halfway.progress, Some(50));
        let Ok(Outcome::Pending(last)) = decide(60, Some("1060000"), 1_057_500) else {
            panic!("expected pending");
        };
        assert_eq!(last.recheck_after_ms, 2500, "called again at the deadline");
        assert_eq!(last.message, "waiting 3 s more of 60 s");
        assert_eq!(
            decide(60, Some("1060000"), 1_060_000),
            Ok(Outcome::done_json(&json!({ "seconds": 60 })))
        );
    }

    #[test]
    fn zero_seconds_is_done_at_once_and_bad_state_is_reported() {
        assert_eq!(
            decide(0, None, 5),
            Ok(Outcome::done_json(&json!({ "seconds": 0 })))
        );
        assert!(matches!(
            decide(5, Some("soon"), 5),
            Err(StepError::Internal(m)) if m.contains("soon")
        ));
    }

    #[test]
    fn run_uses_the_clock() {
        let host = Host::new();
        let outcome = host.run(|| Wait::run(harness::run_context(), r#"{"seconds":3600}"#.into()));
        let Ok(Outcome::Pending(pending)) = outcome else {
            panic!("expected pending, got {outcome:?}");
        };
        let deadline: u64 = pending.state.parse().expect("a deadline");
        let now = now_ms().expect("clock");
        assert!(deadline > now && deadline <= now + 3_600_000);
    }

    #[test]
    fn bad_params_name_their_fields() {
        let host = Host::new();
        for (params, fields) in [
            (json!({}), vec!["seconds"]),
            (json!({ "seconds": 604801 }), vec!["seconds"]),
            (
                json!({ "seconds": -1, "until": "noon" }),
                vec!["until", "seconds"],
            ),
        ] {
            let result = host.run(|| Wait::run(harness::run_context(), params.to_string()));
            let Err(StepError::InvalidParams(violations)) = result else {
                panic!("expected invalid params for {params}, got {result:?}");
            };
            let got: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(got, fields, "{params}");
        }
    }

    #[test]
    fn schema_is_json_and_closed() {
        let schema: Value = serde_json::from_str(&Wait::describe().params_schema).expect("JSON");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["seconds"]));
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
