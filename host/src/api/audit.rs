//! Reading the audit log (admin only): filtered pages, and a JSON-lines export.

use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Page, Paging, query_pairs};
use crate::audit::{Outcome, Query, Record};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
}

fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        ApiError::invalid(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
    })
}

/// The filters: `actor`, `action` (prefix), `target` (prefix), `outcome`, `from`, `to`.
fn query_from(parts: &Parts) -> Result<Query, ApiError> {
    let mut query = Query::default();
    for (key, value) in query_pairs(parts) {
        match key.as_str() {
            "actor" => query.actor = Some(value),
            "action" => query.action_prefix = Some(value),
            "target" => query.target_prefix = Some(value),
            "outcome" => {
                query.outcome = Some(match value.as_str() {
                    "ok" => Outcome::Ok,
                    "denied" => Outcome::Denied,
                    "error" => Outcome::Error,
                    _ => return Err(ApiError::invalid("outcome", "must be ok, denied or error")),
                })
            }
            "from" => query.from = Some(parse_time("from", &value)?),
            "to" => query.to = Some(parse_time("to", &value)?),
            _ => {}
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    Ok(query)
}

/// Audit records, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("action" = Option<String>, Query, description = "action prefix"),
        ("target" = Option<String>, Query, description = "target prefix"), ("outcome" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Record>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<Record>>, ApiError> {
    let query = query_from(&parts)?;
    Ok(axum::Json(paging.apply(state.audit.query(&query)?)))
}

/// The matching records as JSON lines, newest first.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("action" = Option<String>, Query), ("target" = Option<String>, Query),
        ("outcome" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, content_type = "application/x-ndjson"), (status = 422, body = Problem)))]
async fn export(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<impl IntoResponse, ApiError> {
    let query = query_from(&parts)?;
    let mut lines = String::new();
    for record in state.audit.query(&query)? {
        if let Ok(line) = serde_json::to_string(&record) {
            lines.push_str(&line);
            lines.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], lines))
}
