//! Keys trusted to sign plugins, and whether unsigned packages are accepted (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::ApiJson;
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::runtime::trust::{TrustSettings, TrustedKey};
use axum::Extension;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, add_key))
        .routes(routes!(remove_key))
        .routes(routes!(get_settings, put_settings))
}

#[derive(Serialize, ToSchema)]
struct KeyList {
    items: Vec<TrustedKey>,
}

/// Lists trusted signing keys.
#[utoipa::path(get, path = "/api/v1/plugin-trust/keys", tag = "plugin-trust", security(("bearer" = [])),
    responses((status = 200, body = KeyList), (status = 403, body = Problem)))]
async fn list_keys(State(state): State<AppState>) -> Result<axum::Json<KeyList>, ApiError> {
    Ok(axum::Json(KeyList {
        items: state.runtime.trust().keys()?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddKey {
    id: String,
    /// Base64 of a 32-byte ed25519 public key.
    public_key: String,
}

/// Trusts a signing key.
#[utoipa::path(post, path = "/api/v1/plugin-trust/keys", tag = "plugin-trust", security(("bearer" = [])),
    request_body = AddKey,
    responses((status = 201, body = TrustedKey), (status = 422, body = Problem)))]
async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AddKey>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<TrustedKey>), ApiError> {
    let key = state
        .runtime
        .trust()
        .add_key(&body.id, &body.public_key, &caller.username)
        .await?;
    let detail = AuditDetail {
        target: Some(format!("trusted-key:{}", key.id)),
        after: serde_json::to_value(&key).ok(),
        ..AuditDetail::default()
    };
    Ok((StatusCode::CREATED, Extension(detail), axum::Json(key)))
}

/// Stops trusting a key (installed versions it signed stay installed).
#[utoipa::path(delete, path = "/api/v1/plugin-trust/keys/{id}", tag = "plugin-trust", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.runtime.trust().remove_key(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "key-not-found",
            format!("no trusted key has id `{id}`"),
        ))
    }
}

/// The install policy.
#[utoipa::path(get, path = "/api/v1/plugin-trust/settings", tag = "plugin-trust", security(("bearer" = [])),
    responses((status = 200, body = TrustSettings)))]
async fn get_settings(
    State(state): State<AppState>,
) -> Result<axum::Json<TrustSettings>, ApiError> {
    Ok(axum::Json(state.runtime.trust().settings()?))
}

/// Sets the install policy (`allowUnsigned`).
#[utoipa::path(put, path = "/api/v1/plugin-trust/settings", tag = "plugin-trust", security(("bearer" = [])),
    request_body = TrustSettings,
    responses((status = 200, body = TrustSettings), (status = 422, body = Problem)))]
async fn put_settings(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TrustSettings>,
) -> Result<(Extension<AuditDetail>, axum::Json<TrustSettings>), ApiError> {
    let before = serde_json::to_value(state.runtime.trust().settings()?).ok();
    state.runtime.trust().set_settings(&body).await?;
    let detail = AuditDetail {
        before,
        after: serde_json::to_value(&body).ok(),
        ..AuditDetail::default()
    };
    Ok((Extension(detail), axum::Json(body)))
}
