//! Plugin lifecycle routes (admin only). Packages are uploaded as JSON: the manifest text
//! (TOML or JSON) and the component as base64, optionally with a signature and a pinned
//! sha256.

use axum::Extension;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::MAX_PACKAGE_BODY_BYTES;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging, query_pairs};
use super::guard::{AuditDetail, subject_of};
use crate::auth::Caller;
use crate::runtime::lifecycle::{PluginView, UpgradeTarget};
use crate::runtime::registry::PluginStatus;
use crate::runtime::trust::{PackageSignature, sha256_hex};
use crate::runtime::{Grants, LogLine, PackageUpload, World};

pub fn routes() -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(install, list))
        .routes(routes!(upgrade))
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BODY_BYTES));
    OpenApiRouter::new()
        .merge(uploads)
        .routes(routes!(get, uninstall))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(rollback))
        .routes(routes!(configure))
        .routes(routes!(logs))
        .routes(routes!(invoke))
}

/// The part of a plugin an audit record compares before and after a change. Settings are
/// recorded as a sha256 per key (a change shows, its value does not); keys the manifest
/// marks secret only by name, since a digest of a short secret is as good as the secret.
fn summary(view: &PluginView) -> Value {
    let config: serde_json::Map<String, Value> = view
        .config
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            let digest = sha256_hex(value.to_string().as_bytes());
            (key.clone(), Value::String(format!("sha256:{digest}")))
        })
        .collect();
    json!({
        "status": view.status,
        "activeVersion": view.active_version,
        "approvedGrants": view.grants.approved,
        "config": config,
        "secretKeysSet": view.secret_keys_set,
    })
}

fn summary_of(state: &AppState, id: &str) -> Option<Value> {
    let record = state.runtime.registry().get(id).ok().flatten()?;
    Some(summary(&state.runtime.view(&record)))
}

/// A changed plugin with the audit detail of the change.
type Changed = (Extension<AuditDetail>, axum::Json<PluginView>);

fn changed(before: Option<Value>, view: PluginView) -> Changed {
    let detail = AuditDetail {
        target: Some(format!("plugin:{}", view.id)),
        plugin: Some(format!("{}@{}", view.id, view.active_version)),
        before,
        after: Some(summary(&view)),
    };
    (Extension(detail), axum::Json(view))
}

/// A plugin package.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PackageBody {
    /// The manifest text, TOML or JSON.
    manifest: String,
    /// The WebAssembly component, base64.
    component: String,
    signature: Option<PackageSignature>,
    /// Expected sha256 (hex) of the component; the upload fails if it differs.
    sha256: Option<String>,
}

impl PackageBody {
    fn into_upload(self) -> Result<PackageUpload, ApiError> {
        let component = base64::engine::general_purpose::STANDARD
            .decode(self.component.trim())
            .map_err(|e| ApiError::invalid("component", format!("not base64: {e}")))?;
        Ok(PackageUpload {
            manifest_text: self.manifest,
            component,
            signature: self.signature,
            expected_sha256: self.sha256,
        })
    }
}

/// Installs a plugin package (disabled until enabled).
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", request_body = PackageBody,
    security(("bearer" = [])),
    responses((status = 201, body = PluginView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn install(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PackageBody>,
) -> Result<(StatusCode, Changed), ApiError> {
    let view = state
        .runtime
        .install(body.into_upload()?, &caller.username)
        .await?;
    Ok((StatusCode::CREATED, changed(None, view)))
}

/// Filters of the plugin list.
struct ListFilter {
    status: Option<PluginStatus>,
    world: Option<World>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ListFilter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut filter = ListFilter {
            status: None,
            world: None,
        };
        for (key, value) in query_pairs(parts) {
            match key.as_str() {
                "status" => {
                    filter.status =
                        Some(serde_json::from_value(Value::String(value)).map_err(|_| {
                            ApiError::invalid("status", "must be installed, enabled or disabled")
                        })?)
                }
                "world" => {
                    filter.world = Some(World::parse(&value).ok_or_else(|| {
                        ApiError::invalid(
                            "world",
                            "must be authorizer, marketplace, gray-router, step or artifact-policy",
                        )
                    })?)
                }
                _ => {}
            }
        }
        Ok(filter)
    }
}

/// Lists plugins, optionally by `status` and `world`.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    params(("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query),
        ("status" = Option<String>, Query), ("world" = Option<String>, Query)),
    responses((status = 200, body = Page<PluginView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    paging: Paging,
    filter: ListFilter,
) -> Result<axum::Json<Page<PluginView>>, ApiError> {
    let views: Vec<PluginView> = state
        .runtime
        .registry()
        .list()?
        .iter()
        .map(|r| state.runtime.view(r))
        .filter(|v| filter.status.is_none_or(|s| s == v.status))
        .filter(|v| filter.world.is_none_or(|w| w == v.world))
        .collect();
    Ok(axum::Json(paging.apply(views)))
}

fn found(state: &AppState, id: &str) -> Result<PluginView, ApiError> {
    let record = state.runtime.registry().get(id)?.ok_or_else(|| {
        ApiError::not_found(
            "plugin-not-found",
            format!("plugin `{id}` is not installed"),
        )
    })?;
    Ok(state.runtime.view(&record))
}

/// One plugin: manifest, grants requested vs approved, status, versions, stats, events.
#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<PluginView>, ApiError> {
    Ok(axum::Json(found(&state, &id)?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    /// The grants approved; omitted = exactly what the active version requests.
    grants: Option<Grants>,
}

/// Enables the active version with the approved grants.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/enable", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = EnableBody,
    responses((status = 200, body = PluginView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EnableBody>,
) -> Result<Changed, ApiError> {
    let before = summary_of(&state, &id);
    Ok(changed(
        before,
        state
            .runtime
            .enable(&id, body.grants, &caller.username)
            .await?,
    ))
}

/// Disables the plugin; calls in flight finish.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/disable", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = Problem)))]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Changed, ApiError> {
    let before = summary_of(&state, &id);
    Ok(changed(
        before,
        state.runtime.disable(&id, &caller.username).await?,
    ))
}

/// Either a new package or the version to switch to.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpgradeBody {
    /// An installed version to switch to (instead of a package).
    version: Option<String>,
    manifest: Option<String>,
    component: Option<String>,
    signature: Option<PackageSignature>,
    sha256: Option<String>,
}

/// Upgrades to a new package or an installed version; the swap is atomic.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/upgrade", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpgradeBody,
    responses((status = 200, body = PluginView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpgradeBody>,
) -> Result<Changed, ApiError> {
    let target = match (body.version, body.manifest, body.component) {
        (Some(version), None, None) => UpgradeTarget::Version(version),
        (None, Some(manifest), Some(component)) => UpgradeTarget::Package(
            PackageBody {
                manifest,
                component,
                signature: body.signature,
                sha256: body.sha256,
            }
            .into_upload()?,
        ),
        (None, Some(_), None) => {
            return Err(ApiError::invalid(
                "component",
                "a package needs its component",
            ));
        }
        (None, None, Some(_)) => {
            return Err(ApiError::invalid(
                "manifest",
                "a package needs its manifest",
            ));
        }
        _ => {
            return Err(ApiError::invalid(
                "version",
                "give either `version` or a package (`manifest` and `component`), not both",
            ));
        }
    };
    let before = summary_of(&state, &id);
    Ok(changed(
        before,
        state.runtime.upgrade(&id, target, &caller.username).await?,
    ))
}

/// Returns to the previously active version.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/rollback", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Changed, ApiError> {
    let before = summary_of(&state, &id);
    Ok(changed(
        before,
        state.runtime.rollback(&id, &caller.username).await?,
    ))
}

/// Uninstalls the plugin with all its versions and kv data.
#[utoipa::path(delete, path = "/api/v1/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn uninstall(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let before = summary_of(&state, &id);
    state.runtime.uninstall(&id, &caller.username).await?;
    let detail = AuditDetail {
        before,
        ..AuditDetail::default()
    };
    Ok((Extension(detail), StatusCode::NO_CONTENT))
}

/// Replaces the plugin's settings (a JSON object), read by the plugin through `config`.
#[utoipa::path(put, path = "/api/v1/plugins/{id}/config", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Object,
    responses((status = 200, body = PluginView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn configure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(settings): ApiJson<Value>,
) -> Result<Changed, ApiError> {
    let before = summary_of(&state, &id);
    Ok(changed(
        before,
        state
            .runtime
            .configure(&id, settings, &caller.username)
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
struct LogsBody {
    items: Vec<LogLine>,
}

/// The newest log lines of the plugin (`limit`, default 200, at most 2000).
#[utoipa::path(get, path = "/api/v1/plugins/{id}/logs", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = LogsBody), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<axum::Json<LogsBody>, ApiError> {
    found(&state, &id)?;
    let mut limit = 200usize;
    for (key, value) in query_pairs(&parts) {
        if key == "limit" {
            limit = value
                .parse()
                .ok()
                .filter(|l| (1..=2000).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid("limit", "must be a whole number from 1 to 2000")
                })?;
        }
    }
    Ok(axum::Json(LogsBody {
        items: state.runtime.logs(&id, limit),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    /// `interface.function`, e.g. `step.run`; see the plugin's `functions`.
    function: String,
    #[serde(default)]
    input: Value,
}

#[derive(Serialize, ToSchema)]
struct InvokeResult {
    output: Value,
}

/// Calls one function of an enabled plugin (the admin's console for trying a plugin).
/// Authorizer functions (`authorize.check`, `authorize.manage`) run as the caller: a
/// `subject` in the input is ignored.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/invoke", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = InvokeBody,
    responses((status = 200, body = InvokeResult), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 502, body = Problem), (status = 504, body = Problem)))]
async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InvokeBody>,
) -> Result<(Extension<AuditDetail>, axum::Json<InvokeResult>), ApiError> {
    found(&state, &id)?;
    let subject = subject_of(&state, &caller)?;
    let serving = state
        .runtime
        .active(&id)
        .map(|p| format!("{id}@{}", p.version()));
    let output = state
        .runtime
        .invoke(&id, &body.function, &body.input, subject)
        .await?;
    let detail = AuditDetail {
        plugin: serving,
        ..AuditDetail::default()
    };
    Ok((Extension(detail), axum::Json(InvokeResult { output })))
}
