//! User administration (admin): create, list, read, update, enable/disable, approve,
//! delete, reset passwords.
//!
//! The authorizer decides who may call these routes, and custom roles can grant them; on
//! top of that, only a holder of the built-in admin flag may create an admin or act on an
//! admin's account (reset its password, change, disable, enable or delete it), so a
//! granted `user.*` action never becomes a way to admin.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging, query_pairs};
use super::guard::AuditDetail;
use crate::auth::{Caller, NewUser, UserStatus, UserUpdate, UserView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(approve))
        .routes(routes!(reset_password))
}

type Changed = (Extension<AuditDetail>, axum::Json<UserView>);

fn changed(before: Option<&UserView>, after: UserView) -> Changed {
    let detail = AuditDetail {
        target: Some(format!("user:{}", after.username)),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&after).ok(),
        ..AuditDetail::default()
    };
    (Extension(detail), axum::Json(after))
}

fn current(state: &AppState, id: &str) -> Result<UserView, ApiError> {
    Ok(UserView::from(&state.identity.user(id)?))
}

fn admin_required(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "admin-required", detail)
}

/// User `id`, refused unless the caller is an admin when it is an admin's account.
fn account_for(state: &AppState, caller: &Caller, id: &str) -> Result<UserView, ApiError> {
    let user = current(state, id)?;
    if user.is_admin && !caller.is_admin {
        return Err(admin_required(
            "only an admin may change, disable, enable, delete or reset the password of an admin's account",
        ));
    }
    Ok(user)
}

/// Users, filtered by `search` (username, display name, email) and `status`.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(("search" = Option<String>, Query), ("status" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<UserView>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<UserView>>, ApiError> {
    let mut search = None;
    let mut status = None;
    for (key, value) in query_pairs(&parts) {
        match key.as_str() {
            "search" => search = Some(value),
            "status" => {
                status = Some(
                    serde_json::from_value::<UserStatus>(serde_json::Value::String(value))
                        .map_err(|_| {
                            ApiError::invalid("status", "must be active, disabled or pending")
                        })?,
                )
            }
            _ => {}
        }
    }
    Ok(axum::Json(paging.apply(
        state.identity.list_users(search.as_deref(), status)?,
    )))
}

/// Creates an active user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = UserView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Changed), ApiError> {
    if body.is_admin && !caller.is_admin {
        return Err(admin_required("only an admin may create an admin").field("isAdmin"));
    }
    let user = state.identity.create_user(body, &caller.username).await?;
    Ok((StatusCode::CREATED, changed(None, user)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(current(&state, &id)?))
}

/// Updates the profile (display name, email).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UserUpdate,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserUpdate>,
) -> Result<Changed, ApiError> {
    let before = account_for(&state, &caller, &id)?;
    let after = state.identity.update_user(&id, body).await?;
    Ok(changed(Some(&before), after))
}

/// Deletes a user and revokes its tokens (not the last admin).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    account_for(&state, &caller, &id)?;
    let removed = state.identity.delete_user(&id).await?;
    let detail = AuditDetail {
        target: Some(format!("user:{}", removed.username)),
        before: serde_json::to_value(&removed).ok(),
        ..AuditDetail::default()
    };
    Ok((Extension(detail), StatusCode::NO_CONTENT))
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: UserStatus,
) -> Result<Changed, ApiError> {
    let before = account_for(state, caller, id)?;
    let after = state.identity.set_status(id, status).await?;
    Ok(changed(Some(&before), after))
}

/// Lets a disabled user log in again.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Changed, ApiError> {
    set_status(&state, &caller, &id, UserStatus::Active).await
}

/// Stops a user from logging in and revokes its tokens (not the last admin).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Changed, ApiError> {
    set_status(&state, &caller, &id, UserStatus::Disabled).await
}

/// Approves a self-registered user.
#[utoipa::path(post, path = "/api/v1/users/{id}/approve", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Changed, ApiError> {
    if current(&state, &id)?.status != UserStatus::Pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not-pending",
            "only a pending registration can be approved",
        ));
    }
    set_status(&state, &caller, &id, UserStatus::Active).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    password: String,
}

/// Sets a user's password; its sessions and tokens are revoked.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PasswordReset,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    account_for(&state, &caller, &id)?;
    state.identity.reset_password(&id, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
