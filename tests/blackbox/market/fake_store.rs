//! A fake Rainbond app store ("app-server") on loopback that speaks the rainstore protocol
//! of `reference/rainstore.md` §2: routes under `/app-server/openapi/`, the SDK's wire names,
//! the template as a JSON *string*, `{code, msg}` error bodies, the raw `Authorization`
//! header, `marketDomain` scoping. Tests turn knobs at run time (apps and versions, 5xx for
//! the next N requests, a malformed template, a redirect of every request) and read the log
//! of what the plugin sent. `OtherHost` is a second server that only counts its hits.
//!
//! Each server runs on a thread of its own with its own runtime: the CLI tests block the
//! test's runtime while `wharf` runs, and the store must keep answering meanwhile.

use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// What the store received: one line of its request log.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The raw query string ("" when none).
    pub query: String,
    /// The raw `Authorization` header, when one was sent.
    pub authorization: Option<String>,
}

impl Received {
    /// The value of query parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url_params(&self.query)
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

fn url_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space, as urlencode writes it).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One version of an app as the store keeps it.
#[derive(Debug, Clone)]
pub struct StoreVersion {
    pub version: String,
    pub alias: String,
    pub description: String,
    /// RFC 3339.
    pub update_time: String,
    /// The text served as `template`: normally the RAM JSON serialized, or anything a
    /// test wants to break it with.
    pub template_text: String,
}

/// One app of the store.
#[derive(Debug, Clone)]
struct StoreApp {
    id: String,
    name: String,
    description: String,
    logo: String,
    tags: Vec<String>,
    /// Oldest first; served newest first.
    versions: Vec<StoreVersion>,
}

#[derive(Default)]
struct Knobs {
    apps: Vec<StoreApp>,
    /// Answer this many of the next requests with `fail_status`.
    fail_next: u32,
    fail_status: u16,
    /// Send every request here instead (a 302 with the same path and query).
    redirect_to: Option<String>,
    log: Vec<Received>,
}

struct Shared {
    access_key: String,
    domain: String,
    knobs: Mutex<Knobs>,
}

impl Shared {
    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        // A test that panicked while holding the lock has failed already; its knobs are
        // still consistent (every change is a single assignment).
        self.knobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake store.
pub struct FakeStore {
    /// Base URL, e.g. `http://127.0.0.1:41234` (the `market_url` of a connection).
    pub url: String,
    pub access_key: String,
    /// The store's market domain (`marketDomain`).
    pub domain: String,
    shared: Arc<Shared>,
    _server: Background,
}

impl FakeStore {
    /// Starts an empty store that accepts `access_key` for market domain `domain`.
    pub fn start(access_key: &str, domain: &str) -> Self {
        let shared = Arc::new(Shared {
            access_key: access_key.to_owned(),
            domain: domain.to_owned(),
            knobs: Mutex::new(Knobs::default()),
        });
        let api = Router::new()
            .route("/app-server/openapi/info", get(info))
            .route("/app-server/openapi/healthz", get(healthz))
            .route("/app-server/openapi/apps", get(list_apps))
            .route("/app-server/openapi/apps/{app}", get(app_detail))
            .route("/app-server/openapi/apps/{app}/versions", get(app_versions))
            .route(
                "/app-server/openapi/apps/{app}/versions/{version}",
                get(version_detail),
            )
            .fallback(|| async { store_error(StatusCode::NOT_FOUND, "No found") })
            .layer(middleware::from_fn_with_state(shared.clone(), gatekeeper))
            .with_state(shared.clone());
        let server = Background::serve(api);
        Self {
            url: server.url.clone(),
            access_key: access_key.to_owned(),
            domain: domain.to_owned(),
            shared,
            _server: server,
        }
    }

    /// Publishes a version of an app from its RAM template (`group_key` is the app id,
    /// `group_name` its name, `group_version` the version); the app is created on first use.
    pub fn publish(&self, ram: &Value) {
        let text = ram.to_string();
        self.publish_text(ram, text);
    }

    /// Publishes a version whose `template` field is `text`, whatever it holds; the app
    /// id, name and version are read from `ram`.
    pub fn publish_text(&self, ram: &Value, text: String) {
        let field = |name: &str| ram[name].as_str().unwrap_or_default().to_owned();
        let app_id = field("group_key");
        let version = StoreVersion {
            version: field("group_version"),
            alias: format!("v{}", field("group_version")),
            description: format!("{} {}", field("group_name"), field("group_version")),
            update_time: ram["update_time"]
                .as_str()
                .unwrap_or("2026-03-01T08:00:00Z")
                .to_owned(),
            template_text: text,
        };
        let mut knobs = self.shared.knobs();
        let position = knobs.apps.iter().position(|a| a.id == app_id);
        let app = match position {
            Some(i) => &mut knobs.apps[i],
            None => {
                knobs.apps.push(StoreApp {
                    id: app_id.clone(),
                    name: field("group_name"),
                    description: ram["describe"]
                        .as_str()
                        .unwrap_or("An app of the fake store")
                        .to_owned(),
                    logo: format!("https://store.invalid/logos/{app_id}.png"),
                    tags: vec!["test".to_owned()],
                    versions: Vec::new(),
                });
                knobs.apps.last_mut().expect("just pushed")
            }
        };
        app.versions.retain(|v| v.version != version.version);
        app.versions.push(version);
    }

    /// Replaces the served template text of one version (e.g. with something not JSON).
    pub fn set_template_text(&self, app_id: &str, version: &str, text: &str) {
        let mut knobs = self.shared.knobs();
        let found = knobs
            .apps
            .iter_mut()
            .filter(|a| a.id == app_id)
            .flat_map(|a| a.versions.iter_mut())
            .find(|v| v.version == version)
            .unwrap_or_else(|| panic!("the store has no {app_id} {version}"));
        found.template_text = text.to_owned();
    }

    /// Answers the next `count` requests with `status` and `{code, msg}`.
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut knobs = self.shared.knobs();
        knobs.fail_next = count;
        knobs.fail_status = status;
    }

    /// Redirects every request (302, same path and query) to `base`.
    pub fn redirect_everything_to(&self, base: &str) {
        self.shared.knobs().redirect_to = Some(base.trim_end_matches('/').to_owned());
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.knobs().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.knobs().log.clear();
    }
}

/// Records each request, then applies the knobs that act on every route (redirect, 5xx)
/// and the access key check, in that order, as a store behind a proxy would.
async fn gatekeeper(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let received = Received {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or_default().to_owned(),
        authorization: request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    let redirect = {
        let mut knobs = shared.knobs();
        knobs.log.push(received.clone());
        if let Some(base) = &knobs.redirect_to {
            let query = if received.query.is_empty() {
                String::new()
            } else {
                format!("?{}", received.query)
            };
            Some(format!("{base}{}{query}", received.path))
        } else if knobs.fail_next > 0 {
            knobs.fail_next -= 1;
            let status = StatusCode::from_u16(knobs.fail_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return store_error(status, "server failure");
        } else {
            None
        }
    };
    if let Some(location) = redirect {
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    match received.authorization.as_deref() {
        None | Some("") => store_error(StatusCode::UNAUTHORIZED, "no store auth token"),
        Some(key) if key != shared.access_key => store_error(StatusCode::FORBIDDEN, "No perm"),
        Some(_) => next.run(request).await,
    }
}

/// The protocol's error body (`RestfulutilResult`).
fn store_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": status.as_u16(), "msg": message})),
    )
        .into_response()
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .0
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// urllib writes Python booleans as `True`/`False`; any case is accepted.
fn flag(params: &Params, name: &str) -> bool {
    param(params, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn domain_matches(shared: &Shared, params: &Params) -> bool {
    param(params, "marketDomain") == Some(shared.domain.as_str())
}

async fn healthz() -> Response {
    axum::Json(json!({"code": 200, "msg": "ok"})).into_response()
}

async fn info(State(shared): State<Arc<Shared>>, params: Params) -> Response {
    if !domain_matches(&shared, &params) {
        return store_error(StatusCode::NOT_FOUND, "market not found");
    }
    axum::Json(json!({
        "name": shared.domain,
        "description": "fake store for Wharf's tests",
        "status": 1,
        "accessActions": ["ReadInstall"],
        "createTime": "2026-01-01T00:00:00Z",
        "version": "5.17",
    }))
    .into_response()
}

fn version_base(app: &StoreApp, version: &StoreVersion) -> Value {
    json!({
        "appKeyID": app.id,
        "appVersion": version.version,
        "appVersionAlias": version.alias,
        "desc": version.description,
        "rainbondVersion": "v5.17.0-release",
        "deliveryMode": "image",
        "enable": true,
        "is_plugin": false,
        "updateVersion": 1,
        "createTime": version.update_time,
        "updateTime": version.update_time,
        "arch": "amd64",
    })
}

fn app_base(domain: &str, app: &StoreApp) -> Value {
    let newest = app.versions.last();
    json!({
        "appKeyID": app.id,
        "name": app.name,
        "desc": app.description,
        "introduction": format!("# {}\n{}", app.name, app.description),
        "introductionHTML": format!("<h1>{}</h1><p>{}</p>", app.name, app.description),
        "logo": app.logo,
        "tags": app.tags,
        "devStatus": "release",
        "isOfficial": false,
        "publishType": "private",
        "publishUser": "publisher",
        "status": 1,
        "marketID": "0123456789abcdef0123456789abcdef",
        "marketName": domain,
        "marketURL": "",
        "appDetailURL": "",
        "installCount": 0,
        "downloadCount": 0,
        "showCount": 0,
        "startCount": 0,
        "createTime": app.versions.first().map(|v| v.update_time.as_str()).unwrap_or(""),
        "updateTime": newest.map(|v| v.update_time.as_str()).unwrap_or(""),
        "versions": app.versions.iter().rev().map(|v| version_base(app, v)).collect::<Vec<_>>(),
    })
}

async fn list_apps(State(shared): State<Arc<Shared>>, params: Params) -> Response {
    if !domain_matches(&shared, &params) {
        return store_error(StatusCode::NOT_FOUND, "market not found");
    }
    let query = param(&params, "query").unwrap_or_default().to_lowercase();
    let page: i64 = param(&params, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page_size: i64 = param(&params, "pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(10);
    let knobs = shared.knobs();
    let matching: Vec<&StoreApp> = knobs
        .apps
        .iter()
        .filter(|a| query.is_empty() || a.name.to_lowercase().contains(&query))
        .collect();
    let total = matching.len();
    let shown: Vec<Value> = if page_size < 0 {
        matching
            .iter()
            .map(|a| app_base(&shared.domain, a))
            .collect()
    } else {
        let size = page_size.max(1) as usize;
        matching
            .iter()
            .skip((page as usize - 1) * size)
            .take(size)
            .map(|a| app_base(&shared.domain, a))
            .collect()
    };
    axum::Json(json!({"apps": shown, "page": page, "pageSize": page_size, "total": total}))
        .into_response()
}

fn with_app<T>(
    shared: &Shared,
    params: &Params,
    id: &str,
    then: impl FnOnce(&StoreApp) -> T,
) -> Option<T> {
    if !domain_matches(shared, params) {
        return None;
    }
    shared.knobs().apps.iter().find(|a| a.id == id).map(then)
}

async fn app_detail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    match with_app(&shared, &params, &id, |app| {
        let mut detail = app_base(&shared.domain, app);
        detail["appClassificationID"] = json!("web");
        detail["orgID"] = json!("org-1");
        detail
    }) {
        Some(detail) => axum::Json(detail).into_response(),
        None => store_error(StatusCode::NOT_FOUND, "No found"),
    }
}

async fn app_versions(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    match with_app(&shared, &params, &id, |app| {
        app.versions
            .iter()
            .rev()
            .map(|v| version_base(app, v))
            .collect::<Vec<_>>()
    }) {
        Some(versions) => axum::Json(json!({"versions": versions})).into_response(),
        None => store_error(StatusCode::NOT_FOUND, "No found"),
    }
}

async fn version_detail(
    State(shared): State<Arc<Shared>>,
    Path((id, version)): Path<(String, String)>,
    params: Params,
) -> Response {
    // Without `getTemplate=true` the store leaves the template out, as the console's
    // listing calls do.
    let with_template = flag(&params, "getTemplate");
    let found = with_app(&shared, &params, &id, |app| {
        app.versions.iter().find(|v| v.version == version).map(|v| {
            json!({
                "appKeyID": app.id,
                "appName": app.name,
                "version": v.version,
                "versionAlias": v.alias,
                "description": v.description,
                "rainbondVersion": "v5.17.0-release",
                "templateType": "RAM",
                "template": if with_template { v.template_text.as_str() } else { "" },
                "deliveryMode": "image",
                "enable": true,
                "is_plugin": false,
                "marketID": "0123456789abcdef0123456789abcdef",
                "updateVersion": 1,
                "createTime": v.update_time,
                "updateTime": v.update_time,
                "arch": "amd64",
            })
        })
    });
    match found.flatten() {
        Some(detail) => axum::Json(detail).into_response(),
        None => store_error(StatusCode::NOT_FOUND, "No found"),
    }
}

/// A second loopback server that answers every request with 200 `{}` and counts them:
/// the host a well-behaved plugin must never reach.
pub struct OtherHost {
    pub url: String,
    hits: Arc<AtomicU64>,
    _server: Background,
}

impl OtherHost {
    pub fn start() -> Self {
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let api = Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // A store-shaped body: a confused client goes on instead of failing early.
                axum::Json(json!({"apps": [], "page": 1, "pageSize": 10, "total": 0}))
            }
        });
        let server = Background::serve(api);
        Self {
            url: server.url.clone(),
            hits,
            _server: server,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A loopback URL nothing listens on: a port that was bound and released.
pub fn closed_port_url() -> String {
    let listener = StdListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// An axum router served on its own thread and runtime until dropped.
struct Background {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    fn serve(router: Router) -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("binding a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("the bound address")
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fake server");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                tokio::select! {
                    served = axum::serve(listener, router) => {
                        if let Err(error) = served {
                            eprintln!("fake server stopped: {error}");
                        }
                    }
                    _ = stopped => {}
                }
            });
        });
        Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The fake store itself: what the market tests rely on it to do.
#[tokio::test]
async fn the_fake_store_speaks_the_rainstore_protocol() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = FakeStore::start("key-1", "rainbond");
    store.publish(&super::ram::shop("1.0", "1.0"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: &str, key: Option<&str>| {
        let mut request = http.get(format!("{}{path}", store.url));
        if let Some(key) = key {
            request = request.header("Authorization", key);
        }
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap_or_default().to_owned());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body, location)
        }
    };
    let apps = "/app-server/openapi/apps?marketDomain=rainbond&page=1&pageSize=10";
    assert_eq!(get(apps, None).await.0, 401);
    let (status, body, _) = get(apps, Some("Bearer key-1")).await;
    assert_eq!(
        (status, &body["code"]),
        (403, &json!(403)),
        "the raw key only"
    );
    let (status, body, _) = get(apps, Some("key-1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 1);
    assert_eq!(body["apps"][0]["versions"][0]["appVersion"], "1.0");
    let (status, body, _) = get(
        "/app-server/openapi/apps?marketDomain=elsewhere",
        Some("key-1"),
    )
    .await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (404, Some("market not found"))
    );
    let version = "/app-server/openapi/apps/shop-suite/versions/1.0?marketDomain=rainbond";
    let (_, without, _) = get(version, Some("key-1")).await;
    assert_eq!(without["template"], "");
    let (_, with, _) = get(&format!("{version}&getTemplate=True"), Some("key-1")).await;
    let template: Value =
        serde_json::from_str(with["template"].as_str().expect("a string")).expect("JSON");
    assert_eq!(template["apps"].as_array().map(Vec::len), Some(2));
    let (status, _, _) = get(
        "/app-server/openapi/apps/nope?marketDomain=rainbond",
        Some("key-1"),
    )
    .await;
    assert_eq!(status, 404);

    store.fail_next(2, 503);
    assert_eq!(get(apps, Some("key-1")).await.0, 503);
    assert_eq!(get(apps, Some("key-1")).await.0, 503);
    assert_eq!(get(apps, Some("key-1")).await.0, 200);

    let other = OtherHost::start();
    store.redirect_everything_to(&other.url);
    let (status, _, location) = get(apps, Some("key-1")).await;
    assert_eq!(status, 302);
    assert_eq!(location, Some(format!("{}{apps}", other.url)));
    assert_eq!(other.hits(), 0);

    let log = store.requests();
    assert_eq!(log[0].authorization, None);
    assert_eq!(log[1].authorization.as_deref(), Some("Bearer key-1"));
    assert_eq!(log[2].param("pageSize").as_deref(), Some("10"));
    assert_eq!(
        log.last().map(|r| r.path.as_str()),
        Some("/app-server/openapi/apps")
    );
    assert!(closed_port_url().starts_with("http://127.0.0.1:"));
}
