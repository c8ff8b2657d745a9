//! Pipelines of an app (`/api/v1/projects/{code}/apps/{app}/pipelines`): create (params
//! checked against each step plugin's schema), list, get, update (a new version; runs keep
//! theirs), soft delete, and a version's definition. The permission mode is kept by the
//! authorizer: a USER_DEFINED pipeline honours only its own members, so whoever sets it
//! becomes its `pipeline-manager`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::authz::manage_for;
use super::clusters::{audited, query};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::{AuditDetail, subject_of};
use crate::auth::Caller;
use crate::domain::pipelines::definitions::Definitions;
use crate::domain::pipelines::model::PermissionMode;
use crate::domain::pipelines::{Pipeline, validate};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(list_project))
        .routes(routes!(get, update, delete))
        .routes(routes!(get_version))
}

/// Tells the authorizer the pipeline's mode; a USER_DEFINED pipeline gets the caller as
/// its manager first, so setting the mode never locks its author out.
async fn set_mode(
    state: &AppState,
    caller: &Caller,
    pipeline: &Pipeline,
    before: Option<PermissionMode>,
) -> Result<(), ApiError> {
    let mode = pipeline.definition.permission_mode;
    if before.unwrap_or_default() == mode {
        return Ok(());
    }
    let subject = subject_of(state, caller)?;
    if mode == PermissionMode::UserDefined {
        manage_for(
            state,
            subject.clone(),
            "binding.create",
            json!({
                "subject": format!("user:{}", caller.user_id),
                "role": "pipeline-manager",
                "scope": pipeline.scope(),
            }),
        )
        .await?;
    }
    let mode = match mode {
        PermissionMode::Default => "DEFAULT",
        PermissionMode::UserDefined => "USER_DEFINED",
    };
    manage_for(
        state,
        subject,
        "pipeline.set-mode",
        json!({"scope": pipeline.scope(), "mode": mode}),
    )
    .await
    .map(|_| ())
}

fn target(p: &Pipeline) -> Option<String> {
    Some(p.scope())
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("name" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Pipeline>)))]
async fn list(
    State(state): State<AppState>,
    Path((code, app)): Path<(String, String)>,
    parts: axum::http::request::Parts,
    paging: Paging,
) -> Result<axum::Json<Page<Pipeline>>, ApiError> {
    let name = query(&parts, "name").map(|n| n.to_lowercase());
    let all = state.pipelines.definitions().list(&code, Some(&app))?;
    let matching = all
        .into_iter()
        .filter(|p| {
            name.as_ref()
                .is_none_or(|n| p.definition.name.to_lowercase().contains(n))
        })
        .collect();
    Ok(axum::Json(paging.apply(matching)))
}

/// Pipelines of every app of the project; `appGroup` keeps those of the group's apps,
/// `name` matches the pipeline's or the app's name.
#[utoipa::path(get, path = "/api/v1/projects/{code}/pipelines", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("appGroup" = Option<String>, Query), ("name" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Pipeline>)))]
async fn list_project(
    State(state): State<AppState>,
    Path(code): Path<String>,
    parts: axum::http::request::Parts,
    paging: Paging,
) -> Result<axum::Json<Page<Pipeline>>, ApiError> {
    let found = project_pipelines(
        &state,
        &code,
        query(&parts, "appGroup").as_deref(),
        query(&parts, "name").as_deref(),
    )?;
    Ok(axum::Json(paging.apply(found)))
}

/// The project's pipelines, filtered by app group and by pipeline or app name.
pub fn project_pipelines(
    state: &AppState,
    code: &str,
    group: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Pipeline>, ApiError> {
    let name = name.filter(|n| !n.is_empty()).map(str::to_lowercase);
    let all = state.pipelines.definitions().list(code, None)?;
    let mut found = Vec::with_capacity(all.len());
    for p in all {
        if let Some(group) = group.filter(|g| !g.is_empty()) {
            let app = crate::domain::apps::get(&state.store, code, &p.app)?;
            if app.and_then(|a| a.group_id).as_deref() != Some(group) {
                continue;
            }
        }
        if let Some(n) = &name
            && !p.definition.name.to_lowercase().contains(n)
            && !p.app.to_lowercase().contains(n)
        {
            continue;
        }
        found.push(p);
    }
    Ok(found)
}

#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/pipelines", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)), request_body = Object,
    responses((status = 201, body = Pipeline), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Pipeline>), ApiError> {
    let input = validate::parse_input(body)?;
    validate::check(&state.runtime, &input).await?;
    let pipeline = state
        .pipelines
        .definitions()
        .create(&code, &app, input, &caller.username)
        .await?;
    set_mode(&state, &caller, &pipeline, None).await?;
    let detail = audited(
        target(&pipeline),
        None::<&()>,
        Some(&Definitions::audit_view(&pipeline)),
    );
    Ok((StatusCode::CREATED, detail, axum::Json(pipeline)))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path)),
    responses((status = 200, body = Pipeline), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, app, id)): Path<(String, String, String)>,
) -> Result<axum::Json<Pipeline>, ApiError> {
    Ok(axum::Json(
        state.pipelines.definitions().get(&code, &app, &id)?,
    ))
}

#[utoipa::path(put, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path)), request_body = Object,
    responses((status = 200, body = Pipeline), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(Extension<AuditDetail>, axum::Json<Pipeline>), ApiError> {
    let input = validate::parse_input(body)?;
    validate::check(&state.runtime, &input).await?;
    let (before, after) = state
        .pipelines
        .definitions()
        .update(&code, &app, &id, input, &caller.username)
        .await?;
    set_mode(
        &state,
        &caller,
        &after,
        Some(before.definition.permission_mode),
    )
    .await?;
    let detail = audited(
        target(&after),
        Some(&Definitions::audit_view(&before)),
        Some(&Definitions::audit_view(&after)),
    );
    Ok((detail, axum::Json(after)))
}

#[utoipa::path(delete, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path((code, app, id)): Path<(String, String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let before = state
        .pipelines
        .definitions()
        .delete(&code, &app, &id)
        .await?;
    let detail = audited(
        target(&before),
        Some(&Definitions::audit_view(&before)),
        None::<&()>,
    );
    Ok((detail, StatusCode::NO_CONTENT))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/versions/{version}", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = Pipeline), (status = 404, body = Problem)))]
async fn get_version(
    State(state): State<AppState>,
    Path((code, app, id, version)): Path<(String, String, String, u32)>,
) -> Result<axum::Json<Pipeline>, ApiError> {
    let current = state.pipelines.definitions().by_id(&id)?;
    if current.project != code || current.app != app {
        return Err(crate::domain::pipelines::PipelineError::NotFound(id).into());
    }
    Ok(axum::Json(
        state.pipelines.definitions().version(&id, version)?,
    ))
}
