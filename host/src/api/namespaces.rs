//! Namespaces and nodes of a cluster: `/api/v1/clusters/{cluster}/namespaces` (create,
//! list, delete unless an environment binds it) and `/api/v1/clusters/{cluster}/nodes`
//! (capacity, labels, label changes).

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::audited;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::cluster::client::{NamespaceView, NodeView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_namespaces, create_namespace))
        .routes(routes!(delete_namespace))
        .routes(routes!(list_nodes))
        .routes(routes!(get_node))
        .routes(routes!(label_node))
}

/// The cluster's namespaces.
#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/namespaces", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<NamespaceView>), (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn list_namespaces(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    paging: Paging,
) -> Result<axum::Json<Page<NamespaceView>>, ApiError> {
    Ok(axum::Json(
        paging.apply(state.clusters.namespaces(&cluster).await?),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewNamespace {
    /// A DNS label: 1–63 of `[a-z0-9-]`.
    name: String,
}

#[derive(Serialize, ToSchema)]
struct NamespaceRef {
    cluster: String,
    name: String,
}

/// Creates a namespace (seed 001 5.4.2); an existing name is a 409.
#[utoipa::path(post, path = "/api/v1/clusters/{cluster}/namespaces", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path)), request_body = NewNamespace,
    responses((status = 201, body = NamespaceRef), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_namespace(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    ApiJson(body): ApiJson<NewNamespace>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<NamespaceRef>), ApiError> {
    state.clusters.get(&cluster)?;
    state
        .clusters
        .create_namespace(&cluster, &body.name)
        .await?;
    let created = NamespaceRef {
        cluster: cluster.clone(),
        name: body.name,
    };
    let target = format!("cluster:{cluster}/namespace:{}", created.name);
    let detail = audited(Some(target), None::<&()>, Some(&created));
    Ok((StatusCode::CREATED, detail, axum::Json(created)))
}

/// Deletes a namespace; refused (409) while an environment binds it, and for Kubernetes' own.
#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path), ("namespace" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_namespace(
    State(state): State<AppState>,
    Path((cluster, namespace)): Path<(String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    state.clusters.get(&cluster)?;
    state
        .clusters
        .delete_namespace(&cluster, &namespace)
        .await?;
    let before = NamespaceRef {
        cluster,
        name: namespace,
    };
    Ok((
        audited(None, Some(&before), None::<&()>),
        StatusCode::NO_CONTENT,
    ))
}

/// The cluster's nodes with capacity, allocatable resources and labels (seed 002).
#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/nodes", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<NodeView>), (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn list_nodes(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    paging: Paging,
) -> Result<axum::Json<Page<NodeView>>, ApiError> {
    Ok(axum::Json(
        paging.apply(state.clusters.nodes(&cluster).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/nodes/{node}", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path), ("node" = String, Path)),
    responses((status = 200, body = NodeView), (status = 404, body = Problem)))]
async fn get_node(
    State(state): State<AppState>,
    Path((cluster, node)): Path<(String, String)>,
) -> Result<axum::Json<NodeView>, ApiError> {
    Ok(axum::Json(state.clusters.node(&cluster, &node).await?))
}

/// Label changes: a string adds or changes a label, `null` removes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LabelChanges {
    labels: BTreeMap<String, Option<String>>,
}

/// Adds, changes and removes node labels; `kubernetes.io/` and `k8s.io/` prefixes are refused.
#[utoipa::path(patch, path = "/api/v1/clusters/{cluster}/nodes/{node}/labels", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path), ("node" = String, Path)), request_body = LabelChanges,
    responses((status = 200, body = NodeView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn label_node(
    State(state): State<AppState>,
    Path((cluster, node)): Path<(String, String)>,
    ApiJson(body): ApiJson<LabelChanges>,
) -> Result<(Extension<AuditDetail>, axum::Json<NodeView>), ApiError> {
    crate::domain::clusters::check_labels(&body.labels)?;
    let before = state.clusters.node(&cluster, &node).await?;
    let after = state
        .clusters
        .label_node(&cluster, &node, &body.labels)
        .await?;
    let detail = audited(None, Some(&before.labels), Some(&after.labels));
    Ok((detail, axum::Json(after)))
}
