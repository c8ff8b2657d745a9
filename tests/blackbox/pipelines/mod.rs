//! Pipelines (issue 14): the host's durable run engine with every step type a WASM plugin,
//! driven over REST, the seed 001 routes and the CLI against the embedded cluster.
//!
//! Files: `definitions` (save-time validation, versions, lists, soft delete), `runs` (the
//! 3-stage pipeline, retry from the failed step, step retries and `onError`, abort, the
//! event stream), `rollback` (compensation in reverse order), `outputs` (variables and
//! references, a 1 MiB output), `approval`, `permissions` (USER_DEFINED pipelines, steps
//! acting as the starter), `durability` (`kill -9` mid-run), `plugins` (a step plugin
//! installed at run time, one exceeding its limits, replay), `compat` (seed 001 §5.6),
//! `cli` (the "done" story from a terminal, with the audit log).
//!
//! Every wait is a bounded poll of the run; no test judges wall-clock time.

mod approval;
mod cli;
mod compat;
mod definitions;
mod durability;
mod outputs;
mod permissions;
mod plugins;
mod rollback;
mod runs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wharf_tests::{Reply, Server, fixture};

/// The pipelines of app `cart` in project `shop`.
pub(crate) const PIPELINES: &str = "/api/v1/projects/shop/apps/cart/pipelines";
/// The namespace environment `dev` is bound to.
pub(crate) const NAMESPACE: &str = "shop-dev";

/// Project `shop` with environment `dev` bound to `shop-dev` and app `cart`; the bundled
/// step plugins granted what these tests need: `k8s-job` the namespace `shop-dev`,
/// `http-check` the server's own origin (it checks `/healthz` on loopback).
pub(crate) async fn shop(server: &Server) {
    crate::rollouts::shop(server, false).await;
    regrant(server, "k8s-job", |grants| {
        let cluster = grants
            .get_mut("cluster")
            .and_then(Value::as_object_mut)
            .expect("k8s-job requests the cluster interface");
        push(cluster, "namespaces", NAMESPACE);
    })
    .await;
    allow_http(server, "http-check", &server.base).await;
}

/// Adds `origin` (e.g. `http://127.0.0.1:8080`) to `plugin`'s outbound HTTP allow-list.
pub(crate) async fn allow_http(server: &Server, plugin: &str, origin: &str) {
    regrant(server, plugin, |grants| {
        let http = grants
            .entry("http")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("the http grant is an object");
        push(http, "allow", origin);
    })
    .await;
}

fn push(object: &mut Map<String, Value>, key: &str, item: &str) {
    let list = object.entry(key).or_insert_with(|| json!([]));
    let items = list.as_array_mut().expect("a list grant");
    if !items.iter().any(|i| i == item) {
        items.push(json!(item));
    }
}

/// Enables `plugin` again with its approved grants (or the requested ones) changed by `edit`.
pub(crate) async fn regrant(
    server: &Server,
    plugin: &str,
    edit: impl FnOnce(&mut Map<String, Value>),
) {
    let view = server.get(&format!("/api/v1/plugins/{plugin}")).await;
    assert_eq!(view.status, 200, "{plugin}: {:?}", view.body);
    let current = &view.body["grants"];
    let mut grants = current["approved"]
        .as_object()
        .or_else(|| current["requested"].as_object())
        .cloned()
        .unwrap_or_default();
    edit(&mut grants);
    let reply = server
        .post(
            &format!("/api/v1/plugins/{plugin}/enable"),
            json!({ "grants": grants }),
        )
        .await;
    assert_eq!(reply.status, 200, "enabling {plugin}: {:?}", reply.body);
}

/// Installs and enables the third-party `step-stamp` fixture; its id (the step type).
pub(crate) async fn install_stamp(server: &Server) -> String {
    server.allow_unsigned().await;
    server.install_enabled(&fixture("step-stamp")).await
}

/// A step of a definition (enabled, no retries, fails the run on error).
pub(crate) fn step_def(id: &str, kind: &str, params: Value) -> Value {
    json!({"id": id, "name": id, "type": kind, "params": params})
}

pub(crate) fn stage_def(name: &str, category: &str, steps: Vec<Value>) -> Value {
    json!({"name": name, "category": category, "steps": steps})
}

/// A definition with these stages, triggered manually or by API.
pub(crate) fn definition(name: &str, stages: Vec<Value>) -> Value {
    json!({"name": name, "description": "", "stages": stages, "variables": [],
           "triggers": ["manual", "api"], "permissionMode": "DEFAULT"})
}

/// The pipeline: a Kubernetes Job builds (its `outputs` name the image, from the
/// `tag` variable), `image-deploy` ships that image to `dev` in 2 batches of 1, and
/// `http-check` asserts the Wharf server's own `/healthz` answers 200.
pub(crate) fn ship(server: &Server) -> Value {
    let mut ship = definition(
        "ship",
        vec![
            stage_def(
                "build",
                "CODE_BUILD",
                vec![step_def(
                    "build",
                    "k8s-job",
                    json!({"namespace": NAMESPACE, "image": "busybox:1.36",
                           "command": ["sh", "-c", "echo building cart"],
                           "outputs": {"image": "nginx:${vars.tag}"}}),
                )],
            ),
            stage_def(
                "deploy",
                "IMAGE_DEPLOY",
                vec![step_def(
                    "deploy",
                    "image-deploy",
                    json!({"project": "shop", "app": "cart", "env": "dev",
                           "image": "${steps.build.outputs.image}", "replicas": 2, "batches": 2}),
                )],
            ),
            stage_def(
                "verify",
                "TEST",
                vec![step_def(
                    "health",
                    "http-check",
                    json!({"url": format!("{}/healthz", server.base), "expectStatus": 200}),
                )],
            ),
        ],
    );
    ship["variables"] = json!([{"name": "tag", "type": "string", "default": "1.25",
                                "required": false, "description": "image tag to ship"}]);
    ship
}

/// Creates a pipeline of `cart` as the admin; the stored pipeline.
pub(crate) async fn create(server: &Server, definition: Value) -> Value {
    let reply = server.post(PIPELINES, definition).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

/// Creates a pipeline of `cart`; its id.
pub(crate) async fn create_id(server: &Server, definition: Value) -> String {
    let pipeline = create(server, definition).await;
    pipeline["id"].as_str().expect("pipeline id").to_owned()
}

pub(crate) fn runs_path(pipeline: &str) -> String {
    format!("{PIPELINES}/{pipeline}/runs")
}

pub(crate) fn run_path(pipeline: &str, run: &str) -> String {
    format!("{PIPELINES}/{pipeline}/runs/{run}")
}

/// Starts a run as `token`.
pub(crate) async fn start_as(server: &Server, token: &str, pipeline: &str, body: Value) -> Reply {
    server
        .request("POST", &runs_path(pipeline), Some(body), Some(token))
        .await
}

/// Starts a run as the admin on branch `main`; the run's id.
pub(crate) async fn start(server: &Server, pipeline: &str) -> String {
    let reply = server
        .post(
            &runs_path(pipeline),
            json!({"branch": "main", "variables": {}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().expect("run id").to_owned()
}

pub(crate) async fn get_run(server: &Server, pipeline: &str, run: &str) -> Value {
    let reply = server.get(&run_path(pipeline, run)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// Run states after which nothing happens unless someone acts.
pub(crate) fn is_terminal(run: &Value) -> bool {
    matches!(
        run["status"].as_str(),
        Some("Succeeded" | "Failed" | "Aborted" | "RolledBack" | "RollbackFailed")
    )
}

/// Polls a run (bounded: 120 s) until `done` holds; the run then.
pub(crate) async fn until_run(
    server: &Server,
    pipeline: &str,
    run: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        last = get_run(server, pipeline, run).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} never got to {what}: {last:#}");
}

/// Polls a run (bounded) until it ends; asserts it ended `status`.
pub(crate) async fn finished(server: &Server, pipeline: &str, run: &str, status: &str) -> Value {
    let run = until_run(server, pipeline, run, "an end", is_terminal).await;
    assert_eq!(run["status"], status, "{run:#}");
    run
}

/// Polls a run (bounded) until step `id` is in one of `statuses`; fails at once when the
/// run ends first.
pub(crate) async fn until_step(
    server: &Server,
    pipeline: &str,
    run: &str,
    id: &str,
    statuses: &[&str],
) -> Value {
    let what = format!("step {id} in {statuses:?}");
    let run = until_run(server, pipeline, run, &what, |run| {
        is_terminal(run) || statuses.iter().any(|s| step_of(run, id)["status"] == *s)
    })
    .await;
    assert!(
        statuses.iter().any(|s| step_of(&run, id)["status"] == *s),
        "the run ended before {what}: {run:#}"
    );
    run
}

/// Step `id` of a run.
pub(crate) fn step_of<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {run:#}"))
}

/// The executions of a step in `phase` (`run`, `compensate`, `cancel`).
pub(crate) fn executions<'a>(step: &'a Value, phase: &str) -> Vec<&'a Value> {
    step["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["phase"] == phase)
        .collect()
}

/// Asserts an execution was metered: `id@version` of the plugin, fuel and peak memory.
#[track_caller]
pub(crate) fn assert_metered(execution: &Value, plugin: &str) {
    let named = execution["plugin"].as_str().unwrap_or_default();
    assert!(
        named.starts_with(&format!("{plugin}@")) && named.len() > plugin.len() + 1,
        "plugin id@version: {execution}"
    );
    assert!(
        execution["fuel"].as_u64().is_some_and(|f| f > 0),
        "{execution}"
    );
    assert!(
        execution["peakMemoryBytes"].as_u64().is_some_and(|m| m > 0),
        "{execution}"
    );
    assert!(execution["durationUs"].as_u64().is_some(), "{execution}");
    assert!(
        execution["call"].as_u64().is_some_and(|c| c > 0),
        "{execution}"
    );
    assert!(execution["hostCalls"].as_u64().is_some(), "{execution}");
}

/// Asserts a 404 problem (the contract names no code for it).
#[track_caller]
pub(crate) fn assert_not_found(reply: &Reply) {
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    assert_eq!(
        reply.content_type, "application/problem+json",
        "{:?}",
        reply.body
    );
}

/// A step's outputs, whole, from `/outputs`.
pub(crate) async fn outputs(server: &Server, pipeline: &str, run: &str, step: &str) -> Value {
    let reply = server
        .get(&format!("{}/steps/{step}/outputs", run_path(pipeline, run)))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// The `/healthz` check and one plugin call still work: the host is unharmed.
pub(crate) async fn assert_host_healthy(server: &Server) {
    assert_eq!(
        server.request("GET", "/healthz", None, None).await.status,
        200
    );
    let hello = server
        .invoke("hello", "step.run", json!({"params": {"name": "Still"}}))
        .await;
    assert_eq!(hello.status, 200, "{:?}", hello.body);
}

pub(crate) async fn user_id(server: &Server, token: &str) -> String {
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(token))
        .await;
    me.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {:?}", me.body))
        .to_owned()
}

/// Creates user `name` bound to `role` at `scope`; a token for them.
pub(crate) async fn member(server: &Server, name: &str, role: &str, scope: &str) -> String {
    let token = server.create_user(name, false).await;
    bind(server, &token, role, scope).await;
    token
}

/// Binds the user of `token` to `role` at `scope`.
pub(crate) async fn bind(server: &Server, token: &str, role: &str, scope: &str) {
    let id = user_id(server, token).await;
    let reply = server
        .post(
            "/api/v1/authz/bindings",
            json!({"subject": format!("user:{id}"), "role": role, "scope": scope}),
        )
        .await;
    assert_eq!(
        reply.status, 201,
        "binding {id} to {role} at {scope}: {:?}",
        reply.body
    );
}

/// Audit records matching `query`, newest first.
pub(crate) async fn audit(server: &Server, query: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&{query}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// An HTTP server on loopback that answers `503` until it is healed (or while it has
/// failures left), then `200 ok`; counts the requests it answered.
pub(crate) struct FlakyHttp {
    pub origin: String,
    failures_left: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyHttp {
    /// Fails the first `failures` requests.
    pub(crate) async fn start(failures: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let failures_left = Arc::new(AtomicUsize::new(failures));
        let answered = Arc::new(AtomicUsize::new(0));
        let (left, count) = (failures_left.clone(), answered.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (left, count) = (left.clone(), count.clone());
                tokio::spawn(async move {
                    // Read the request head (bounded), then answer and close.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let failing = left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    count.fetch_add(1, Ordering::SeqCst);
                    let response: &[u8] = if failing {
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\nconnection: close\r\n\r\nunavailable"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    };
                    let _ = socket.write_all(response).await;
                });
            }
        });
        Self {
            origin: format!("http://{address}"),
            failures_left,
            answered,
            task,
        }
    }

    /// From now on every request gets `200 ok`.
    pub(crate) fn heal(&self) {
        self.failures_left.store(0, Ordering::SeqCst);
    }

    pub(crate) fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for FlakyHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
