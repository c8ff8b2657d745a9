//! Reading the audit log (admin only): filtered pages that follow a cursor, and a
//! JSON-lines export streamed from the store. Neither holds more than a page in memory.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use futures::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{MAX_PAGE_SIZE, query_pairs};
use crate::audit::{Cursor, Outcome, Query, Record};

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
                query.outcome = Some(Outcome::parse(&value).ok_or_else(|| {
                    ApiError::invalid(
                        "outcome",
                        "must be ok, denied, error, pending or interrupted",
                    )
                })?)
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

/// `pageSize` (1–500, default 50) and `cursor`; `page` numbers do not apply here.
fn paging_from(parts: &Parts) -> Result<(usize, Option<Cursor>), ApiError> {
    let (mut size, mut cursor) = (50, None);
    for (key, value) in query_pairs(parts) {
        match key.as_str() {
            "pageSize" => {
                size = value
                    .parse()
                    .ok()
                    .filter(|p| (1..=MAX_PAGE_SIZE).contains(p))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "pageSize",
                            format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                        )
                    })?;
            }
            "cursor" => {
                cursor = Some(
                    Cursor::parse(&value)
                        .map_err(|e| ApiError::invalid("cursor", e.to_string()))?,
                )
            }
            "page" => {
                return Err(ApiError::invalid(
                    "page",
                    "the audit log pages by cursor: pass the previous page's `nextCursor` as `cursor`",
                ));
            }
            _ => {}
        }
    }
    Ok((size as usize, cursor))
}

/// A page of audit records.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditPage {
    /// Newest first.
    items: Vec<Record>,
    page_size: usize,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Audit records, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("action" = Option<String>, Query, description = "action prefix"),
        ("target" = Option<String>, Query, description = "target prefix"), ("outcome" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("pageSize" = Option<u32>, Query),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page")),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let query = query_from(&parts)?;
    let (page_size, cursor) = paging_from(&parts)?;
    let page = state.audit.page(&query, cursor.as_ref(), page_size)?;
    Ok(axum::Json(AuditPage {
        items: page.records,
        page_size,
        next_cursor: page.next.map(|c| c.as_str().to_owned()),
    }))
}

/// The matching records as JSON lines, newest first, streamed as they are read.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("action" = Option<String>, Query), ("target" = Option<String>, Query),
        ("outcome" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, content_type = "application/x-ndjson"), (status = 422, body = Problem)))]
async fn export(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<impl IntoResponse, ApiError> {
    let query = query_from(&parts)?;
    let lines = futures::stream::iter(state.audit.records(&query, None)).map(|item| {
        let (_, record) = item?;
        let mut line = serde_json::to_vec(&record)
            .map_err(|e| crate::store::StoreError::Backend(e.to_string()))?;
        line.push(b'\n');
        Ok::<_, crate::store::StoreError>(Bytes::from(line))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    ))
}
