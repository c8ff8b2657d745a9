//! Seed 001 §5.7's artifact routes under `/v1/product/…` with the seed's field names and
//! envelope: generic packages (`getPackage`, `listPackagesPage`, `downloadPackage`, the
//! file itself on success) and the images of the registry (`getImage`,
//! `listImagesPage`). They name an artifact by id alone, so each handler finds it first
//! and then asks the authorizer as the route table does for the project's own routes.
//! `projectId` is the project's code, `appId` an app's id, `appGroupId` a group's id.
//!
//! An image is a tag of a repository: its `imageId` is `<repository>:<tag>` and its
//! `imageUrl` the reference to pull (this registry's host first). An image belongs to
//! the app its repository is named after: `<project>/<app>` or `<project>/<app>/…`.

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::query;
use super::error::ApiError;
use super::guard::require;
use super::packages::{content, packages};
use super::registry::access::registry_host;
use super::seed_envelope::{SeedPaging, answer, refused, required_query, seed_time};
use crate::auth::Caller;
use crate::domain::artifacts::packages::{Package, PackageFilter};
use crate::domain::artifacts::registry::TaggedImage;
use crate::domain::artifacts::{RegistryError, Repository};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_package))
        .routes(routes!(list_packages))
        .routes(routes!(download_package))
        .routes(routes!(get_image))
        .routes(routes!(list_images))
}

/// A package in the seed's terms; `updateTime` is `createTime` (a package never changes).
fn package_view(package: &Package, detail: bool) -> Value {
    let mut view = json!({
        "packageId": package.id,
        "packageName": package.name,
        "packageVer": package.version,
        "packageType": package.package_type.extension(),
        "packageSource": package.source,
        "branchName": package.branch,
        "isOfficial": package.official,
        "createStaff": package.created_by,
        "createTime": seed_time(Some(package.created_at)),
    });
    if detail {
        view["packageSize"] = json!(package.size);
        view["sha256"] = json!(package.sha256);
        view["updateStaff"] = json!(package.created_by);
        view["updateTime"] = seed_time(Some(package.created_at));
    }
    view
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(s) => s.into(),
            RegistryError::NameInvalid(m)
            | RegistryError::TagInvalid(m)
            | RegistryError::DigestInvalid(m) => ApiError::invalid("imageId", m),
            other => ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "registry-failed",
                other.to_string(),
            ),
        }
    }
}

/// The name of the app `id` names, which must be in `project`.
fn app_in(state: &AppState, project: &str, id: &str) -> Result<String, ApiError> {
    match crate::domain::apps::locate(&state.store, id)? {
        Some((p, name)) if p == project => Ok(name),
        _ => Err(ApiError::invalid(
            "appId",
            format!("app `{id}` is not in project `{project}`"),
        )),
    }
}

/// The `projectId` of a seed list, once the caller may read its artifacts, and the
/// list's paging.
async fn readable_project(
    state: &AppState,
    caller: &Caller,
    parts: &Parts,
) -> Result<(String, SeedPaging), ApiError> {
    let project = required_query(parts, "projectId")?;
    require(
        state,
        caller,
        "artifact.read",
        &format!("project:{project}"),
    )
    .await?;
    Ok((project, SeedPaging::read(parts)?))
}

/// The package `packageId` names, once the caller may read it.
async fn readable(state: &AppState, caller: &Caller, parts: &Parts) -> Result<Package, ApiError> {
    let id = required_query(parts, "packageId")?;
    let package = packages(state).find(&id)?;
    require(
        state,
        caller,
        "artifact.read",
        &format!("project:{}/package:{}", package.project, package.id),
    )
    .await?;
    Ok(package)
}

/// A generic package (seed 001 §5.7.3).
#[utoipa::path(get, path = "/v1/product/getPackage", tag = "artifacts", security(("bearer" = [])),
    params(("packageId" = String, Query)), responses((status = 200, body = Object)))]
async fn get_package(State(state): State<AppState>, caller: Caller, parts: Parts) -> Response {
    answer(
        readable(&state, &caller, &parts)
            .await
            .map(|p| package_view(&p, true)),
    )
}

/// The file of a generic package (seed 001 §5.7.1); an envelope only on refusal.
#[utoipa::path(get, path = "/v1/product/downloadPackage", tag = "artifacts", security(("bearer" = [])),
    params(("packageId" = String, Query)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
async fn download_package(State(state): State<AppState>, caller: Caller, parts: Parts) -> Response {
    let found = async {
        let package = readable(&state, &caller, &parts).await?;
        content(&packages(&state), &package).await
    }
    .await;
    found.unwrap_or_else(refused)
}

/// A page of a project's generic packages (seed 001 §5.7.5), by app group, app and name.
#[utoipa::path(get, path = "/v1/product/listPackagesPage", tag = "artifacts", security(("bearer" = [])),
    params(("projectId" = String, Query), ("appGroupId" = Option<String>, Query), ("appId" = Option<String>, Query),
        ("packageName" = Option<String>, Query), ("pageNum" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Object)))]
async fn list_packages(State(state): State<AppState>, caller: Caller, parts: Parts) -> Response {
    answer(
        async {
            let (project, paging) = readable_project(&state, &caller, &parts).await?;
            let app = match query(&parts, "appId") {
                None => None,
                Some(id) => Some(app_in(&state, &project, &id)?),
            };
            let filter = PackageFilter {
                app,
                app_group: query(&parts, "appGroupId"),
                name: query(&parts, "packageName"),
            };
            let found = packages(&state).list(&project, &filter)?;
            paging.page(&found, |p| Ok(package_view(p, false)))
        }
        .await,
    )
}

/// The app an image's repository is named after (`shop/orders/api` → `orders`).
fn image_app(repository: &str) -> Option<&str> {
    repository.split('/').nth(1)
}

fn image_view(host: &str, image: &TaggedImage, detail: bool) -> Value {
    let mut view = json!({
        "imageId": format!("{}:{}", image.repository, image.tag),
        "imageName": image.repository,
        "imageVer": image.tag,
        "imageUrl": format!("{host}/{}:{}", image.repository, image.tag),
        "digest": image.manifest.digest,
        "size": image.size,
        "createStaff": image.manifest.pushed_by,
        "createTime": seed_time(Some(image.tagged_at)),
    });
    if detail {
        view["mediaType"] = json!(image.manifest.media_type);
        view["updateStaff"] = json!(image.manifest.pushed_by);
        view["updateTime"] = seed_time(Some(image.tagged_at));
    }
    view
}

/// A Docker image (seed 001 §5.7.2): `imageId` is `<repository>:<tag>`.
#[utoipa::path(get, path = "/v1/product/getImage", tag = "artifacts", security(("bearer" = [])),
    params(("imageId" = String, Query)), responses((status = 200, body = Object)))]
async fn get_image(State(state): State<AppState>, caller: Caller, parts: Parts) -> Response {
    answer(
        async {
            let id = required_query(&parts, "imageId")?;
            let unknown =
                || ApiError::not_found("image-not-found", format!("image `{id}` does not exist"));
            let (repository, tag) = id.rsplit_once(':').ok_or_else(unknown)?;
            let repository = Repository::parse(repository).map_err(|_| unknown())?;
            require(
                &state,
                &caller,
                "artifact.read",
                &format!("project:{}", repository.project()),
            )
            .await?;
            let image = state
                .registry
                .tagged_images(repository.project())?
                .into_iter()
                .find(|i| i.repository == repository.as_str() && i.tag == tag)
                .ok_or_else(unknown)?;
            Ok(image_view(registry_host(&parts.headers), &image, true))
        }
        .await,
    )
}

/// A page of a project's Docker images (seed 001 §5.7.4), by app group, app and name.
#[utoipa::path(get, path = "/v1/product/listImagesPage", tag = "artifacts", security(("bearer" = [])),
    params(("projectId" = String, Query), ("appGroupId" = Option<String>, Query), ("appId" = Option<String>, Query),
        ("imageName" = Option<String>, Query), ("pageNum" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Object)))]
async fn list_images(State(state): State<AppState>, caller: Caller, parts: Parts) -> Response {
    answer(
        async {
            let (project, paging) = readable_project(&state, &caller, &parts).await?;
            state.projects.get(&project)?;
            let app = match query(&parts, "appId") {
                None => None,
                Some(id) => Some(app_in(&state, &project, &id)?),
            };
            let group_apps: Option<Vec<String>> = match query(&parts, "appGroupId") {
                None => None,
                Some(group) => Some(
                    crate::domain::apps::Apps::new(state.store.clone(), state.projects.clone())
                        .list(
                            &project,
                            &crate::domain::apps::AppFilter {
                                group: Some(group),
                                ..Default::default()
                            },
                        )?
                        .into_iter()
                        .map(|a| a.name)
                        .collect(),
                ),
            };
            let needle = query(&parts, "imageName").map(|n| n.to_lowercase());
            let found: Vec<TaggedImage> = state
                .registry
                .tagged_images(&project)?
                .into_iter()
                .filter(|i| {
                    app.as_deref()
                        .is_none_or(|a| image_app(&i.repository) == Some(a))
                })
                .filter(|i| {
                    group_apps.as_ref().is_none_or(|names| {
                        image_app(&i.repository).is_some_and(|a| names.iter().any(|n| n == a))
                    })
                })
                .filter(|i| {
                    needle
                        .as_deref()
                        .is_none_or(|n| i.repository.to_lowercase().contains(n))
                })
                .collect();
            let host = registry_host(&parts.headers);
            paging.page(&found, |i| Ok(image_view(host, i, false)))
        }
        .await,
    )
}
