//! `image-deploy`: a pipeline step that deploys an image through a change order.
//!
//! Params: `{"project", "app", "env", "image", "replicas"?: 1–1000 (default 1),
//! "batches"?: 1–5 (default 1), "batchWaitSecs"?: 0–86400 (default 0), "deployConfig"?}`.
//! The first call opens the change order with `platform.deploy` (the body of `POST …/deploy`,
//! the replicas split into AUTO batches as evenly as possible) and answers `pending` with
//! the change order's id as state; later calls read it until it ends. It finishes with
//! `{"changeOrder", "image"}`, or fails naming the change order. A call made again after a
//! host restart, before the state was kept, calls `deploy` again and gets the same change
//! order back: the platform's mutations are idempotent per run, step, attempt and call.
//!
//! `cancel` aborts the change order in flight; `compensate` rolls it back (a new change
//! order) and waits for that one the same way.

use serde_json::{Value, json};
use wharf_sdk::platform::{self, PlatformError};
use wharf_sdk::step::{
    Descriptor, Meta, Outcome, OutputSpec, Params, PendingInfo, PluginInfo, RunContext, Step,
    StepError,
};

const DESCRIPTION: &str = "Deploys an image to an environment through a change order, waits for it, and rolls it back on compensation.";
const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "project": {"type": "string", "minLength": 1, "description": "Code of the project."},
    "app": {"type": "string", "minLength": 1, "description": "Name of the app."},
    "env": {"type": "string", "minLength": 1, "description": "Code of the environment."},
    "image": {"type": "string", "minLength": 1, "description": "The image to run, e.g. registry.example/cart:1.2."},
    "replicas": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
    "batches": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1, "description": "Batches the replicas are rolled out in; at most replicas."},
    "batchWaitSecs": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 0, "description": "Pause between batches."},
    "deployConfig": {"type": "string", "minLength": 1, "description": "Name of the app's deploy config to use."}
  },
  "required": ["project", "app", "env", "image"],
  "additionalProperties": false
}"#;
const KNOWN: &[&str] = &[
    "project",
    "app",
    "env",
    "image",
    "replicas",
    "batches",
    "batchWaitSecs",
    "deployConfig",
];
/// How often a change order in flight is read again.
const RECHECK_MS: u32 = 2000;

pub struct ImageDeploy;

/// What `meta.info()` returns.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "image-deploy".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

impl Meta for ImageDeploy {
    fn info() -> PluginInfo {
        info()
    }
}

/// Validated params.
#[derive(Debug)]
struct Deploy {
    project: String,
    app: String,
    env: String,
    image: String,
    replicas: u64,
    batches: u64,
    batch_wait_secs: u64,
    deploy_config: Option<String>,
}

impl Deploy {
    /// The body of `POST /api/v1/projects/{p}/apps/{a}/deployments/{e}/deploy`.
    fn request(&self) -> Value {
        let mut request = json!({
            "image": self.image,
            "replicas": self.replicas,
            "deploymentStrategy": {
                "batchList": batch_sizes(self.replicas, self.batches)
                    .iter()
                    .enumerate()
                    .map(|(i, size)| json!({ "batchSeq": i + 1, "instNum": size }))
                    .collect::<Vec<_>>(),
                "betweenBatchProcessingMode": "AUTO",
                "batchWaitTime": self.batch_wait_secs,
            },
        });
        if let Some(config) = &self.deploy_config {
            request["deployConfig"] = json!(config);
        }
        request
    }
}

/// `replicas` split into `batches` sizes differing by at most one, larger first
/// (3 in 2 → [2, 1]). `batches` is at most `replicas`, so every size is at least 1.
fn batch_sizes(replicas: u64, batches: u64) -> Vec<u64> {
    (0..batches)
        .map(|i| replicas / batches + u64::from(i < replicas % batches))
        .collect()
}

fn parse_params(params_json: &str) -> Result<Deploy, StepError> {
    let mut params = Params::parse(params_json, KNOWN)?;
    let project = params.string("project");
    let app = params.string("app");
    let env = params.string("env");
    let image = params.string("image");
    let replicas = params.integer("replicas", 1..=1000, Some(1));
    let batches = params.integer("batches", 1..=5, Some(1));
    let batch_wait_secs = params.integer("batchWaitSecs", 0..=86_400, Some(0));
    let deploy_config = params.optional_string("deployConfig");
    if let (Some(replicas), Some(batches)) = (replicas, batches)
        && batches > replicas
    {
        params.violate(
            "batches",
            format!(
                "must be at most replicas ({replicas}): every batch moves at least one instance"
            ),
        );
    }
    params.finish()?;
    match (project, app, env, image, replicas, batches, batch_wait_secs) {
        (
            Some(project),
            Some(app),
            Some(env),
            Some(image),
            Some(replicas),
            Some(batches),
            Some(batch_wait_secs),
        ) => Ok(Deploy {
            project,
            app,
            env,
            image,
            replicas,
            batches,
            batch_wait_secs,
            deploy_config,
        }),
        _ => Err(StepError::Internal(
            "params passed validation but a field is missing".to_string(),
        )),
    }
}

/// Where a change order stands, for the step.
#[derive(Debug, PartialEq)]
enum Progress {
    /// Succeeded.
    Succeeded(String),
    /// Still moving: the step answers this.
    InFlight(PendingInfo),
    /// Ended without succeeding: the step answers this.
    Ended(Outcome),
}

/// Judges a change order the platform returned; `what` names it in messages
/// (`change order`, `rollback change order`).
fn follow(order: &Value, what: &str) -> Result<Progress, StepError> {
    let Some(id) = order["id"].as_str() else {
        return Err(StepError::Internal(format!(
            "the platform answered a {what} without an id"
        )));
    };
    let state = order["state"].as_str().unwrap_or("unknown");
    let error = order["error"]
        .as_str()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    Ok(match state {
        "succeeded" => Progress::Succeeded(id.to_string()),
        // A failed rollout may pass when tried again (an image pulled late, a node back).
        "failed" => Progress::Ended(Outcome::failed_retryable(format!(
            "{what} {id} failed{error}"
        ))),
        "aborted" => Progress::Ended(Outcome::failed(format!("{what} {id} was aborted{error}"))),
        "rejected" => Progress::Ended(Outcome::failed(format!(
            "{what} {id} was rejected by its approver{error}"
        ))),
        "rolled_back" => Progress::Ended(Outcome::failed(format!(
            "{what} {id} was rolled back{error}"
        ))),
        other => Progress::InFlight(PendingInfo {
            state: id.to_string(),
            recheck_after_ms: RECHECK_MS,
            progress: progress(order),
            message: in_flight_message(order, what, id, other),
        }),
    })
}

fn in_flight_message(order: &Value, what: &str, id: &str, state: &str) -> String {
    let batches = order["batches"].as_array().map_or(0, Vec::len);
    let current = order["batches"]
        .as_array()
        .and_then(|b| b.iter().position(|b| b["state"] != "succeeded"))
        .map_or(batches, |i| i + 1);
    let batch = if batches > 1 {
        format!(", batch {current} of {batches}")
    } else {
        String::new()
    };
    match state {
        "waiting_approval" => format!("{what} {id} is waiting for approval"),
        "paused_between_batches" => format!("{what} {id} is pausing between batches{batch}"),
        other => format!("{what} {id} is {}{batch}", other.replace('_', " ")),
    }
}

/// Percent of the change order's instances moved to the new version: batches done, and
/// the ready pods of the batch under way.
fn progress(order: &Value) -> Option<u8> {
    let batches = order["batches"].as_array()?;
    let total: u64 = batches.iter().filter_map(|b| b["instNum"].as_u64()).sum();
    if total == 0 {
        return None;
    }
    let moved: u64 = batches
        .iter()
        .map(|b| {
            let size = b["instNum"].as_u64().unwrap_or(0);
            if b["state"] == "succeeded" {
                return size;
            }
            // Ready pods of the new version beyond what earlier batches reached.
            let before = b["targetReplicas"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(size);
            b["ready"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(before)
                .min(size)
        })
        .sum();
    u8::try_from((moved * 100 / total).min(100)).ok()
}

/// What a refused platform call means for the step, naming `doing`.
fn refused(error: PlatformError, doing: &str) -> Outcome {
    match error {
        PlatformError::Denied(why) => Outcome::failed(format!(
            "not allowed to {doing}: {why} (platform actions are taken as the user who started the run)"
        )),
        PlatformError::NotFound(why) => Outcome::failed(format!("cannot {doing}: {why}")),
        PlatformError::Invalid(why) => {
            Outcome::failed(format!("cannot {doing}: the platform rejected {why}"))
        }
        // Another change order in flight, or a platform hiccup: may pass later.
        PlatformError::Conflict(why) | PlatformError::Unavailable(why) => {
            Outcome::failed_retryable(format!("cannot {doing} now: {why}"))
        }
    }
}

/// Reads change order `id` again; a platform that cannot answer now keeps the step waiting.
fn poll(id: &str, what: &str) -> Result<Value, Outcome> {
    match platform::change_order(id) {
        Ok(order) => Ok(order),
        Err(PlatformError::Unavailable(why)) => Err(Outcome::Pending(PendingInfo {
            state: id.to_string(),
            recheck_after_ms: RECHECK_MS,
            progress: None,
            message: format!("cannot read {what} {id} now ({why}); trying again"),
        })),
        Err(error) => Err(refused(error, &format!("read {what} {id}"))),
    }
}

impl Step for ImageDeploy {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "image-deploy".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: vec![
                OutputSpec {
                    name: "changeOrder".to_string(),
                    description: "Id of the deploy's change order.".to_string(),
                },
                OutputSpec {
                    name: "image".to_string(),
                    description: "The image deployed.".to_string(),
                },
            ],
            can_compensate: true,
        }
    }

    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let deploy = parse_params(&params_json)?;
        let order = match context.state.as_deref() {
            Some(id) => match poll(id, "change order") {
                Ok(order) => order,
                Err(outcome) => return Ok(outcome),
            },
            None => {
                let doing = format!(
                    "deploy {} to {} of app {} in project {}",
                    deploy.image, deploy.env, deploy.app, deploy.project
                );
                match platform::deploy(&deploy.project, &deploy.app, &deploy.env, &deploy.request())
                {
                    Ok(order) => {
                        wharf_sdk::info!(
                            "{doing}: change order {}",
                            order["id"].as_str().unwrap_or("?")
                        );
                        order
                    }
                    Err(error) => return Ok(refused(error, &doing)),
                }
            }
        };
        Ok(match follow(&order, "change order")? {
            Progress::Succeeded(id) => {
                wharf_sdk::info!("change order {id} succeeded");
                Outcome::done_json(&json!({ "changeOrder": id, "image": deploy.image }))
            }
            Progress::InFlight(pending) => Outcome::Pending(pending),
            Progress::Ended(outcome) => outcome,
        })
    }

    fn cancel(context: RunContext, _params_json: String) -> Result<(), StepError> {
        // Without a state no change order is known to be open: calling `deploy` to find
        // out could open one.
        let Some(id) = context.state.as_deref() else {
            return Ok(());
        };
        match platform::abort_change(id) {
            Ok(_) => {
                wharf_sdk::info!("change order {id} aborted");
                Ok(())
            }
            // Already over, or gone: nothing left to stop.
            Err(PlatformError::Conflict(why) | PlatformError::NotFound(why)) => {
                wharf_sdk::info!("change order {id} not aborted: {why}");
                Ok(())
            }
            Err(error) => Err(StepError::Internal(format!(
                "could not abort change order {id}: {error}"
            ))),
        }
    }

    fn compensate(
        context: RunContext,
        _params_json: String,
        outputs_json: String,
    ) -> Result<Outcome, StepError> {
        let outputs: Value = serde_json::from_str(&outputs_json)
            .map_err(|e| StepError::Internal(format!("the step's outputs are not JSON: {e}")))?;
        let Some(deployed) = outputs["changeOrder"].as_str() else {
            return Err(StepError::Internal(
                "the step's outputs name no changeOrder to roll back".to_string(),
            ));
        };
        let order = match context.state.as_deref() {
            Some(rollback) => match poll(rollback, "rollback change order") {
                Ok(order) => order,
                Err(outcome) => return Ok(outcome),
            },
            None => match platform::rollback_change(deployed) {
                Ok(order) => order,
                Err(error) => {
                    return Ok(refused(
                        error,
                        &format!("roll back change order {deployed}"),
                    ));
                }
            },
        };
        Ok(match follow(&order, "rollback change order")? {
            Progress::Succeeded(id) => {
                wharf_sdk::info!("change order {deployed} rolled back by {id}");
                Outcome::done_json(&json!({ "rolledBack": deployed, "changeOrder": id }))
            }
            Progress::InFlight(pending) => Outcome::Pending(pending),
            Progress::Ended(outcome) => outcome,
        })
    }
}

wharf_sdk::export_step!(ImageDeploy);

#[cfg(test)]
mod tests {
    use wharf_sdk::harness::{self, Host, PlatformCall};

    use super::*;

    fn params() -> Value {
        json!({ "project": "shop", "app": "cart", "env": "prod", "image": "cart:1.2",
                "replicas": 3, "batches": 2, "batchWaitSecs": 5 })
    }

    fn context(state: Option<&str>) -> RunContext {
        RunContext {
            state: state.map(str::to_string),
            ..harness::run_context()
        }
    }

    fn pending(outcome: Result<Outcome, StepError>) -> PendingInfo {
        match outcome {
            Ok(Outcome::Pending(info)) => info,
            other => panic!("expected pending, got {other:?}"),
        }
    }

    #[test]
    fn deploys_in_batches_waits_and_finishes() {
        let host = Host::new();
        let first = pending(host.run(|| ImageDeploy::run(context(None), params().to_string())));
        let id = first.state.clone();
        assert_eq!(first.progress, Some(0));
        assert_eq!(
            first.message,
            format!("change order {id} is running, batch 1 of 2")
        );
        let PlatformCall::Deploy {
            project,
            app,
            env,
            request,
        } = &host.platform_calls()[0]
        else {
            panic!("expected a deploy first");
        };
        assert_eq!(
            (project.as_str(), app.as_str(), env.as_str()),
            ("shop", "cart", "prod")
        );
        assert_eq!(
            request,
            &json!({ "image": "cart:1.2", "replicas": 3, "deploymentStrategy": {
                "batchList": [{"batchSeq": 1, "instNum": 2}, {"batchSeq": 2, "instNum": 1}],
                "betweenBatchProcessingMode": "AUTO", "batchWaitTime": 5 } })
        );

        host.update_change_order(
            &id,
            // Arrays replace whole in a merge patch: the batches as the engine reports them.
            json!({ "batches": [
                {"seq": 1, "instNum": 2, "targetReplicas": 2, "ready": 2, "state": "succeeded"},
                {"seq": 2, "instNum": 1, "targetReplicas": 3, "ready": 2, "state": "running"},
            ] }),
        );
        let halfway =
            pending(host.run(|| ImageDeploy::run(context(Some(&id)), params().to_string())));
        assert_eq!(halfway.progress, Some(66));
        assert_eq!(
            halfway.message,
            format!("change order {id} is running, batch 2 of 2")
        );

        host.update_change_order(&id, json!({ "state": "succeeded" }));
        let done = host.run(|| ImageDeploy::run(context(Some(&id)), params().to_string()));
        assert_eq!(
            done,
            Ok(Outcome::done_json(
                &json!({ "changeOrder": id, "image": "cart:1.2" })
            ))
        );
        assert_eq!(
            host.change_order_ids(),
            vec![id],
            "one change order for the attempt"
        );
    }

    #[test]
    fn a_call_repeated_before_the_state_was_kept_adopts_the_same_change_order() {
        let host = Host::new();
        let first = pending(host.run(|| ImageDeploy::run(context(None), params().to_string())));
        // The host restarted before storing `pending`: the step is called as if new.
        let again = pending(host.run(|| ImageDeploy::run(context(None), params().to_string())));
        assert_eq!(first.state, again.state);
        assert_eq!(host.change_order_ids().len(), 1);
    }

    #[test]
    fn a_failed_change_order_fails_the_step_naming_it() {
        let host = Host::new();
        let id = pending(host.run(|| ImageDeploy::run(context(None), params().to_string()))).state;
        host.update_change_order(
            &id,
            json!({ "state": "failed", "error": "batch 1: pods not ready in 300 s" }),
        );
        let outcome = host.run(|| ImageDeploy::run(context(Some(&id)), params().to_string()));
        assert_eq!(
            outcome,
            Ok(Outcome::failed_retryable(format!(
                "change order {id} failed: batch 1: pods not ready in 300 s"
            )))
        );
        host.update_change_order(&id, json!({ "state": "rejected", "error": null }));
        let outcome = host.run(|| ImageDeploy::run(context(Some(&id)), params().to_string()));
        assert_eq!(
            outcome,
            Ok(Outcome::failed(format!(
                "change order {id} was rejected by its approver"
            )))
        );
    }

    #[test]
    fn refusals_name_the_deploy_and_the_starter() {
        let host = Host::new().fail_platform(PlatformError::Denied(
            "no role grants `deploy.create` on `project:shop/app:cart/env:prod`".into(),
        ));
        let outcome = host.run(|| ImageDeploy::run(context(None), params().to_string()));
        let Ok(Outcome::Failed(failure)) = outcome else {
            panic!("expected failed, got {outcome:?}");
        };
        assert!(!failure.retryable);
        assert!(failure.reason.starts_with("not allowed to deploy cart:1.2 to prod of app cart in project shop: no role grants `deploy.create`"), "{}", failure.reason);
        let busy = Host::new().fail_platform(PlatformError::Conflict(
            "change order 7 is in flight".into(),
        ));
        let outcome = busy.run(|| ImageDeploy::run(context(None), params().to_string()));
        assert!(
            matches!(outcome, Ok(Outcome::Failed(f)) if f.retryable && f.reason.contains("in flight"))
        );
    }

    #[test]
    fn an_unavailable_platform_keeps_a_poll_waiting() {
        let host = Host::new().fail_platform(PlatformError::Unavailable("store busy".into()));
        let waiting =
            pending(host.run(|| ImageDeploy::run(context(Some("abc")), params().to_string())));
        assert_eq!(waiting.state, "abc");
        assert!(
            waiting.message.contains("store busy"),
            "{}",
            waiting.message
        );
    }

    #[test]
    fn cancel_aborts_the_change_order_in_flight() {
        let host = Host::new();
        let id = pending(host.run(|| ImageDeploy::run(context(None), params().to_string()))).state;
        host.run(|| ImageDeploy::cancel(context(Some(&id)), params().to_string()))
            .expect("cancel");
        assert_eq!(host.change_order(&id).expect("kept")["state"], "aborted");
        // Aborting again meets a change order already over: nothing to do.
        host.next_attempt();
        host.run(|| ImageDeploy::cancel(context(Some(&id)), params().to_string()))
            .expect("cancel again");
        // Nothing opened yet: nothing to abort, and no deploy is made to find out.
        let calls = host.platform_calls().len();
        host.run(|| ImageDeploy::cancel(context(None), params().to_string()))
            .expect("cancel without state");
        assert_eq!(host.platform_calls().len(), calls);
    }

    #[test]
    fn compensate_rolls_back_and_waits_for_the_rollback() {
        let host = Host::new();
        let id = pending(host.run(|| ImageDeploy::run(context(None), params().to_string()))).state;
        host.update_change_order(&id, json!({ "state": "succeeded" }));
        let outputs = json!({ "changeOrder": id, "image": "cart:1.2" }).to_string();
        let waiting =
            pending(host.run(|| {
                ImageDeploy::compensate(context(None), params().to_string(), outputs.clone())
            }));
        let rollback = waiting.state.clone();
        assert_ne!(rollback, id);
        assert_eq!(
            host.change_order(&rollback).expect("opened")["rollbackOf"],
            id.as_str()
        );
        assert!(
            waiting
                .message
                .starts_with(&format!("rollback change order {rollback} is running"))
        );
        host.update_change_order(&rollback, json!({ "state": "succeeded" }));
        let done = host.run(|| {
            ImageDeploy::compensate(
                context(Some(&rollback)),
                params().to_string(),
                outputs.clone(),
            )
        });
        assert_eq!(
            done,
            Ok(Outcome::done_json(
                &json!({ "rolledBack": id, "changeOrder": rollback })
            ))
        );
    }

    #[test]
    fn batches_split_evenly_and_never_exceed_replicas() {
        assert_eq!(batch_sizes(3, 2), vec![2, 1]);
        assert_eq!(batch_sizes(10, 3), vec![4, 3, 3]);
        assert_eq!(batch_sizes(5, 5), vec![1, 1, 1, 1, 1]);
        assert_eq!(batch_sizes(1, 1), vec![1]);
        let host = Host::new();
        let result = host.run(|| {
            ImageDeploy::run(
                context(None),
                json!({ "project": "shop", "app": "", "image": 3, "replicas": 2, "batches": 3, "extra": 1 }).to_string(),
            )
        });
        let Err(StepError::InvalidParams(violations)) = result else {
            panic!("expected invalid params, got {result:?}");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["extra", "app", "env", "image", "batches"]);
        assert!(host.platform_calls().is_empty());
    }

    #[test]
    fn deploy_config_is_passed_on() {
        let mut with_config = params();
        with_config["deployConfig"] = json!("canary");
        let deploy = parse_params(&with_config.to_string()).expect("valid");
        assert_eq!(deploy.request()["deployConfig"], "canary");
    }

    #[test]
    fn schema_is_json_and_closed() {
        let schema: Value =
            serde_json::from_str(&ImageDeploy::describe().params_schema).expect("JSON");
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().expect("properties");
        assert_eq!(properties.len(), KNOWN.len());
        assert!(KNOWN.iter().all(|k| properties.contains_key(*k)));
        assert!(ImageDeploy::describe().can_compensate);
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
