//! Authorization routes: batch checks for the caller, and policy administration (roles,
//! bindings, who-can / what-can), all answered by the enabled authorizer plugin.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, query_pairs};
use super::guard::{AuditDetail, subject_of};
use crate::auth::Caller;
use crate::runtime::authorizer::{AuthorizeError, Decision, Request, Subject};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(active))
        .routes(routes!(check))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(delete_role))
        .routes(routes!(list_bindings, create_binding))
        .routes(routes!(delete_binding))
        .routes(routes!(who_can))
        .routes(routes!(what_can))
        .routes(routes!(get_pipeline_mode, set_pipeline_mode))
}

pub fn no_authorizer() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no-authorizer",
        "no authorizer plugin is enabled: every request is denied until an admin enables one",
    )
}

/// An authorizer's typed error as a problem.
pub fn authorize_problem(error: AuthorizeError) -> ApiError {
    match error {
        AuthorizeError::InvalidRequest(violations) => {
            let detail = violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; ");
            let field = violations
                .first()
                .map(|v| v.field.clone())
                .unwrap_or_else(|| "body".into());
            ApiError::invalid(field, detail)
        }
        AuthorizeError::NotFound(m) => ApiError::not_found("not-found", m),
        AuthorizeError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "not-allowed", m),
        AuthorizeError::UnknownPermission(m) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-permission",
            format!("unknown permission `{m}`"),
        )
        .field("actions"),
        AuthorizeError::Unsupported(m) => {
            ApiError::new(StatusCode::CONFLICT, "unsupported-by-authorizer", m)
        }
        AuthorizeError::Unavailable(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "authorizer-unavailable", m)
        }
    }
}

/// Runs a policy operation on the enabled authorizer for `subject`; returns its JSON and
/// the authorizer's `id@version`.
pub(super) async fn manage_for(
    state: &AppState,
    subject: Subject,
    operation: &str,
    input: Value,
) -> Result<(Value, String), ApiError> {
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    let decided_by = format!("{}@{}", plugin.id(), plugin.version());
    let output = state
        .runtime
        .manage(&plugin, subject, operation.to_owned(), input.to_string())
        .await?
        .map_err(authorize_problem)?;
    Ok((
        serde_json::from_str(&output).unwrap_or(Value::String(output)),
        decided_by,
    ))
}

/// The system subject the host uses for its own bookkeeping in the policy.
fn host_subject() -> Subject {
    Subject {
        id: "wharf".into(),
        username: "wharf".into(),
        groups: Vec::new(),
        is_admin: true,
    }
}

/// [`manage_for`] as the host itself, for bookkeeping no caller's rights should limit.
pub(super) async fn manage_as_host(
    state: &AppState,
    operation: &str,
    input: Value,
) -> Result<Value, ApiError> {
    Ok(manage_for(state, host_subject(), operation, input).await?.0)
}

/// Removes every binding at or below `scope` (`app:*` in it names every app), so nothing
/// created later under a deleted name inherits them. An authorizer that does not offer
/// the operation keeps no bindings (`authz-read-only`'s policy is fixed): nothing to do.
pub(super) async fn unbind_under(state: &AppState, scope: &str) -> Result<(), ApiError> {
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    let input = json!({"scope": scope}).to_string();
    let operation = "binding.delete-under".to_owned();
    match state
        .runtime
        .manage(&plugin, host_subject(), operation, input)
        .await?
    {
        Ok(_) | Err(AuthorizeError::Unsupported(_)) => Ok(()),
        Err(error) => Err(authorize_problem(error)),
    }
}

/// Unbinds `scope` after its delete went through, or found nothing to delete: that is how
/// a delete whose unbinding failed is finished (a scope the authorizer calls malformed
/// holds no bindings, so then the 404 stands). A refused delete keeps every binding.
pub(super) async fn unbind_deleted<T, E>(
    state: &AppState,
    scope: &str,
    deleted: &Result<T, E>,
    is_not_found: impl Fn(&E) -> bool,
) -> Result<(), ApiError> {
    let unbound = match deleted {
        Ok(_) => unbind_under(state, scope).await,
        Err(e) if is_not_found(e) => match unbind_under(state, scope).await {
            Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => Ok(()),
            other => other,
        },
        Err(_) => Ok(()),
    };
    unbound.map_err(|e| {
        ApiError::new(
            e.status(),
            "permissions-not-removed",
            format!(
                "`{scope}` is deleted, but the permissions at or below it could not all be \
                 removed ({}); send the DELETE again to finish",
                e.detail()
            ),
        )
    })
}

/// [`manage_for`] on behalf of the caller (the policy's own rules apply to it).
pub(super) async fn manage(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    input: Value,
) -> Result<(Value, String), ApiError> {
    manage_for(state, subject_of(state, caller)?, operation, input).await
}

fn audited(target: String, plugin: String, after: Option<Value>) -> Extension<AuditDetail> {
    Extension(AuditDetail {
        target: Some(target),
        plugin: Some(plugin),
        after,
        ..AuditDetail::default()
    })
}

#[derive(Serialize, ToSchema)]
struct ActiveAuthorizer {
    plugin: String,
    version: String,
}

/// The authorizer plugin deciding requests now.
#[utoipa::path(get, path = "/api/v1/authz", tag = "authz", security(("bearer" = [])),
    responses((status = 200, body = ActiveAuthorizer), (status = 503, body = Problem)))]
async fn active(State(state): State<AppState>) -> Result<axum::Json<ActiveAuthorizer>, ApiError> {
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    Ok(axum::Json(ActiveAuthorizer {
        plugin: plugin.id().to_owned(),
        version: plugin.version().to_owned(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckItem {
    action: String,
    resource: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    requests: Vec<CheckItem>,
}

#[derive(Serialize, ToSchema)]
struct CheckResult {
    action: String,
    resource: String,
    allow: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct CheckAnswer {
    decisions: Vec<CheckResult>,
}

/// Decides many action/resource pairs for the caller in one authorizer call.
#[utoipa::path(post, path = "/api/v1/authz/check", tag = "authz", security(("bearer" = [])), request_body = CheckBody,
    responses((status = 200, body = CheckAnswer), (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn check(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CheckBody>,
) -> Result<axum::Json<CheckAnswer>, ApiError> {
    if body.requests.is_empty() || body.requests.len() > 500 {
        return Err(ApiError::invalid("requests", "give 1 to 500 requests"));
    }
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    let requests: Vec<Request> = body
        .requests
        .iter()
        .map(|r| Request {
            action: r.action.clone(),
            resource: r.resource.clone(),
        })
        .collect();
    let decisions = state
        .runtime
        .check(&plugin, subject_of(&state, &caller)?, requests)
        .await?
        .map_err(authorize_problem)?;
    if decisions.len() != body.requests.len() {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "authorizer-misbehaved",
            "the authorizer answered a different number of decisions",
        ));
    }
    let decisions = body
        .requests
        .into_iter()
        .zip(decisions)
        .map(|(r, d)| {
            let (allow, reason) = match d {
                Decision::Allow => (true, None),
                Decision::Deny(reason) => (false, Some(reason)),
            };
            CheckResult {
                action: r.action,
                resource: r.resource,
                allow,
                reason,
            }
        })
        .collect();
    Ok(axum::Json(CheckAnswer { decisions }))
}

/// Roles known to the authorizer.
#[utoipa::path(get, path = "/api/v1/authz/roles", tag = "authz", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 409, body = Problem), (status = 503, body = Problem)))]
async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        manage(&state, &caller, "role.list", json!({})).await?.0,
    ))
}

/// Creates a custom role from actions.
#[utoipa::path(post, path = "/api/v1/authz/roles", tag = "authz", security(("bearer" = [])), request_body = Object,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Value>), ApiError> {
    let (role, plugin) = manage(&state, &caller, "role.create", body).await?;
    let target = format!("role:{}", role["name"].as_str().unwrap_or_default());
    Ok((
        StatusCode::CREATED,
        audited(target, plugin, Some(role.clone())),
        axum::Json(role),
    ))
}

/// Deletes a custom role.
#[utoipa::path(delete, path = "/api/v1/authz/roles/{id}", tag = "authz", security(("bearer" = [])),
    params(("id" = String, Path, description = "role name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let (_, plugin) = manage(&state, &caller, "role.delete", json!({"name": id})).await?;
    Ok((
        audited(format!("role:{id}"), plugin, None),
        StatusCode::NO_CONTENT,
    ))
}

/// Bindings of subjects to roles at scopes, filtered by `subject` and `scope`.
#[utoipa::path(get, path = "/api/v1/authz/bindings", tag = "authz", security(("bearer" = [])),
    params(("subject" = Option<String>, Query), ("scope" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = 503, body = Problem)))]
async fn list_bindings(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
) -> Result<axum::Json<Value>, ApiError> {
    let mut filter = json!({});
    for (key, value) in query_pairs(&parts) {
        if key == "subject" || key == "scope" {
            filter[key] = json!(value);
        }
    }
    Ok(axum::Json(
        manage(&state, &caller, "binding.list", filter).await?.0,
    ))
}

/// Binds a user (`user:<id>`) or group (`group:<id>`) to a role at a scope.
#[utoipa::path(post, path = "/api/v1/authz/bindings", tag = "authz", security(("bearer" = [])), request_body = Object,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn create_binding(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Value>), ApiError> {
    let (binding, plugin) = manage(&state, &caller, "binding.create", body).await?;
    let target = format!(
        "binding:{}",
        binding["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| binding["id"].to_string())
    );
    Ok((
        StatusCode::CREATED,
        audited(target, plugin, Some(binding.clone())),
        axum::Json(binding),
    ))
}

/// Removes a binding.
#[utoipa::path(delete, path = "/api/v1/authz/bindings/{id}", tag = "authz", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_binding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let (_, plugin) = manage(&state, &caller, "binding.delete", json!({"id": id})).await?;
    Ok((
        audited(format!("binding:{id}"), plugin, None),
        StatusCode::NO_CONTENT,
    ))
}

/// Who may perform `action` on `resource` (the resource side).
#[utoipa::path(post, path = "/api/v1/authz/who-can", tag = "authz", security(("bearer" = [])), request_body = Object,
    responses((status = 200, body = Object), (status = 422, body = Problem)))]
async fn who_can(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        manage(&state, &caller, "query.who-can", body).await?.0,
    ))
}

/// What `subject` may do on `resource` (the subject side).
#[utoipa::path(post, path = "/api/v1/authz/what-can", tag = "authz", security(("bearer" = [])), request_body = Object,
    responses((status = 200, body = Object), (status = 422, body = Problem)))]
async fn what_can(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        manage(&state, &caller, "query.what-can", body).await?.0,
    ))
}

/// A pipeline's permission mode (seed 001): `DEFAULT` inherits the project's bindings,
/// `USER_DEFINED` honours only bindings at the pipeline itself.
#[utoipa::path(get, path = "/api/v1/authz/pipeline-mode", tag = "authz", security(("bearer" = [])),
    params(("scope" = String, Query, description = "project:<code>/pipeline:<id>")),
    responses((status = 200, body = Object), (status = 422, body = Problem)))]
async fn get_pipeline_mode(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
) -> Result<axum::Json<Value>, ApiError> {
    let scope = query_pairs(&parts)
        .into_iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .unwrap_or_default();
    Ok(axum::Json(
        manage(
            &state,
            &caller,
            "pipeline.get-mode",
            json!({"scope": scope}),
        )
        .await?
        .0,
    ))
}

/// Sets a pipeline's permission mode (needs `pipeline.manage-permissions` there).
#[utoipa::path(put, path = "/api/v1/authz/pipeline-mode", tag = "authz", security(("bearer" = [])), request_body = Object,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_pipeline_mode(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<(Extension<AuditDetail>, axum::Json<Value>), ApiError> {
    let (mode, plugin) = manage(&state, &caller, "pipeline.set-mode", body).await?;
    let target = mode["scope"].as_str().unwrap_or_default().to_owned();
    Ok((
        audited(target, plugin, Some(mode.clone())),
        axum::Json(mode),
    ))
}
