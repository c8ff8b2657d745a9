//! Runtime views of deployed apps, read from the cluster (seed 001 §5.3.4/5.3.5/5.3.8/
//! 5.3.10, seed 003 instance logs): a deployment's replica counts, pods, events and pod
//! logs (plain text, or followed as server-sent events), and the deployed apps of an
//! environment with their live pod counts.

use axum::extract::{Path, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::query;
use super::environments::environments;
use super::error::{ApiError, Problem};
use super::extract::{Page, Paging};
use crate::domain::workloads::{
    self, DeployedApp, EventView, LogQuery, PodView, WorkloadStatus, Workloads,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(pods))
        .routes(routes!(events))
        .routes(routes!(logs))
        .routes(routes!(deployed))
}

fn workloads_of(state: &AppState) -> Workloads {
    Workloads::new(state.clusters.clone())
}

/// Replica counts summed over the live revisions, pod counts, and each revision's
/// Kubernetes Deployment (seed 001 5.3.5, 5.3.8).
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/status", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = WorkloadStatus), (status = 404, body = Problem), (status = 502, body = Problem),
        (status = 503, body = Problem)))]
async fn status(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
) -> Result<axum::Json<WorkloadStatus>, ApiError> {
    let (deployment, client) = workloads_of(&state).locate(&code, &app, &env).await?;
    Ok(axum::Json(workloads::status(&client, &deployment).await?))
}

#[derive(Serialize, ToSchema)]
struct PodList {
    items: Vec<PodView>,
}

/// The deployment's pods with phase, readiness, restarts, node, IP, image, the reason
/// they are not ready and the seed 001 status code (5.3.4).
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/pods", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = PodList), (status = 404, body = Problem), (status = 502, body = Problem),
        (status = 503, body = Problem)))]
async fn pods(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
) -> Result<axum::Json<PodList>, ApiError> {
    let (deployment, client) = workloads_of(&state).locate(&code, &app, &env).await?;
    Ok(axum::Json(PodList {
        items: workloads::pods(&client, &deployment).await?,
    }))
}

#[derive(Serialize, ToSchema)]
struct EventList {
    items: Vec<EventView>,
}

/// Kubernetes events of the deployment's Deployments, ReplicaSets and pods, newest
/// first; `limit` 1–1000 (default 100).
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/events", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = EventList), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 502, body = Problem), (status = 503, body = Problem)))]
async fn events(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
    parts: Parts,
) -> Result<axum::Json<EventList>, ApiError> {
    let limit = workloads::events_limit(query(&parts, "limit").as_deref())?;
    let (deployment, client) = workloads_of(&state).locate(&code, &app, &env).await?;
    Ok(axum::Json(EventList {
        items: workloads::events(&client, &deployment, limit).await?,
    }))
}

/// A pod's log as plain text: `tailLines` (the last N lines), `limitBytes` (stop after N
/// bytes, at most 8 MiB), `container` (for pods with several). With `follow=true`, a
/// `text/event-stream`: one `data:` event per line as it is written, an `end` event when
/// the pod goes away, keep-alive comments in between.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/pods/{pod}/logs", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path), ("pod" = String, Path),
        ("container" = Option<String>, Query), ("tailLines" = Option<u32>, Query), ("limitBytes" = Option<u32>, Query),
        ("follow" = Option<bool>, Query)),
    responses((status = 200, description = "The log text, or with follow=true server-sent events",
            content((String = "text/plain"), (String = "text/event-stream"))),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 502, body = Problem), (status = 503, body = Problem)))]
async fn logs(
    State(state): State<AppState>,
    Path((code, app, env, pod)): Path<(String, String, String, String)>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let wanted = LogQuery::parse(
        query(&parts, "container"),
        query(&parts, "tailLines").as_deref(),
        query(&parts, "limitBytes").as_deref(),
    )?;
    let follow = workloads::flag("follow", query(&parts, "follow").as_deref())?;
    let (deployment, client) = workloads_of(&state).locate(&code, &app, &env).await?;
    if !follow {
        let text = workloads::logs(&client, &deployment, &pod, &wanted).await?;
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let lines = workloads::follow_logs(&client, &deployment, &pod, &wanted).await?;
    let events = lines
        .map(|line| {
            Ok::<_, std::convert::Infallible>(match line {
                Ok(line) => Event::default().data(line.replace('\r', "")),
                Err(error) => Event::default().event("error").data(error),
            })
        })
        .chain(futures::stream::once(async {
            Ok(Event::default().event("end").data("the log stream ended"))
        }));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The apps deployed to an environment (not deleted), by app, with live
/// `runningPods`/`totalPods` (seed 001 5.3.10, 5.3.7); `app` filters by name.
#[utoipa::path(get, path = "/api/v1/projects/{code}/environments/{env}/deployments", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("env" = String, Path), ("app" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<DeployedApp>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn deployed(
    State(state): State<AppState>,
    Path((code, env)): Path<(String, String)>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<DeployedApp>>, ApiError> {
    environments(&state).get(&code, &env)?;
    let workloads = workloads_of(&state);
    let records = workloads.deployed_records(&code, &env, query(&parts, "app").as_deref())?;
    let page = paging.apply(records);
    Ok(axum::Json(Page {
        items: workloads.deployed_apps(page.items).await,
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    }))
}
