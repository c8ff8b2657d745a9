//! Groups of users: create, list, read, rename, delete, add and remove members.

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
use crate::auth::{Caller, Group};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, rename, delete))
        .routes(routes!(add_member, remove_member))
}

type Changed = (Extension<AuditDetail>, axum::Json<Group>);

fn changed(before: Option<&Group>, after: Group) -> Changed {
    let detail = AuditDetail {
        target: Some(format!("group:{}", after.name)),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&after).ok(),
        ..AuditDetail::default()
    };
    (Extension(detail), axum::Json(after))
}

/// Groups, filtered by `search` on the name.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])),
    params(("search" = Option<String>, Query), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Group>), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<Group>>, ApiError> {
    let search = query_pairs(&parts)
        .into_iter()
        .find(|(k, _)| k == "search")
        .map(|(_, v)| v);
    Ok(axum::Json(
        paging.apply(state.identity.list_groups(search.as_deref())?),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    description: Option<String>,
}

/// Creates a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])), request_body = NewGroup,
    responses((status = 201, body = Group), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewGroup>,
) -> Result<(StatusCode, Changed), ApiError> {
    let group = state
        .identity
        .create_group(body.name, body.description, &caller.username)
        .await?;
    Ok((StatusCode::CREATED, changed(None, group)))
}

/// One group with its members.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Group), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Group>, ApiError> {
    Ok(axum::Json(state.identity.group(&id)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

/// Renames a group.
#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = Rename,
    responses((status = 200, body = Group), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Changed, ApiError> {
    let before = state.identity.group(&id)?;
    let after = state.identity.rename_group(&id, body.name).await?;
    Ok(changed(Some(&before), after))
}

/// Deletes a group.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let removed = state.identity.delete_group(&id).await?;
    let detail = AuditDetail {
        target: Some(format!("group:{}", removed.name)),
        before: serde_json::to_value(&removed).ok(),
        ..AuditDetail::default()
    };
    Ok((Extension(detail), StatusCode::NO_CONTENT))
}

/// Adds a user to the group.
#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{user}", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path, description = "user id")),
    responses((status = 200, body = Group), (status = 404, body = Problem)))]
async fn add_member(
    State(state): State<AppState>,
    Path((id, user)): Path<(String, String)>,
) -> Result<Changed, ApiError> {
    let before = state.identity.group(&id)?;
    let after = state.identity.add_member(&id, &user).await?;
    Ok(changed(Some(&before), after))
}

/// Removes a user from the group.
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user}", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path, description = "user id")),
    responses((status = 200, body = Group), (status = 404, body = Problem)))]
async fn remove_member(
    State(state): State<AppState>,
    Path((id, user)): Path<(String, String)>,
) -> Result<Changed, ApiError> {
    let before = state.identity.group(&id)?;
    let after = state.identity.remove_member(&id, &user).await?;
    Ok(changed(Some(&before), after))
}
