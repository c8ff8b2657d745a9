//! Who calls the registry and whether they may: credentials as registry clients send them,
//! the challenge that sends them to the token endpoint, and each request decided by the
//! authorizer plugin on the project a repository belongs to.
//!
//! Accepted: `Basic` with a Wharf username and password or personal token, and `Bearer`
//! with a registry token ([`super::token`]) or a Wharf token. Repository actions map onto
//! Wharf's: `pull` → `artifact.read`, `push` → `artifact.push`, `delete` →
//! `artifact.delete`, on `project:<code>`.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::errors::RegistryReply;
use super::token;
use crate::api::AppState;
use crate::api::guard::require;
use crate::auth::{AuthError, Caller};
use crate::domain::artifacts::Repository;

/// What a repository request asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAction {
    Pull,
    Push,
    Delete,
}

impl RepoAction {
    /// The word registry scopes use.
    pub fn scope_word(self) -> &'static str {
        match self {
            RepoAction::Pull => "pull",
            RepoAction::Push => "push",
            RepoAction::Delete => "delete",
        }
    }

    /// The Wharf action the authorizer decides.
    pub fn wharf_action(self) -> &'static str {
        match self {
            RepoAction::Pull => "artifact.read",
            RepoAction::Push => "artifact.push",
            RepoAction::Delete => "artifact.delete",
        }
    }

    pub fn from_scope_word(word: &str) -> Option<RepoAction> {
        match word {
            "pull" => Some(RepoAction::Pull),
            "push" => Some(RepoAction::Push),
            "delete" => Some(RepoAction::Delete),
            _ => None,
        }
    }
}

/// An authenticated registry caller; a registry token narrows it to its grants.
#[derive(Debug, Clone)]
pub struct Principal {
    pub caller: Caller,
    pub token: Option<token::Verified>,
}

/// The `service` registry clients echo back to the token endpoint.
pub const SERVICE: &str = "wharf";

/// The host (and port) the client reached this registry at: what image references
/// pulled from it start with.
pub fn registry_host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        .unwrap_or("localhost")
}

/// The challenge of a 401: where to get a token, and for what.
pub fn challenge(headers: &HeaderMap, scope: Option<String>) -> String {
    let host = registry_host(headers);
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let mut text = format!("Bearer realm=\"{scheme}://{host}/v2/token\",service=\"{SERVICE}\"");
    if let Some(scope) = scope {
        text.push_str(&format!(",scope=\"{scope}\""));
    }
    text
}

fn unauthorized(headers: &HeaderMap, scope: Option<String>, why: &str) -> RegistryReply {
    RegistryReply::unauthorized(challenge(headers, scope), why)
}

fn auth_failed(error: AuthError) -> Result<Option<Caller>, RegistryReply> {
    match error {
        AuthError::Store(e) => Err(RegistryReply::unavailable(e.to_string())),
        AuthError::Throttled { retry_after_secs } => Err(RegistryReply::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            format!("too many failed logins; try again in {retry_after_secs} s"),
        )),
        _ => Ok(None),
    }
}

/// Who sent `headers`: `Ok(None)` when no credential came or it was not valid.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    source: Option<IpAddr>,
) -> Result<Option<Principal>, RegistryReply> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    else {
        return Ok(None);
    };
    if let Some(basic) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    {
        let Some((user, secret)) = STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.split_once(':').map(|(u, s)| (u.to_owned(), s.to_owned())))
        else {
            return Ok(None);
        };
        let caller = if secret.starts_with("wharf_") {
            match state.identity.authenticate(&secret) {
                Ok(caller) if caller.username == user => Some(caller),
                Ok(_) => None,
                Err(e) => auth_failed(e)?,
            }
        } else {
            match state.identity.check_password(&user, &secret, source).await {
                Ok(caller) => Some(caller),
                Err(e) => auth_failed(e)?,
            }
        };
        return Ok(caller.map(|caller| Principal {
            caller,
            token: None,
        }));
    }
    let Some(bearer) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return Ok(None);
    };
    if bearer.starts_with("wharf_") {
        return match state.identity.authenticate(bearer) {
            Ok(caller) => Ok(Some(Principal {
                caller,
                token: None,
            })),
            Err(e) => Ok(auth_failed(e)?.map(|caller| Principal {
                caller,
                token: None,
            })),
        };
    }
    let verified = token::verify(&state.store, bearer)
        .map_err(|e| RegistryReply::unavailable(e.to_string()))?;
    let Some(verified) = verified else {
        return Ok(None);
    };
    match state
        .identity
        .caller_of(&verified.user_id, "registry-token")
    {
        Ok(caller) => Ok(Some(Principal {
            caller,
            token: Some(verified),
        })),
        Err(e) => Ok(auth_failed(e)?.map(|caller| Principal {
            caller,
            token: None,
        })),
    }
}

/// Whether the authorizer lets `caller` take `action` on the repository's project.
pub async fn allowed(
    state: &AppState,
    caller: &Caller,
    repo: &Repository,
    action: RepoAction,
) -> Result<bool, RegistryReply> {
    match require(
        state,
        caller,
        action.wharf_action(),
        &format!("project:{}", repo.project()),
    )
    .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.status().as_u16() == 403 => Ok(false),
        Err(e) => Err(RegistryReply::unavailable(e.detail().to_owned())),
    }
}

/// The caller of a repository request, refused unless it may take `action` on `repo`.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    source: Option<IpAddr>,
    repo: &Repository,
    action: RepoAction,
) -> Result<Principal, RegistryReply> {
    let scope = Some(format!("repository:{repo}:{}", action.scope_word()));
    let Some(principal) = authenticate(state, headers, source).await? else {
        return Err(unauthorized(headers, scope, "authentication required"));
    };
    if let Some(token) = &principal.token
        && !token.grants(repo.as_str(), action.scope_word())
    {
        // A token without this grant: the client asks for a wider one.
        return Err(unauthorized(
            headers,
            scope,
            &format!("the token does not grant {} on {repo}", action.scope_word()),
        ));
    }
    if !allowed(state, &principal.caller, repo, action).await? {
        return Err(RegistryReply::denied(format!(
            "{} may not {} {repo}",
            principal.caller.username,
            action.scope_word()
        )));
    }
    Ok(principal)
}
