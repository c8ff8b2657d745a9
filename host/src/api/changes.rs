//! Change orders (`/api/v1/change-orders/{id}`): read one, follow it as server-sent
//! events, and act on it — approve, reject, delegate, release the next batch, abort,
//! roll back. The guard widens `change-order:{id}` to the deployment's scope, so the
//! authorizer judges these like the deployment's other routes.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::audited;
use super::deployments::Accepted;
use super::error::{ApiError, Problem};
use super::extract::ApiJson;
use super::guard::AuditDetail;
use crate::auth::Caller;
use crate::domain::changes::ChangeOrder;
use crate::domain::rollout::Requester;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get))
        .routes(routes!(events))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(delegate))
        .routes(routes!(next_batch))
        .routes(routes!(abort))
        .routes(routes!(rollback))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    /// At most 500 characters.
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delegation {
    /// Username of the user who decides instead.
    pub user: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackReason {
    pub description: Option<String>,
}

type Acted = (Extension<AuditDetail>, axum::Json<ChangeOrder>);

fn acted(before: &ChangeOrder, after: ChangeOrder) -> Acted {
    let summary = |c: &ChangeOrder| serde_json::json!({"state": c.state, "approval": c.approval});
    (
        audited(
            Some(after.scope()),
            Some(&summary(before)),
            Some(&summary(&after)),
        ),
        axum::Json(after),
    )
}

fn comment(decision: Decision) -> Result<Option<String>, ApiError> {
    match decision.comment {
        Some(c) if c.chars().count() > 500 => Err(ApiError::invalid(
            "comment",
            "must be at most 500 characters",
        )),
        other => Ok(other),
    }
}

/// Seed 001 5.3.6: state, batches with their pods, approval, rendered YAML, timeline.
#[utoipa::path(get, path = "/api/v1/change-orders/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ChangeOrder), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ChangeOrder>, ApiError> {
    Ok(axum::Json(state.deployer.change(&id)?))
}

/// Server-sent events: a `change` event with the whole change order now and at every
/// transition; the stream ends after the change order ends.
#[utoipa::path(get, path = "/api/v1/change-orders/{id}/events", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of `change` events", content_type = "text/event-stream"),
        (status = 404, body = Problem)))]
async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = state.deployer.subscribe(&id)?;
    let stream = futures::stream::unfold(
        (receiver, true, false),
        |(mut receiver, first, done)| async move {
            if done {
                return None;
            }
            if !first && receiver.changed().await.is_err() {
                return None;
            }
            let change = receiver.borrow_and_update().clone();
            let end = change.state.is_terminal();
            let event = Event::default()
                .event("change")
                .id(change.updated_at.unix_timestamp_nanos().to_string())
                .json_data(&change)
                .unwrap_or_else(|_| Event::default().event("error").data("unserializable"));
            Some((Ok(event), (receiver, false, end)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Approves a change order waiting for approval; the requester cannot.
#[utoipa::path(post, path = "/api/v1/change-orders/{id}/approve", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Decision,
    responses((status = 200, body = ChangeOrder), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Acted, ApiError> {
    let before = state.deployer.change(&id)?;
    let after = state
        .deployer
        .approve(&id, &caller.username, comment(body)?)
        .await?;
    Ok(acted(&before, after))
}

#[utoipa::path(post, path = "/api/v1/change-orders/{id}/reject", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Decision,
    responses((status = 200, body = ChangeOrder), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Acted, ApiError> {
    let before = state.deployer.change(&id)?;
    let after = state
        .deployer
        .reject(&id, &caller.username, comment(body)?)
        .await?;
    Ok(acted(&before, after))
}

/// Seed 003: hands the decision to another user.
#[utoipa::path(post, path = "/api/v1/change-orders/{id}/delegate", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Delegation,
    responses((status = 200, body = ChangeOrder), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn delegate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Delegation>,
) -> Result<Acted, ApiError> {
    if state.identity.user_by_name(&body.user)?.is_none() {
        return Err(ApiError::invalid(
            "user",
            format!("there is no user `{}`", body.user),
        ));
    }
    let before = state.deployer.change(&id)?;
    let after = state
        .deployer
        .delegate(&id, &caller.username, &body.user)
        .await?;
    Ok(acted(&before, after))
}

/// Seed 001 5.3.17 (执行下一批发布): releases the next batch of a paused rollout.
#[utoipa::path(post, path = "/api/v1/change-orders/{id}/next-batch", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ChangeOrder), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn next_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Acted, ApiError> {
    let before = state.deployer.change(&id)?;
    let after = state.deployer.next_batch(&id, &caller.username).await?;
    Ok(acted(&before, after))
}

/// Stops a change order where it stands; roll it back to restore the previous version.
#[utoipa::path(post, path = "/api/v1/change-orders/{id}/abort", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ChangeOrder), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn abort(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Acted, ApiError> {
    let before = state.deployer.change(&id)?;
    let after = state.deployer.abort(&id, &caller.username).await?;
    Ok(acted(&before, after))
}

/// Seed 001 5.3.20 (立即回滚): in flight, reverts it where it stands (200, the same
/// change order); finished, opens a rollback change order (202) restoring what was
/// there before.
#[utoipa::path(post, path = "/api/v1/change-orders/{id}/rollback", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RollbackReason,
    responses((status = 200, body = ChangeOrder), (status = 202, body = Accepted), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RollbackReason>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let before = state.deployer.change(&id)?;
    let requester = Requester {
        username: caller.username.clone(),
        description: body.description,
        ticket: None,
    };
    let result = state.deployer.rollback_change(&id, requester).await?;
    if result.id == id {
        return Ok(acted(&before, result).into_response());
    }
    let summary =
        serde_json::json!({"changeOrderId": result.id, "rollbackOf": id, "state": result.state});
    Ok((
        StatusCode::ACCEPTED,
        audited(Some(result.scope()), None::<&()>, Some(&summary)),
        axum::Json(Accepted {
            change_order_id: result.id.clone(),
            deployment_id: result.deployment_id.clone(),
            state: result.state,
            change_order: result,
        }),
    )
        .into_response())
}
