//! Regions, resource pools and clusters (`/api/v1/regions`, `/api/v1/resource-pools`,
//! `/api/v1/clusters`) with cluster health; and the problem mapping of every cluster,
//! environment and config item error.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging, query_pairs};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::cluster::client::{ClusterError, Health};
use crate::domain::clusters::{
    Cluster, ClusterUpdate, ClustersError, NewCluster, Region, ResourcePool,
};
use crate::domain::environments::EnvError;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_regions, create_region))
        .routes(routes!(get_region, update_region, delete_region))
        .routes(routes!(list_pools, create_pool))
        .routes(routes!(get_pool, update_pool, delete_pool))
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(health))
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        let detail = e.to_string();
        match e {
            ClusterError::NotFound { kind, .. } => ApiError::not_found(
                match kind {
                    "namespace" => "namespace-not-found",
                    "node" => "node-not-found",
                    "configmap" => "configmap-not-found",
                    _ => "object-not-found",
                },
                detail,
            ),
            ClusterError::AlreadyExists { kind, .. } => {
                let code = match kind {
                    "namespace" => "namespace-exists",
                    "configmap" => "configmap-exists",
                    _ => "object-exists",
                };
                ApiError::new(StatusCode::CONFLICT, code, detail).field("name")
            }
            ClusterError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "cluster-conflict", detail)
            }
            ClusterError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rejected-by-cluster",
                detail,
            ),
            ClusterError::Forbidden(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "cluster-forbidden", detail)
            }
            ClusterError::Unreachable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster-unreachable",
                detail,
            ),
            ClusterError::Config(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster-misconfigured",
                detail,
            ),
            ClusterError::Other(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "cluster-error", detail)
            }
        }
    }
}

impl From<ClustersError> for ApiError {
    fn from(e: ClustersError) -> Self {
        let detail = e.to_string();
        match e {
            ClustersError::Invalid { field, message } => ApiError::invalid(field, message),
            ClustersError::RegionNotFound(_) => ApiError::not_found("region-not-found", detail),
            ClustersError::PoolNotFound(_) => {
                ApiError::not_found("resource-pool-not-found", detail)
            }
            ClustersError::ClusterNotFound(_) => ApiError::not_found("cluster-not-found", detail),
            ClustersError::Exists { what, .. } => ApiError::new(
                StatusCode::CONFLICT,
                match what {
                    "region" => "region-exists",
                    "resource pool" => "resource-pool-exists",
                    _ => "cluster-exists",
                },
                detail,
            )
            .field("id"),
            ClustersError::InUse { what, .. } => ApiError::new(
                StatusCode::CONFLICT,
                match what {
                    "namespace" => "namespace-in-use",
                    "region" => "region-in-use",
                    "resource pool" => "resource-pool-in-use",
                    _ => "cluster-in-use",
                },
                detail,
            ),
            ClustersError::Embedded => {
                ApiError::new(StatusCode::CONFLICT, "cluster-embedded", detail)
            }
            ClustersError::Cluster(c) => c.into(),
            ClustersError::Store(s) => s.into(),
        }
    }
}

impl From<EnvError> for ApiError {
    fn from(e: EnvError) -> Self {
        let detail = e.to_string();
        let conflict = |code| ApiError::new(StatusCode::CONFLICT, code, detail.clone());
        match e {
            EnvError::Invalid { field, message } => ApiError::invalid(field, message),
            EnvError::ProjectNotFound(_) => ApiError::not_found("project-not-found", detail),
            EnvError::NotFound { .. } => ApiError::not_found("env-not-found", detail),
            EnvError::CodeTaken(_) => conflict("env-code-taken").field("envCode"),
            EnvError::BindingExists { .. } => conflict("binding-exists"),
            EnvError::BindingNotFound { .. } => ApiError::not_found("binding-not-found", detail),
            EnvError::NamespaceTaken { .. } => conflict("namespace-bound").field("namespace"),
            EnvError::HasConfigItems { .. } => conflict("has-config-items"),
            EnvError::Conflict(_) => conflict("concurrent-change"),
            EnvError::ConfigItemNotFound(_) => ApiError::not_found("config-item-not-found", detail),
            EnvError::ConfigItemExists(_) => conflict("config-item-exists").field("name"),
            EnvError::Clusters(c) => c.into(),
            EnvError::Cluster(c) => c.into(),
            EnvError::Store(s) => s.into(),
        }
    }
}

/// The audit detail of a change: target, and before/after as JSON.
pub fn audited<B: Serialize, A: Serialize>(
    target: Option<String>,
    before: Option<&B>,
    after: Option<&A>,
) -> Extension<AuditDetail> {
    Extension(AuditDetail {
        target,
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: after.and_then(|a| serde_json::to_value(a).ok()),
        ..AuditDetail::default()
    })
}

/// One query parameter.
pub fn query(parts: &Parts, name: &str) -> Option<String> {
    query_pairs(parts)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

type Created<T> = (StatusCode, Extension<AuditDetail>, axum::Json<T>);
type Changed<T> = (Extension<AuditDetail>, axum::Json<T>);
type Deleted = (Extension<AuditDetail>, StatusCode);

// Regions.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRegion {
    id: String,
    name: String,
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NameUpdate {
    name: Option<String>,
    description: Option<String>,
}

/// A resource pool as its region lists it.
#[derive(Serialize, ToSchema)]
struct PoolRef {
    id: String,
    name: String,
}

/// A region with its resource pools (seed 001 5.4.12 `resPools`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RegionView {
    #[serde(flatten)]
    region: Region,
    resource_pools: Vec<PoolRef>,
}

fn region_view(state: &AppState, region: Region) -> Result<RegionView, ApiError> {
    let resource_pools = state
        .clusters
        .pools(Some(&region.id))?
        .into_iter()
        .map(|p| PoolRef {
            id: p.id,
            name: p.name,
        })
        .collect();
    Ok(RegionView {
        region,
        resource_pools,
    })
}

/// Regions (seed 001 areas) with their resource pools.
#[utoipa::path(get, path = "/api/v1/regions", tag = "clusters", security(("bearer" = [])),
    params(("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<RegionView>)))]
async fn list_regions(
    State(state): State<AppState>,
    paging: Paging,
) -> Result<axum::Json<Page<RegionView>>, ApiError> {
    let regions = state
        .clusters
        .regions()?
        .into_iter()
        .map(|r| region_view(&state, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(paging.apply(regions)))
}

/// Creates a region.
#[utoipa::path(post, path = "/api/v1/regions", tag = "clusters", security(("bearer" = [])), request_body = NewRegion,
    responses((status = 201, body = Region), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_region(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewRegion>,
) -> Result<Created<Region>, ApiError> {
    let region = state
        .clusters
        .create_region(body.id, body.name, body.description, &caller.username)
        .await?;
    let detail = audited(
        Some(format!("region:{}", region.id)),
        None::<&()>,
        Some(&region),
    );
    Ok((StatusCode::CREATED, detail, axum::Json(region)))
}

#[utoipa::path(get, path = "/api/v1/regions/{region}", tag = "clusters", security(("bearer" = [])),
    params(("region" = String, Path)), responses((status = 200, body = RegionView), (status = 404, body = Problem)))]
async fn get_region(
    State(state): State<AppState>,
    Path(region): Path<String>,
) -> Result<axum::Json<RegionView>, ApiError> {
    let region = state.clusters.region(&region)?;
    Ok(axum::Json(region_view(&state, region)?))
}

/// Renames a region or changes its description.
#[utoipa::path(patch, path = "/api/v1/regions/{region}", tag = "clusters", security(("bearer" = [])),
    params(("region" = String, Path)), request_body = NameUpdate,
    responses((status = 200, body = Region), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_region(
    State(state): State<AppState>,
    Path(region): Path<String>,
    ApiJson(body): ApiJson<NameUpdate>,
) -> Result<Changed<Region>, ApiError> {
    let before = state.clusters.region(&region)?;
    let after = state
        .clusters
        .update_region(&region, body.name, body.description)
        .await?;
    Ok((
        audited(None, Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Deletes a region without resource pools.
#[utoipa::path(delete, path = "/api/v1/regions/{region}", tag = "clusters", security(("bearer" = [])),
    params(("region" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_region(
    State(state): State<AppState>,
    Path(region): Path<String>,
) -> Result<Deleted, ApiError> {
    let removed = state.clusters.delete_region(&region).await?;
    Ok((
        audited(None, Some(&removed), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}

// Resource pools.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPool {
    id: String,
    name: String,
    region: String,
    description: Option<String>,
}

/// Resource pools, optionally of one `region`.
#[utoipa::path(get, path = "/api/v1/resource-pools", tag = "clusters", security(("bearer" = [])),
    params(("region" = Option<String>, Query), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<ResourcePool>)))]
async fn list_pools(
    State(state): State<AppState>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<ResourcePool>>, ApiError> {
    let region = query(&parts, "region");
    Ok(axum::Json(
        paging.apply(state.clusters.pools(region.as_deref())?),
    ))
}

/// Creates a resource pool in a region.
#[utoipa::path(post, path = "/api/v1/resource-pools", tag = "clusters", security(("bearer" = [])), request_body = NewPool,
    responses((status = 201, body = ResourcePool), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_pool(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewPool>,
) -> Result<Created<ResourcePool>, ApiError> {
    let pool = state
        .clusters
        .create_pool(
            body.id,
            body.name,
            body.region,
            body.description,
            &caller.username,
        )
        .await?;
    let detail = audited(
        Some(format!("resource-pool:{}", pool.id)),
        None::<&()>,
        Some(&pool),
    );
    Ok((StatusCode::CREATED, detail, axum::Json(pool)))
}

#[utoipa::path(get, path = "/api/v1/resource-pools/{pool}", tag = "clusters", security(("bearer" = [])),
    params(("pool" = String, Path)), responses((status = 200, body = ResourcePool), (status = 404, body = Problem)))]
async fn get_pool(
    State(state): State<AppState>,
    Path(pool): Path<String>,
) -> Result<axum::Json<ResourcePool>, ApiError> {
    Ok(axum::Json(state.clusters.pool(&pool)?))
}

/// Renames a resource pool or changes its description.
#[utoipa::path(patch, path = "/api/v1/resource-pools/{pool}", tag = "clusters", security(("bearer" = [])),
    params(("pool" = String, Path)), request_body = NameUpdate,
    responses((status = 200, body = ResourcePool), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_pool(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    ApiJson(body): ApiJson<NameUpdate>,
) -> Result<Changed<ResourcePool>, ApiError> {
    let before = state.clusters.pool(&pool)?;
    let after = state
        .clusters
        .update_pool(&pool, body.name, body.description)
        .await?;
    Ok((
        audited(None, Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Deletes a resource pool that holds no clusters and no environment uses.
#[utoipa::path(delete, path = "/api/v1/resource-pools/{pool}", tag = "clusters", security(("bearer" = [])),
    params(("pool" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_pool(
    State(state): State<AppState>,
    Path(pool): Path<String>,
) -> Result<Deleted, ApiError> {
    let removed = state.clusters.delete_pool(&pool).await?;
    Ok((
        audited(None, Some(&removed), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}

// Clusters.

/// Clusters, optionally of one `resourcePool`; credentials are never shown.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters", security(("bearer" = [])),
    params(("resourcePool" = Option<String>, Query), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Cluster>)))]
async fn list(
    State(state): State<AppState>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<Cluster>>, ApiError> {
    let pool = query(&parts, "resourcePool");
    Ok(axum::Json(
        paging.apply(state.clusters.list(pool.as_deref())?),
    ))
}

/// Registers a cluster: a kubeconfig (pasted, stored encrypted, or a file on the server,
/// with an optional context) or the service account Wharf runs under.
#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", security(("bearer" = [])), request_body = NewCluster,
    responses((status = 201, body = Cluster), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewCluster>,
) -> Result<Created<Cluster>, ApiError> {
    let cluster = state.clusters.create(body, &caller.username).await?;
    let detail = audited(
        Some(format!("cluster:{}", cluster.id)),
        None::<&()>,
        Some(&cluster),
    );
    Ok((StatusCode::CREATED, detail, axum::Json(cluster)))
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path)), responses((status = 200, body = Cluster), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<axum::Json<Cluster>, ApiError> {
    Ok(axum::Json(state.clusters.get(&cluster)?))
}

/// Changes a cluster's name, description, pool or connection (a new kubeconfig or context).
#[utoipa::path(patch, path = "/api/v1/clusters/{cluster}", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path)), request_body = ClusterUpdate,
    responses((status = 200, body = Cluster), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    ApiJson(body): ApiJson<ClusterUpdate>,
) -> Result<Changed<Cluster>, ApiError> {
    let before = state.clusters.get(&cluster)?;
    let after = state.clusters.update(&cluster, body).await?;
    Ok((
        audited(None, Some(&before), Some(&after)),
        axum::Json(after),
    ))
}

/// Removes a cluster no environment binds (the embedded cluster stays).
#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Deleted, ApiError> {
    let removed = state.clusters.delete(&cluster).await?;
    Ok((
        audited(None, Some(&removed), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}

/// The cluster's health: reachable, server version, latency.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterHealth {
    cluster: String,
    #[serde(flatten)]
    health: Health,
}

/// Asks the cluster for its version and reports reachability and latency (200 either way).
#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/health", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path)), responses((status = 200, body = ClusterHealth), (status = 404, body = Problem)))]
async fn health(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<axum::Json<ClusterHealth>, ApiError> {
    state.clusters.get(&cluster)?;
    let health = match state.clusters.client(&cluster).await {
        Ok(client) => client.health().await,
        Err(error) => Health {
            reachable: false,
            server_version: None,
            platform: None,
            latency_ms: 0,
            error: Some(error.to_string()),
        },
    };
    Ok(axum::Json(ClusterHealth { cluster, health }))
}
