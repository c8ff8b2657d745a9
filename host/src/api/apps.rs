//! Apps of a project (`/api/v1/projects/{code}/apps`) and their groups
//! (`/api/v1/projects/{code}/app-groups`): create, list with filters, read, update,
//! delete, disable/enable, copy, group assignment and the caller's favourites.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::authz::unbind_deleted;
use super::clusters::{audited, query};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::apps::{
    App, AppCopy, AppError, AppFilter, AppGroup, AppUpdate, Apps, Category, NewApp,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(copy))
        .routes(routes!(favourite, unfavourite))
        .routes(routes!(set_group))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(rename_group, delete_group))
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let detail = e.to_string();
        let conflict = |code| ApiError::new(StatusCode::CONFLICT, code, detail.clone());
        match e {
            AppError::Invalid { field, message } => ApiError::invalid(field, message),
            AppError::ProjectNotFound(_) => ApiError::not_found("project-not-found", detail),
            AppError::NotFound { .. } | AppError::IdNotFound(_) => {
                ApiError::not_found("app-not-found", detail)
            }
            AppError::NameTaken(_) => conflict("app-name-taken").field("name"),
            AppError::NameClash { .. } => conflict("app-name-clash").field("name"),
            AppError::HasDeployments { .. } => conflict("app-has-deployments"),
            AppError::GroupNotFound(_) => ApiError::not_found("app-group-not-found", detail),
            AppError::GroupNameTaken(_) => conflict("app-group-name-taken").field("name"),
            AppError::Store(s) => s.into(),
        }
    }
}

/// The apps service over the handler state.
pub fn apps(state: &AppState) -> Apps {
    Apps::new(state.store.clone(), state.projects.clone())
}

type Created<T> = (StatusCode, Extension<AuditDetail>, axum::Json<T>);
type Changed<T> = (Extension<AuditDetail>, axum::Json<T>);
type Deleted = (Extension<AuditDetail>, StatusCode);

/// An app as the caller sees it: with its group's name and whether it is a favourite.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    #[serde(flatten)]
    pub app: App,
    pub group_name: Option<String>,
    /// Whether the caller marked the app as a favourite.
    pub favourite: bool,
}

fn group_names(state: &AppState, project: &str) -> Result<HashMap<String, String>, ApiError> {
    Ok(apps(state)
        .groups(project)?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect())
}

fn view(state: &AppState, caller: &Caller, app: App) -> Result<AppView, ApiError> {
    let favourite = apps(state).is_favourite(&caller.user_id, &app.project, &app.name)?;
    let group_name = match &app.group_id {
        Some(id) => group_names(state, &app.project)?.remove(id),
        None => None,
    };
    Ok(AppView {
        app,
        group_name,
        favourite,
    })
}

fn target(app: &App) -> Option<String> {
    Some(app.scope())
}

fn flag(parts: &Parts, name: &str) -> Result<Option<bool>, ApiError> {
    match query(parts, name).as_deref() {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid(name, "must be true or false")),
    }
}

/// The project's apps by name, filtered by group id, name (substring, any case),
/// category and the caller's favourites.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("group" = Option<String>, Query), ("name" = Option<String>, Query),
        ("category" = Option<Category>, Query), ("favourite" = Option<bool>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<AppView>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<AppView>>, ApiError> {
    let category = match query(&parts, "category").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(Category::parse(&c).ok_or_else(|| {
            ApiError::invalid("category", "must be MICRO_SERVICE or GENERAL_APP")
        })?),
    };
    let favourite = flag(&parts, "favourite")?;
    let filter = AppFilter {
        group: query(&parts, "group").filter(|g| !g.is_empty()),
        name: query(&parts, "name").filter(|n| !n.is_empty()),
        category,
    };
    let service = apps(&state);
    let found = service.list(&code, &filter)?;
    let favourites = crate::domain::apps::favourites(&state.store, &caller.user_id, &code)?;
    let groups = group_names(&state, &code)?;
    let views = found
        .into_iter()
        .map(|app| AppView {
            favourite: favourites.contains(&app.name),
            group_name: app.group_id.as_ref().and_then(|g| groups.get(g).cloned()),
            app,
        })
        .filter(|v| favourite.is_none_or(|f| v.favourite == f))
        .collect();
    Ok(axum::Json(paging.apply(views)))
}

/// Creates an app (seed 001 5.1.1).
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = NewApp,
    responses((status = 201, body = AppView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<NewApp>,
) -> Result<Created<AppView>, ApiError> {
    let app = apps(&state).create(&code, body, &caller.username).await?;
    let detail = audited(target(&app), None::<&()>, Some(&app));
    Ok((
        StatusCode::CREATED,
        detail,
        axum::Json(view(&state, &caller, app)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = AppView), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = apps(&state).get(&code, &app)?;
    Ok(axum::Json(view(&state, &caller, app)?))
}

/// Changes description, category, repository, origin or group (`null` clears the last three).
#[utoipa::path(patch, path = "/api/v1/projects/{code}/apps/{app}", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)), request_body = AppUpdate,
    responses((status = 200, body = AppView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<AppUpdate>,
) -> Result<Changed<AppView>, ApiError> {
    let service = apps(&state);
    let before = service.get(&code, &app)?;
    let after = service.update(&code, &app, body).await?;
    let detail = audited(None, Some(&before), Some(&after));
    Ok((detail, axum::Json(view(&state, &caller, after)?)))
}

/// Deletes an app deployed nowhere (deleted deployments go with it), then every binding at
/// or below it.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/apps/{app}", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path((code, app)): Path<(String, String)>,
) -> Result<Deleted, ApiError> {
    let removed = apps(&state).delete(&code, &app).await;
    let scope = format!("project:{code}/app:{app}");
    unbind_deleted(&state, &scope, &removed, |e| {
        matches!(e, AppError::NotFound { .. })
    })
    .await?;
    let removed = removed?;
    Ok((
        audited(None, Some(&removed), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}

async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    code: &str,
    app: &str,
    disabled: bool,
) -> Result<Changed<AppView>, ApiError> {
    let service = apps(state);
    let before = service.get(code, app)?;
    let after = service.set_disabled(code, app, disabled).await?;
    let detail = audited(None, Some(&before), Some(&after));
    Ok((detail, axum::Json(view(state, caller, after)?)))
}

/// Disables an app: it cannot be deployed until enabled again.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/disable", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = AppView), (status = 404, body = Problem)))]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
) -> Result<Changed<AppView>, ApiError> {
    set_disabled(&state, &caller, &code, &app, true).await
}

#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/enable", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = AppView), (status = 404, body = Problem)))]
async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
) -> Result<Changed<AppView>, ApiError> {
    set_disabled(&state, &caller, &code, &app, false).await
}

/// Copies an app under a new name: same category, repository, origin and group; new id.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/copy", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)), request_body = AppCopy,
    responses((status = 201, body = AppView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<AppCopy>,
) -> Result<Created<AppView>, ApiError> {
    let copied = apps(&state)
        .copy(&code, &app, body, &caller.username)
        .await?;
    let detail = audited(target(&copied), None::<&()>, Some(&copied));
    Ok((
        StatusCode::CREATED,
        detail,
        axum::Json(view(&state, &caller, copied)?),
    ))
}

async fn set_favourite(
    state: &AppState,
    caller: &Caller,
    code: &str,
    app: &str,
    favourite: bool,
) -> Result<Deleted, ApiError> {
    apps(state)
        .set_favourite(code, app, &caller.user_id, favourite)
        .await?;
    let after = serde_json::json!({"user": caller.username, "favourite": favourite});
    Ok((
        audited(None, None::<&()>, Some(&after)),
        StatusCode::NO_CONTENT,
    ))
}

/// Marks the app as one of the caller's favourites.
#[utoipa::path(put, path = "/api/v1/projects/{code}/apps/{app}/favourite", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn favourite(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
) -> Result<Deleted, ApiError> {
    set_favourite(&state, &caller, &code, &app, true).await
}

/// Removes the app from the caller's favourites.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/apps/{app}/favourite", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn unfavourite(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
) -> Result<Deleted, ApiError> {
    set_favourite(&state, &caller, &code, &app, false).await
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupAssignment {
    /// The group to put the app in; `null` takes it out of its group.
    group_id: Option<String>,
}

/// Puts the app into a group (seed 001 5.1.4), or out of its group with `null`.
#[utoipa::path(put, path = "/api/v1/projects/{code}/apps/{app}/group", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)), request_body = GroupAssignment,
    responses((status = 200, body = AppView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_group(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<GroupAssignment>,
) -> Result<Changed<AppView>, ApiError> {
    let service = apps(&state);
    let before = service.get(&code, &app)?;
    let after = service.set_group(&code, &app, body.group_id).await?;
    let detail = audited(None, Some(&before), Some(&after));
    Ok((detail, axum::Json(view(&state, &caller, after)?)))
}

/// An app group with the number of apps in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppGroupView {
    #[serde(flatten)]
    pub group: AppGroup,
    pub app_count: usize,
}

/// The project's app groups by name (seed 001 5.2.3).
#[utoipa::path(get, path = "/api/v1/projects/{code}/app-groups", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<AppGroupView>), (status = 404, body = Problem)))]
async fn list_groups(
    State(state): State<AppState>,
    Path(code): Path<String>,
    paging: Paging,
) -> Result<axum::Json<Page<AppGroupView>>, ApiError> {
    let service = apps(&state);
    let all = service.list(&code, &AppFilter::default())?;
    let views = service
        .groups(&code)?
        .into_iter()
        .map(|group| AppGroupView {
            app_count: all
                .iter()
                .filter(|a| a.group_id.as_ref() == Some(&group.id))
                .count(),
            group,
        })
        .collect();
    Ok(axum::Json(paging.apply(views)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GroupName {
    /// 1–10 characters, unique in the project.
    name: String,
}

/// Creates an app group (seed 001 5.2.2).
#[utoipa::path(post, path = "/api/v1/projects/{code}/app-groups", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = GroupName,
    responses((status = 201, body = AppGroup), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<GroupName>,
) -> Result<Created<AppGroup>, ApiError> {
    let group = apps(&state)
        .create_group(&code, body.name, &caller.username)
        .await?;
    let detail = audited(
        Some(format!("project:{code}/app-group:{}", group.id)),
        None::<&()>,
        Some(&group),
    );
    Ok((StatusCode::CREATED, detail, axum::Json(group)))
}

/// Renames an app group (seed 001 5.2.4).
#[utoipa::path(patch, path = "/api/v1/projects/{code}/app-groups/{group}", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("group" = String, Path)), request_body = GroupName,
    responses((status = 200, body = AppGroup), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn rename_group(
    State(state): State<AppState>,
    Path((code, group)): Path<(String, String)>,
    ApiJson(body): ApiJson<GroupName>,
) -> Result<Changed<AppGroup>, ApiError> {
    let service = apps(&state);
    let before = service.group(&code, &group)?;
    let after = service.rename_group(&code, &group, body.name).await?;
    let detail = audited(
        Some(format!("project:{code}/app-group:{group}")),
        Some(&before),
        Some(&after),
    );
    Ok((detail, axum::Json(after)))
}

/// Deletes an app group (seed 001 5.2.1); its apps become ungrouped.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/app-groups/{group}", tag = "apps", security(("bearer" = [])),
    params(("code" = String, Path), ("group" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete_group(
    State(state): State<AppState>,
    Path((code, group)): Path<(String, String)>,
) -> Result<Deleted, ApiError> {
    let removed = apps(&state).delete_group(&code, &group).await?;
    let detail = audited(
        Some(format!("project:{code}/app-group:{group}")),
        Some(&removed),
        None::<&()>,
    );
    Ok((detail, StatusCode::NO_CONTENT))
}
