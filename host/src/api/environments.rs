//! Environments of a project (`/api/v1/projects/{code}/environments`): create, list, read,
//! update, delete; import and remove cluster + namespace bindings; the objects running in
//! the bound namespaces with their state.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
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
use crate::domain::environments::{
    Binding, EnvError, EnvResources, Environment, EnvironmentUpdate, Environments, NewBinding,
    NewEnvironment,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(list_bindings, bind))
        .routes(routes!(unbind))
        .routes(routes!(resources))
}

/// The environments service over the handler state.
pub fn environments(state: &AppState) -> Environments {
    Environments::new(
        state.clusters.clone(),
        state.projects.clone(),
        crate::domain::gray::providers::Providers::new(state.runtime.clone()),
    )
}

type Changed<T> = (Extension<AuditDetail>, axum::Json<T>);

fn target(code: &str, env: &str) -> Option<String> {
    Some(format!("project:{code}/env:{env}"))
}

/// The project's environments, matching `search` on code or name.
#[utoipa::path(get, path = "/api/v1/projects/{code}/environments", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("search" = Option<String>, Query), ("page" = Option<u32>, Query),
        ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Environment>), (status = 404, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Path(code): Path<String>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<Environment>>, ApiError> {
    let search = query(&parts, "search");
    let envs = environments(&state).list(&code, search.as_deref())?;
    Ok(axum::Json(paging.apply(envs)))
}

/// Creates an environment (seed 001 5.4.1); bind namespaces to it afterwards.
#[utoipa::path(post, path = "/api/v1/projects/{code}/environments", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = NewEnvironment,
    responses((status = 201, body = Environment), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<NewEnvironment>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Environment>), ApiError> {
    let env = environments(&state)
        .create(&code, body, &caller.username)
        .await?;
    let detail = audited(target(&code, &env.env_code), None::<&()>, Some(&env));
    Ok((StatusCode::CREATED, detail, axum::Json(env)))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/environments/{env}", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = Environment), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
) -> Result<axum::Json<Environment>, ApiError> {
    Ok(axum::Json(environments(&state).get(&code, &env)?))
}

/// Changes name, type, description, the approval flag or the traffic provider.
#[utoipa::path(patch, path = "/api/v1/projects/{code}/environments/{env}", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path)), request_body = EnvironmentUpdate,
    responses((status = 200, body = Environment), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
    ApiJson(body): ApiJson<EnvironmentUpdate>,
) -> Result<Changed<Environment>, ApiError> {
    let envs = environments(&state);
    let before = envs.get(&code, &env)?;
    let after = envs.update(&code, &env, body).await?;
    Ok((
        audited(None, Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Deletes an environment that holds no config items, then every app's bindings in it; its
/// namespaces stay in the clusters.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/environments/{env}", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let removed = environments(&state).delete(&code, &env).await;
    let scope = format!("project:{code}/app:*/env:{env}");
    unbind_deleted(&state, &scope, &removed, |e| {
        matches!(e, EnvError::NotFound { .. })
    })
    .await?;
    let removed = removed?;
    Ok((
        audited(None, Some(&removed), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}

#[derive(Serialize, ToSchema)]
struct BindingList {
    items: Vec<Binding>,
}

/// The environment's cluster + namespace bindings.
#[utoipa::path(get, path = "/api/v1/projects/{code}/environments/{env}/bindings", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = BindingList), (status = 404, body = Problem)))]
async fn list_bindings(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
) -> Result<axum::Json<BindingList>, ApiError> {
    let env = environments(&state).get(&code, &env)?;
    Ok(axum::Json(BindingList {
        items: env.bindings,
    }))
}

/// Imports a cluster + namespace (seed 001 5.4.7); `createNamespace` creates a missing one.
#[utoipa::path(post, path = "/api/v1/projects/{code}/environments/{env}/bindings", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path)), request_body = NewBinding,
    responses((status = 200, body = Environment), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, env)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewBinding>,
) -> Result<Changed<Environment>, ApiError> {
    let envs = environments(&state);
    let before = envs.get(&code, &env)?;
    let after = envs.bind(&code, &env, body, &caller.username).await?;
    let detail = audited(None, Some(&before.bindings), Some(&after.bindings));
    Ok((detail, axum::Json(after)))
}

/// Removes a binding (seed 001 5.4.5) holding no config items; the namespace stays.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/environments/{env}/bindings/{cluster}/{namespace}",
    tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("cluster" = String, Path), ("namespace" = String, Path)),
    responses((status = 200, body = Environment), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn unbind(
    State(state): State<AppState>,
    Path((code, env, cluster, namespace)): Path<(String, String, String, String)>,
) -> Result<Changed<Environment>, ApiError> {
    let envs = environments(&state);
    let before = envs.get(&code, &env)?;
    let after = envs.unbind(&code, &env, &cluster, &namespace).await?;
    let detail = audited(None, Some(&before.bindings), Some(&after.bindings));
    Ok((detail, axum::Json(after)))
}

/// Deployments, pods, services and config maps of the bound namespaces with their state;
/// a binding whose cluster cannot be read is listed under `errors`.
#[utoipa::path(get, path = "/api/v1/projects/{code}/environments/{env}/resources", tag = "environments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("kind" = Option<String>, Query)),
    responses((status = 200, body = EnvResources), (status = 404, body = Problem)))]
async fn resources(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
    parts: Parts,
) -> Result<axum::Json<EnvResources>, ApiError> {
    let mut resources = environments(&state).resources(&code, &env).await?;
    if let Some(kind) = query(&parts, "kind") {
        resources
            .items
            .retain(|i| i.object.kind.eq_ignore_ascii_case(&kind));
    }
    Ok(axum::Json(resources))
}
