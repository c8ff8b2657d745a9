//! `k8s-job`: a pipeline step that runs a container as a Kubernetes Job.
//!
//! Params: `{"namespace", "image", "command"?: [..], "args"?: [..], "env"?: {NAME: value},
//! "backoffLimit"?: 0–10 (default 0: the pipeline's own retries decide), "outputs"?: {name:
//! text}}`. Each call looks the Job up by its name, derived from the run id, step id and
//! attempt (see [`job_name`]), and creates it with `cluster.apply` when it is missing, so
//! every call of one attempt — also one made again after a host restart — adopts the same
//! Job instead of starting another. It answers `pending` until the Job is Complete (done:
//! the `outputs` param copied, plus `job`) or Failed (failed, with the pod's reason).
//! `cancel` deletes the Job (and with it its pods).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use wharf_sdk::cluster::{self, ClusterError};
use wharf_sdk::step::{
    Descriptor, Meta, Outcome, OutputSpec, Params, PendingInfo, PluginInfo, RunContext, Step,
    StepError,
};

const DESCRIPTION: &str = "Runs a container as a Kubernetes Job and waits for it to complete.";
const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", "description": "Namespace the Job runs in."},
    "image": {"type": "string", "minLength": 1, "description": "The container image."},
    "command": {"type": "array", "items": {"type": "string"}, "description": "Entrypoint; the image's when absent."},
    "args": {"type": "array", "items": {"type": "string"}},
    "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Environment variables of the container."},
    "backoffLimit": {"type": "integer", "minimum": 0, "maximum": 10, "default": 0, "description": "Pods that may fail before the Job does."},
    "outputs": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Copied to the step's outputs when the Job completes, e.g. the image a build pushed."}
  },
  "required": ["namespace", "image"],
  "additionalProperties": false
}"#;
const KNOWN: &[&str] = &[
    "namespace",
    "image",
    "command",
    "args",
    "env",
    "backoffLimit",
    "outputs",
];
const API_VERSION: &str = "batch/v1";
/// Label on the Job and its pods, to find the pods.
const JOB_LABEL: &str = "wharf.dev/job";
/// How often a running Job is read again.
const RECHECK_MS: u32 = 2000;
/// Longest DNS-1123 label: the most a Job name may be and still label its pods.
const MAX_NAME: usize = 63;

pub struct K8sJob;

/// What `meta.info()` returns.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "k8s-job".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

impl Meta for K8sJob {
    fn info() -> PluginInfo {
        info()
    }
}

/// Validated params.
#[derive(Debug)]
struct JobParams {
    namespace: String,
    image: String,
    command: Vec<String>,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    backoff_limit: u64,
    outputs: BTreeMap<String, String>,
}

/// Whether `name` is a DNS-1123 label (what namespaces and Job names must be).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` may name a container environment variable.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parse_params(params_json: &str) -> Result<JobParams, StepError> {
    let mut params = Params::parse(params_json, KNOWN)?;
    let namespace = params.string("namespace");
    if let Some(namespace) = &namespace
        && !is_dns_label(namespace)
    {
        params.violate(
            "namespace",
            "must be a Kubernetes namespace name: up to 63 lowercase letters, digits or `-`, starting and ending with a letter or digit",
        );
    }
    let image = params.string("image");
    let command = params.strings("command");
    let args = params.strings("args");
    let env = params.string_map("env");
    for name in env.iter().flat_map(BTreeMap::keys) {
        if !is_env_name(name) {
            params.violate(
                format!("env.{name}"),
                "is not a valid environment variable name (letters, digits, `_`, `.`, `-`; not starting with a digit)",
            );
        }
    }
    let backoff_limit = params.integer("backoffLimit", 0..=10, Some(0));
    let outputs = params.string_map("outputs");
    if outputs.as_ref().is_some_and(|o| o.contains_key("job")) {
        params.violate("outputs.job", "is set by the step: the name of the Job");
    }
    params.finish()?;
    match (namespace, image, command, args, env, backoff_limit, outputs) {
        (
            Some(namespace),
            Some(image),
            Some(command),
            Some(args),
            Some(env),
            Some(backoff_limit),
            Some(outputs),
        ) => Ok(JobParams {
            namespace,
            image,
            command,
            args,
            env,
            backoff_limit,
            outputs,
        }),
        _ => Err(StepError::Internal(
            "params passed validation but a field is missing".to_string(),
        )),
    }
}

/// FNV-1a: a short, stable digest (no dependency, same on every platform).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The Job of one attempt: `<step>-<run>-<attempt>`, where `<run>` is the run id's letters
/// and digits (a UUID's 32 hex digits) and `<step>` the step id, cut short with a digest of
/// the whole id when the name would pass 63 characters (so two long step ids sharing a
/// prefix still get different Jobs). A DNS-1123 label, the same on every call of an attempt.
pub fn job_name(context: &RunContext) -> String {
    let run: String = context
        .run_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(32)
        .collect();
    let run = if run.is_empty() {
        "run".to_string()
    } else {
        run
    };
    let suffix = format!("-{run}-{}", context.attempt);
    let step: String = context
        .step_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let step = step.trim_matches('-');
    let room = MAX_NAME - suffix.len();
    let step = if step.is_empty() {
        "step".to_string()
    } else if step.len() <= room {
        step.to_string()
    } else {
        let digest = format!("-{:08x}", fnv1a(&context.step_id));
        let kept = step[..room - digest.len()].trim_end_matches('-');
        format!("{kept}{digest}")
    };
    format!("{step}{suffix}")
}

/// The Job to apply for `params` in this attempt.
fn job_object(params: &JobParams, name: &str, context: &RunContext) -> Value {
    let mut container = json!({ "name": "step", "image": params.image });
    if !params.command.is_empty() {
        container["command"] = json!(params.command);
    }
    if !params.args.is_empty() {
        container["args"] = json!(params.args);
    }
    if !params.env.is_empty() {
        container["env"] = params
            .env
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect();
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": params.namespace,
            "labels": { "app.kubernetes.io/managed-by": "wharf", JOB_LABEL: name },
            // Annotations: run and step ids need not be valid label values.
            "annotations": {
                "wharf.dev/run": context.run_id,
                "wharf.dev/step": context.step_id,
                "wharf.dev/attempt": context.attempt.to_string(),
                "wharf.dev/started-by": context.started_by,
            },
        },
        "spec": {
            "backoffLimit": params.backoff_limit,
            "template": {
                "metadata": { "labels": { JOB_LABEL: name } },
                "spec": { "restartPolicy": "Never", "containers": [container] },
            },
        },
    })
}

/// The condition `kind` of the Job when it is true: its reason and message.
fn condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

/// Why the Job's pods are stuck or failed, from the newest pod that says: e.g.
/// `pod build-…-x7k2: ImagePullBackOff: …`. `None` when no pod explains anything (or pods
/// cannot be read).
fn pod_detail(namespace: &str, name: &str) -> Option<String> {
    let pods: Vec<Value> =
        cluster::list("v1", "Pod", namespace, Some(&format!("{JOB_LABEL}={name}"))).ok()?;
    pods.iter().rev().find_map(|pod| {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let statuses = pod["status"]["containerStatuses"].as_array()?;
        statuses.iter().find_map(|status| {
            let state = &status["state"];
            if let Some(reason) = state["waiting"]["reason"].as_str()
                && reason != "ContainerCreating"
            {
                let message = state["waiting"]["message"].as_str().unwrap_or("");
                return Some(
                    format!("pod {pod_name}: {reason} {message}")
                        .trim()
                        .to_string(),
                );
            }
            let terminated = &state["terminated"];
            let code = terminated["exitCode"].as_i64().filter(|c| *c != 0)?;
            let reason = terminated["reason"].as_str().unwrap_or("Error");
            Some(format!("pod {pod_name}: {reason}, exit code {code}"))
        })
    })
}

/// A refused cluster call as the step's outcome, naming what was being done.
fn refused(error: ClusterError, doing: &str) -> Outcome {
    match error {
        ClusterError::AccessDenied(why) => Outcome::failed(format!(
            "not allowed to {doing}: {why}; an admin must grant plugin k8s-job that namespace"
        )),
        ClusterError::NotFound => {
            Outcome::failed(format!("cannot {doing}: the namespace does not exist"))
        }
        ClusterError::Conflict(why) => Outcome::failed(format!("cannot {doing}: {why}")),
        ClusterError::Invalid(why) => {
            Outcome::failed(format!("cannot {doing}: the cluster rejected it: {why}"))
        }
        ClusterError::LimitExceeded(why) | ClusterError::Unavailable(why) => {
            Outcome::failed_retryable(format!("cannot {doing} now: {why}"))
        }
    }
}

fn waiting(name: &str, message: String) -> Outcome {
    Outcome::Pending(PendingInfo {
        state: name.to_string(),
        recheck_after_ms: RECHECK_MS,
        progress: None,
        message,
    })
}

impl Step for K8sJob {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "k8s-job".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: vec![OutputSpec {
                name: "job".to_string(),
                description:
                    "Name of the Job; every entry of the `outputs` param is an output too."
                        .to_string(),
            }],
            can_compensate: false,
        }
    }

    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let params = parse_params(&params_json)?;
        let name = job_name(&context);
        let ns = &params.namespace;
        let job: Value = match cluster::get(API_VERSION, "Job", ns, &name) {
            Ok(Some(job)) => job,
            // A pending state means this attempt created the Job: someone removed it.
            Ok(None) if context.state.is_some() => {
                return Ok(Outcome::failed_retryable(format!(
                    "Job {ns}/{name} is gone: it was deleted outside the pipeline"
                )));
            }
            Ok(None) => match cluster::apply(&job_object(&params, &name, &context)) {
                Ok(job) => {
                    wharf_sdk::info!("Job {ns}/{name} created with image {}", params.image);
                    job
                }
                Err(error) => return Ok(refused(error, &format!("create Job {ns}/{name}"))),
            },
            Err(ClusterError::Unavailable(why)) if context.state.is_some() => {
                return Ok(waiting(
                    &name,
                    format!("cannot read Job {ns}/{name} now ({why}); trying again"),
                ));
            }
            Err(error) => return Ok(refused(error, &format!("read Job {ns}/{name}"))),
        };

        if condition(&job, "Complete").is_some() {
            wharf_sdk::info!("Job {ns}/{name} completed");
            let mut outputs: Map<String, Value> = params
                .outputs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            outputs.insert("job".to_string(), Value::String(name));
            return Ok(Outcome::done_json(&Value::Object(outputs)));
        }
        if let Some(failed) = condition(&job, "Failed") {
            let mut why = format!(
                "Job {ns}/{name} failed: {}",
                failed["reason"].as_str().unwrap_or("Failed")
            );
            if let Some(message) = failed["message"].as_str().filter(|m| !m.is_empty()) {
                why.push_str(&format!(": {message}"));
            }
            if let Some(detail) = pod_detail(ns, &name) {
                why.push_str(&format!(" ({detail})"));
            }
            wharf_sdk::warn!("{why}");
            // Whether the container fails again is the pipeline's call: its retries decide.
            return Ok(Outcome::failed_retryable(why));
        }
        let active = job["status"]["active"].as_u64().unwrap_or(0);
        let failed = job["status"]["failed"].as_u64().unwrap_or(0);
        let mut message = format!("Job {ns}/{name} is running: {active} active pod(s)");
        if failed > 0 {
            message.push_str(&format!(", {failed} failed"));
        }
        if let Some(detail) = pod_detail(ns, &name) {
            message.push_str(&format!("; {detail}"));
        }
        Ok(waiting(&name, message))
    }

    fn cancel(context: RunContext, params_json: String) -> Result<(), StepError> {
        let params = parse_params(&params_json)?;
        let name = job_name(&context);
        match cluster::delete(API_VERSION, "Job", &params.namespace, &name) {
            Ok(existed) => {
                if existed {
                    wharf_sdk::info!("Job {}/{name} deleted", params.namespace);
                }
                Ok(())
            }
            Err(ClusterError::NotFound) => Ok(()),
            Err(error) => Err(StepError::Internal(format!(
                "could not delete Job {}/{name}: {error}",
                params.namespace
            ))),
        }
    }
}

wharf_sdk::export_step!(K8sJob);

#[cfg(test)]
mod tests {
    use wharf_sdk::harness::{self, Host};

    use super::*;

    const RUN: &str = "6f1c2b7e-0d4a-4b8e-9c1f-2a3b4c5d6e7f";

    fn context(state: Option<&str>) -> RunContext {
        RunContext {
            run_id: RUN.to_string(),
            step_id: "build".to_string(),
            state: state.map(str::to_string),
            ..harness::run_context()
        }
    }

    fn params() -> Value {
        json!({ "namespace": "ci", "image": "builder:1", "command": ["make"], "args": ["image"],
                "env": {"TAG": "1.2"}, "outputs": {"image": "registry/cart:1.2"} })
    }

    fn host() -> Host {
        Host::new().grant_cluster(&["Job", "Pod"], &["*"])
    }

    fn name() -> String {
        job_name(&context(None))
    }

    fn set_status(host: &Host, status: Value) {
        let mut job = host
            .cluster_get(API_VERSION, "Job", "ci", &name())
            .expect("the Job exists");
        job["status"] = status;
        host.clone().cluster_object(job);
    }

    fn run(host: &Host, state: Option<&str>) -> Result<Outcome, StepError> {
        host.run(|| K8sJob::run(context(state), params().to_string()))
    }

    #[test]
    fn job_names_are_dns_labels_stable_per_attempt() {
        let name = name();
        assert_eq!(name, "build-6f1c2b7e0d4a4b8e9c1f2a3b4c5d6e7f-1");
        assert_eq!(
            job_name(&context(Some("x"))),
            name,
            "state does not change it"
        );
        let retry = RunContext {
            attempt: 2,
            ..context(None)
        };
        assert_ne!(job_name(&retry), name);
        let long = |step: &str| {
            job_name(&RunContext {
                step_id: step.to_string(),
                attempt: 4_000_000_000,
                ..context(None)
            })
        };
        let a = long(&format!("{}-amd64", "x".repeat(50)));
        let b = long(&format!("{}-arm64", "x".repeat(50)));
        assert_ne!(a, b, "a shared prefix still gives different Jobs");
        for candidate in [a, b, long("-"), long("Build_Image")] {
            assert!(is_dns_label(&candidate), "{candidate}");
        }
        assert!(long("-").starts_with("step-"));
    }

    #[test]
    fn creates_the_job_waits_and_finishes_with_the_outputs() {
        let host = host();
        let Ok(Outcome::Pending(first)) = run(&host, None) else {
            panic!("expected pending");
        };
        assert_eq!(first.state, name());
        let job = host
            .cluster_get(API_VERSION, "Job", "ci", &name())
            .expect("created");
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "builder:1");
        assert_eq!(container["command"], json!(["make"]));
        assert_eq!(container["args"], json!(["image"]));
        assert_eq!(container["env"], json!([{"name": "TAG", "value": "1.2"}]));
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(job["metadata"]["annotations"]["wharf.dev/run"], RUN);

        set_status(&host, json!({ "active": 1 }));
        let Ok(Outcome::Pending(running)) = run(&host, Some(&name())) else {
            panic!("expected pending");
        };
        assert_eq!(
            running.message,
            format!("Job ci/{} is running: 1 active pod(s)", name())
        );

        set_status(
            &host,
            json!({ "conditions": [{"type": "Complete", "status": "True"}] }),
        );
        assert_eq!(
            run(&host, Some(&name())),
            Ok(Outcome::done_json(
                &json!({ "image": "registry/cart:1.2", "job": name() })
            ))
        );
        assert_eq!(host.cluster_objects().len(), 1, "one Job for the attempt");
    }

    #[test]
    fn a_call_after_a_restart_adopts_the_job() {
        let host = host();
        run(&host, None).expect("first call");
        set_status(&host, json!({ "active": 1 }));
        let uid = host
            .cluster_get(API_VERSION, "Job", "ci", &name())
            .expect("job")["metadata"]["uid"]
            .clone();
        // The state was lost with the host: the same Job is found, not created again.
        let again = run(&host, None);
        assert!(matches!(again, Ok(Outcome::Pending(_))), "{again:?}");
        let job = host
            .cluster_get(API_VERSION, "Job", "ci", &name())
            .expect("job");
        assert_eq!(job["metadata"]["uid"], uid);
        assert_eq!(job["status"]["active"], 1, "not re-applied");
    }

    #[test]
    fn a_failed_job_fails_the_step_with_the_pod_reason() {
        let host = host();
        run(&host, None).expect("first call");
        set_status(
            &host,
            json!({ "failed": 1, "conditions": [{"type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}] }),
        );
        let pod = json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "build-x7k2", "namespace": "ci", "labels": {JOB_LABEL: name()}},
            "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]} });
        let host = host.cluster_object(pod);
        assert_eq!(
            run(&host, Some(&name())),
            Ok(Outcome::failed_retryable(format!(
                "Job ci/{} failed: BackoffLimitExceeded: Job has reached the specified backoff limit (pod build-x7k2: Error, exit code 2)",
                name()
            )))
        );
    }

    #[test]
    fn a_stuck_pod_is_explained_while_waiting() {
        let host = host();
        run(&host, None).expect("first call");
        let pod = json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "build-x7k2", "namespace": "ci", "labels": {JOB_LABEL: name()}},
            "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull failed"}}}]} });
        let host = host.cluster_object(pod);
        let Ok(Outcome::Pending(info)) = run(&host, Some(&name())) else {
            panic!("expected pending");
        };
        assert!(
            info.message
                .ends_with("; pod build-x7k2: ImagePullBackOff pull failed"),
            "{}",
            info.message
        );
    }

    #[test]
    fn a_job_deleted_behind_the_pipeline_fails_the_step() {
        let host = host();
        let outcome = run(&host, Some(&name()));
        assert_eq!(
            outcome,
            Ok(Outcome::failed_retryable(format!(
                "Job ci/{} is gone: it was deleted outside the pipeline",
                name()
            )))
        );
        assert!(host.cluster_objects().is_empty());
    }

    #[test]
    fn an_ungranted_namespace_fails_naming_it() {
        let host = Host::new().grant_cluster(&["Job", "Pod"], &["team-a"]);
        let Ok(Outcome::Failed(failure)) = run(&host, None) else {
            panic!("expected failed");
        };
        assert!(!failure.retryable);
        assert!(
            failure
                .reason
                .starts_with(&format!("not allowed to read Job ci/{}", name())),
            "{}",
            failure.reason
        );
        assert!(failure.reason.contains("`ci`"), "{}", failure.reason);
    }

    #[test]
    fn cancel_deletes_the_job() {
        let host = host();
        run(&host, None).expect("first call");
        host.run(|| K8sJob::cancel(context(Some(&name())), params().to_string()))
            .expect("cancel");
        assert!(host.cluster_objects().is_empty());
        host.run(|| K8sJob::cancel(context(Some(&name())), params().to_string()))
            .expect("cancel of a Job already gone");
    }

    #[test]
    fn bad_params_name_their_fields() {
        let host = host();
        let result = host.run(|| {
            K8sJob::run(
                context(None),
                json!({ "namespace": "CI_1", "command": "make", "args": [1],
                        "env": {"1X": "a", "OK": 2}, "backoffLimit": 11,
                        "outputs": {"job": "x"}, "image-pull": true })
                .to_string(),
            )
        });
        let Err(StepError::InvalidParams(violations)) = result else {
            panic!("expected invalid params, got {result:?}");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "image-pull",
                "namespace",
                "image",
                "command",
                "args[0]",
                "env.OK",
                "backoffLimit",
                "outputs.job"
            ]
        );
        assert!(host.cluster_objects().is_empty());
    }

    #[test]
    fn schema_is_json_and_closed() {
        let schema: Value = serde_json::from_str(&K8sJob::describe().params_schema).expect("JSON");
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().expect("properties");
        assert_eq!(properties.len(), KNOWN.len());
        assert!(KNOWN.iter().all(|k| properties.contains_key(*k)));
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
