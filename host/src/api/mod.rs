//! The HTTP surface: `/api/v1` routes, health, metrics and the OpenAPI document.
//!
//! Handlers are thin (parse → authorize → call the domain → map the result); errors are
//! [`error::ApiError`] problems. Middleware adds request ids, tracing spans, request
//! metrics and body-size limits; inside the guard, a handler's panic becomes a 500
//! `internal` problem (audited by the guard) instead of a dropped connection. The OpenAPI 3.1 document is generated from the handler
//! annotations, so it cannot drift from the routes.

mod app_info;
mod apps;
mod audit;
mod auth;
mod authz;
mod changes;
mod clusters;
mod config_items;
mod deploy_configs;
mod deployments;
mod environments;
pub mod error;
pub mod extract;
mod gray;
mod groups;
pub mod guard;
mod health;
mod installs;
mod kubeconfig;
mod market_openapi;
mod markets;
mod namespaces;
mod packages;
mod pipeline_compat;
mod pipeline_runs;
mod pipelines;
mod plugins;
mod product_compat;
mod projects;
mod registry;
mod retention;
pub mod routes;
pub mod scope;
mod seed_envelope;
mod trust;
mod users;
mod workloads;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::audit::AuditLog;
use crate::auth::Identity;
use crate::runtime::Runtime;

use error::ApiError;

/// Largest request body in general.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest plugin package upload (base64 of the component included).
pub const MAX_PACKAGE_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: crate::store::Store,
    pub runtime: Runtime,
    pub identity: Identity,
    pub audit: AuditLog,
    pub projects: crate::domain::projects::Projects,
    pub clusters: crate::domain::clusters::Clusters,
    /// Change orders: opens them and drives them through the clusters.
    pub deployer: crate::domain::rollout::Deployer,
    /// Market connections, installs and their driver.
    pub market: crate::domain::market::MarketHost,
    /// Pipelines and the engine that runs them.
    pub pipelines: crate::domain::pipelines::Engine,
    /// The OCI registry's records and blob files.
    pub registry: crate::domain::artifacts::Registry,
    /// Where kubectl reaches the embedded cluster (none when a real cluster is configured).
    pub kube_endpoint: Option<crate::cluster::LoopbackEndpoint>,
    pub metrics: PrometheusHandle,
    pub ready: Arc<AtomicBool>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Wharf", description = "Application delivery for Kubernetes, extended by WebAssembly plugins."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sessions"),
        (name = "plugins", description = "Plugin lifecycle (admin)"),
        (name = "plugin-trust", description = "Keys trusted to sign plugins (admin)"),
        (name = "audit", description = "The audit log (admin)"),
        (name = "users", description = "User administration"),
        (name = "groups", description = "Groups of users"),
        (name = "projects", description = "Projects and their members"),
        (name = "clusters", description = "Regions, resource pools, clusters, namespaces and nodes"),
        (name = "apps", description = "Apps of a project, their groups and favourites; seed 004 app details"),
        (name = "environments", description = "Environments of a project, their bindings, resources and config items"),
        (name = "deployments", description = "Deployments of apps, their change orders, batches, approvals and rollbacks"),
        (name = "markets", description = "App stores (marketplace plugins), browsing their templates, and installs of multi-component apps (seed 000)"),
        (name = "artifacts", description = "Generic packages of a project and seed 001 §5.7 (images are served under /v2/)"),
        (name = "pipelines", description = "Pipelines of an app, their runs (steps are plugins of the step world) and seed 001 §5.6"),
        (name = "gray", description = "Gray-rule dry runs: validation by a traffic provider and evaluation of sample requests"),
        (name = "deploy-configs", description = "Reusable deploy configs of an app per environment: env vars, health checks, resources, start command"),
        (name = "authz", description = "Authorization: checks and policy administration by the authorizer plugin"),
        (name = "health", description = "Liveness, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes with their OpenAPI description.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(plugins::routes())
        .merge(trust::routes())
        .merge(audit::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(authz::routes())
        .merge(projects::routes())
        .merge(clusters::routes())
        .merge(namespaces::routes())
        .merge(environments::routes())
        .merge(apps::routes())
        .merge(app_info::routes())
        .merge(config_items::routes())
        .merge(deploy_configs::routes())
        .merge(deployments::routes())
        .merge(changes::routes())
        .merge(gray::routes())
        .merge(markets::routes())
        .merge(installs::routes())
        .merge(market_openapi::routes())
        .merge(pipelines::routes())
        .merge(pipeline_runs::routes())
        .merge(pipeline_compat::routes())
        .merge(packages::routes())
        .merge(retention::routes())
        .merge(product_compat::routes())
        .merge(workloads::routes())
        .merge(kubeconfig::routes())
        .merge(health::routes())
}

/// The OpenAPI document (also served at `/api/v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    build(state, true)
}

/// The same handlers with no guard: no authentication, authorization or audit. Only for
/// the benchmark that measures what the guard costs; never serve users with it.
pub fn unguarded_router_for_benchmarks(state: AppState) -> Router {
    build(state, false)
}

fn build(state: AppState, guarded: bool) -> Router {
    let (routes, openapi) = api_routes().split_for_parts();
    let openapi = Arc::new(openapi);
    let request_id = HeaderName::from_static("x-request-id");
    let routes = routes.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = openapi.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    );
    let routes = if guarded {
        guard_routes(routes, &state)
    } else {
        routes
    };
    // The registry authorizes and audits on its own (see `registry`), in the spec's terms.
    routes
        .merge(registry::routes())
        .fallback(|| async {
            ApiError::not_found("route-not-found", "no route matches this path")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "this path does not take that method")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                // Every response is already logged above; 5xx are not all faults (a 503
                // from /readyz while starting, a 502 from a trapping plugin).
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Puts `routes` behind the guard, with a handler's panic caught inside it.
fn guard_routes(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    // Layers added later wrap the earlier ones: the guard sees the 500 of a panic.
    routes
        .route_layer(CatchPanicLayer::custom(answer_panic))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard))
}

/// A handler's panic as a 500 problem, which the guard then audits like any other answer.
fn answer_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::panicked(message).into_response()
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("wharf_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("wharf_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
