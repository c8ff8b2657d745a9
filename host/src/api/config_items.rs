//! Config items of an environment (`/api/v1/projects/{code}/environments/{env}/config-items`):
//! ConfigMaps in one of the environment's bindings, created, listed (search, paging), read
//! with each key's storage path and the cluster's state, replaced and deleted; each change
//! is audited with before and after, where each key appears with a sha256 of its value
//! instead of the value (config often holds credentials; the hash still shows what
//! changed). Bodies may be up to 3 MiB so that 1 MiB of data (the Kubernetes limit the
//! domain enforces) fits after JSON escaping.

use axum::Extension;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::query;
use super::environments::environments;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::config_items::{ClusterState, ConfigItem, ConfigItems, NewConfigItem, NewEntry};

/// Largest body of a config item request.
const MAX_CONFIG_BODY_BYTES: usize = 3 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .layer(DefaultBodyLimit::max(MAX_CONFIG_BODY_BYTES))
}

fn items(state: &AppState) -> ConfigItems {
    ConfigItems::new(environments(state))
}

/// A config item as the audit log keeps it: everything but the values, each key with
/// the sha256 (hex) of its value.
fn redacted(item: &ConfigItem) -> serde_json::Value {
    let mut view = serde_json::to_value(item).unwrap_or_default();
    view["items"] = item
        .items
        .iter()
        .map(|entry| {
            serde_json::json!({
                "name": entry.name,
                "storagePath": entry.storage_path,
                "sha256": hex::encode(Sha256::digest(entry.value.as_bytes())),
            })
        })
        .collect();
    view
}

/// What a change adds to its audit record.
fn audited(
    target: Option<String>,
    before: Option<&ConfigItem>,
    after: Option<&ConfigItem>,
) -> Extension<AuditDetail> {
    Extension(AuditDetail {
        target,
        before: before.map(redacted),
        after: after.map(redacted),
        ..AuditDetail::default()
    })
}

/// The config items of an environment, matching `search` on the name, optionally of one
/// `cluster` / `namespace`.
#[utoipa::path(get, path = "/api/v1/projects/{code}/environments/{env}/config-items", tag = "environments",
    security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("search" = Option<String>, Query),
        ("cluster" = Option<String>, Query), ("namespace" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<ConfigItem>), (status = 404, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<ConfigItem>>, ApiError> {
    let (search, cluster, namespace) = (
        query(&parts, "search"),
        query(&parts, "cluster"),
        query(&parts, "namespace"),
    );
    let found = items(&state).list(
        &code,
        &env,
        search.as_deref(),
        cluster.as_deref(),
        namespace.as_deref(),
    )?;
    Ok(axum::Json(paging.apply(found)))
}

/// Creates a config item (seed 001 5.10.1) as a ConfigMap in one of the environment's
/// bindings (`cluster`/`namespace` may be left out when there is only one).
#[utoipa::path(post, path = "/api/v1/projects/{code}/environments/{env}/config-items", tag = "environments",
    security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path)), request_body = NewConfigItem,
    responses((status = 201, body = ConfigItem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, env)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewConfigItem>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<ConfigItem>), ApiError> {
    let item = items(&state)
        .create(&code, &env, body, &caller.username)
        .await?;
    let target = format!("project:{code}/env:{env}/config:{}", item.name);
    let detail = audited(Some(target), None, Some(&item));
    Ok((StatusCode::CREATED, detail, axum::Json(item)))
}

/// A config item with how the cluster's copy compares.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ConfigItemView {
    #[serde(flatten)]
    item: ConfigItem,
    cluster_state: ClusterState,
}

/// One config item, each key with its storage path, and the state of the cluster's copy.
#[utoipa::path(get, path = "/api/v1/projects/{code}/environments/{env}/config-items/{name}", tag = "environments",
    security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ConfigItemView), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, env, name)): Path<(String, String, String)>,
) -> Result<axum::Json<ConfigItemView>, ApiError> {
    let service = items(&state);
    let item = service.get(&code, &env, &name)?;
    let cluster_state = service.cluster_state(&item).await;
    Ok(axum::Json(ConfigItemView {
        item,
        cluster_state,
    }))
}

/// Replaces all items (seed 001 5.10.4).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemsUpdate {
    items: Vec<NewEntry>,
}

/// Replaces a config item's keys; the audit record keeps before and after (keys and hashes).
#[utoipa::path(put, path = "/api/v1/projects/{code}/environments/{env}/config-items/{name}", tag = "environments",
    security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("name" = String, Path)), request_body = ItemsUpdate,
    responses((status = 200, body = ConfigItem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, env, name)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<ItemsUpdate>,
) -> Result<(Extension<AuditDetail>, axum::Json<ConfigItem>), ApiError> {
    let service = items(&state);
    let before = service.get(&code, &env, &name)?;
    let after = service
        .update(&code, &env, &name, body.items, &caller.username)
        .await?;
    Ok((
        audited(None, Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Deletes a config item and its ConfigMap.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/environments/{env}/config-items/{name}", tag = "environments",
    security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path((code, env, name)): Path<(String, String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let removed = items(&state).delete(&code, &env, &name).await?;
    Ok((audited(None, Some(&removed), None), StatusCode::NO_CONTENT))
}
