//! Deployments of an app in an environment
//! (`/api/v1/projects/{code}/apps/{app}/deployments/{env}`, seed 001 §5.3): the record,
//! its history and change orders, and every mutation — deploy, redeploy, scale, start,
//! stop, restart, delete, services, rollback — each answered with the change order
//! (202) that carries it out.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::{audited, query};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging};
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::changes::{ChangeOrder, ChangeState};
use crate::domain::deployments::Deployment;
use crate::domain::rollout::{DeployRequest, HistoryEntry, Requester, Ticket};
use crate::domain::spec::ServiceSpec;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get, delete))
        .routes(routes!(deploy))
        .routes(routes!(redeploy))
        .routes(routes!(scale))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(rollback))
        .routes(routes!(history))
        .routes(routes!(changes))
        .routes(routes!(list_services, create_service))
        .routes(routes!(update_service, delete_service))
        .routes(routes!(project_changes))
}

/// What a mutation of a deployment answers: the change order that carries it out.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub change_order_id: String,
    pub deployment_id: String,
    pub state: ChangeState,
    pub change_order: ChangeOrder,
}

type Started = (StatusCode, Extension<AuditDetail>, axum::Json<Accepted>);

fn started(change: ChangeOrder) -> Started {
    let detail = audited(
        Some(change.scope()),
        None::<&()>,
        Some(&serde_json::json!({
            "changeOrderId": change.id,
            "kind": change.kind,
            "state": change.state,
            "targetRevision": change.target_revision,
            "targetReplicas": change.target_replicas,
        })),
    );
    (
        StatusCode::ACCEPTED,
        detail,
        axum::Json(Accepted {
            change_order_id: change.id.clone(),
            deployment_id: change.deployment_id.clone(),
            state: change.state,
            change_order: change,
        }),
    )
}

/// Why a change is asked for, and (where approval is required) the ticket fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reason {
    pub description: Option<String>,
    pub ticket: Option<Ticket>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleRequest {
    pub replicas: u32,
    pub description: Option<String>,
    pub ticket: Option<Ticket>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRequest {
    /// At least 1; default: what ran before the stop.
    pub replicas: Option<u32>,
    pub description: Option<String>,
    pub ticket: Option<Ticket>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackRequest {
    /// A revision from the deployment's history.
    pub revision: u64,
    pub description: Option<String>,
    pub ticket: Option<Ticket>,
}

fn requester(caller: &Caller, description: Option<String>, ticket: Option<Ticket>) -> Requester {
    Requester {
        username: caller.username.clone(),
        description,
        ticket,
    }
}

#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = Deployment), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
) -> Result<axum::Json<Deployment>, ApiError> {
    Ok(axum::Json(state.deployer.deployment(&code, &app, &env)?))
}

/// Deploys an image (seed 001 5.3.18 fields; `podNum` or `replicas`) as a new revision,
/// rolled out in the `deploymentStrategy` batches. Also takes `deployConfig`, `cluster`,
/// `namespace` (which binding of the environment), `description` and `ticket`.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/deploy", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    request_body = crate::domain::spec::DeploySpec,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Started, ApiError> {
    let request = DeployRequest::from_json(body)?;
    let who = requester(&caller, request.description.clone(), request.ticket.clone());
    let change = state
        .deployer
        .deploy(&code, &app, &env, request, who)
        .await?;
    Ok(started(change))
}

/// Rolls the serving spec out again as a new revision (fresh pods).
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/redeploy", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = Reason,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn redeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, body.description, body.ticket);
    Ok(started(
        state.deployer.redeploy(&code, &app, &env, who).await?,
    ))
}

/// Seed 001 5.3.13: any count from 0 (offline) to 1000.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/scale", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = ScaleRequest,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn scale(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<ScaleRequest>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, body.description, body.ticket);
    Ok(started(
        state
            .deployer
            .scale(&code, &app, &env, body.replicas, who)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/start", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = StartRequest,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<StartRequest>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, body.description, body.ticket);
    Ok(started(
        state
            .deployer
            .start(&code, &app, &env, body.replicas, who)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/stop", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = Reason,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, body.description, body.ticket);
    Ok(started(state.deployer.stop(&code, &app, &env, who).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/restart", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = Reason,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn restart(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, body.description, body.ticket);
    Ok(started(
        state.deployer.restart(&code, &app, &env, who).await?,
    ))
}

/// Seed 001 5.3.2: removes the app's objects from the cluster; the history stays.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, None, None);
    Ok(started(
        state.deployer.delete(&code, &app, &env, who).await?,
    ))
}

/// Seed 001 5.3.21: rolls back to a revision from the history.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/rollback", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = RollbackRequest,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, body.description, body.ticket);
    Ok(started(
        state
            .deployer
            .rollback_to(&code, &app, &env, body.revision, who)
            .await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub items: Vec<HistoryEntry>,
}

/// Seed 001 5.3.19: the revisions, newest first; `current` marks the one serving.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/history", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = History), (status = 404, body = Problem)))]
async fn history(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
) -> Result<axum::Json<History>, ApiError> {
    Ok(axum::Json(History {
        items: state.deployer.history(&code, &app, &env)?,
    }))
}

/// Seed 001 5.3.11: the deployment's change orders, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/changes", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path), ("page" = Option<u32>, Query),
        ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<ChangeOrder>), (status = 404, body = Problem)))]
async fn changes(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
    paging: Paging,
) -> Result<axum::Json<Page<ChangeOrder>>, ApiError> {
    Ok(axum::Json(
        paging.apply(state.deployer.changes_of(&code, &app, &env)?),
    ))
}

/// A project's change orders, newest first; `state=waiting_approval` is the review queue.
#[utoipa::path(get, path = "/api/v1/projects/{code}/change-orders", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("state" = Option<String>, Query), ("app" = Option<String>, Query),
        ("env" = Option<String>, Query), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<ChangeOrder>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn project_changes(
    State(state): State<AppState>,
    Path(code): Path<String>,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<ChangeOrder>>, ApiError> {
    state.projects.get(&code)?;
    let wanted = query(&parts, "state")
        .map(|s| {
            serde_json::from_value::<ChangeState>(Value::String(s.clone())).map_err(|_| {
                ApiError::invalid(
                    "state",
                    format!("`{s}` is not a change-order state (e.g. waiting_approval, running, succeeded)"),
                )
            })
        })
        .transpose()?;
    let app = query(&parts, "app");
    let env = query(&parts, "env");
    let mut all = state.deployer.changes_of_project(&code)?;
    all.retain(|c| {
        wanted.is_none_or(|s| c.state == s)
            && app.as_ref().is_none_or(|a| &c.app == a)
            && env.as_ref().is_none_or(|e| &c.env == e)
    });
    Ok(axum::Json(paging.apply(all)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Services {
    pub items: Vec<ServiceSpec>,
}

/// Seed 001 5.3.9: the app's Services as Wharf applied them.
#[utoipa::path(get, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = Services), (status = 404, body = Problem)))]
async fn list_services(
    State(state): State<AppState>,
    Path((code, app, env)): Path<(String, String, String)>,
) -> Result<axum::Json<Services>, ApiError> {
    Ok(axum::Json(Services {
        items: state.deployer.deployment(&code, &app, &env)?.services,
    }))
}

/// Seed 001 5.3.1.
#[utoipa::path(post, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = ServiceSpec,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_service(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<ServiceSpec>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, None, None);
    Ok(started(
        state
            .deployer
            .put_service(&code, &app, &env, body, true, who)
            .await?,
    ))
}

/// Seed 001 5.3.16: replaces the Service named in the path.
#[utoipa::path(put, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services/{service}", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path), ("service" = String, Path)),
    request_body = ServiceSpec,
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn update_service(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env, service)): Path<(String, String, String, String)>,
    ApiJson(body): ApiJson<ServiceSpec>,
) -> Result<Started, ApiError> {
    if body.name != service {
        return Err(ApiError::invalid(
            "name",
            format!("the body names `{}` but the path `{service}`", body.name),
        ));
    }
    let who = requester(&caller, None, None);
    Ok(started(
        state
            .deployer
            .put_service(&code, &app, &env, body, false, who)
            .await?,
    ))
}

/// Seed 001 5.3.3.
#[utoipa::path(delete, path = "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services/{service}", tag = "deployments", security(("bearer" = [])),
    params(("code" = String, Path), ("app" = String, Path), ("env" = String, Path), ("service" = String, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_service(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, app, env, service)): Path<(String, String, String, String)>,
) -> Result<Started, ApiError> {
    let who = requester(&caller, None, None);
    Ok(started(
        state
            .deployer
            .delete_service(&code, &app, &env, &service, who)
            .await?,
    ))
}
