//! Manifests (`HEAD|GET|PUT|DELETE /v2/<name>/manifests/<reference>`), tags
//! (`GET /v2/<name>/tags/list?n=&last=`), referrers (`GET /v2/<name>/referrers/<digest>`)
//! and the catalog (`GET /v2/_catalog`, admins only).

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::json;

use super::access::{self, RepoAction};
use super::errors::RegistryReply;
use super::{Call, audited, gate, header_value, target};
use crate::api::AppState;
use crate::domain::artifacts::manifests::{MAX_MANIFEST_BYTES, OCI_INDEX};
use crate::domain::artifacts::{Digest, Reference, RegistryError, Repository};

/// The most entries one page of tags or repositories holds.
const MAX_PAGE: usize = 1000;

/// `n` and `last` of a paged list.
fn paging(call: &Call) -> Result<(usize, Option<String>), RegistryReply> {
    let n = match call.query("n") {
        None => MAX_PAGE,
        Some(text) => text.parse::<usize>().map_err(|_| {
            RegistryReply::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("n: `{text}` is not a number"),
            )
        })?,
    };
    Ok((n.min(MAX_PAGE), call.query("last").map(str::to_owned)))
}

/// The `Link` header of a page that has a next one.
fn next_link(path: &str, n: usize, last: Option<&String>) -> Option<HeaderValue> {
    let last = last?;
    let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
    HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\"")).ok()
}

pub async fn get(
    state: &AppState,
    repo: &Repository,
    reference: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Pull).await?;
    let reference = Reference::parse(reference)?;
    let (record, body) = if call.method == Method::HEAD {
        (state.registry.manifest_info(repo, &reference)?, None)
    } else {
        let manifest = state.registry.manifest(repo, &reference).await?;
        (manifest.record, Some(manifest.bytes))
    };
    let mut response = match body {
        Some(bytes) => (StatusCode::OK, bytes).into_response(),
        None => StatusCode::OK.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header_value(&record.media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(record.size));
    headers.insert("docker-content-digest", header_value(&record.digest));
    headers.insert(
        header::ETAG,
        header_value(&format!("\"{}\"", record.digest)),
    );
    Ok(response)
}

pub async fn put(
    state: &AppState,
    repo: &Repository,
    reference: &str,
    call: &Call,
    body: axum::body::Body,
) -> Result<Response, RegistryReply> {
    let principal =
        access::authorize(state, &call.headers, call.source, repo, RepoAction::Push).await?;
    let reference = Reference::parse(reference)?;
    let origin = call.origin();
    let content_type = call.header("content-type").map(str::to_owned);
    let mut body = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| RegistryError::ManifestInvalid(format!("reading it: {e}")))?;
        if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::SizeInvalid(format!(
                "a manifest is at most {MAX_MANIFEST_BYTES} bytes"
            ))
            .into());
        }
        bytes.extend_from_slice(&chunk);
    }
    let tag = match &reference {
        Reference::Tag(tag) => Some(tag.clone()),
        Reference::Digest(_) => None,
    };
    let (digest, subject) = audited(
        state,
        &principal,
        "artifact.push",
        &target(repo),
        &origin,
        async {
            let (digest, subject) = state
                .registry
                .put_manifest(
                    repo,
                    &reference,
                    bytes.into(),
                    content_type.as_deref(),
                    &principal.caller.username,
                    &gate(state),
                )
                .await?;
            let after =
                json!({"repository": repo.as_str(), "manifest": digest.as_str(), "tag": tag});
            Ok(((digest, subject), after))
        },
    )
    .await?;
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/manifests/{digest}")),
    );
    headers.insert("docker-content-digest", header_value(digest.as_str()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    if let Some(subject) = subject {
        headers.insert("oci-subject", header_value(&subject));
    }
    Ok(response)
}

pub async fn delete(
    state: &AppState,
    repo: &Repository,
    reference: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    let principal =
        access::authorize(state, &call.headers, call.source, repo, RepoAction::Delete).await?;
    let reference = Reference::parse(reference)?;
    let named = match &reference {
        Reference::Tag(tag) => json!({"tag": tag}),
        Reference::Digest(digest) => json!({"manifest": digest.as_str()}),
    };
    audited(
        state,
        &principal,
        "artifact.delete",
        &target(repo),
        &call.origin(),
        async {
            state
                .registry
                .delete_manifest(repo, &reference, &gate(state))
                .await?;
            Ok(((), json!({"repository": repo.as_str(), "deleted": named})))
        },
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn tags(
    state: &AppState,
    repo: &Repository,
    call: &Call,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Pull).await?;
    let (n, last) = paging(call)?;
    let (tags, more) = state.registry.tags(repo, n, last.as_deref())?;
    let link = more
        .then(|| next_link(&format!("/v2/{repo}/tags/list"), n, tags.last()))
        .flatten();
    let mut response = axum::Json(json!({"name": repo.as_str(), "tags": tags})).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

pub async fn referrers(
    state: &AppState,
    repo: &Repository,
    digest: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Pull).await?;
    let digest = Digest::parse(digest).map_err(RegistryError::from)?;
    let artifact_type = call.query("artifactType");
    let found = state.registry.referrers(repo, &digest, artifact_type)?;
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found});
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))],
        body.to_string(),
    )
        .into_response();
    if artifact_type.is_some() {
        response.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}

/// Every repository, for administrators: it crosses projects.
pub async fn catalog(state: &AppState, call: &Call) -> Result<Response, RegistryReply> {
    let Some(principal) = access::authenticate(state, &call.headers, call.source).await? else {
        return Err(RegistryReply::unauthorized(
            access::challenge(&call.headers, Some("registry:catalog:*".into())),
            "authentication required",
        ));
    };
    if !principal.caller.is_admin
        || principal.token.is_some()
        || !principal
            .caller
            .token_allows(RepoAction::Pull.wharf_action())
    {
        return Err(RegistryReply::denied(
            "the catalog lists every project's repositories; it is for administrators (with basic auth or a Wharf token)",
        ));
    }
    let (n, last) = paging(call)?;
    let (names, more) = state.registry.catalog(n, last.as_deref())?;
    let link = more
        .then(|| next_link("/v2/_catalog", n, names.last()))
        .flatten();
    let mut response = axum::Json(json!({"repositories": names})).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}
