//! The guard every routed request passes: look up the route in the table, authenticate,
//! authorize, run the handler, and audit mutations and denials — one place, so no route
//! can skip a step.

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
            _ => return deny(&state, entry, ApiError::unauthorized()).await,
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

    let response = next.run(request).await;
    if routes::is_mutation(&method) {
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
        state.audit.record(entry).await;
    }
    response
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
    let request = AuthzRequest {
        action: spec.action.to_owned(),
        resource: entry.target.clone(),
    };
    match state
        .runtime
        .decide(&plugin, subject_of(state, caller)?, request)
        .await
    {
        Ok(Ok(Decision::Allow)) => Ok(()),
        Ok(Ok(Decision::Deny(reason))) => Err(ApiError::forbidden(reason)),
        Ok(Err(_)) | Err(_) if recovery => Ok(()),
        Ok(Err(error)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "authorizer-unavailable",
            format!(
                "the authorizer failed: {}",
                authorize_problem(error).detail()
            ),
        )),
        Err(error) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "authorizer-unavailable",
            format!("the authorizer failed, so the request is denied: {error}"),
        )),
    }
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
