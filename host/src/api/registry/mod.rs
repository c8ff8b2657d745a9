//! The OCI Distribution API under `/v2/`, as skopeo, crane, podman, containerd and the
//! kubelet speak it.
//!
//! - `mod.rs`: the routes (one catch-all, because repository names hold slashes), the
//!   version check, the token endpoint and the audit of registry mutations;
//! - `access`: credentials, the challenge, authorization per repository action;
//! - `token`: registry tokens;
//! - `blobs`: blobs and uploads; `manifests`: manifests, tags, referrers, the catalog;
//! - `errors`: the spec's error bodies.
//!
//! These routes sit outside the `/api/v1` guard because registry clients expect the
//! spec's errors and challenge rather than problem+json; they authenticate, authorize
//! through the authorizer plugin and audit (write-ahead) here instead.

pub(super) mod access;
mod blobs;
mod errors;
mod manifests;
mod token;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};

use super::AppState;
use crate::audit::{Actor, Entry, Outcome};
use crate::domain::artifacts::Repository;
use access::{Principal, RepoAction};
use errors::RegistryReply;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", any(version_check))
        .route("/v2/", any(version_check))
        .route("/v2/{*path}", any(dispatch))
}

/// A header value from text the registry made itself (digests, locations, ranges).
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The serving artifact policy, as pushes and deletes consult it.
fn gate(state: &AppState) -> crate::domain::artifacts::policy::PolicyGate {
    crate::domain::artifacts::policy::PolicyGate {
        runtime: state.runtime.clone(),
        registry: state.registry.clone(),
    }
}

/// The authorizer's target for a repository.
fn target(repo: &Repository) -> String {
    format!("project:{}/repository:{}", repo.project(), repo)
}

/// What a request needs besides its path and body: method, headers, query, source.
pub struct Call {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub source: Option<IpAddr>,
}

impl Call {
    fn from_request(request: Request) -> (Call, Body) {
        let source = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let query = request
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let (parts, body) = request.into_parts();
        let call = Call {
            method: parts.method,
            headers: parts.headers,
            query,
            source,
        };
        (call, body)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where the call came from, for its audit record (kept once the body is taken).
    pub fn origin(&self) -> Origin {
        Origin {
            request_id: self.header("x-request-id").map(str::to_owned),
            source: self.source,
        }
    }
}

/// The request id and source address an audit record keeps.
pub struct Origin {
    request_id: Option<String>,
    source: Option<IpAddr>,
}

/// `GET /v2/`: 200 to an authenticated caller, else the challenge.
async fn version_check(State(state): State<AppState>, request: Request) -> Response {
    let (call, _) = Call::from_request(request);
    let answer = match access::authenticate(&state, &call.headers, call.source).await {
        Ok(Some(_)) => with_api_version((StatusCode::OK, axum::Json(json!({}))).into_response()),
        Ok(None) => RegistryReply::unauthorized(
            access::challenge(&call.headers, None),
            "authentication required",
        )
        .into_response(),
        Err(reply) => reply.into_response(),
    };
    answer
}

/// A registry path, parsed.
#[derive(Debug, PartialEq)]
enum Route {
    Token,
    Catalog,
    Tags(String),
    Manifest(String, String),
    UploadStart(String),
    Upload(String, String),
    Blob(String, String),
    Referrers(String, String),
}

impl Route {
    fn repository(&self) -> Option<&str> {
        match self {
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Blob(n, _)
            | Route::Referrers(n, _) => Some(n),
            Route::Token | Route::Catalog => None,
        }
    }
}

fn parse(path: &str) -> Option<Route> {
    match path {
        "token" => return Some(Route::Token),
        "_catalog" => return Some(Route::Catalog),
        _ => {}
    }
    if let Some(name) = path
        .strip_suffix("/blobs/uploads/")
        .or_else(|| path.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart(name.to_owned()));
    }
    if let Some(name) = path.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_owned()));
    }
    let split = |marker: &str| {
        path.rsplit_once(marker)
            .filter(|(name, rest)| !name.is_empty() && !rest.is_empty() && !rest.contains('/'))
            .map(|(name, rest)| (name.to_owned(), rest.to_owned()))
    };
    if let Some((name, id)) = split("/blobs/uploads/") {
        return Some(Route::Upload(name, id));
    }
    if let Some((name, reference)) = split("/manifests/") {
        return Some(Route::Manifest(name, reference));
    }
    if let Some((name, digest)) = split("/blobs/") {
        return Some(Route::Blob(name, digest));
    }
    if let Some((name, digest)) = split("/referrers/") {
        return Some(Route::Referrers(name, digest));
    }
    None
}

async fn dispatch(
    State(state): State<AppState>,
    axum::extract::Path(path): axum::extract::Path<String>,
    request: Request,
) -> Response {
    let (call, body) = Call::from_request(request);
    let answer = match parse(&path) {
        None => Err(RegistryReply::not_found(format!(
            "no registry route `/v2/{path}`"
        ))),
        Some(Route::Token) => issue_token(&state, &call).await,
        Some(Route::Catalog) => manifests::catalog(&state, &call).await,
        Some(route) => repository_route(&state, route, &call, body).await,
    };
    match answer {
        Ok(response) => with_api_version(response),
        Err(reply) => reply.into_response(),
    }
}

async fn repository_route(
    state: &AppState,
    route: Route,
    call: &Call,
    body: Body,
) -> Result<Response, RegistryReply> {
    let Some(name) = route.repository() else {
        return Err(RegistryReply::not_found("not a repository path"));
    };
    let repo = Repository::parse(name)?;
    let method = call.method.clone();
    match (route, method) {
        (Route::Tags(_), Method::GET) => manifests::tags(state, &repo, call).await,
        (Route::Manifest(_, r), Method::GET | Method::HEAD) => {
            manifests::get(state, &repo, &r, call).await
        }
        (Route::Manifest(_, r), Method::PUT) => manifests::put(state, &repo, &r, call, body).await,
        (Route::Manifest(_, r), Method::DELETE) => manifests::delete(state, &repo, &r, call).await,
        (Route::Referrers(_, d), Method::GET) => manifests::referrers(state, &repo, &d, call).await,
        (Route::Blob(_, d), Method::GET | Method::HEAD) => blobs::get(state, &repo, &d, call).await,
        (Route::Blob(_, d), Method::DELETE) => blobs::delete(state, &repo, &d, call).await,
        (Route::UploadStart(_), Method::POST) => blobs::start(state, &repo, call, body).await,
        (Route::Upload(_, id), Method::GET) => blobs::status(state, &repo, &id, call).await,
        (Route::Upload(_, id), Method::PATCH) => blobs::patch(state, &repo, &id, call, body).await,
        (Route::Upload(_, id), Method::PUT) => blobs::finish(state, &repo, &id, call, body).await,
        (Route::Upload(_, id), Method::DELETE) => blobs::cancel(state, &repo, &id, call).await,
        (_, method) => Err(RegistryReply::unsupported(format!(
            "this registry path does not take {method}"
        ))),
    }
}

fn with_api_version(mut response: Response) -> Response {
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// `GET /v2/token?service=…&scope=…`: a registry token for what the caller may do of
/// what it asked. Without credentials, the answer is a challenge (no anonymous pulls yet).
async fn issue_token(state: &AppState, call: &Call) -> Result<Response, RegistryReply> {
    // A registry token is not a credential for another one: it could widen itself.
    let principal = access::authenticate(state, &call.headers, call.source)
        .await?
        .filter(|p| p.token.is_none());
    let Some(principal) = principal else {
        return Err(RegistryReply::unauthorized(
            access::challenge(&call.headers, None),
            "the token endpoint needs a username and password or personal token",
        ));
    };
    let scopes: Vec<&str> = call
        .query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.len() > token::MAX_SCOPES {
        return Err(RegistryReply::new(
            StatusCode::BAD_REQUEST,
            "DENIED",
            format!(
                "scope: at most {} repositories per token",
                token::MAX_SCOPES
            ),
        ));
    }
    let mut grants = Vec::new();
    for scope in scopes {
        let Some((name, actions)) = token::parse_scope(scope) else {
            continue;
        };
        let Ok(repo) = Repository::parse(&name) else {
            continue;
        };
        let wanted: Vec<RepoAction> = if actions.iter().any(|a| a == "*") {
            vec![RepoAction::Pull, RepoAction::Push, RepoAction::Delete]
        } else {
            actions
                .iter()
                .filter_map(|a| RepoAction::from_scope_word(a))
                .collect()
        };
        let mut granted = Vec::new();
        for action in wanted {
            if access::allowed(state, &principal.caller, &repo, action).await? {
                granted.push(action.scope_word().to_owned());
            }
        }
        grants.push(token::Grant {
            name: repo.to_string(),
            actions: granted,
        });
    }
    let target = grants
        .iter()
        .map(|g| format!("repository:{}", g.name))
        .collect::<Vec<_>>()
        .join(",");
    let after = json!({"access": grants});
    let token = audited(
        state,
        &principal,
        "artifact.token",
        if target.is_empty() {
            "registry"
        } else {
            &target
        },
        &call.origin(),
        async {
            let token = token::issue(&state.store, &principal.caller.user_id, grants.clone())
                .map_err(|e| RegistryReply::unavailable(e.to_string()))?;
            Ok((token, after))
        },
    )
    .await?;
    let issued_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(axum::Json(json!({
        "token": token, "access_token": token,
        "expires_in": token::TOKEN_SECONDS, "issued_at": issued_at,
    }))
    .into_response())
}

/// Runs a registry mutation with its audit record written ahead of it and completed with
/// how it ended (`work` returns its result and what the record keeps as `after`).
pub async fn audited<T>(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: &str,
    origin: &Origin,
    work: impl std::future::Future<Output = Result<(T, Value), RegistryReply>>,
) -> Result<T, RegistryReply> {
    let mut entry = Entry::new(
        Actor::user(&principal.caller.user_id, &principal.caller.username),
        action,
        target,
        Outcome::Ok,
    );
    entry.request_id = origin.request_id.clone();
    entry.source_address = origin.source.map(|s| s.to_string());
    let intent =
        state.audit.begin(entry.clone()).await.map_err(|e| {
            RegistryReply::unavailable(format!("the audit log is unavailable: {e}"))
        })?;
    let result = work.await;
    match &result {
        Ok((_, after)) => entry.after = Some(after.clone()),
        Err(reply) => {
            entry.outcome = if reply.status().as_u16() == 403 {
                Outcome::Denied
            } else {
                Outcome::Error
            };
            entry.error_code = Some(reply.code().to_owned());
        }
    }
    state.audit.complete(intent, entry).await.map_err(|e| {
        RegistryReply::unavailable(format!("the audit record could not be completed: {e}"))
    })?;
    result.map(|(value, _)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_repository_whatever_its_depth() {
        assert_eq!(parse("token"), Some(Route::Token));
        assert_eq!(
            parse("shop/web/tags/list"),
            Some(Route::Tags("shop/web".into()))
        );
        assert_eq!(
            parse("shop/team/web/manifests/v1"),
            Some(Route::Manifest("shop/team/web".into(), "v1".into()))
        );
        assert_eq!(
            parse("shop/web/blobs/uploads/"),
            Some(Route::UploadStart("shop/web".into()))
        );
        assert_eq!(
            parse("shop/blobs/blobs/uploads/abc"),
            Some(Route::Upload("shop/blobs".into(), "abc".into()))
        );
        assert_eq!(
            parse("shop/web/blobs/sha256:1"),
            Some(Route::Blob("shop/web".into(), "sha256:1".into()))
        );
        assert_eq!(
            parse("shop/web/referrers/sha256:1"),
            Some(Route::Referrers("shop/web".into(), "sha256:1".into()))
        );
        assert_eq!(parse("shop/web/other"), None);
        assert_eq!(parse("/manifests/v1"), None);
    }
}
