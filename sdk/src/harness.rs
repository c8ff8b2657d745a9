//! Native test harness: an in-memory Wharf host for `cargo test` (not built for wasm32).
//!
//! On native targets every helper in this crate (`log`, `kv`, `config`, `http`) is served
//! by the [`Host`] whose [`Host::run`] is active on the current thread, so plugin code can
//! be unit-tested without a wasm runtime:
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
//! Calling a helper outside `Host::run` panics: that is a test bug, not a plugin bug.
//! The harness has no size or rate caps; test those against the real host.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::HostError;
use crate::http::{HttpError, Method, Request, Response};
use crate::log::Level;
use crate::meta::PluginInfo;
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
    requests: Vec<Request>,
    denied: Vec<String>,
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

    /// Runs `f` with this host serving the SDK helpers on the current thread and returns
    /// its result. State persists across runs, so a second run sees the first run's kv.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
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
}

/// A step run context for tests: run `test-run`, step `test-step`, first attempt, no state.
pub fn run_context() -> RunContext {
    RunContext {
        run_id: "test-run".to_string(),
        step_id: "test-step".to_string(),
        attempt: 1,
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
        let host = Host::new().stub_http("http://svc/ok", 204, "");
        host.run(|| {
            assert_eq!(crate::http::get("http://svc/ok").map(|r| r.status), Ok(204));
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
        assert_eq!(host.http_requests().len(), 2);
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
