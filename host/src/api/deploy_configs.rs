//! Deploy configs of an app (`/api/v1/projects/{code}/apps/{app}/deploy-configs`, seed
//! 001 §5.5): create, list (filter `env`), read, patch, delete, and replace the env vars
//! (5.5.5) or the pod resources (5.5.6); each change is audited with before and after.
//! `{config}` is the config's id, or its name when only one config of the app has it.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::{audited, query};
use super::environments::environments;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::deploy_configs::{
    DeployConfig, DeployConfigError, DeployConfigUpdate, DeployConfigs, NewDeployConfig,
};
use crate::domain::spec::{EnvVariable, PodResourceSpec};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(set_env_vars))
        .routes(routes!(set_pod_resources))
}

fn configs(state: &AppState) -> DeployConfigs {
    DeployConfigs::new(environments(state))
}

type Changed = (Extension<AuditDetail>, axum::Json<DeployConfig>);

fn target(code: &str, app: &str, config: &DeployConfig) -> Option<String> {
    Some(format!(
        "project:{code}/app:{app}/env:{}/deploy-config:{}",
        config.env, config.id
    ))
}

/// The app's deploy configs, oldest first, optionally of one environment (`env`).
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<DeployConfig>), (status = 404, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Path((code, app)): Path<(String, String)>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<DeployConfig>>, ApiError> {
    let env = query(&parts, "env");
    let found = configs(&state).list(&code, &app, env.as_deref())?;
    Ok(axum::Json(paging.apply(found)))
}

/// Creates a deploy config for the app in one environment (seed 001 5.5.1).
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path)), request_body = NewDeployConfig,
    responses((status = 201, body = DeployConfig), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewDeployConfig>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<DeployConfig>), ApiError> {
    let config = configs(&state)
        .create(&code, &app, body, &caller.username)
        .await?;
    let detail = audited(target(&code, &app, &config), None::<&()>, Some(&config));
    Ok((StatusCode::CREATED, detail, axum::Json(config)))
}

/// One deploy config (seed 001 5.5.3).
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("config" = String, Path)),
    responses((status = 200, body = DeployConfig), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, app, config)): Path<(String, String, String)>,
) -> Result<axum::Json<DeployConfig>, ApiError> {
    Ok(axum::Json(configs(&state).get(&code, &app, &config)?))
}

/// Changes the name, env vars, health checks, resources or start command; absent fields
/// stay, `null` clears a section.
#[utoipa::path(patch, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("config" = String, Path)),
    request_body = DeployConfigUpdate,
    responses((status = 200, body = DeployConfig), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, config)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<DeployConfigUpdate>,
) -> Result<Changed, ApiError> {
    change(&state, &caller, &code, &app, &config, body).await
}

async fn change(
    state: &AppState,
    caller: &Caller,
    code: &str,
    app: &str,
    config: &str,
    update: DeployConfigUpdate,
) -> Result<Changed, ApiError> {
    let (before, after) = configs(state)
        .update(code, app, config, update, &caller.username)
        .await?;
    Ok((
        audited(target(code, app, &after), Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Seed 001 5.5.5: the new env vars.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvVarsUpdate {
    env_variable_list: Vec<EnvVariable>,
}

/// Replaces the env vars (seed 001 5.5.5).
#[utoipa::path(put, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}/env-vars", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("config" = String, Path)),
    request_body = EnvVarsUpdate,
    responses((status = 200, body = DeployConfig), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_env_vars(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, config)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<EnvVarsUpdate>,
) -> Result<Changed, ApiError> {
    let update = DeployConfigUpdate {
        env_variable_list: Some(body.env_variable_list),
        ..DeployConfigUpdate::default()
    };
    change(&state, &caller, &code, &app, &config, update).await
}

/// Replaces the pod resources (seed 001 5.5.6): CPU in millicores, memory in MiB, each
/// request at most its limit.
#[utoipa::path(put, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}/pod-resources", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("config" = String, Path)),
    request_body = PodResourceSpec,
    responses((status = 200, body = DeployConfig), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_pod_resources(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, config)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<PodResourceSpec>,
) -> Result<Changed, ApiError> {
    // The body is the resource spec itself: name its fields as sent.
    body.validate("").map_err(DeployConfigError::from)?;
    let update = DeployConfigUpdate {
        pod_resource_spec: Some(Some(body)),
        ..DeployConfigUpdate::default()
    };
    change(&state, &caller, &code, &app, &config, update).await
}

/// Deletes a deploy config (seed 001 5.5.2).
#[utoipa::path(delete, path = "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}", tag = "deploy-configs",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("config" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path((code, app, config)): Path<(String, String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let removed = configs(&state).delete(&code, &app, &config).await?;
    Ok((
        audited(target(&code, &app, &removed), Some(&removed), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}
