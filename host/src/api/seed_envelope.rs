//! Seed 001's response envelope `{"code":"200","data":…,"msg":""}` and its paging
//! (`pageNum` from 1, `pageSize` default 10), for the routes served with the seed's names.

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::clusters::query;
use super::error::ApiError;

pub fn ok(data: Value) -> Response {
    axum::Json(json!({"code": "200", "data": data, "msg": ""})).into_response()
}

/// The seed's envelope for a refusal, with the HTTP status it means; `msg` names the
/// offending field first, since the envelope has no field for it. The audit record gets
/// Wharf's problem code, which the envelope has no place for either.
pub fn refused(error: ApiError) -> Response {
    let status = error.status();
    let msg = match error.field_name() {
        Some(field) if !error.detail().starts_with(field) => {
            format!("{field}: {}", error.detail())
        }
        _ => error.detail().to_owned(),
    };
    let body = json!({"code": status.as_u16().to_string(), "data": Value::Null, "msg": msg});
    let mut response = (status, axum::Json(body)).into_response();
    response
        .extensions_mut()
        .insert(super::error::ProblemCode(error.code()));
    response
}

pub fn answer(result: Result<Value, ApiError>) -> Response {
    result.map_or_else(refused, ok)
}

pub fn seed_time(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

pub fn required(value: &str, field: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(())
}

/// A required query parameter.
pub fn required_query(parts: &Parts, field: &str) -> Result<String, ApiError> {
    let value = query(parts, field).unwrap_or_default();
    required(&value, field)?;
    Ok(value)
}

/// `pageNum` and `pageSize` of a seed list.
#[derive(Debug, Clone, Copy)]
pub struct SeedPaging {
    pub page_num: u32,
    pub page_size: u32,
}

impl SeedPaging {
    pub fn read(parts: &Parts) -> Result<SeedPaging, ApiError> {
        let number = |name: &str, default: u32| -> Result<u32, ApiError> {
            match query(parts, name) {
                None => Ok(default),
                Some(text) => text
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ApiError::invalid(name, "must be a positive integer")),
            }
        };
        Ok(SeedPaging {
            page_num: number("pageNum", 1)?,
            page_size: number("pageSize", 10)?.min(500),
        })
    }

    /// One page of `all`, each row shown by `view`.
    pub fn page<T>(
        &self,
        all: &[T],
        view: impl FnMut(&T) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let list = all
            .iter()
            .skip((self.page_num as usize - 1).saturating_mul(self.page_size as usize))
            .take(self.page_size as usize)
            .map(view)
            .collect::<Result<Vec<Value>, ApiError>>()?;
        Ok(json!({
            "list": list, "pageNum": self.page_num, "pageSize": self.page_size,
            "size": list.len(), "total": all.len(),
        }))
    }
}
