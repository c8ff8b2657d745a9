//! Market connections (`/api/v1/markets`): add, list, read, change and remove the stores
//! Wharf installs from, and browse them — apps, versions, a template's components —
//! through each market's plugin. A local catalog is published to and pruned here too.
//! Access keys go in and never come out.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::{audited, query};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::market::{Market, MarketError, MarketUpdate, NewMarket};
use crate::runtime::catalog::{AppSummary, CatalogFault, Template, VersionSummary};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(apps, publish))
        .routes(routes!(remove_app))
        .routes(routes!(versions))
        .routes(routes!(template, remove_version))
}

/// One page of a market's apps, as the store paged them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppList {
    pub items: Vec<AppSummary>,
    pub total: u32,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    pub items: Vec<VersionSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// Versions removed.
    pub removed: u32,
}

fn target(market: &Market) -> Option<String> {
    Some(format!("market:{}", market.id))
}

/// `id@version` of the plugin serving `plugin_id` now, for audit records.
pub(super) fn serving(state: &AppState, plugin_id: &str) -> Option<String> {
    state
        .runtime
        .active(plugin_id)
        .map(|p| format!("{}@{}", p.id(), p.version()))
}

/// A plugin's answer, its fault named after the market and the plugin named for the audit.
fn answered<T>(
    state: &AppState,
    market: &Market,
    answer: crate::runtime::catalog::CatalogResult<T>,
) -> Result<T, ApiError> {
    let plugin = || serving(state, &market.plugin);
    answer
        .map_err(|e| ApiError::from(MarketError::from_call(&market.name, e)).plugin(plugin()))?
        .map_err(|fault: CatalogFault| {
            ApiError::from(MarketError::Catalog {
                market: market.name.clone(),
                fault,
            })
            .plugin(plugin())
        })
}

/// An audit detail naming the market's plugin.
fn with_plugin(
    state: &AppState,
    market: &Market,
    mut detail: Extension<AuditDetail>,
) -> Extension<AuditDetail> {
    detail.0.plugin = serving(state, &market.plugin);
    detail
}

#[utoipa::path(get, path = "/api/v1/markets", tag = "markets", security(("bearer" = [])),
    params(("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Market>)))]
async fn list(
    State(state): State<AppState>,
    paging: Paging,
) -> Result<axum::Json<Page<Market>>, ApiError> {
    Ok(axum::Json(paging.apply(state.market.connections.list()?)))
}

/// Adds a store: `type` `rainstore` (default), `local`, or a marketplace plugin's id.
#[utoipa::path(post, path = "/api/v1/markets", tag = "markets", security(("bearer" = [])),
    request_body = NewMarket,
    responses((status = 201, body = Market), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewMarket>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Market>), ApiError> {
    let market = state
        .market
        .connections
        .create(body, &caller.username)
        .await?;
    let detail = audited(target(&market), None::<&()>, Some(&market));
    Ok((StatusCode::CREATED, detail, axum::Json(market)))
}

#[utoipa::path(get, path = "/api/v1/markets/{market}", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path, description = "Id or name")),
    responses((status = 200, body = Market), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path(market): Path<String>,
) -> Result<axum::Json<Market>, ApiError> {
    Ok(axum::Json(state.market.connections.get(&market)?))
}

#[utoipa::path(patch, path = "/api/v1/markets/{market}", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path)), request_body = MarketUpdate,
    responses((status = 200, body = Market), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path(market): Path<String>,
    ApiJson(body): ApiJson<MarketUpdate>,
) -> Result<(Extension<AuditDetail>, axum::Json<Market>), ApiError> {
    let (before, after) = state.market.connections.update(&market, body).await?;
    Ok((
        audited(target(&after), Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Removes a market no install uses.
#[utoipa::path(delete, path = "/api/v1/markets/{market}", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path(market): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetail>), ApiError> {
    let found = state.market.connections.get(&market)?;
    let in_use = state.market.installs_of_market(&found.id)?;
    let removed = state.market.connections.delete(&found.id, &in_use).await?;
    Ok((
        StatusCode::NO_CONTENT,
        audited(target(&removed), Some(&removed), None::<&()>),
    ))
}

/// The market's apps matching `query`, with their versions.
#[utoipa::path(get, path = "/api/v1/markets/{market}/apps", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path), ("query" = Option<String>, Query), ("page" = Option<u32>, Query),
        ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = AppList), (status = 404, body = Problem), (status = 502, body = Problem)))]
async fn apps(
    State(state): State<AppState>,
    Path(market): Path<String>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<AppList>, ApiError> {
    let market = state.market.connections.get(&market)?;
    let reference = state.market.connections.reference(&market)?;
    let search = query(&parts, "query").unwrap_or_default();
    let page = answered(
        &state,
        &market,
        state
            .runtime
            .list_apps(
                &market.plugin,
                &reference,
                search,
                paging.page,
                paging.page_size,
            )
            .await,
    )?;
    Ok(axum::Json(AppList {
        items: page.items,
        total: page.total,
        page: paging.page,
        page_size: paging.page_size,
    }))
}

/// Publishes a version of an app (its Rainbond application-model JSON) into a catalog
/// that takes uploads (`local`).
#[utoipa::path(post, path = "/api/v1/markets/{market}/apps", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path)), request_body = Object,
    responses((status = 201, body = Template), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn publish(
    State(state): State<AppState>,
    Path(market): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Template>), ApiError> {
    let market = state.market.connections.get(&market)?;
    let reference = state.market.connections.reference(&market)?;
    let template = answered(
        &state,
        &market,
        state
            .runtime
            .publish_template(&market.plugin, &reference, body.to_string())
            .await,
    )?;
    let detail = audited(
        Some(format!("market:{}/app:{}", market.id, template.app_id)),
        None::<&()>,
        Some(&serde_json::json!({"appId": template.app_id, "version": template.version})),
    );
    let detail = with_plugin(&state, &market, detail);
    Ok((StatusCode::CREATED, detail, axum::Json(template)))
}

async fn remove(
    state: &AppState,
    market: &str,
    app: &str,
    version: Option<String>,
) -> Result<(Extension<AuditDetail>, axum::Json<Removed>), ApiError> {
    let market = state.market.connections.get(market)?;
    let reference = state.market.connections.reference(&market)?;
    let removed = answered(
        state,
        &market,
        state
            .runtime
            .remove_template(&market.plugin, &reference, app, version.clone())
            .await,
    )?;
    let detail = audited(
        Some(format!("market:{}/app:{app}", market.id)),
        Some(&serde_json::json!({"appId": app, "version": version})),
        Some(&serde_json::json!({"removed": removed})),
    );
    Ok((
        with_plugin(state, &market, detail),
        axum::Json(Removed { removed }),
    ))
}

/// Removes an app and every version of it from a local catalog.
#[utoipa::path(delete, path = "/api/v1/markets/{market}/apps/{app}", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = Removed), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_app(
    State(state): State<AppState>,
    Path((market, app)): Path<(String, String)>,
) -> Result<(Extension<AuditDetail>, axum::Json<Removed>), ApiError> {
    remove(&state, &market, &app, None).await
}

#[utoipa::path(get, path = "/api/v1/markets/{market}/apps/{app}/versions", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = VersionList), (status = 404, body = Problem), (status = 502, body = Problem)))]
async fn versions(
    State(state): State<AppState>,
    Path((market, app)): Path<(String, String)>,
) -> Result<axum::Json<VersionList>, ApiError> {
    let market = state.market.connections.get(&market)?;
    let reference = state.market.connections.reference(&market)?;
    let items = answered(
        &state,
        &market,
        state
            .runtime
            .list_versions(&market.plugin, &reference, &app)
            .await,
    )?;
    Ok(axum::Json(VersionList { items }))
}

/// A version's template as the install will read it: components, resources, ports,
/// variables, volumes and dependencies.
#[utoipa::path(get, path = "/api/v1/markets/{market}/apps/{app}/versions/{version}", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path), ("app" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Template), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 502, body = Problem)))]
async fn template(
    State(state): State<AppState>,
    Path((market, app, version)): Path<(String, String, String)>,
) -> Result<axum::Json<Template>, ApiError> {
    let market = state.market.connections.get(&market)?;
    let reference = state.market.connections.reference(&market)?;
    let template = state
        .market
        .installs
        .template(&market, &reference, &app, &version)
        .await
        .map_err(|e| ApiError::from(e).plugin(serving(&state, &market.plugin)))?;
    Ok(axum::Json(template))
}

#[utoipa::path(delete, path = "/api/v1/markets/{market}/apps/{app}/versions/{version}", tag = "markets", security(("bearer" = [])),
    params(("market" = String, Path), ("app" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Removed), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_version(
    State(state): State<AppState>,
    Path((market, app, version)): Path<(String, String, String)>,
) -> Result<(Extension<AuditDetail>, axum::Json<Removed>), ApiError> {
    remove(&state, &market, &app, Some(version)).await
}
