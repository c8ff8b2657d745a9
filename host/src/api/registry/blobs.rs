//! Blobs and uploads: `HEAD|GET|DELETE /v2/<name>/blobs/<digest>` (GET with `Range`),
//! `POST /v2/<name>/blobs/uploads/` (a session, a monolithic upload with `?digest=`, or a
//! cross-repository mount with `?mount=&from=`), and `GET|PATCH|PUT|DELETE` on an upload.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::access::{self, RepoAction};
use super::errors::RegistryReply;
use super::{Call, audited, header_value, target};
use crate::api::AppState;
use crate::domain::artifacts::registry::UploadState;
use crate::domain::artifacts::{Digest, Repository};

fn digest_param(text: &str) -> Result<Digest, RegistryReply> {
    Digest::parse(text).map_err(|e| crate::domain::artifacts::RegistryError::from(e).into())
}

/// A `Range: bytes=<start>-[<end>]` of a blob of `size` bytes, as (start, len).
fn byte_range(text: &str, size: u64) -> Option<(u64, u64)> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(size.saturating_sub(1)),
        ),
    };
    (start <= end && start < size).then_some((start, end - start + 1))
}

pub async fn get(
    state: &AppState,
    repo: &Repository,
    digest: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Pull).await?;
    let digest = digest_param(digest)?;
    let registry = &state.registry;
    let size = registry
        .blob_size(repo, &digest)
        .await?
        .ok_or_else(|| crate::domain::artifacts::RegistryError::BlobUnknown(digest.to_string()))?;
    let (status, start, len) = match call.header("range") {
        Some(range) => match byte_range(range, size) {
            Some((start, len)) => (StatusCode::PARTIAL_CONTENT, start, len),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(
                        header::CONTENT_RANGE,
                        header_value(&format!("bytes */{size}")),
                    )],
                )
                    .into_response());
            }
        },
        None => (StatusCode::OK, 0, size),
    };
    let body = if call.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(registry.read_blob(repo, &digest, start, len).await?)
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("docker-content-digest", header_value(digest.as_str()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{}/{size}", start + len - 1)),
        );
    }
    Ok(response)
}

pub async fn delete(
    state: &AppState,
    repo: &Repository,
    digest: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    let principal =
        access::authorize(state, &call.headers, call.source, repo, RepoAction::Delete).await?;
    let digest = digest_param(digest)?;
    audited(
        state,
        &principal,
        "artifact.delete",
        &target(repo),
        &call.origin(),
        async {
            state.registry.delete_blob(repo, &digest)?;
            Ok((
                (),
                json!({"repository": repo.as_str(), "blob": digest.as_str()}),
            ))
        },
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// 202 with where the upload continues and how much it holds.
fn upload_response(status: StatusCode, repo: &Repository, upload: UploadState) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/blobs/uploads/{}", upload.id)),
    );
    headers.insert(
        header::RANGE,
        header_value(&format!("0-{}", upload.size.saturating_sub(1))),
    );
    headers.insert("docker-upload-uuid", header_value(&upload.id.to_string()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// 201 for a blob now in the repository.
fn created(repo: &Repository, digest: &Digest) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/blobs/{digest}")),
    );
    headers.insert("docker-content-digest", header_value(digest.as_str()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

pub async fn start(
    state: &AppState,
    repo: &Repository,
    call: &Call,
    body: Body,
) -> Result<Response, RegistryReply> {
    let principal =
        access::authorize(state, &call.headers, call.source, repo, RepoAction::Push).await?;
    let registry = &state.registry;
    if let Some(mount) = call.query("mount") {
        let digest = digest_param(mount)?;
        // Mounting reads `from`: the caller must be able to pull it.
        // An unreadable `from` is not mountable: the client uploads instead.
        let from = call.query("from").and_then(|f| Repository::parse(f).ok());
        let token_may_pull = |from: &Repository| {
            principal
                .token
                .as_ref()
                .is_none_or(|t| t.grants(from.as_str(), RepoAction::Pull.scope_word()))
        };
        if let Some(from) = from
            && token_may_pull(&from)
            && access::allowed(state, &principal.caller, &from, RepoAction::Pull).await?
        {
            let mounted = audited(state, &principal, "artifact.push", &target(repo), &call.origin(), async {
                let size = registry.mount(repo, &from, &digest).await?;
                Ok((size, json!({"repository": repo.as_str(), "blob": digest.as_str(), "mountedFrom": from.as_str()})))
            })
            .await?;
            if mounted.is_some() {
                return Ok(created(repo, &digest));
            }
        }
        // Not mountable: a plain upload session, as the spec says.
    }
    let upload = registry
        .start_upload(repo, &principal.caller.username)
        .await?;
    if let Some(digest) = call.query("digest") {
        let digest = digest_param(digest)?;
        let origin = call.origin();
        let body = body.into_data_stream();
        let id = upload.id.to_string();
        audited(
            state,
            &principal,
            "artifact.push",
            &target(repo),
            &origin,
            async {
                let size = registry.finish_upload(repo, &id, &digest, body).await?;
                Ok((
                    (),
                    json!({"repository": repo.as_str(), "blob": digest.as_str(), "size": size}),
                ))
            },
        )
        .await?;
        return Ok(created(repo, &digest));
    }
    Ok(upload_response(StatusCode::ACCEPTED, repo, upload))
}

pub async fn status(
    state: &AppState,
    repo: &Repository,
    id: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Push).await?;
    let upload = state.registry.upload_status(repo, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, repo, upload))
}

/// Where a chunk says it starts: `Content-Range: <start>-<end>` (with or without the
/// `bytes ` unit registries also accept).
fn chunk_start(call: &Call) -> Result<Option<u64>, RegistryReply> {
    let Some(range) = call.header("content-range") else {
        return Ok(None);
    };
    let range = range
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let start = range
        .split_once('-')
        .and_then(|(start, _)| start.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            RegistryReply::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("Content-Range: `{range}` is not `<start>-<end>`"),
            )
        })?;
    Ok(Some(start))
}

pub async fn patch(
    state: &AppState,
    repo: &Repository,
    id: &str,
    call: &Call,
    body: Body,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Push).await?;
    let start = chunk_start(call)?;
    let upload = state
        .registry
        .append(repo, id, start, body.into_data_stream())
        .await?;
    Ok(upload_response(StatusCode::ACCEPTED, repo, upload))
}

pub async fn finish(
    state: &AppState,
    repo: &Repository,
    id: &str,
    call: &Call,
    body: Body,
) -> Result<Response, RegistryReply> {
    let principal =
        access::authorize(state, &call.headers, call.source, repo, RepoAction::Push).await?;
    let digest = call
        .query("digest")
        .ok_or_else(|| {
            RegistryReply::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "digest: closing an upload names the blob's digest",
            )
        })
        .and_then(digest_param)?;
    if let Some(start) = chunk_start(call)? {
        let size = state.registry.upload_status(repo, id).await?.size;
        if start != size {
            return Err(RegistryReply::range(
                format!(
                    "the upload is {size} bytes long; the last chunk must start at {size}, not {start}"
                ),
                size,
            ));
        }
    }
    let origin = call.origin();
    let body = body.into_data_stream();
    audited(
        state,
        &principal,
        "artifact.push",
        &target(repo),
        &origin,
        async {
            let size = state
                .registry
                .finish_upload(repo, id, &digest, body)
                .await?;
            Ok((
                (),
                json!({"repository": repo.as_str(), "blob": digest.as_str(), "size": size}),
            ))
        },
    )
    .await?;
    Ok(created(repo, &digest))
}

pub async fn cancel(
    state: &AppState,
    repo: &Repository,
    id: &str,
    call: &Call,
) -> Result<Response, RegistryReply> {
    access::authorize(state, &call.headers, call.source, repo, RepoAction::Push).await?;
    state.registry.cancel_upload(repo, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_http_writes_them() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 10)));
        assert_eq!(byte_range("bytes=-5", 100), Some((95, 5)));
        assert_eq!(byte_range("bytes=95-200", 100), Some((95, 5)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("bytes=5-1", 100), None);
        assert_eq!(byte_range("bytes=0-1,3-4", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
    }
}
