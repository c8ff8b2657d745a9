//! Sessions: log in for a bearer token; ask who the token belongs to.

use axum::Extension;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
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
use super::routes::ROUTES;
use crate::auth::{Caller, IssuedToken, NewUser, TokenView, UserView, scope_covers};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(logout))
        .routes(routes!(refresh))
        .routes(routes!(register))
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> impl IntoResponse {
    let detail = AuditDetail {
        target: Some(format!("user:{}", body.username)),
        ..AuditDetail::default()
    };
    (
        Extension(detail),
        issue_token(&state, body, peer.ip()).await,
    )
}

async fn issue_token(
    state: &AppState,
    body: LoginRequest,
    source: IpAddr,
) -> Result<axum::Json<LoginResponse>, ApiError> {
    if body.username.is_empty() || body.username.len() > 64 {
        return Err(ApiError::invalid("username", "must be 1-64 characters"));
    }
    if body.password.len() > 1024 {
        return Err(ApiError::invalid("password", "must be at most 1024 bytes"));
    }
    let issued = state
        .identity
        .login(&body.username, &body.password, Some(source))
        .await?;
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

impl From<IssuedToken> for LoginResponse {
    fn from(issued: IssuedToken) -> Self {
        LoginResponse {
            token: issued.token,
            expires_at: issued.expires_at,
        }
    }
}

/// Ends this session: the token stops working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    state.identity.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Exchanges this session token for a fresh one (the old one stops working).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem)))]
async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<LoginResponse>, ApiError> {
    Ok(axum::Json(state.identity.refresh(&caller).await?.into()))
}

/// Self-registration (when the server allows it); the account waits for an admin's approval.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<UserView>), ApiError> {
    let user = state.identity.register(body).await?;
    let detail = AuditDetail {
        target: Some(format!("user:{}", user.username)),
        after: serde_json::to_value(&user).ok(),
        ..AuditDetail::default()
    };
    Ok((StatusCode::CREATED, Extension(detail), axum::Json(user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// Changes the caller's own password (the current one is required, and wrong guesses are
/// throttled like logins); every other session and token of the caller is revoked.
#[utoipa::path(put, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .change_password(
            &caller,
            body.old_password,
            body.new_password,
            Some(peer.ip()),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    items: Vec<TokenView>,
}

/// The caller's live tokens (sessions and personal tokens; never the secrets).
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TokenList)))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<TokenList>, ApiError> {
    Ok(axum::Json(TokenList {
        items: state.identity.list_tokens(&caller.user_id)?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewToken {
    name: String,
    /// 1–365 days.
    expires_in_days: u32,
    /// Actions or action prefixes of whole segments the token may use, e.g.
    /// `["plugin.read", "audit"]` (`plugin.read` does not cover `plugin.read-logs`;
    /// `audit` covers every `audit.*`); omitted = all.
    scope: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedToken {
    id: String,
    /// Shown only now.
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    expires_at: OffsetDateTime,
}

/// Creates a personal API token for the caller; the secret is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", security(("bearer" = [])), request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<CreatedToken>), ApiError> {
    for (i, scope) in body.scope.iter().flatten().enumerate() {
        if !ROUTES.iter().any(|route| scope_covers(scope, route.action)) {
            return Err(ApiError::invalid(
                format!("scope[{i}]"),
                "covers no action of this server: give an action such as `plugin.read` or a prefix of whole segments such as `plugin`",
            ));
        }
    }
    let issued = state
        .identity
        .create_personal_token(
            &caller,
            body.name.clone(),
            body.expires_in_days,
            body.scope.clone(),
        )
        .await?;
    let detail = AuditDetail {
        target: Some(format!("token:{}", issued.id)),
        after: Some(
            serde_json::json!({"name": body.name, "scope": body.scope, "expiresAt": issued.expires_at.to_string()}),
        ),
        ..AuditDetail::default()
    };
    let created = CreatedToken {
        id: issued.id,
        token: issued.token,
        expires_at: issued.expires_at,
    };
    Ok((StatusCode::CREATED, Extension(detail), axum::Json(created)))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.identity.revoke(&caller.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
