//! The guard every routed request passes: look up the route in the table, authenticate,
//! authorize, run the handler, and audit mutations and denials — one place, so no route
//! can skip a step.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ProblemCode};
use super::routes::{self, Access};
use crate::audit::{Actor, Entry, Outcome};
use crate::auth::Caller;

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

fn bearer(request: &Request) -> Option<&str> {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
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
        &routes::resource_for(spec, &path),
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
        if spec.access == Access::Admin && !caller.is_admin {
            let error = ApiError::forbidden(format!("`{}` requires the admin", spec.action));
            return deny(&state, entry, error).await;
        }
        if !caller.token_allows(spec.action) {
            let error = ApiError::forbidden(format!(
                "this token's scope does not include `{}`",
                spec.action
            ));
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
            entry.plugin = detail.plugin.clone();
            entry.before = detail.before.clone();
            entry.after = detail.after.clone();
        }
        state.audit.record(entry).await;
    }
    response
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
