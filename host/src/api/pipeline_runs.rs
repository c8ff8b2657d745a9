//! Runs of a pipeline (`…/pipelines/{pipeline}/runs`): start, list, follow (JSON and
//! server-sent events), abort, retry from the failed step, roll back, decide on a step,
//! read a step's outputs and the run's logs, replay a recorded step.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::{audited, query};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::pipelines::engine::audit_view;
use crate::domain::pipelines::journal::{self, LogLine, ReplayReport};
use crate::domain::pipelines::runs::{Run, Starter};
use crate::domain::pipelines::{PipelineError, RunStatus};

/// Log lines per page of `/logs`.
const LOG_PAGE: usize = 500;
/// How often an event stream looks at the run.
const EVENT_POLL: Duration = Duration::from_millis(250);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, start))
        .routes(routes!(get))
        .routes(routes!(abort))
        .routes(routes!(retry))
        .routes(routes!(rollback))
        .routes(routes!(decide))
        .routes(routes!(outputs))
        .routes(routes!(replay))
        .routes(routes!(logs))
        .routes(routes!(events))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRun {
    #[serde(default)]
    pub branch: String,
    /// Values of the pipeline's variables by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionInput {
    pub approve: bool,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub items: Vec<LogLine>,
}

fn starter(caller: &Caller) -> Starter {
    Starter {
        user_id: caller.user_id.clone(),
        username: caller.username.clone(),
    }
}

/// The run `run` of pipeline `id` in app `app` of `code`.
fn run_of(state: &AppState, code: &str, app: &str, id: &str, run: &str) -> Result<Run, ApiError> {
    let found = state.pipelines.runs().get(run)?;
    if found.project != code || found.app != app || found.pipeline != id {
        return Err(PipelineError::RunNotFound(run.to_owned()).into());
    }
    Ok(found)
}

fn target(run: &Run) -> Option<String> {
    Some(format!(
        "{}/run:{}",
        crate::domain::pipelines::model::scope(&run.project, &run.pipeline),
        run.id
    ))
}

fn view(state: &AppState, run: Run) -> Run {
    state.pipelines.runs().view(run)
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path),
        ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Run>)))]
async fn list(
    State(state): State<AppState>,
    Path((code, app, id)): Path<(String, String, String)>,
    paging: Paging,
) -> Result<axum::Json<Page<Run>>, ApiError> {
    state.pipelines.definitions().get(&code, &app, &id)?;
    Ok(axum::Json(paging.apply(state.pipelines.runs().list(&id)?)))
}

/// Starts a run of the pipeline's current version as the caller.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path)), request_body = StartRun,
    responses((status = 201, body = Run), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<Run>), ApiError> {
    let pipeline = state.pipelines.definitions().get(&code, &app, &id)?;
    let run = state
        .pipelines
        .start(&pipeline, body.branch, body.variables, starter(&caller))
        .await?;
    let detail = audited(target(&run), None::<&()>, Some(&audit_view(&run)));
    Ok((StatusCode::CREATED, detail, axum::Json(run)))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path)),
    responses((status = 200, body = Run), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, app, id, run)): Path<(String, String, String, String)>,
) -> Result<axum::Json<Run>, ApiError> {
    Ok(axum::Json(view(
        &state,
        run_of(&state, &code, &app, &id, &run)?,
    )))
}

macro_rules! run_action {
    ($name:ident, $path:literal, $doc:literal, $call:ident) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "pipelines", security(("bearer" = [])),
            params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path)),
            responses((status = 200, body = Run), (status = 404, body = Problem), (status = 409, body = Problem)))]
        async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            Path((code, app, id, run)): Path<(String, String, String, String)>,
        ) -> Result<(Extension<AuditDetail>, axum::Json<Run>), ApiError> {
            let before = run_of(&state, &code, &app, &id, &run)?;
            let after = state.pipelines.$call(&run, &caller.username).await?;
            let detail = audited(target(&after), Some(&audit_view(&before)), Some(&audit_view(&after)));
            Ok((detail, axum::Json(view(&state, after))))
        }
    };
}

run_action!(
    abort,
    "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/abort",
    "Aborts a run in flight: its running step is cancelled.",
    abort
);
run_action!(
    retry,
    "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/retry",
    "Runs a failed or aborted run again from its failed step; what succeeded is kept.",
    retry
);
run_action!(
    rollback,
    "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/rollback",
    "Undoes a finished run: each succeeded step is compensated, the last one first.",
    rollback
);

/// Records the caller's decision on a running step (an approval step reads it). The user
/// who started the run cannot decide (403 `self-approval`).
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/steps/{step}/decisions", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("step" = String, Path)),
    request_body = DecisionInput,
    responses((status = 200, body = Run), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, id, run, step)): Path<(String, String, String, String, String)>,
    ApiJson(body): ApiJson<DecisionInput>,
) -> Result<(Extension<AuditDetail>, axum::Json<Run>), ApiError> {
    run_of(&state, &code, &app, &id, &run)?;
    let after = state
        .pipelines
        .decide(
            &run,
            &step,
            &starter(&caller),
            body.approve,
            body.comment.clone(),
        )
        .await?;
    let detail = audited(
        target(&after).map(|t| format!("{t}/step:{step}")),
        None::<&()>,
        Some(&serde_json::json!({"approve": body.approve, "comment": body.comment})),
    );
    Ok((detail, axum::Json(view(&state, after))))
}

/// A step's outputs, whole, whatever their size.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/steps/{step}/outputs", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("step" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
async fn outputs(
    State(state): State<AppState>,
    Path((code, app, id, run, step)): Path<(String, String, String, String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let found = run_of(&state, &code, &app, &id, &run)?;
    if found.step(&step).is_none() {
        return Err(PipelineError::StepNotFound(step).into());
    }
    Ok(axum::Json(state.pipelines.runs().outputs(&run, &step)?))
}

/// Runs a step's last recorded invocation (of `attempt`, when given) again against the
/// host answers it got, and says whether it decides the same.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/steps/{step}/replay", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("step" = String, Path),
        ("attempt" = Option<u32>, Query)),
    responses((status = 200, body = ReplayReport), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn replay(
    State(state): State<AppState>,
    Path((code, app, id, run, step)): Path<(String, String, String, String, String)>,
    parts: axum::http::request::Parts,
) -> Result<(Extension<AuditDetail>, axum::Json<ReplayReport>), ApiError> {
    let found = run_of(&state, &code, &app, &id, &run)?;
    if found.step(&step).is_none() {
        return Err(PipelineError::StepNotFound(step).into());
    }
    let attempt = match query(&parts, "attempt") {
        None => None,
        Some(text) => Some(
            text.parse::<u32>()
                .map_err(|_| ApiError::invalid("attempt", "must be a positive integer"))?,
        ),
    };
    let report = journal::replay(&state.store, &state.runtime, &run, &step, attempt).await?;
    let mut detail = audited(
        target(&found).map(|t| format!("{t}/step:{step}")),
        None::<&()>,
        Some(&serde_json::json!({"same": report.same, "divergence": report.divergence})),
    );
    detail.0.plugin = Some(report.plugin.clone());
    Ok((detail, axum::Json(report)))
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/logs", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path),
        ("step" = Option<String>, Query)),
    responses((status = 200, body = LogPage), (status = 404, body = Problem)))]
async fn logs(
    State(state): State<AppState>,
    Path((code, app, id, run)): Path<(String, String, String, String)>,
    parts: axum::http::request::Parts,
) -> Result<axum::Json<LogPage>, ApiError> {
    run_of(&state, &code, &app, &id, &run)?;
    let step = query(&parts, "step");
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = journal::logs(
            &state.store,
            &run,
            step.as_deref(),
            cursor.as_deref(),
            LOG_PAGE,
        )?;
        items.extend(page);
        if next.is_none() || items.len() >= journal::MAX_LOG_LINES {
            break;
        }
        cursor = next;
    }
    Ok(axum::Json(LogPage { items }))
}

/// Follows a run: `log` events (a step's log line), `step` events (a step's status
/// changed), `run` events (the run's status changed); the stream ends after the run's
/// last `run` event.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/events", tag = "pipelines", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path)),
    responses((status = 200, description = "text/event-stream"), (status = 404, body = Problem)))]
async fn events(
    State(state): State<AppState>,
    Path((code, app, id, run)): Path<(String, String, String, String)>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    run_of(&state, &code, &app, &id, &run)?;
    let stream = async_stream::stream! {
        let mut cursor: Option<String> = None;
        let mut seen_steps: Vec<String> = Vec::new();
        let mut seen_run = String::new();
        loop {
            let Ok(current) = state.pipelines.runs().get(&run) else { break };
            if let Ok((lines, next)) = journal::logs(&state.store, &run, None, cursor.as_deref(), LOG_PAGE) {
                for line in lines {
                    if let Ok(event) = Event::default().event("log").json_data(&line) {
                        yield Ok(event);
                    }
                }
                if next.is_some() {
                    cursor = next;
                }
            }
            let current = state.pipelines.runs().view(current);
            for (i, step) in current.steps.iter().enumerate() {
                let mut slim = step.clone();
                slim.outputs = None;
                let fingerprint = format!("{:?}/{}/{}/{:?}/{}", slim.status, slim.attempt, slim.message, slim.progress, slim.executions.len());
                if seen_steps.get(i) != Some(&fingerprint) {
                    if let Ok(event) = Event::default().event("step").json_data(&slim) {
                        yield Ok(event);
                    }
                    if i < seen_steps.len() { seen_steps[i] = fingerprint } else { seen_steps.push(fingerprint) }
                }
            }
            let fingerprint = format!("{:?}/{}", current.status, current.message);
            if fingerprint != seen_run {
                let mut slim = current.clone();
                for s in &mut slim.steps { s.outputs = None; }
                if let Ok(event) = Event::default().event("run").json_data(&slim) {
                    yield Ok(event);
                }
                seen_run = fingerprint;
            }
            if current.status.is_terminal() && current.status != RunStatus::RollingBack {
                // One last look for lines written with the final transition.
                if let Ok((lines, _)) = journal::logs(&state.store, &run, None, cursor.as_deref(), LOG_PAGE) {
                    for line in lines {
                        if let Ok(event) = Event::default().event("log").json_data(&line) {
                            yield Ok(event);
                        }
                    }
                }
                break;
            }
            tokio::time::sleep(EVENT_POLL).await;
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
