//! Gray-rule dry runs (`/api/v1/gray/…`): validate a rule with a traffic provider (and
//! whether it can render it), and evaluate sample requests against a rule or a change
//! order's rule. Naming an environment or a change order is authorized like reading it.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::ApiJson;
use super::guard::require;
use crate::auth::Caller;
use crate::domain::gray::providers::{DEFAULT_PROVIDER, Providers};
use crate::domain::gray::rules::{self, GrayError, ValidationReport};
use crate::runtime::router::RequestInput;

/// Sample requests one evaluation may carry.
pub const MAX_SAMPLE_REQUESTS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(validate))
        .routes(routes!(evaluate))
}

/// Which traffic provider judges the rule: `provider`, else the environment's
/// (`project` + `env`), else the default.
struct ProviderChoice {
    provider: Option<String>,
    project: Option<String>,
    env: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateRequest {
    /// Seed 001 `grayRule`.
    #[schema(value_type = Object)]
    pub rule: Value,
    pub provider: Option<String>,
    pub project: Option<String>,
    pub env: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvaluateRequest {
    /// A rule to evaluate; or leave it out and name `changeOrderId`.
    #[schema(value_type = Option<Object>)]
    pub rule: Option<Value>,
    /// Evaluate the rule (and with the provider) of this gray change order.
    pub change_order_id: Option<String>,
    pub provider: Option<String>,
    pub project: Option<String>,
    pub env: Option<String>,
    /// 1 to 10,000 sample requests.
    pub requests: Vec<RequestInput>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatedRequest {
    /// Position in `requests`.
    pub index: usize,
    /// Percent of such requests reaching the canary (100 or 0 for CONTENT, the rate for
    /// PERCENT).
    pub canary_share: u8,
    pub tag: String,
    /// JSON path of the deciding condition or rule (`content.rules[0].conditions[1]`).
    pub decided_by: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub provider: String,
    /// Requests that reach the canary every time.
    pub to_canary: usize,
    pub evaluations: Vec<EvaluatedRequest>,
}

/// The provider `choice` names, after checking the caller may read a named environment.
async fn provider_of(
    state: &AppState,
    caller: &Caller,
    choice: ProviderChoice,
) -> Result<String, ApiError> {
    if let Some(provider) = choice.provider {
        return Ok(provider);
    }
    match (choice.project, choice.env) {
        (None, None) => Ok(DEFAULT_PROVIDER.to_owned()),
        (Some(project), Some(env)) => {
            require(
                state,
                caller,
                "env.read",
                &format!("project:{project}/env:{env}"),
            )
            .await?;
            let envs = crate::domain::environments::Environments::new(
                state.clusters.clone(),
                state.projects.clone(),
                Providers::new(state.runtime.clone()),
            );
            Ok(envs.get(&project, &env)?.traffic_provider)
        }
        (None, Some(_)) => Err(ApiError::invalid("project", "is required with env")),
        (Some(_), None) => Err(ApiError::invalid("env", "is required with project")),
    }
}

/// A provider the caller named that is not usable is their input at fault (422); one
/// taken from an environment or a change order is a conflict (409).
fn provider_problem(named: bool) -> impl Fn(GrayError) -> ApiError {
    move |error| match error {
        GrayError::Provider(e) if named => ApiError::invalid("provider", e.to_string()),
        other => other.into(),
    }
}

/// Checks a rule with a traffic provider: is it valid, and can the provider render it.
#[utoipa::path(post, path = "/api/v1/gray/validate", tag = "gray", security(("bearer" = [])),
    request_body = ValidateRequest,
    responses((status = 200, body = ValidationReport), (status = 422, body = Problem)))]
async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> Result<axum::Json<ValidationReport>, ApiError> {
    if !body.rule.is_object() {
        return Err(ApiError::invalid("rule", "must be a gray rule object"));
    }
    let choice = ProviderChoice {
        provider: body.provider,
        project: body.project,
        env: body.env,
    };
    let named = choice.provider.is_some();
    let provider = provider_of(&state, &caller, choice).await?;
    let providers = Providers::new(state.runtime.clone());
    let report = rules::validate(&providers, &provider, &body.rule, "rule")
        .await
        .map_err(provider_problem(named))?;
    Ok(axum::Json(report))
}

/// Where each sample request goes under a rule: the tag, the share and the deciding
/// condition. A dry run: nothing in the cluster changes.
#[utoipa::path(post, path = "/api/v1/gray/evaluate", tag = "gray", security(("bearer" = [])),
    request_body = EvaluateRequest,
    responses((status = 200, body = Evaluation), (status = 422, body = Problem), (status = 404, body = Problem)))]
async fn evaluate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EvaluateRequest>,
) -> Result<axum::Json<Evaluation>, ApiError> {
    if body.requests.is_empty() || body.requests.len() > MAX_SAMPLE_REQUESTS {
        return Err(ApiError::invalid(
            "requests",
            format!("must hold 1 to {MAX_SAMPLE_REQUESTS} sample requests"),
        ));
    }
    let named = body.provider.is_some();
    let choice = ProviderChoice {
        provider: body.provider,
        project: body.project,
        env: body.env,
    };
    let (rule, provider) = match (body.rule, body.change_order_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "changeOrderId",
                "name a rule or a change order, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid("rule", "name a rule or a changeOrderId"));
        }
        (Some(rule), None) if !rule.is_object() => {
            return Err(ApiError::invalid("rule", "must be a gray rule object"));
        }
        (Some(rule), None) => (rule, provider_of(&state, &caller, choice).await?),
        (None, Some(id)) => {
            let change = state.deployer.change(&id)?;
            require(&state, &caller, "deploy.read", &change.scope()).await?;
            let gray = change.gray.ok_or_else(|| {
                ApiError::invalid(
                    "changeOrderId",
                    format!("change order {id} is not a gray release"),
                )
            })?;
            let provider = match choice.provider {
                Some(p) => p,
                None => gray.provider,
            };
            (gray.rule, provider)
        }
    };
    let providers = Providers::new(state.runtime.clone());
    let requests = body.requests.into_iter().map(Into::into).collect();
    let evaluations = rules::evaluate(&providers, &provider, &rule, requests, "rule")
        .await
        .map_err(provider_problem(named))?;
    let to_canary = evaluations.iter().filter(|e| e.canary_share == 100).count();
    Ok(axum::Json(Evaluation {
        provider,
        to_canary,
        evaluations: evaluations
            .into_iter()
            .enumerate()
            .map(|(index, e)| EvaluatedRequest {
                index,
                canary_share: e.canary_share,
                tag: e.tag,
                decided_by: e.decided_by,
                reason: e.reason,
            })
            .collect(),
    }))
}
