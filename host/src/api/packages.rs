//! Generic packages of a project (`/api/v1/projects/{code}/packages`): upload (the raw
//! body, streamed, its metadata in the query), list (by app, app group and name, paged),
//! detail, download (streamed, with its sha256 in `X-Checksum-Sha256`), delete.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::query;
use super::error::{ApiError, Problem};
use super::extract::{Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::artifacts::packages::{
    NewPackage, Package, PackageError, PackageFilter, Packages,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(get, delete))
        .routes(routes!(download))
}

/// The packages of a host: records in the store, bytes in the registry's blob files.
pub fn packages(state: &AppState) -> Packages {
    Packages::new(state.store.clone(), state.registry.blob_files().clone())
}

impl From<PackageError> for ApiError {
    fn from(e: PackageError) -> Self {
        let detail = e.to_string();
        match e {
            PackageError::Invalid { field, message } => ApiError::invalid(field, message),
            PackageError::ProjectNotFound(_) => ApiError::not_found("project-not-found", detail),
            PackageError::NotFound(_) => ApiError::not_found("package-not-found", detail),
            PackageError::VersionExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "package-version-exists", detail)
                    .field("version")
            }
            PackageError::DigestMismatch { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "digest-mismatch", detail)
                    .field("sha256")
            }
            PackageError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "package-too-large", detail)
            }
            PackageError::Interrupted(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "upload-interrupted", detail)
            }
            PackageError::Storage(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "package-storage-failed",
                detail,
            ),
            PackageError::Store(s) => s.into(),
        }
    }
}

fn audited(package: &Package, before: bool) -> Extension<AuditDetail> {
    let view = serde_json::to_value(package).unwrap_or_default();
    Extension(AuditDetail {
        target: Some(format!(
            "project:{}/package:{}",
            package.project, package.id
        )),
        before: before.then(|| view.clone()),
        after: (!before).then_some(view),
        ..AuditDetail::default()
    })
}

/// Whether a query flag is set (`true`/`1`); anything else but `false`/`0` is refused.
fn flag(parts: &Parts, name: &str) -> Result<bool, ApiError> {
    match query(parts, name).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            name,
            format!("`{other}` is not true or false"),
        )),
    }
}

/// The packages of a project, newest first, optionally of one `app`, one `appGroup` and
/// whose name contains `name`.
#[utoipa::path(get, path = "/api/v1/projects/{code}/packages", tag = "artifacts",
    security(("bearer" = [])),
    params(("code" = String, Path), ("app" = Option<String>, Query), ("appGroup" = Option<String>, Query),
        ("name" = Option<String>, Query), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Package>), (status = 404, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Path(code): Path<String>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<Package>>, ApiError> {
    let filter = PackageFilter {
        app: query(&parts, "app"),
        app_group: query(&parts, "appGroup"),
        name: query(&parts, "name"),
    };
    Ok(axum::Json(
        paging.apply(packages(&state).list(&code, &filter)?),
    ))
}

/// Uploads a package: the body is the file (streamed to storage, never held whole), the
/// query its metadata. `name`, `version` and `type` (jar, war, zip, tar.gz, rpm) are
/// required; `source` defaults to USER_UPLOAD; with `sha256` the content must match it.
/// A version is uploaded once per name and type.
#[utoipa::path(post, path = "/api/v1/projects/{code}/packages", tag = "artifacts",
    security(("bearer" = [])),
    params(("code" = String, Path), ("name" = String, Query), ("version" = String, Query),
        ("type" = String, Query), ("source" = Option<String>, Query), ("branch" = Option<String>, Query),
        ("official" = Option<bool>, Query), ("app" = Option<String>, Query),
        ("appGroup" = Option<String>, Query), ("sha256" = Option<String>, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Package), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    request: Request,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Package>), ApiError> {
    let (parts, body) = request.into_parts();
    let new = NewPackage {
        name: query(&parts, "name").unwrap_or_default(),
        version: query(&parts, "version").unwrap_or_default(),
        package_type: query(&parts, "type"),
        source: query(&parts, "source"),
        branch: query(&parts, "branch"),
        official: flag(&parts, "official")?,
        app: query(&parts, "app"),
        app_group: query(&parts, "appGroup"),
        sha256: query(&parts, "sha256"),
    };
    let packages = packages(&state);
    let checked = packages.check(&code, new)?;
    let package = packages
        .upload(checked, body.into_data_stream(), &caller.username)
        .await?;
    let detail = audited(&package, false);
    Ok((StatusCode::CREATED, detail, axum::Json(package)))
}

/// One package.
#[utoipa::path(get, path = "/api/v1/projects/{code}/packages/{id}", tag = "artifacts",
    security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Package), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, id)): Path<(String, String)>,
) -> Result<axum::Json<Package>, ApiError> {
    Ok(axum::Json(packages(&state).get(&code, &id)?))
}

/// The content of a package, streamed, saved as `<name>-<version>.<type>`.
#[utoipa::path(get, path = "/api/v1/projects/{code}/packages/{id}/content", tag = "artifacts",
    security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = Problem)))]
async fn download(
    State(state): State<AppState>,
    Path((code, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let packages = packages(&state);
    let package = packages.get(&code, &id)?;
    content(&packages, &package).await
}

/// A package's bytes as a download response.
pub async fn content(packages: &Packages, package: &Package) -> Result<Response, ApiError> {
    let stream = packages.content(package).await?;
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(package.package_type.media_type()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(package.size));
    // Names are letters, digits, `.`, `_`, `-` and `+` (checked at upload): no quoting
    // issue and no path.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", package.file_name()))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&package.sha256) {
        headers.insert("x-checksum-sha256", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", package.sha256)) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

/// Deletes a package's record (its bytes stay in the shared blob storage).
#[utoipa::path(delete, path = "/api/v1/projects/{code}/packages/{id}", tag = "artifacts",
    security(("bearer" = [])),
    params(("code" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path((code, id)): Path<(String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let package = packages(&state).delete(&code, &id).await?;
    Ok((audited(&package, true), StatusCode::NO_CONTENT))
}
