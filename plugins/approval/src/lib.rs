//! `approval`: a pipeline step that waits for users to approve it.
//!
//! Params: `{"approvals"?: 1–10 (default 1), "message"?: text shown while waiting}`. Each
//! call reads the decisions users took on the step (`platform.decisions`); a user's latest
//! decision counts, and never one by the user who started the run (the host refuses
//! self-approval already; the step does not count one either). One rejection fails the
//! step for good; `approvals` distinct approvers finish it with `{"approvedBy": [...]}`
//! in the order they approved. Until then it answers `pending` every second, so a step
//! waiting for people holds no instance. Who may decide is the authorizer's business
//! (`pipeline.approve`), checked by the host when the decision is posted.

use std::collections::BTreeMap;

use serde_json::json;
use wharf_sdk::platform::{self, Decision, PlatformError};
use wharf_sdk::step::{
    Descriptor, Meta, Outcome, OutputSpec, Params, PendingInfo, PluginInfo, RunContext, Step,
    StepError,
};

const DESCRIPTION: &str = "Waits until enough users approve the step, or one rejects it.";
const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "approvals": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1, "description": "Distinct users who must approve; the run's starter never counts."},
    "message": {"type": "string", "minLength": 1, "maxLength": 500, "description": "What the approvers are asked, shown while the step waits."}
  },
  "additionalProperties": false
}"#;
const DEFAULT_MESSAGE: &str = "Waiting for approval";
const MAX_MESSAGE: usize = 500;
/// How often decisions are read again.
const RECHECK_MS: u32 = 1000;

pub struct Approval;

/// What `meta.info()` returns.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "approval".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

impl Meta for Approval {
    fn info() -> PluginInfo {
        info()
    }
}

fn parse_params(params_json: &str) -> Result<(u64, String), StepError> {
    let mut params = Params::parse(params_json, &["approvals", "message"])?;
    let approvals = params.integer("approvals", 1..=10, Some(1));
    let message = params.optional_string("message");
    if message.as_ref().is_some_and(|m| m.len() > MAX_MESSAGE) {
        params.violate("message", format!("must be at most {MAX_MESSAGE} bytes"));
    }
    params.finish()?;
    let message = message.unwrap_or_else(|| DEFAULT_MESSAGE.to_string());
    approvals
        .map(|n| (n, message))
        .ok_or_else(|| StepError::Internal("params passed validation without approvals".into()))
}

/// What the decisions so far amount to.
#[derive(Debug, PartialEq)]
enum Verdict {
    Rejected {
        by: String,
        comment: String,
    },
    /// Users whose latest decision approves, in the order they first decided.
    Approving(Vec<String>),
}

/// Each user's latest decision counts; the starter's never does.
fn tally(decisions: &[Decision], starter: &str) -> Verdict {
    let mut order: Vec<&str> = Vec::new();
    let mut latest: BTreeMap<&str, &Decision> = BTreeMap::new();
    for decision in decisions {
        if decision.username == starter {
            wharf_sdk::warn!(
                "ignored a decision by {starter}, who started the run and may not approve it"
            );
            continue;
        }
        if latest.insert(&decision.username, decision).is_none() {
            order.push(&decision.username);
        }
    }
    if let Some(rejection) = order.iter().map(|u| latest[u]).find(|d| !d.approve) {
        return Verdict::Rejected {
            by: rejection.username.clone(),
            comment: rejection.comment.clone(),
        };
    }
    Verdict::Approving(order.into_iter().map(str::to_string).collect())
}

impl Step for Approval {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "approval".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: vec![OutputSpec {
                name: "approvedBy".to_string(),
                description: "Usernames of the approvers, in the order they approved.".to_string(),
            }],
            can_compensate: false,
        }
    }

    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let (approvals, message) = parse_params(&params_json)?;
        let decisions = match platform::decisions() {
            Ok(decisions) => decisions,
            Err(PlatformError::Unavailable(why)) => {
                return Ok(Outcome::Pending(PendingInfo {
                    state: "0".to_string(),
                    recheck_after_ms: RECHECK_MS,
                    progress: None,
                    message: format!("{message} (cannot read decisions now: {why})"),
                }));
            }
            Err(error) => {
                return Ok(Outcome::failed(format!(
                    "cannot read the decisions on this step: {error}"
                )));
            }
        };
        match tally(&decisions, &context.started_by) {
            Verdict::Rejected { by, comment } => {
                wharf_sdk::info!("rejected by {by}");
                let comment = if comment.is_empty() {
                    String::new()
                } else {
                    format!(": {comment}")
                };
                Ok(Outcome::failed(format!("rejected by {by}{comment}")))
            }
            Verdict::Approving(approvers) if approvers.len() as u64 >= approvals => {
                wharf_sdk::info!("approved by {}", approvers.join(", "));
                Ok(Outcome::done_json(&json!({ "approvedBy": approvers })))
            }
            Verdict::Approving(approvers) => {
                let got = approvers.len() as u64;
                Ok(Outcome::Pending(PendingInfo {
                    state: got.to_string(),
                    recheck_after_ms: RECHECK_MS,
                    progress: u8::try_from(got * 100 / approvals).ok(),
                    message: format!("{message} ({got} of {approvals} approvals)"),
                }))
            }
        }
    }
}

wharf_sdk::export_step!(Approval);

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use wharf_sdk::harness::{self, Host};

    use super::*;

    fn run(host: &Host, params: Value) -> Result<Outcome, StepError> {
        let context = RunContext {
            started_by: "alice".to_string(),
            ..harness::run_context()
        };
        host.run(|| Approval::run(context, params.to_string()))
    }

    #[test]
    fn waits_until_enough_distinct_users_approve() {
        let host = Host::new();
        let params = json!({ "approvals": 2, "message": "Ship cart 1.2 to prod?" });
        let Ok(Outcome::Pending(waiting)) = run(&host, params.clone()) else {
            panic!("expected pending");
        };
        assert_eq!(waiting.message, "Ship cart 1.2 to prod? (0 of 2 approvals)");
        assert_eq!(waiting.recheck_after_ms, RECHECK_MS);
        assert_eq!(waiting.progress, Some(0));

        host.add_decision("bob", true, "");
        host.add_decision("bob", true, "really");
        let Ok(Outcome::Pending(half)) = run(&host, params.clone()) else {
            panic!("one user twice is one approval");
        };
        assert_eq!(half.progress, Some(50));

        host.add_decision("carol", true, "lgtm");
        assert_eq!(
            run(&host, params),
            Ok(Outcome::done_json(
                &json!({ "approvedBy": ["bob", "carol"] })
            ))
        );
    }

    #[test]
    fn the_starter_never_counts() {
        let host = Host::new();
        host.add_decision("alice", true, "my own");
        let outcome = run(&host, json!({}));
        assert!(matches!(outcome, Ok(Outcome::Pending(_))), "{outcome:?}");
        assert!(host.log_messages()[0].contains("alice"));
    }

    #[test]
    fn one_rejection_fails_for_good() {
        let host = Host::new();
        host.add_decision("bob", true, "");
        host.add_decision("carol", false, "not during the sale");
        assert_eq!(
            run(&host, json!({ "approvals": 1 })),
            Ok(Outcome::failed("rejected by carol: not during the sale"))
        );
    }

    #[test]
    fn a_user_changing_their_mind_counts_as_the_latest_decision() {
        let host = Host::new();
        host.add_decision("bob", false, "wait");
        host.add_decision("bob", true, "");
        assert_eq!(
            run(&host, json!({})),
            Ok(Outcome::done_json(&json!({ "approvedBy": ["bob"] })))
        );
    }

    #[test]
    fn unreadable_decisions() {
        let host = Host::new().fail_platform(PlatformError::Unavailable("restarting".into()));
        let outcome = run(&host, json!({}));
        assert!(
            matches!(&outcome, Ok(Outcome::Pending(p)) if p.message.contains("restarting")),
            "{outcome:?}"
        );
        let host = Host::new().fail_platform(PlatformError::Denied("pipeline.read".into()));
        assert!(matches!(run(&host, json!({})), Ok(Outcome::Failed(f)) if !f.retryable));
    }

    #[test]
    fn bad_params_name_their_fields() {
        let host = Host::new();
        let result = run(
            &host,
            json!({ "approvals": 0, "message": "x".repeat(501), "who": "bob" }),
        );
        let Err(StepError::InvalidParams(violations)) = result else {
            panic!("expected invalid params, got {result:?}");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["who", "approvals", "message"]);
        assert!(host.platform_calls().is_empty());
    }

    #[test]
    fn schema_is_json_and_closed() {
        let schema: Value =
            serde_json::from_str(&Approval::describe().params_schema).expect("JSON");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"].as_object().map(|p| p.len()), Some(2));
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
