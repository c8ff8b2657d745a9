//! The guard every routed request passes: look up the route in the table, authenticate,
//! authorize, run the handler, and audit mutations and denials — one place, so no route
//! can skip a step.
//!
//! Auditing is write-ahead (see `crate::audit`): for an audited route (every mutation, and
//! reads that hand out a credential) the guard makes a `pending` record durable before
//! the handler runs and answers 503 without running it if it cannot; then it completes
//! that record with the outcome, and a request whose record cannot be completed fails
//! with a 500 instead of succeeding unrecorded. The handler and the completion run in a
//! task of their own, so a client that hangs up cannot cancel a mutation halfway or leave
//! its record pending. A panicking handler is caught inside the guard (`api/mod.rs`) and
//! answered and audited as a 500 `internal` problem. Unauthenticated denials are counted
//! per source, action, target and minute rather than written one by one.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::authz::{authorize_problem, no_authorizer};
use super::error::{ApiError, ProblemCode};
use super::routes::{self, Access, RouteSpec};
use crate::audit::{Actor, Entry, Outcome};
use crate::auth::Caller;
use crate::runtime::authorizer::{Decision, Request as AuthzRequest, Subject};
use axum::http::StatusCode;

/// What a handler adds to its audit record (as a response extension).
#[derive(Debug, Clone, Default)]
pub struct AuditDetail {
    /// Overrides the route's resource (e.g. the id of a plugin being installed).
    pub target: Option<String>,
    /// `id@version` of the plugin acted on.
    pub plugin: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The token of `Authorization: Bearer <token>`, or, without an Authorization header,
/// of seed 004's `X-Auth-Token: <token>`.
fn bearer(request: &Request) -> Option<&str> {
    let headers = request.headers();
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return headers
            .get("x-auth-token")?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty());
    };
    let header = header.to_str().ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let Some(spec) = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| routes::find(&method, matched.as_str()))
    else {
        // Fail closed: a route missing from the table is served to no one.
        return ApiError::forbidden("this route is not in the route table").into_response();
    };
    let mut entry = Entry::new(
        Actor::anonymous(),
        spec.action,
        &super::scope::resolve(&state.store, routes::resource_for(spec, &path)),
        Outcome::Ok,
    );
    entry.request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    entry.source_address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());

    if spec.access != Access::Public {
        let caller = match bearer(&request).map(|token| state.identity.authenticate(token)) {
            Some(Ok(caller)) => caller,
            Some(Err(crate::auth::AuthError::Store(e))) => {
                return ApiError::from(e).into_response();
            }
            _ => {
                entry.outcome = Outcome::Denied;
                entry.error_code = Some("unauthenticated".into());
                state.audit.unauthenticated(entry);
                return ApiError::unauthorized().into_response();
            }
        };
        entry.actor = Actor::user(&caller.user_id, &caller.username);
        if !caller.token_allows(spec.action) {
            let error = ApiError::forbidden(format!(
                "this token's scope does not include `{}`",
                spec.action
            ));
            return deny(&state, entry, error).await;
        }
        if let Err(error) = authorize(&state, &caller, spec, &mut entry).await {
            return deny(&state, entry, error).await;
        }
        request.extensions_mut().insert(caller);
    }

    if !routes::is_audited(spec) {
        return next.run(request).await;
    }
    let intent = match state.audit.begin(entry.clone()).await {
        Ok(intent) => intent,
        Err(error) => return ApiError::audit_unavailable(error).into_response(),
    };
    let served = tokio::spawn(async move {
        let response = next.run(request).await;
        let entry = completed(entry, &response);
        match state.audit.complete(intent, entry).await {
            Ok(()) => response,
            Err(error) => ApiError::audit_incomplete(error).into_response(),
        }
    });
    match served.await {
        Ok(response) => response,
        // Only the guard's own code runs outside the catch-panic layer; its record stays
        // pending and is marked interrupted at the next start.
        Err(error) => ApiError::panicked(error).into_response(),
    }
}

/// `entry` with how `response` ended and what the handler added.
fn completed(mut entry: Entry, response: &Response) -> Entry {
    let status = response.status();
    entry.outcome = if status.is_success() {
        Outcome::Ok
    } else if status.as_u16() == 401 || status.as_u16() == 403 {
        Outcome::Denied
    } else {
        Outcome::Error
    };
    entry.error_code = response
        .extensions()
        .get::<ProblemCode>()
        .map(|c| c.0.to_owned());
    if let Some(detail) = response.extensions().get::<AuditDetail>() {
        if let Some(target) = &detail.target {
            entry.target = target.clone();
        }
        if detail.plugin.is_some() {
            entry.plugin = detail.plugin.clone();
        }
        entry.before = detail.before.clone();
        entry.after = detail.after.clone();
    }
    entry
}

/// Asks the enabled authorizer about the request; fails closed on any error.
///
/// With no authorizer enabled, or one that fails, every request is refused, except that
/// the built-in admin may still administer plugins, trust and the audit log: otherwise
/// disabling the last authorizer, or one that keeps failing (it is never switched off
/// automatically), would lock everyone out for good.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    spec: &RouteSpec,
    entry: &mut Entry,
) -> Result<(), ApiError> {
    let recovery = caller.is_admin
        && ["plugin.", "plugin-trust.", "audit."]
            .iter()
            .any(|p| spec.action.starts_with(p));
    let Some(plugin) = state.runtime.authorizer() else {
        return if recovery {
            Ok(())
        } else {
            Err(no_authorizer())
        };
    };
    entry.plugin = Some(format!("{}@{}", plugin.id(), plugin.version()));
    match ask(state, caller, &plugin, spec.action, &entry.target).await? {
        Ok(Decision::Allow) => Ok(()),
        Ok(Decision::Deny(reason)) => Err(ApiError::forbidden(reason)),
        Err(_) if recovery => Ok(()),
        Err(unavailable) => Err(unavailable),
    }
}

/// Asks the authorizer whether `caller` may take `action` on `resource`: for a handler
/// that acts on something named in the body (the route's own check covers its path).
pub async fn require(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource: &str,
) -> Result<(), ApiError> {
    if !caller.token_allows(action) {
        return Err(ApiError::forbidden(format!(
            "this token's scope does not include `{action}`"
        )));
    }
    let Some(plugin) = state.runtime.authorizer() else {
        return Err(no_authorizer());
    };
    match ask(state, caller, &plugin, action, resource).await?? {
        Decision::Allow => Ok(()),
        Decision::Deny(reason) => Err(ApiError::forbidden(reason)),
    }
}

/// One decision of `plugin` about the caller. The inner error is the authorizer failing
/// (503, which the admin's recovery may override); the outer one, reading the caller's
/// groups.
async fn ask(
    state: &AppState,
    caller: &Caller,
    plugin: &std::sync::Arc<crate::runtime::ActivePlugin>,
    action: &str,
    resource: &str,
) -> Result<Result<Decision, ApiError>, ApiError> {
    let request = AuthzRequest {
        action: action.to_owned(),
        resource: resource.to_owned(),
    };
    let unavailable = |detail: String| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "authorizer-unavailable",
            detail,
        )
    };
    Ok(
        match state
            .runtime
            .decide(plugin, subject_of(state, caller)?, request)
            .await
        {
            Ok(Ok(decision)) => Ok(decision),
            Ok(Err(error)) => Err(unavailable(format!(
                "the authorizer failed: {}",
                authorize_problem(error).detail()
            ))),
            Err(error) => Err(unavailable(format!(
                "the authorizer failed, so the request is denied: {error}"
            ))),
        },
    )
}

/// The caller as the authorizer sees it.
pub fn subject_of(state: &AppState, caller: &Caller) -> Result<Subject, ApiError> {
    Ok(Subject {
        id: caller.user_id.clone(),
        username: caller.username.clone(),
        groups: state.identity.groups_of(&caller.user_id)?,
        is_admin: caller.is_admin,
    })
}

async fn deny(state: &AppState, mut entry: Entry, error: ApiError) -> Response {
    entry.outcome = Outcome::Denied;
    let response = error.into_response();
    entry.error_code = response
        .extensions()
        .get::<ProblemCode>()
        .map(|c| c.0.to_owned());
    state.audit.record(entry).await;
    response
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt as _;

    use super::*;
    use crate::audit::{AuditLog, Query};
    use crate::store::{
        Backend, Batch, BatchConflict, CasConflict, Rows, SledBackend, Store, StoreError, Write,
    };

    /// sled, except that audit-log writes fail while `failing` is set, and completions of
    /// audit records while `completions_fail` is.
    struct AuditFails {
        inner: SledBackend,
        failing: AtomicBool,
        completions_fail: AtomicBool,
    }

    impl Backend for AuditFails {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key)
        }
        fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
            self.inner.put(key, value)
        }
        fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
            self.inner.delete(key)
        }
        fn scan(
            &self,
            prefix: &[u8],
            after: Option<&[u8]>,
            limit: usize,
        ) -> Result<Rows, StoreError> {
            self.inner.scan(prefix, after, limit)
        }
        fn count(&self, prefix: &[u8]) -> Result<usize, StoreError> {
            self.inner.count(prefix)
        }
        fn compare_and_swap(
            &self,
            key: &[u8],
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> Result<Result<(), CasConflict>, StoreError> {
            self.inner.compare_and_swap(key, expected, new)
        }
        fn apply(&self, batch: &Batch) -> Result<Result<(), BatchConflict>, StoreError> {
            let audit = batch.writes.iter().any(|w| match w {
                Write::Put(k, _) | Write::Delete(k) => k.starts_with(b"v1/audit-log/"),
            });
            let completion = batch
                .writes
                .iter()
                .any(|w| matches!(w, Write::Delete(k) if k.starts_with(b"v1/audit-pending/")));
            if (audit && self.failing.load(Ordering::SeqCst))
                || (completion && self.completions_fail.load(Ordering::SeqCst))
            {
                return Err(StoreError::Backend("disk full".into()));
            }
            self.inner.apply(batch)
        }
        fn delete_prefix(&self, prefix: &[u8]) -> Result<usize, StoreError> {
            self.inner.delete_prefix(prefix)
        }
        fn flush(&self) -> futures::future::BoxFuture<'_, Result<(), StoreError>> {
            self.inner.flush()
        }
    }

    async fn panics() -> StatusCode {
        panic!("a bug in a handler")
    }

    struct Fixture {
        dir: std::path::PathBuf,
        backend: Arc<AuditFails>,
        app: Router,
        audit: AuditLog,
        token: String,
        ran: Arc<AtomicBool>,
    }

    /// The guard in front of two handlers on routes of the table that the built-in admin
    /// may call with no authorizer: one panics, one notes that it ran.
    async fn fixture() -> Fixture {
        let dir = std::env::temp_dir().join(format!("wharf-guard-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let backend = Arc::new(AuditFails {
            inner: SledBackend::open(&dir.join("db")).unwrap(),
            failing: AtomicBool::new(false),
            completions_fail: AtomicBool::new(false),
        });
        let store = Store::new(backend.clone());
        let identity = crate::auth::Identity::new(store.clone(), Duration::from_secs(3600));
        identity
            .bootstrap_admin(Some("guard-test-password".into()))
            .await
            .unwrap();
        let token = identity
            .login("admin", "guard-test-password", None)
            .await
            .unwrap()
            .token;
        let runtime = crate::runtime::Runtime::new(
            store.clone(),
            crate::runtime::HostLimits::default(),
            dir.join("cache"),
        )
        .unwrap();
        let clusters =
            crate::domain::clusters::Clusters::open(store.clone(), None, &dir, None, None)
                .await
                .unwrap();
        let audit = AuditLog::new(store.clone());
        let projects = crate::domain::projects::Projects::new(store.clone());
        let providers = crate::domain::gray::providers::Providers::new(runtime.clone());
        let deployer = crate::domain::rollout::Deployer::new(
            store.clone(),
            clusters.clone(),
            projects.clone(),
            audit.clone(),
            providers,
        );
        let registry = crate::domain::artifacts::Registry::open(store.clone(), &dir, 1 << 20)
            .expect("registry");
        let packages = crate::domain::artifacts::packages::Packages::new(
            store.clone(),
            registry.blob_files().clone(),
        );
        let pipelines = crate::domain::pipelines::engine(
            &store,
            &runtime,
            &identity,
            &audit,
            &deployer,
            &clusters,
            &packages,
            crate::domain::pipelines::engine::DEFAULT_MAX_RUN_OUTPUT_BYTES,
        );
        let state = AppState {
            store: store.clone(),
            runtime: runtime.clone(),
            identity,
            audit: audit.clone(),
            projects: projects.clone(),
            clusters: clusters.clone(),
            pipelines,
            registry,
            market: crate::domain::market::MarketHost::new(
                store,
                runtime,
                clusters,
                deployer.clone(),
            ),
            deployer,
            kube_endpoint: None,
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let ran = Arc::new(AtomicBool::new(false));
        let noted = ran.clone();
        let routes: Router<AppState> = Router::new()
            .route("/api/v1/plugins/{id}/enable", post(panics))
            .route(
                "/api/v1/plugins/{id}/disable",
                post(move || async move {
                    noted.store(true, Ordering::SeqCst);
                    StatusCode::NO_CONTENT
                }),
            );
        let app = super::super::guard_routes(routes, &state).with_state(state);
        Fixture {
            dir,
            backend,
            app,
            audit,
            token,
            ran,
        }
    }

    async fn call(f: &Fixture, path: &str) -> (StatusCode, serde_json::Value) {
        let request = axum::http::Request::post(path)
            .header("authorization", format!("Bearer {}", f.token))
            .body(Body::empty())
            .unwrap();
        let response = f.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_problem_and_is_audited() {
        let f = fixture().await;
        let (status, body) = call(&f, "/api/v1/plugins/hello/enable").await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (500, Some("internal")),
            "{body}"
        );
        let records = f.audit.query(&Query::default()).unwrap();
        let record = records
            .iter()
            .find(|r| r.entry.action == "plugin.enable")
            .unwrap();
        assert_eq!(record.entry.outcome, Outcome::Error);
        assert_eq!(record.entry.error_code.as_deref(), Some("internal"));
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[tokio::test]
    async fn a_mutation_whose_record_cannot_be_written_does_not_run() {
        let f = fixture().await;
        f.backend.failing.store(true, Ordering::SeqCst);
        let (status, body) = call(&f, "/api/v1/plugins/hello/disable").await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (503, Some("audit-unavailable")),
            "{body}"
        );
        assert!(!f.ran.load(Ordering::SeqCst), "the handler did not run");

        f.backend.failing.store(false, Ordering::SeqCst);
        let (status, _) = call(&f, "/api/v1/plugins/hello/disable").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(f.ran.load(Ordering::SeqCst));
        let records = f.audit.query(&Query::default()).unwrap();
        let outcomes: Vec<Outcome> = records
            .iter()
            .filter(|r| r.entry.action == "plugin.disable")
            .map(|r| r.entry.outcome)
            .collect();
        assert_eq!(outcomes, vec![Outcome::Ok], "one record, completed");
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[tokio::test]
    async fn a_mutation_whose_record_cannot_be_completed_fails_and_reads_interrupted_later() {
        let f = fixture().await;
        f.backend.completions_fail.store(true, Ordering::SeqCst);
        let (status, body) = call(&f, "/api/v1/plugins/hello/disable").await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (500, Some("audit-incomplete")),
            "{body}"
        );
        assert!(f.ran.load(Ordering::SeqCst));
        f.backend.completions_fail.store(false, Ordering::SeqCst);
        let outcome = |f: &Fixture| {
            f.audit
                .query(&Query::default())
                .unwrap()
                .into_iter()
                .find(|r| r.entry.action == "plugin.disable")
                .map(|r| r.entry.outcome)
        };
        assert_eq!(outcome(&f), Some(Outcome::Pending));
        assert_eq!(f.audit.prepare().await.unwrap().interrupted, 1);
        assert_eq!(outcome(&f), Some(Outcome::Interrupted));
        let _ = std::fs::remove_dir_all(&f.dir);
    }
}
