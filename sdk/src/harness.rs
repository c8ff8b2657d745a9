//! Native test harness: an in-memory Wharf host for `cargo test` (not built for wasm32).
//!
//! On native targets every helper in this crate (`log`, `kv`, `config`, `cluster`,
//! `platform`, `http`) is served by the [`Host`] whose [`Host::run`] is active on the current
//! thread, so plugin code can be unit-tested without a wasm runtime:
//!
//! ```ignore
//! use wharf_sdk::harness::{self, Host};
//! use wharf_sdk::step::Step;
//! use serde_json::json;
//!
//! let host = Host::new()
//!     .config(json!({ "greeting": "Hi" }))
//!     .stub_http("https://example.com/health", 200, "ok");
//! let outcome = host.run(|| <MyPlugin as Step>::run(harness::run_context(), "{}".into()));
//! assert!(host.logs().iter().any(|line| line.message.contains("done")));
//! ```
//!
//! The in-memory cluster keeps objects by `(apiVersion, kind, namespace, name)`, checks the
//! grant given with [`Host::grant_cluster`] like the real host does (no grant: every call
//! is access-denied), treats `apply` as a JSON merge onto the stored object and supports
//! equality label selectors (`a=b`, `a!=b`, `a`, `!a`).
//!
//! The fake platform (`wharf:host/platform`) keeps change orders the plugin opens (their
//! `state` and batches are whatever the test sets with [`Host::update_change_order`]),
//! decisions the test adds with [`Host::add_decision`], and config items given with
//! [`Host::platform_config_item`]; it records every call ([`Host::platform_calls`]) and,
//! like the real host, answers a mutation made again at the same position of a later
//! [`Host::run`] with its first answer (until [`Host::next_attempt`]), so a test can show
//! that a step called again after a restart does not act twice.
//!
//! Calling a helper outside `Host::run` panics: that is a test bug, not a plugin bug.
//! The harness has no size or rate caps; test those against the real host.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::HostError;
use crate::cluster::ClusterError;
use crate::http::{HttpError, Method, Request, Response};
use crate::log::Level;
use crate::meta::PluginInfo;
use crate::platform::{Decision, PlatformError};
use crate::step::RunContext;

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

/// The in-memory host. Cheap to clone; clones share state.
#[derive(Debug, Clone, Default)]
pub struct Host {
    state: Rc<RefCell<State>>,
}

#[derive(Debug, Default)]
struct State {
    kv: BTreeMap<String, Vec<u8>>,
    /// When set, every kv call fails with it (to test error paths).
    kv_error: Option<HostError>,
    config: Option<Value>,
    logs: Vec<LogLine>,
    stubs: HashMap<String, Response>,
    /// URLs whose requests fail without a response (transport errors, refusals).
    http_failures: HashMap<String, HttpError>,
    requests: Vec<Request>,
    denied: Vec<String>,
    cluster: ClusterState,
    platform: PlatformState,
}

/// One call a plugin made on the fake platform, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformCall {
    Deploy {
        project: String,
        app: String,
        env: String,
        request: Value,
    },
    ChangeOrder(String),
    RollbackChange(String),
    AbortChange(String),
    ConfigItem {
        project: String,
        env: String,
        name: String,
    },
    PublishArtifact {
        project: String,
        name: String,
        version: String,
        bytes: usize,
    },
    Decisions,
}

#[derive(Debug, Default)]
struct PlatformState {
    change_orders: BTreeMap<String, Value>,
    /// Change orders opened so far (deploys and rollbacks): the next id.
    opened: u64,
    decisions: Vec<Decision>,
    config_items: BTreeMap<(String, String, String), Value>,
    /// Published build outputs by (project, name, version): the answer and the content.
    published: BTreeMap<(String, String, String), (Value, Vec<u8>)>,
    calls: Vec<PlatformCall>,
    /// When set, every platform call fails with it.
    error: Option<PlatformError>,
    /// The attempt the next mutations belong to ([`Host::next_attempt`] moves on).
    attempt: u32,
    /// Mutations made in the current `Host::run`: the position of the next one.
    mutations: u32,
    /// First successful answer of each mutation by (attempt, position, operation).
    answers: BTreeMap<(u32, u32, &'static str), String>,
}

/// Key of an object in the in-memory cluster: `(apiVersion, kind, namespace, name)`.
type ObjectKey = (String, String, String, String);

#[derive(Debug, Default)]
struct ClusterState {
    objects: BTreeMap<ObjectKey, Value>,
    /// Granted kinds and namespaces; `None`: no cluster grant at all.
    grant: Option<(Vec<String>, Vec<String>)>,
    /// When set, every cluster call (that passes the grant) fails with it.
    error: Option<ClusterError>,
    denied: Vec<String>,
    resource_version: u64,
}

/// `(apiVersion, kind, namespace, name)` of an object, or why it lacks one.
fn object_key(object: &Value) -> Result<ObjectKey, ClusterError> {
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(object, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClusterError::Invalid(format!("{}: must be a string", path.join("."))))
    };
    Ok((
        field(&["apiVersion"])?,
        field(&["kind"])?,
        field(&["metadata", "namespace"])?,
        field(&["metadata", "name"])?,
    ))
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

impl Host {
    /// An empty host: no config, no kv entries, no HTTP stubs (so every URL is denied).
    pub fn new() -> Self {
        Host::default()
    }

    /// Sets the admin config (normally a JSON object).
    pub fn config(self, config: Value) -> Self {
        self.state.borrow_mut().config = Some(config);
        self
    }

    /// Answers requests to exactly `url` (any method) with `status` and `body`.
    /// Requests to URLs without a stub are denied, like URLs off the allow-list.
    pub fn stub_http(self, url: &str, status: u16, body: impl Into<Vec<u8>>) -> Self {
        let response = Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        };
        self.state
            .borrow_mut()
            .stubs
            .insert(url.to_string(), response);
        self
    }

    /// Answers requests to exactly `url` with a full `response` (headers included).
    pub fn stub_http_response(self, url: &str, response: Response) -> Self {
        self.state
            .borrow_mut()
            .stubs
            .insert(url.to_string(), response);
        self
    }

    /// Makes requests to exactly `url` fail with `error` and no response, e.g.
    /// `HttpError::Transport("connection refused".into())` for a store that is down.
    pub fn fail_http(self, url: &str, error: HttpError) -> Self {
        self.state
            .borrow_mut()
            .http_failures
            .insert(url.to_string(), error);
        self
    }

    /// Pre-populates a kv entry.
    pub fn kv(self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.state
            .borrow_mut()
            .kv
            .insert(key.to_string(), value.into());
        self
    }

    /// Makes every kv call fail with `error` (e.g. `HostError::LimitExceeded`).
    pub fn fail_kv(self, error: HostError) -> Self {
        self.state.borrow_mut().kv_error = Some(error);
        self
    }

    /// Grants the in-memory cluster's `kinds` in `namespaces` (`"*"`: any), like the
    /// manifest's `cluster` grant. Without a grant every cluster call is access-denied.
    pub fn grant_cluster(self, kinds: &[&str], namespaces: &[&str]) -> Self {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        self.state.borrow_mut().cluster.grant = Some((owned(kinds), owned(namespaces)));
        self
    }

    /// Puts `object` into the in-memory cluster as is, whatever the grant. Panics unless it
    /// has `apiVersion`, `kind`, `metadata.namespace` and `metadata.name`.
    pub fn cluster_object(self, object: Value) -> Self {
        let key = object_key(&object).unwrap_or_else(|e| panic!("cluster_object: {e}"));
        self.state.borrow_mut().cluster.objects.insert(key, object);
        self
    }

    /// Makes every granted cluster call fail with `error` (e.g. `ClusterError::Unavailable`).
    pub fn fail_cluster(self, error: ClusterError) -> Self {
        self.state.borrow_mut().cluster.error = Some(error);
        self
    }

    /// Gives the fake platform config item `name` of `env` in `project` with `entries`
    /// (a JSON object).
    pub fn platform_config_item(
        self,
        project: &str,
        env: &str,
        name: &str,
        entries: Value,
    ) -> Self {
        let key = (project.to_string(), env.to_string(), name.to_string());
        self.state
            .borrow_mut()
            .platform
            .config_items
            .insert(key, entries);
        self
    }

    /// Makes every platform call fail with `error` (e.g. `PlatformError::Denied`).
    pub fn fail_platform(self, error: PlatformError) -> Self {
        self.state.borrow_mut().platform.error = Some(error);
        self
    }

    /// The change order `id` as the fake platform holds it.
    pub fn change_order(&self, id: &str) -> Option<Value> {
        self.state.borrow().platform.change_orders.get(id).cloned()
    }

    /// Ids of every change order opened so far, oldest first (ids are zero-padded
    /// counters, so key order is opening order).
    pub fn change_order_ids(&self) -> Vec<String> {
        self.state
            .borrow()
            .platform
            .change_orders
            .keys()
            .cloned()
            .collect()
    }

    /// Merges `patch` into change order `id` (JSON merge patch: objects merge, arrays such
    /// as `batches` replace whole), as the deploy engine would move it on, e.g.
    /// `json!({"state": "succeeded"})`. Panics for an unknown id.
    pub fn update_change_order(&self, id: &str, patch: Value) {
        let mut state = self.state.borrow_mut();
        let order = state
            .platform
            .change_orders
            .get_mut(id)
            .unwrap_or_else(|| panic!("update_change_order: no change order `{id}`"));
        cluster::merge(order, &patch);
    }

    /// Adds a user's decision on the step being run, as `POST …/decisions` would.
    pub fn add_decision(&self, username: &str, approve: bool, comment: &str) {
        let mut state = self.state.borrow_mut();
        let seconds = state.platform.decisions.len();
        state.platform.decisions.push(Decision {
            username: username.to_string(),
            approve,
            comment: comment.to_string(),
            at: format!(
                "2026-01-01T00:{:02}:{:02}Z",
                seconds / 60 % 60,
                seconds % 60
            ),
        });
    }

    /// Every platform call the plugin made, in order.
    pub fn platform_calls(&self) -> Vec<PlatformCall> {
        self.state.borrow().platform.calls.clone()
    }

    /// Starts a new attempt: mutations act again instead of answering as before.
    pub fn next_attempt(&self) {
        self.state.borrow_mut().platform.attempt += 1;
    }

    /// Runs `f` with this host serving the SDK helpers on the current thread and returns
    /// its result. State persists across runs, so a second run sees the first run's kv.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        // Each run is one invocation: mutations count their position from the start.
        self.state.borrow_mut().platform.mutations = 0;
        struct Restore(Option<Rc<RefCell<State>>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.state.clone()));
        // Restored on unwind too, so a panicking test does not leak its host into the next.
        let _restore = Restore(previous);
        f()
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.state.borrow().logs.clone()
    }

    /// The messages logged so far, without levels.
    pub fn log_messages(&self) -> Vec<String> {
        self.state
            .borrow()
            .logs
            .iter()
            .map(|line| line.message.clone())
            .collect()
    }

    /// The current value of kv `key`.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().kv.get(key).cloned()
    }

    /// The current value of kv `key` decoded from JSON; `None` when absent or not a `T`.
    pub fn kv_get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.kv_get(key)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    /// All kv keys, in order.
    pub fn kv_keys(&self) -> Vec<String> {
        self.state.borrow().kv.keys().cloned().collect()
    }

    /// Every HTTP request the plugin sent (stubbed or denied), in order.
    pub fn http_requests(&self) -> Vec<Request> {
        self.state.borrow().requests.clone()
    }

    /// URLs the plugin tried to reach that had no stub (and were denied).
    pub fn denied_urls(&self) -> Vec<String> {
        self.state.borrow().denied.clone()
    }

    /// An object in the in-memory cluster.
    pub fn cluster_get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.state.borrow().cluster.objects.get(&key).cloned()
    }

    /// Every object in the in-memory cluster, ordered by apiVersion, kind, namespace, name.
    pub fn cluster_objects(&self) -> Vec<Value> {
        self.state
            .borrow()
            .cluster
            .objects
            .values()
            .cloned()
            .collect()
    }

    /// The cluster calls refused for the grant, as `<verb> <namespace>/<kind>[/<name>]`.
    pub fn cluster_denied(&self) -> Vec<String> {
        self.state.borrow().cluster.denied.clone()
    }
}

/// A step run context for tests: run `test-run`, step `test-step`, first attempt, no state.
pub fn run_context() -> RunContext {
    RunContext {
        run_id: "test-run".to_string(),
        step_id: "test-step".to_string(),
        attempt: 1,
        started_by: "test-user".to_string(),
        variables: Vec::new(),
        previous: Vec::new(),
        state: None,
    }
}

/// Panics unless `manifest_toml` (a `wharf-plugin.toml`) declares the same id, version,
/// description and world as `info`. Call it from a test with
/// `include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"))`.
pub fn assert_manifest_matches(manifest_toml: &str, info: &PluginInfo) {
    let manifest: toml::Table = match toml::from_str(manifest_toml) {
        Ok(table) => table,
        Err(e) => panic!("wharf-plugin.toml does not parse: {e}"),
    };
    for (key, actual) in [
        ("id", &info.id),
        ("version", &info.version),
        ("description", &info.description),
        ("world", &info.world),
    ] {
        let declared = manifest.get(key).and_then(|v| v.as_str());
        assert_eq!(
            declared,
            Some(actual.as_str()),
            "wharf-plugin.toml `{key}` differs from meta.info()"
        );
    }
}

fn with_state<R>(api: &str, f: impl FnOnce(&mut State) -> R) -> R {
    let state = CURRENT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(|| {
            panic!(
                "wharf_sdk::{api} called outside harness::Host::run \
             (on native targets host calls are served by the test harness)"
            )
        });
    let mut state = state.borrow_mut();
    f(&mut state)
}

pub(crate) fn log(level: Level, message: &str) {
    with_state("log", |s| {
        s.logs.push(LogLine {
            level,
            message: message.to_string(),
        })
    });
}

pub(crate) fn http_send(request: &Request) -> Result<Response, HttpError> {
    with_state("http", |s| {
        s.requests.push(request.clone());
        if let Some(error) = s.http_failures.get(&request.url) {
            return Err(error.clone());
        }
        match s.stubs.get(&request.url) {
            // A HEAD response has no body, whatever the stub says.
            Some(stub) if request.method == Method::Head => Ok(Response {
                body: Vec::new(),
                ..stub.clone()
            }),
            Some(stub) => Ok(stub.clone()),
            None => {
                s.denied.push(request.url.clone());
                Err(HttpError::Denied("HTTP request denied".to_string()))
            }
        }
    })
}

/// Mirrors `wharf:host/kv` over the in-memory map.
pub(crate) mod kv {
    use super::{State, with_state};
    use crate::HostError;
    use crate::kv::KeyPage;

    /// Page size cap, like the real host's (which may differ).
    const MAX_PAGE: u32 = 1000;

    fn with_kv<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, HostError> {
        with_state("kv", |s| match &s.kv_error {
            Some(e) => Err(e.clone()),
            None => Ok(f(s)),
        })
    }

    pub(crate) fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        with_kv(|s| s.kv.get(key).cloned())
    }

    pub(crate) fn set(key: &str, value: &[u8]) -> Result<(), HostError> {
        with_kv(|s| {
            s.kv.insert(key.to_string(), value.to_vec());
        })
    }

    pub(crate) fn delete(key: &str) -> Result<bool, HostError> {
        with_kv(|s| s.kv.remove(key).is_some())
    }

    pub(crate) fn list_prefix(
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, HostError> {
        with_kv(|s| {
            let limit = limit.clamp(1, MAX_PAGE) as usize;
            let mut matching =
                s.kv.keys()
                    .filter(|k| k.starts_with(prefix))
                    .filter(|k| cursor.is_none_or(|c| k.as_str() > c));
            let keys: Vec<String> = matching.by_ref().take(limit).cloned().collect();
            let next_cursor = match matching.next() {
                Some(_) => keys.last().cloned(),
                None => None,
            };
            KeyPage { keys, next_cursor }
        })
    }

    pub(crate) fn compare_and_swap(
        key: &str,
        expected: Option<&[u8]>,
        replacement: Option<&[u8]>,
    ) -> Result<bool, HostError> {
        with_kv(|s| {
            if s.kv.get(key).map(Vec::as_slice) != expected {
                return false;
            }
            match replacement {
                Some(value) => s.kv.insert(key.to_string(), value.to_vec()),
                None => s.kv.remove(key),
            };
            true
        })
    }
}

/// Mirrors `wharf:host/cluster` over the in-memory objects.
pub(crate) mod cluster {
    use serde_json::Value;

    use super::{ClusterState, ObjectKey, object_key, with_state};
    use crate::cluster::ClusterError;

    fn permits(list: &[String], name: &str) -> bool {
        list.iter().any(|n| n == "*" || n == name)
    }

    /// Runs `f` on the objects once the grant admits `kind` in `namespace`.
    fn with_cluster<R>(
        verb: &str,
        kind: &str,
        namespace: &str,
        name: Option<&str>,
        f: impl FnOnce(&mut ClusterState) -> Result<R, ClusterError>,
    ) -> Result<R, ClusterError> {
        with_state("cluster", |s| {
            let c = &mut s.cluster;
            let refusal = match &c.grant {
                None => Some("the plugin has no cluster grant".to_string()),
                Some((kinds, _)) if !permits(kinds, kind) => {
                    Some(format!("kind `{kind}` was not granted to this plugin"))
                }
                Some((_, namespaces)) if !permits(namespaces, namespace) => Some(format!(
                    "namespace `{namespace}` was not granted to this plugin"
                )),
                Some(_) => None,
            };
            if let Some(why) = refusal {
                let what = match name {
                    Some(name) => format!("{verb} {namespace}/{kind}/{name}"),
                    None => format!("{verb} {namespace}/{kind}"),
                };
                c.denied.push(what);
                return Err(ClusterError::AccessDenied(why));
            }
            if let Some(error) = &c.error {
                return Err(error.clone());
            }
            f(c)
        })
    }

    fn key(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectKey {
        (
            api_version.to_string(),
            kind.to_string(),
            namespace.to_string(),
            name.to_string(),
        )
    }

    pub(crate) fn get(
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, ClusterError> {
        with_cluster("get", kind, namespace, Some(name), |c| {
            let key = key(api_version, kind, namespace, name);
            Ok(c.objects.get(&key).map(Value::to_string))
        })
    }

    pub(crate) fn list(
        api_version: &str,
        kind: &str,
        namespace: &str,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, ClusterError> {
        let selector = parse_selector(label_selector.unwrap_or(""))?;
        with_cluster("list", kind, namespace, None, |c| {
            Ok(c.objects
                .iter()
                .filter(|((v, k, ns, _), _)| v == api_version && k == kind && ns == namespace)
                .filter(|(_, object)| selector.iter().all(|r| r.matches(object)))
                .map(|(_, object)| object.to_string())
                .collect())
        })
    }

    pub(crate) fn apply(
        object_json: &str,
        _field_manager: Option<&str>,
    ) -> Result<String, ClusterError> {
        let object: Value = serde_json::from_str(object_json)
            .map_err(|e| ClusterError::Invalid(format!("object: not valid JSON: {e}")))?;
        let key = object_key(&object)?;
        let (_, kind, namespace, name) = key.clone();
        with_cluster("apply", &kind, &namespace, Some(&name), |c| {
            c.resource_version += 1;
            let version = c.resource_version;
            let stored = c.objects.entry(key).or_insert_with(
                || serde_json::json!({ "metadata": { "uid": format!("harness-uid-{version}") } }),
            );
            merge(stored, &object);
            stored["metadata"]["resourceVersion"] = Value::String(version.to_string());
            Ok(stored.to_string())
        })
    }

    pub(crate) fn delete(
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, ClusterError> {
        with_cluster("delete", kind, namespace, Some(name), |c| {
            Ok(c.objects
                .remove(&key(api_version, kind, namespace, name))
                .is_some())
        })
    }

    /// JSON merge patch (RFC 7386): objects merge, `null` removes, anything else replaces.
    pub(super) fn merge(target: &mut Value, patch: &Value) {
        let Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = Value::Object(Default::default());
        }
        let target = target.as_object_mut().expect("an object");
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }

    /// One requirement of an equality-based label selector.
    enum Requirement {
        Equals(String, String),
        NotEquals(String, String),
        Exists(String),
        Absent(String),
    }

    impl Requirement {
        fn matches(&self, object: &Value) -> bool {
            let label = |k: &str| object["metadata"]["labels"][k].as_str().map(str::to_string);
            match self {
                Requirement::Equals(k, v) => label(k).as_deref() == Some(v),
                Requirement::NotEquals(k, v) => label(k).as_deref() != Some(v),
                Requirement::Exists(k) => label(k).is_some(),
                Requirement::Absent(k) => label(k).is_none(),
            }
        }
    }

    fn parse_selector(selector: &str) -> Result<Vec<Requirement>, ClusterError> {
        let invalid = |part: &str| {
            ClusterError::Invalid(format!(
                "label-selector: `{part}` is not supported by the harness (use a=b, a!=b, a or !a)"
            ))
        };
        selector
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let requirement = if let Some((k, v)) = part.split_once("!=") {
                    Requirement::NotEquals(k.trim().into(), v.trim().into())
                } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('='))
                {
                    Requirement::Equals(k.trim().into(), v.trim().into())
                } else if let Some(k) = part.strip_prefix('!') {
                    Requirement::Absent(k.trim().into())
                } else {
                    Requirement::Exists(part.into())
                };
                let key = match &requirement {
                    Requirement::Equals(k, _)
                    | Requirement::NotEquals(k, _)
                    | Requirement::Exists(k)
                    | Requirement::Absent(k) => k,
                };
                if key.is_empty() || key.contains([' ', '(', ')']) {
                    return Err(invalid(part));
                }
                Ok(requirement)
            })
            .collect()
    }
}

/// Mirrors `wharf:host/platform` over the fake change orders, decisions and config items.
pub(crate) mod platform {
    use serde_json::{Value, json};

    use super::{PlatformCall, PlatformState, with_state};
    use crate::platform::{Decision, PlatformError};

    /// States in which a change order no longer moves (the host's `ChangeState::is_terminal`).
    const TERMINAL: &[&str] = &["rejected", "succeeded", "failed", "aborted", "rolled_back"];

    fn state_of(order: &Value) -> &str {
        order["state"].as_str().unwrap_or("")
    }

    /// Records `call`, then answers with `f` unless the test made every call fail.
    fn with_platform<R>(
        call: PlatformCall,
        f: impl FnOnce(&mut PlatformState) -> Result<R, PlatformError>,
    ) -> Result<R, PlatformError> {
        with_state("platform", |s| {
            let p = &mut s.platform;
            p.calls.push(call);
            if let Some(error) = &p.error {
                return Err(error.clone());
            }
            f(p)
        })
    }

    /// A mutation: the same position in a later run of the same attempt gets the first
    /// successful answer back, as the real host's idempotency does. Refusals are not kept:
    /// a step that met a conflict may try again and succeed.
    fn mutation(
        call: PlatformCall,
        operation: &'static str,
        f: impl FnOnce(&mut PlatformState) -> Result<String, PlatformError>,
    ) -> Result<String, PlatformError> {
        with_platform(call, |p| {
            let key = (p.attempt, p.mutations, operation);
            p.mutations += 1;
            if let Some(answer) = p.answers.get(&key) {
                return Ok(answer.clone());
            }
            let answer = f(p);
            if let Ok(first) = &answer {
                p.answers.insert(key, first.clone());
            }
            answer
        })
    }

    fn open(p: &mut PlatformState, order: Value) -> String {
        p.opened += 1;
        let id = format!("{:032x}", p.opened);
        let mut order = order;
        order["id"] = Value::String(id.clone());
        p.change_orders.insert(id, order.clone());
        order.to_string()
    }

    fn existing<'a>(p: &'a mut PlatformState, id: &str) -> Result<&'a mut Value, PlatformError> {
        p.change_orders
            .get_mut(id)
            .ok_or_else(|| PlatformError::NotFound(format!("change order `{id}` does not exist")))
    }

    /// Batches as the deploy engine plans them: the request's `batchList`, or one batch.
    fn batches(request: &Value, replicas: u64) -> Vec<Value> {
        let sizes: Vec<u64> = match request["deploymentStrategy"]["batchList"].as_array() {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(|b| b["instNum"].as_u64().unwrap_or(0))
                .collect(),
            _ => vec![replicas],
        };
        let mut target = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                target += size;
                json!({ "seq": i + 1, "instNum": size, "targetReplicas": target, "ready": 0, "state": "pending" })
            })
            .collect()
    }

    pub(crate) fn deploy(
        project: &str,
        app: &str,
        env: &str,
        request_json: &str,
    ) -> Result<String, PlatformError> {
        let request: Value = serde_json::from_str(request_json)
            .map_err(|e| PlatformError::Invalid(format!("request: not valid JSON: {e}")))?;
        let call = PlatformCall::Deploy {
            project: project.to_string(),
            app: app.to_string(),
            env: env.to_string(),
            request: request.clone(),
        };
        mutation(call, "deploy", |p| {
            if !request["image"].is_string() {
                return Err(PlatformError::Invalid("image: must be a string".into()));
            }
            let replicas = request["replicas"].as_u64().unwrap_or(1);
            Ok(open(
                p,
                json!({
                    "kind": "DEPLOY", "state": "running",
                    "project": project, "app": app, "env": env,
                    "targetReplicas": replicas,
                    "batches": batches(&request, replicas),
                    "spec": request,
                    "rollbackOf": null, "rolledBackBy": null, "error": null,
                }),
            ))
        })
    }

    pub(crate) fn change_order(id: &str) -> Result<String, PlatformError> {
        with_platform(PlatformCall::ChangeOrder(id.to_string()), |p| {
            Ok(existing(p, id)?.to_string())
        })
    }

    pub(crate) fn rollback_change(id: &str) -> Result<String, PlatformError> {
        mutation(
            PlatformCall::RollbackChange(id.to_string()),
            "rollback-change",
            |p| {
                let order = existing(p, id)?;
                let state = state_of(order).to_string();
                if !TERMINAL.contains(&state.as_str()) {
                    return Err(PlatformError::Conflict(format!(
                        "change order `{id}` is still {state}"
                    )));
                }
                if let Some(by) = order["rolledBackBy"].as_str() {
                    return Err(PlatformError::Conflict(format!(
                        "change order `{id}` was already rolled back by `{by}`"
                    )));
                }
                let rollback = json!({
                    "kind": "ROLLBACK", "state": "running",
                    "project": order["project"], "app": order["app"], "env": order["env"],
                    "targetReplicas": order["targetReplicas"],
                    "batches": [],
                    "rollbackOf": id, "rolledBackBy": null, "error": null,
                });
                let stored = open(p, rollback);
                let rollback_id = format!("{:032x}", p.opened);
                if let Some(order) = p.change_orders.get_mut(id) {
                    order["rolledBackBy"] = Value::String(rollback_id);
                }
                Ok(stored)
            },
        )
    }

    pub(crate) fn abort_change(id: &str) -> Result<String, PlatformError> {
        mutation(
            PlatformCall::AbortChange(id.to_string()),
            "abort-change",
            |p| {
                let order = existing(p, id)?;
                let state = state_of(order).to_string();
                if TERMINAL.contains(&state.as_str()) {
                    return Err(PlatformError::Conflict(format!(
                        "change order `{id}` already ended: {state}"
                    )));
                }
                order["state"] = Value::String("aborted".into());
                Ok(order.to_string())
            },
        )
    }

    pub(crate) fn config_item(
        project: &str,
        env: &str,
        name: &str,
    ) -> Result<Option<String>, PlatformError> {
        let call = PlatformCall::ConfigItem {
            project: project.to_string(),
            env: env.to_string(),
            name: name.to_string(),
        };
        with_platform(call, |p| {
            let key = (project.to_string(), env.to_string(), name.to_string());
            Ok(p.config_items.get(&key).map(Value::to_string))
        })
    }

    pub(crate) fn publish_artifact(
        project: &str,
        name: &str,
        version: &str,
        content: &[u8],
    ) -> Result<String, PlatformError> {
        let call = PlatformCall::PublishArtifact {
            project: project.to_string(),
            name: name.to_string(),
            version: version.to_string(),
            bytes: content.len(),
        };
        // As the host: `name` ends with the package type; a version is published once.
        let key = (project.to_string(), name.to_string(), version.to_string());
        let content = content.to_vec();
        mutation(call, "publish-artifact", move |p| {
            let types = [".tar.gz", ".jar", ".war", ".zip", ".rpm"];
            let Some(ext) = types
                .iter()
                .find(|t| key.1.ends_with(*t) && key.1.len() > t.len())
            else {
                return Err(PlatformError::Invalid(format!(
                    "name: `{}` must end with .jar, .war, .zip, .tar.gz or .rpm",
                    key.1
                )));
            };
            if let Some((kept, bytes)) = p.published.get(&key) {
                if *bytes == content {
                    return Ok(kept.to_string());
                }
                return Err(PlatformError::Conflict(format!(
                    "{} {} is already published as package {} with other content",
                    key.1, key.2, kept["id"]
                )));
            }
            let package = serde_json::json!({
                "id": format!("{:032x}", p.published.len() + 1),
                "project": key.0,
                "name": &key.1[..key.1.len() - ext.len()],
                "version": key.2,
                "type": &ext[1..],
                "source": "CODE_GENERATE",
                "size": content.len(),
            });
            p.published.insert(key, (package.clone(), content));
            Ok(package.to_string())
        })
    }

    pub(crate) fn decisions() -> Result<Vec<Decision>, PlatformError> {
        with_platform(PlatformCall::Decisions, |p| Ok(p.decisions.clone()))
    }
}

/// Mirrors `wharf:host/config` over the configured JSON.
pub(crate) mod config {
    use super::with_state;

    pub(crate) fn get_all() -> String {
        with_state("config", |s| match &s.config {
            Some(config) => config.to_string(),
            None => "{}".to_string(),
        })
    }

    pub(crate) fn get(key: &str) -> Option<String> {
        with_state("config", |s| {
            s.config.as_ref()?.get(key).map(|v| v.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kv_round_trips_and_pages() {
        let host = Host::new().kv("a/1", "x");
        host.run(|| {
            crate::kv::set_json("a/2", &2).expect("set");
            crate::kv::set("b/1", b"y").expect("set");
            let page = crate::kv::list_prefix("a/", None, 1).expect("list");
            assert_eq!(page.keys, vec!["a/1".to_string()]);
            let page = crate::kv::list_prefix("a/", page.next_cursor.as_deref(), 1).expect("list");
            assert_eq!(page.keys, vec!["a/2".to_string()]);
            assert_eq!(page.next_cursor, None);
            assert!(crate::kv::compare_and_swap("a/1", Some(b"x"), None).expect("cas"));
            assert!(!crate::kv::compare_and_swap("a/1", Some(b"x"), None).expect("cas"));
            assert!(crate::kv::delete("b/1").expect("delete"));
        });
        assert_eq!(host.kv_keys(), vec!["a/2".to_string()]);
        assert_eq!(host.kv_get_json::<u32>("a/2"), Some(2));
    }

    #[test]
    fn kv_errors_are_injectable() {
        let host = Host::new().fail_kv(HostError::LimitExceeded("kv calls per invocation".into()));
        let result = host.run(|| crate::kv::get("k"));
        assert_eq!(
            result,
            Err(HostError::LimitExceeded("kv calls per invocation".into()))
        );
    }

    #[test]
    fn config_and_logs() {
        let host = Host::new().config(json!({ "n": 3, "s": "x" }));
        host.run(|| {
            assert_eq!(crate::config::get::<u32>("n"), Some(3));
            assert_eq!(crate::config::get::<u32>("s"), None);
            assert!(crate::config::try_get::<u32>("s").is_err());
            assert_eq!(crate::config::get_all()["s"], "x");
            crate::info!("n is {}", 3);
            crate::log::warn("careful");
        });
        assert_eq!(
            host.logs(),
            vec![
                LogLine {
                    level: Level::Info,
                    message: "n is 3".into()
                },
                LogLine {
                    level: Level::Warn,
                    message: "careful".into()
                },
            ]
        );
    }

    #[test]
    fn http_stubs_and_denials() {
        let host = Host::new().stub_http("http://svc/ok", 204, "").fail_http(
            "http://svc/down",
            HttpError::Transport("connection refused".into()),
        );
        host.run(|| {
            assert_eq!(crate::http::get("http://svc/ok").map(|r| r.status), Ok(204));
            assert_eq!(
                crate::http::get("http://svc/down"),
                Err(HttpError::Transport("connection refused".into()))
            );
            assert_eq!(
                crate::http::get("http://other/"),
                Err(HttpError::Denied("HTTP request denied".into()))
            );
            assert!(matches!(
                crate::http::get("svc/ok"),
                Err(HttpError::InvalidRequest(_))
            ));
        });
        assert_eq!(host.denied_urls(), vec!["http://other/".to_string()]);
        assert_eq!(host.http_requests().len(), 3);
    }

    #[test]
    fn cluster_applies_lists_and_deletes_within_the_grant() {
        let host = Host::new()
            .grant_cluster(&["ConfigMap"], &["team-a"])
            .cluster_object(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "old", "namespace": "team-a", "labels": {"app": "other"}},
            }));
        host.run(|| {
            let stored: Value = crate::cluster::apply(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": "team-a", "labels": {"app": "web"}},
                "data": {"a": "1"},
            }))
            .expect("apply");
            assert_eq!(stored["metadata"]["resourceVersion"], "1");
            let merged: Value = crate::cluster::apply(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": "team-a"},
                "data": {"b": "2"},
            }))
            .expect("apply again");
            assert_eq!(merged["data"], json!({"a": "1", "b": "2"}));
            assert_eq!(merged["metadata"]["uid"], stored["metadata"]["uid"]);
            let got: Option<Value> =
                crate::cluster::get("v1", "ConfigMap", "team-a", "cm").expect("get");
            assert_eq!(got.as_ref(), Some(&merged));
            let web: Vec<Value> =
                crate::cluster::list("v1", "ConfigMap", "team-a", Some("app=web")).expect("list");
            assert_eq!(web, vec![merged]);
            let all: Vec<Value> =
                crate::cluster::list("v1", "ConfigMap", "team-a", None).expect("list");
            assert_eq!(all.len(), 2);
            let not_web: Vec<Value> =
                crate::cluster::list("v1", "ConfigMap", "team-a", Some("app!=web")).expect("list");
            assert_eq!(not_web[0]["metadata"]["name"], "old");
            assert!(crate::cluster::delete("v1", "ConfigMap", "team-a", "cm").expect("delete"));
            assert!(!crate::cluster::delete("v1", "ConfigMap", "team-a", "cm").expect("delete"));
        });
        assert_eq!(host.cluster_objects().len(), 1);
        assert!(
            host.cluster_get("v1", "ConfigMap", "team-a", "old")
                .is_some()
        );
    }

    #[test]
    fn cluster_calls_outside_the_grant_are_denied() {
        let host = Host::new().grant_cluster(&["ConfigMap"], &["team-a"]);
        host.run(|| {
            let secret = crate::cluster::get::<Value>("v1", "Secret", "team-a", "s");
            assert!(matches!(secret, Err(ClusterError::AccessDenied(m)) if m.contains("Secret")));
            let elsewhere = crate::cluster::list::<Value>("v1", "ConfigMap", "team-b", None);
            assert!(
                matches!(elsewhere, Err(ClusterError::AccessDenied(m)) if m.contains("team-b"))
            );
            let typed = crate::cluster::apply(&json!({"kind": "ConfigMap"}));
            assert!(matches!(typed, Err(ClusterError::Invalid(_))));
        });
        assert_eq!(
            host.cluster_denied(),
            vec![
                "get team-a/Secret/s".to_string(),
                "list team-b/ConfigMap".to_string()
            ]
        );
        let ungranted = Host::new();
        let refused = ungranted.run(|| crate::cluster::delete("v1", "ConfigMap", "a", "b"));
        assert!(matches!(refused, Err(ClusterError::AccessDenied(_))));
        let failing = Host::new()
            .grant_cluster(&["*"], &["*"])
            .fail_cluster(ClusterError::Unavailable("down".into()));
        let down = failing.run(|| crate::cluster::delete("v1", "ConfigMap", "a", "b"));
        assert_eq!(down, Err(ClusterError::Unavailable("down".into())));
    }

    #[test]
    fn platform_deploys_once_per_attempt_and_position() {
        let request = json!({ "image": "cart:1", "replicas": 3,
            "deploymentStrategy": { "batchList": [{"batchSeq": 1, "instNum": 2}, {"batchSeq": 2, "instNum": 1}] } });
        let host = Host::new();
        let deploy = || crate::platform::deploy("shop", "cart", "prod", &request);
        let first = host.run(deploy).expect("deploy");
        let again = host.run(deploy).expect("deploy again");
        assert_eq!(
            first, again,
            "the same call of the same attempt answers as before"
        );
        assert_eq!(first["state"], "running");
        assert_eq!(first["batches"][1]["targetReplicas"], 3);
        host.next_attempt();
        let retried = host.run(deploy).expect("deploy in a new attempt");
        assert_ne!(retried["id"], first["id"]);
        assert_eq!(host.change_order_ids().len(), 2);
        host.next_attempt();
        let refused = host.run(|| crate::platform::deploy("shop", "cart", "prod", &json!({})));
        assert!(matches!(refused, Err(PlatformError::Invalid(m)) if m.contains("image")));
        assert_eq!(host.platform_calls().len(), 4);
        assert_eq!(
            host.platform_calls()[0],
            PlatformCall::Deploy {
                project: "shop".into(),
                app: "cart".into(),
                env: "prod".into(),
                request: request.clone(),
            }
        );
    }

    #[test]
    fn platform_change_orders_follow_the_test() {
        let host = Host::new();
        let id = host
            .run(|| crate::platform::deploy("shop", "cart", "prod", &json!({ "image": "cart:1" })))
            .expect("deploy")["id"]
            .as_str()
            .map(str::to_string)
            .expect("an id");
        let early = host.run(|| crate::platform::rollback_change(&id));
        assert!(matches!(early, Err(PlatformError::Conflict(m)) if m.contains("running")));
        host.update_change_order(&id, json!({ "state": "succeeded" }));
        let read = host
            .run(|| crate::platform::change_order(&id))
            .expect("read");
        assert_eq!(read["state"], "succeeded");
        let rollback = host
            .run(|| crate::platform::rollback_change(&id))
            .expect("a refused mutation may be tried again");
        assert_eq!(rollback["rollbackOf"], id.as_str());
        assert_eq!(
            host.change_order(&id).expect("kept")["rolledBackBy"],
            rollback["id"]
        );
        let rollback_id = rollback["id"].as_str().unwrap_or_default().to_string();
        let aborted = host
            .run(|| crate::platform::abort_change(&rollback_id))
            .expect("abort");
        assert_eq!(aborted["state"], "aborted");
        let missing = host.run(|| crate::platform::change_order("nope"));
        assert!(matches!(missing, Err(PlatformError::NotFound(m)) if m.contains("nope")));
    }

    #[test]
    fn platform_decisions_config_items_and_failures() {
        let host =
            Host::new().platform_config_item("shop", "prod", "settings", json!({ "a": "1" }));
        host.add_decision("bob", true, "ok");
        host.run(|| {
            let decisions = crate::platform::decisions().expect("decisions");
            assert_eq!(decisions.len(), 1);
            assert_eq!(
                (decisions[0].username.as_str(), decisions[0].approve),
                ("bob", true)
            );
            let item = crate::platform::config_item("shop", "prod", "settings").expect("item");
            assert_eq!(item.and_then(|m| m.get("a").cloned()), Some(json!("1")));
            assert_eq!(
                crate::platform::config_item("shop", "dev", "settings"),
                Ok(None)
            );
            let published = crate::platform::publish_artifact("shop", "cart.jar", "1.0", b"x")
                .expect("published");
            let published: Value = serde_json::from_str(&published).expect("JSON");
            assert_eq!(
                (published["name"].as_str(), published["type"].as_str()),
                (Some("cart"), Some("jar"))
            );
            assert!(matches!(
                crate::platform::publish_artifact("shop", "cart", "1.0", b"x"),
                Err(PlatformError::Invalid(_))
            ));
        });
        let denied = Host::new().fail_platform(PlatformError::Denied("deploy.create".into()));
        let refused = denied.run(crate::platform::decisions);
        assert_eq!(refused, Err(PlatformError::Denied("deploy.create".into())));
        assert_eq!(denied.platform_calls(), vec![PlatformCall::Decisions]);
    }

    #[test]
    #[should_panic(expected = "outside harness::Host::run")]
    fn helpers_outside_run_panic() {
        crate::log::info("nobody listens");
    }

    #[test]
    fn manifest_check_accepts_matching_info() {
        let info = PluginInfo {
            id: "x-y".into(),
            version: "1.2.3".into(),
            description: "d".into(),
            world: "step".into(),
        };
        assert_manifest_matches(
            "id = \"x-y\"\nversion = \"1.2.3\"\nworld = \"step\"\ndescription = \"d\"\n[grants]\nlog = {}\n",
            &info,
        );
    }
}
