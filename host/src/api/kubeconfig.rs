//! `GET /api/v1/clusters/{cluster}/kubeconfig`: the kubeconfig for the embedded cluster's
//! loopback HTTPS endpoint (its CA and a bearer token), so kubectl can look at what
//! Wharf deployed. Handing out the token is audited like a mutation (the route table's
//! `CREDENTIAL_READS`); the record names the server, never the token.

use axum::Extension;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::guard::AuditDetail;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(kubeconfig))
}

/// A kubeconfig and where it points.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Kubeconfig {
    cluster: String,
    server: String,
    /// YAML, ready for `kubectl --kubeconfig`.
    kubeconfig: String,
}

/// The kubeconfig of the embedded cluster (it carries a token: admins only).
#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/kubeconfig", tag = "clusters", security(("bearer" = [])),
    params(("cluster" = String, Path)),
    responses((status = 200, body = Kubeconfig), (status = 404, body = Problem)))]
async fn kubeconfig(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<(Extension<AuditDetail>, axum::Json<Kubeconfig>), ApiError> {
    match (&state.kube_endpoint, cluster.as_str()) {
        (Some(endpoint), "embedded") => {
            let server = endpoint.server_url();
            let handed_out = AuditDetail {
                after: Some(serde_json::json!({ "server": server })),
                ..AuditDetail::default()
            };
            Ok((
                Extension(handed_out),
                axum::Json(Kubeconfig {
                    cluster,
                    server,
                    kubeconfig: endpoint.kubeconfig(),
                }),
            ))
        }
        _ => Err(ApiError::not_found(
            "kubeconfig-not-available",
            format!(
                "Wharf hands out kubeconfigs only for the embedded cluster; `{cluster}` is not it"
            ),
        )),
    }
}
