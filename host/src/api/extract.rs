//! Request extractors that fail as problems: JSON bodies, the caller, paging.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;

/// A JSON body. Malformed JSON is a 400; JSON of the wrong shape a 422 naming the field.
/// An empty body reads as `{}`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    rejection.body_text(),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable-body",
                    rejection.body_text(),
                )
            }
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(text);
        match serde_path_to_error::deserialize(de) {
            Ok(value) => Ok(ApiJson(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed-json",
                        inner.to_string(),
                    ))
                } else {
                    Err(ApiError::invalid(
                        crate::input::field_of(&path, &inner.to_string()),
                        inner.to_string(),
                    ))
                }
            }
        }
    }
}

pub const MAX_PAGE_SIZE: u32 = 500;

/// `page` (from 1) and `pageSize` (1–500, default 50).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: u32,
    pub page_size: u32,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut paging = Paging {
            page: 1,
            page_size: 50,
        };
        for (key, value) in query_pairs(parts) {
            match key.as_str() {
                "page" => {
                    paging.page = value.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                        ApiError::invalid("page", "must be a whole number from 1")
                    })?;
                }
                "pageSize" => {
                    paging.page_size = value
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
                _ => {}
            }
        }
        Ok(paging)
    }
}

/// The query string as decoded pairs.
pub fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub page: u32,
    pub page_size: u32,
}

impl Paging {
    pub fn apply<T>(&self, all: Vec<T>) -> Page<T> {
        let total = all.len();
        let start = (self.page as usize - 1).saturating_mul(self.page_size as usize);
        let items = all
            .into_iter()
            .skip(start)
            .take(self.page_size as usize)
            .collect();
        Page {
            items,
            total,
            page: self.page,
            page_size: self.page_size,
        }
    }
}
