//! Market installs of a project (`/api/v1/projects/{code}/installs`): install a template
//! version into an app group and environment, follow its components, upgrade (with a dry
//! run), roll back, uninstall. The route's own check covers the project; installing into
//! an environment also needs `app.create` on the project and, to deploy, `deploy.create`
//! there — checked before anything is created.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::audited;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::{AuditDetail, require};
use super::markets::serving;
use crate::auth::Caller;
use crate::domain::market::upgrade::{self, UpgradeDiff};
use crate::domain::market::{Install, InstallRequest, InstallState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, uninstall))
        .routes(routes!(upgrade_install))
        .routes(routes!(rollback))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The version to move to.
    pub version: String,
    /// Only show what would change.
    #[serde(default)]
    pub dry_run: bool,
}

fn target(install: &Install) -> Option<String> {
    Some(format!("{}/install:{}", install.scope(), install.id))
}

/// What an upgrade or rollback may do besides redeploying: create the apps of added
/// components and delete those of removed ones.
async fn authorize_change(
    state: &AppState,
    caller: &Caller,
    install: &Install,
) -> Result<(), ApiError> {
    let project = format!("project:{}", install.project);
    require(state, caller, "deploy.create", &install.scope()).await?;
    require(state, caller, "deploy.delete", &install.scope()).await?;
    require(state, caller, "app.create", &project).await?;
    require(state, caller, "app.delete", &project).await
}

/// The checks an install into `env` of `code` needs beyond the route's own.
pub async fn authorize_install(
    state: &AppState,
    caller: &Caller,
    code: &str,
    env: &str,
    deploy: bool,
) -> Result<(), ApiError> {
    require(
        state,
        caller,
        "market.install",
        &format!("project:{code}/env:{env}"),
    )
    .await?;
    require(state, caller, "app.create", &format!("project:{code}")).await?;
    if deploy {
        require(
            state,
            caller,
            "deploy.create",
            &format!("project:{code}/env:{env}"),
        )
        .await?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/installs", tag = "markets", security(("bearer" = [])),
    params(("code" = String, Path), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Install>)))]
async fn list(
    State(state): State<AppState>,
    Path(code): Path<String>,
    paging: Paging,
) -> Result<axum::Json<Page<Install>>, ApiError> {
    Ok(axum::Json(paging.apply(state.market.installs.list(&code)?)))
}

/// Installs a template version: one app per component in the group, with its deploy
/// config; with `deploy`, every component deployed through change orders, dependencies
/// first. The same version into the same group again answers the existing install (200).
#[utoipa::path(post, path = "/api/v1/projects/{code}/installs", tag = "markets", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = InstallRequest,
    responses((status = 201, body = Install), (status = 200, body = Install), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 502, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<InstallRequest>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Install>), ApiError> {
    authorize_install(&state, &caller, &code, &body.env, body.deploy).await?;
    let plugin = state
        .market
        .connections
        .get(&body.market)
        .ok()
        .and_then(|m| serving(&state, &m.plugin));
    let (install, created) = state
        .market
        .installs
        .create(&code, &body, None, &caller.username)
        .await
        .map_err(|e| ApiError::from(e).plugin(plugin.clone()))?;
    if install.state == InstallState::Deploying {
        state.market.driver.start(&install.project, &install.id);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut detail = audited(
        target(&install),
        None::<&()>,
        created.then(|| install.audit_view()).as_ref(),
    );
    detail.0.plugin = plugin;
    Ok((status, detail, axum::Json(install)))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/installs/{id}", tag = "markets", security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Install), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, id)): Path<(String, String)>,
) -> Result<axum::Json<Install>, ApiError> {
    Ok(axum::Json(state.market.installs.get(&code, &id)?))
}

/// Removes exactly what the install created: its deployments, then its apps, then the
/// record (202: follow it until GET answers 404).
#[utoipa::path(delete, path = "/api/v1/projects/{code}/installs/{id}", tag = "markets", security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = Install), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn uninstall(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, id)): Path<(String, String)>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Install>), ApiError> {
    let install = state.market.installs.get(&code, &id)?;
    require(&state, &caller, "app.delete", &format!("project:{code}")).await?;
    require(&state, &caller, "deploy.delete", &install.scope()).await?;
    let after = upgrade::uninstall(
        &state.market.installs,
        &state.market.driver,
        &install,
        &caller.username,
    )
    .await?;
    let detail = audited(
        target(&install),
        Some(&install.audit_view()),
        Some(&after.audit_view()),
    );
    Ok((StatusCode::ACCEPTED, detail, axum::Json(after)))
}

/// Moves the install to another version of its template. `dryRun` answers the diff —
/// components added, changed (with each field) and removed — and changes nothing.
#[utoipa::path(post, path = "/api/v1/projects/{code}/installs/{id}/upgrade", tag = "markets", security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)), request_body = UpgradeRequest,
    responses((status = 200, body = UpgradeDiff), (status = 202, body = Install), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
async fn upgrade_install(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpgradeRequest>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let install = state.market.installs.get(&code, &id)?;
    let plugin = serving(&state, &install.plugin);
    if body.dry_run {
        let (_, _, diff) = upgrade::preview(&state.market.installs, &install, &body.version)
            .await
            .map_err(|e| ApiError::from(e).plugin(plugin.clone()))?;
        let mut detail = audited(target(&install), None::<&()>, Some(&diff));
        detail.0.plugin = plugin;
        return Ok((StatusCode::OK, detail, axum::Json(diff)).into_response());
    }
    authorize_change(&state, &caller, &install).await?;
    let after = upgrade::upgrade(
        &state.market.installs,
        &state.market.driver,
        install.clone(),
        &body.version,
        &caller.username,
    )
    .await
    .map_err(|e| ApiError::from(e).plugin(plugin.clone()))?;
    let mut detail = audited(
        target(&after),
        Some(&install.audit_view()),
        Some(&after.audit_view()),
    );
    detail.0.plugin = plugin;
    Ok((StatusCode::ACCEPTED, detail, axum::Json(after)).into_response())
}

/// Back to the version the last upgrade replaced.
#[utoipa::path(post, path = "/api/v1/projects/{code}/installs/{id}/rollback", tag = "markets", security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = Install), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, id)): Path<(String, String)>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Install>), ApiError> {
    let install = state.market.installs.get(&code, &id)?;
    authorize_change(&state, &caller, &install).await?;
    let after = upgrade::rollback(
        &state.market.installs,
        &state.market.driver,
        install.clone(),
        &caller.username,
    )
    .await?;
    let detail = audited(
        target(&after),
        Some(&install.audit_view()),
        Some(&after.audit_view()),
    );
    Ok((StatusCode::ACCEPTED, detail, axum::Json(after)))
}
