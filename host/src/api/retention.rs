//! Retention of a project's images (`/api/v1/projects/{code}/retention/…`): a dry run lists
//! what the artifact policy would delete; a run deletes it (audited with the tags).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::guard::AuditDetail;
use crate::domain::artifacts::retention::{self, RetentionError, RetentionReport};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dry_run))
        .routes(routes!(run))
}

impl From<RetentionError> for ApiError {
    fn from(e: RetentionError) -> Self {
        let detail = e.to_string();
        match e {
            RetentionError::NoPolicy => {
                ApiError::new(StatusCode::CONFLICT, "no-artifact-policy", detail)
            }
            RetentionError::TooManyTags { .. } => {
                ApiError::new(StatusCode::CONFLICT, "too-many-tags", detail)
            }
            RetentionError::Policy(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "policy-unavailable",
                detail,
            ),
            RetentionError::Registry(e) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "registry-failed",
                e.to_string(),
            ),
        }
    }
}

async fn retain(state: &AppState, code: &str, dry_run: bool) -> Result<RetentionReport, ApiError> {
    state.projects.get(code)?;
    Ok(retention::run(&state.runtime, &state.registry, code, dry_run).await?)
}

/// What a retention run would delete now: per repository, the tags the artifact policy
/// picks. Nothing is deleted.
#[utoipa::path(post, path = "/api/v1/projects/{code}/retention/dry-run", tag = "artifacts",
    security(("bearer" = [])), params(("code" = String, Path)),
    responses((status = 200, body = RetentionReport), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn dry_run(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<axum::Json<RetentionReport>, ApiError> {
    Ok(axum::Json(retain(&state, &code, true).await?))
}

/// Runs retention now: deletes the tags the artifact policy picks (their manifests and
/// blobs stay until garbage collection) and answers what was deleted.
#[utoipa::path(post, path = "/api/v1/projects/{code}/retention/runs", tag = "artifacts",
    security(("bearer" = [])), params(("code" = String, Path)),
    responses((status = 200, body = RetentionReport), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn run(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<(Extension<AuditDetail>, axum::Json<RetentionReport>), ApiError> {
    let report = retain(&state, &code, false).await?;
    let detail = Extension(AuditDetail {
        after: serde_json::to_value(&report).ok(),
        ..AuditDetail::default()
    });
    Ok((detail, axum::Json(report)))
}
