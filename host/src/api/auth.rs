//! Sessions: log in for a bearer token; ask who the token belongs to.

use axum::Extension;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::ApiJson;
use super::guard::AuditDetail;
use crate::auth::Caller;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LoginResponse {
    /// Opaque bearer token; send as `Authorization: Bearer <token>`.
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    expires_at: OffsetDateTime,
}

/// Exchanges a username and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> impl IntoResponse {
    let detail = AuditDetail {
        target: Some(format!("user:{}", body.username)),
        ..AuditDetail::default()
    };
    (Extension(detail), issue_token(&state, body).await)
}

async fn issue_token(
    state: &AppState,
    body: LoginRequest,
) -> Result<axum::Json<LoginResponse>, ApiError> {
    if body.username.is_empty() || body.username.len() > 64 {
        return Err(ApiError::invalid("username", "must be 1-64 characters"));
    }
    if body.password.len() > 1024 {
        return Err(ApiError::invalid("password", "must be at most 1024 bytes"));
    }
    let issued = state.identity.login(&body.username, &body.password).await?;
    Ok(axum::Json(LoginResponse {
        token: issued.token,
        expires_at: issued.expires_at,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Me {
    id: String,
    username: String,
    is_admin: bool,
}

/// The user the bearer token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(caller: Caller) -> axum::Json<Me> {
    axum::Json(Me {
        id: caller.user_id,
        username: caller.username,
        is_admin: caller.is_admin,
    })
}
