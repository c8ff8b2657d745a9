//! Seed 001 §5.6's six pipeline operations under `/v1/pipelines/…`, with the seed's field
//! names, its `statusCd` 11–15 and its envelope `{"code":"200","data":…,"msg":""}`. The
//! routes name a pipeline or a run by id alone, so each handler finds it first and then
//! asks the authorizer as the route table's own rows do for Wharf's routes. `projectId`
//! is the project's code (as seed 000's `team` is).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::query;
use super::error::ApiError;
use super::extract::ApiJson;
use super::guard::require;
use super::pipelines::project_pipelines;
use super::seed_envelope::{SeedPaging, answer, required, seed_time};
use crate::auth::Caller;
use crate::domain::pipelines::runs::{Run, StepStatus};
use crate::domain::pipelines::{Pipeline, PipelineError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_pipeline))
        .routes(routes!(pause_pipeline))
        .routes(routes!(retry_pipeline))
        .routes(routes!(record_detail))
        .routes(routes!(list_pipelines))
        .routes(routes!(delete_pipeline))
}

fn status_name(code: u8) -> &'static str {
    match code {
        11 => "等待执行",
        12 => "执行中",
        13 => "执行成功",
        14 => "执行失败",
        _ => "等待执行",
    }
}

/// The seed's `appId` of an app: its id, or its code once the app is gone (a run outlives
/// its app).
fn app_id(state: &AppState, project: &str, app: &str) -> Result<String, ApiError> {
    Ok(crate::domain::apps::get(&state.store, project, app)?
        .map(|a| a.id)
        .unwrap_or_else(|| app.to_owned()))
}

fn pipeline_view(p: &Pipeline, app_id: &str) -> Value {
    json!({
        "pipelineOrderId": p.id, "pipelineOrderName": p.definition.name,
        "description": p.definition.description,
        "appId": app_id, "appCode": p.app, "appName": p.app,
        "projectId": p.project, "tenantId": p.project, "deleted": p.deleted,
        "enablePause": true, "enableResume": true, "enableRun": true,
        "stageList": p.definition.stages.iter().enumerate().map(|(i, s)| json!({
            "category": s.category, "name": s.name, "pipelineOrderId": p.id,
            "pipelineStageOrderId": format!("{}-{i}", p.id), "sort": i + 1,
        })).collect::<Vec<_>>(),
        "createStaff": p.created_by, "createTime": seed_time(Some(p.created_at)),
        "updateStaff": p.updated_by, "updateTime": seed_time(Some(p.updated_at)),
    })
}

fn record_view(run: &Run, app_id: &str) -> Value {
    json!({
        "pipelineRecordId": run.id, "pipelineOrderId": run.pipeline,
        "pipelineOrderName": run.pipeline_name,
        "appId": app_id, "appCode": run.app, "branchName": run.branch,
        "startTime": seed_time(run.started_at.or(Some(run.created_at))),
        "endTime": seed_time(run.finished_at),
        "statusCd": run.status_cd.to_string(), "statusCdName": status_name(run.status_cd),
        "stageList": run.stages.iter().enumerate().map(|(i, s)| json!({
            "category": s.category, "name": s.name, "pipelineRecordId": run.id,
            "sort": i + 1, "statusCd": s.status_cd.to_string(),
            "statusCdName": if s.status == StepStatus::Aborted { "已中止" } else { status_name(s.status_cd) },
        })).collect::<Vec<_>>(),
        "tenantId": run.project, "createStaff": run.started_by,
        "createTime": seed_time(Some(run.created_at)),
        "updateStaff": run.started_by, "updateTime": seed_time(run.finished_at.or(run.started_at)),
    })
}

/// The pipeline `id` after the caller may take `action` on it.
async fn authorized_pipeline(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<Pipeline, ApiError> {
    let pipeline = state.pipelines.definitions().by_id(id)?;
    if pipeline.deleted {
        return Err(PipelineError::NotFound(id.to_owned()).into());
    }
    require(state, caller, action, &pipeline.scope()).await?;
    Ok(pipeline)
}

async fn authorized_run(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<Run, ApiError> {
    let run = state.pipelines.runs().get(id)?;
    require(
        state,
        caller,
        action,
        &crate::domain::pipelines::model::scope(&run.project, &run.pipeline),
    )
    .await?;
    Ok(run)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedVariable {
    pub name: String,
    /// The seed's `type` (`CUSTOM` in its sample) is accepted and not needed: the
    /// pipeline declares each variable's type.
    pub value: Value,
}

/// The sample sends one object where the table says an array; both are read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SeedVariables {
    Many(Vec<SeedVariable>),
    One(SeedVariable),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunPipeline {
    #[serde(default)]
    pub branch_name: String,
    #[serde(default)]
    pub pipeline_order_id: String,
    pub variable_list: Option<SeedVariables>,
}

/// 5.6.6 执行流水线: data = pipelineRecordId.
#[utoipa::path(post, path = "/v1/pipelines/runPipeline", tag = "pipelines", security(("bearer" = [])),
    request_body = RunPipeline, responses((status = 200, body = Object)))]
async fn run_pipeline(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RunPipeline>,
) -> Response {
    answer(
        async {
            required(&body.pipeline_order_id, "pipelineOrderId")?;
            required(&body.branch_name, "branchName")?;
            let pipeline =
                authorized_pipeline(&state, &caller, &body.pipeline_order_id, "pipeline.run")
                    .await?;
            let variables: Map<String, Value> = match body.variable_list {
                None => Map::new(),
                Some(SeedVariables::One(v)) => [(v.name, v.value)].into_iter().collect(),
                Some(SeedVariables::Many(list)) => {
                    list.into_iter().map(|v| (v.name, v.value)).collect()
                }
            };
            let starter = crate::domain::pipelines::runs::Starter {
                user_id: caller.user_id.clone(),
                username: caller.username.clone(),
            };
            let run = state
                .pipelines
                .start(&pipeline, body.branch_name, variables, starter)
                .await?;
            Ok(Value::String(run.id))
        }
        .await,
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordRef {
    #[serde(default)]
    pub pipeline_record_id: String,
}

/// 5.6.3 中止流水线 (the path says pause; the seed means abort): data = true.
#[utoipa::path(post, path = "/v1/pipelines/pausePipeline", tag = "pipelines", security(("bearer" = [])),
    request_body = RecordRef, responses((status = 200, body = Object)))]
async fn pause_pipeline(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RecordRef>,
) -> Response {
    answer(
        async {
            required(&body.pipeline_record_id, "pipelineRecordId")?;
            authorized_run(&state, &caller, &body.pipeline_record_id, "pipeline.run").await?;
            state
                .pipelines
                .abort(&body.pipeline_record_id, &caller.username)
                .await?;
            Ok(Value::Bool(true))
        }
        .await,
    )
}

/// 5.6.5 在失败处重试: data = pipelineRecordId.
#[utoipa::path(post, path = "/v1/pipelines/retryPipelineJobRun", tag = "pipelines", security(("bearer" = [])),
    request_body = RecordRef, responses((status = 200, body = Object)))]
async fn retry_pipeline(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RecordRef>,
) -> Response {
    answer(
        async {
            required(&body.pipeline_record_id, "pipelineRecordId")?;
            authorized_run(&state, &caller, &body.pipeline_record_id, "pipeline.run").await?;
            let run = state
                .pipelines
                .retry(&body.pipeline_record_id, &caller.username)
                .await?;
            Ok(Value::String(run.id))
        }
        .await,
    )
}

/// 5.6.4 流水线执行详情.
#[utoipa::path(get, path = "/v1/pipelines/pipelineRecorddetail", tag = "pipelines", security(("bearer" = [])),
    params(("pipelineRecordId" = String, Query)), responses((status = 200, body = Object)))]
async fn record_detail(
    State(state): State<AppState>,
    caller: Caller,
    parts: axum::http::request::Parts,
) -> Response {
    answer(
        async {
            let id = query(&parts, "pipelineRecordId").unwrap_or_default();
            required(&id, "pipelineRecordId")?;
            let run = authorized_run(&state, &caller, &id, "pipeline.read").await?;
            Ok(record_view(&run, &app_id(&state, &run.project, &run.app)?))
        }
        .await,
    )
}

/// 5.6.2 分页查询流水线列表: pipelines of a project the caller may read.
#[utoipa::path(get, path = "/v1/pipelines/listPipelinesPage", tag = "pipelines", security(("bearer" = [])),
    params(("projectId" = String, Query), ("appGroupId" = Option<String>, Query), ("name" = Option<String>, Query),
        ("pageNum" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Object)))]
async fn list_pipelines(
    State(state): State<AppState>,
    caller: Caller,
    parts: axum::http::request::Parts,
) -> Response {
    answer(
        async {
            let project = query(&parts, "projectId").unwrap_or_default();
            required(&project, "projectId")?;
            require(
                &state,
                &caller,
                "pipeline.read",
                &format!("project:{project}"),
            )
            .await?;
            let paging = SeedPaging::read(&parts)?;
            let found = project_pipelines(
                &state,
                &project,
                query(&parts, "appGroupId").as_deref(),
                query(&parts, "name").as_deref(),
            )?;
            paging.page(&found, |p| {
                Ok(pipeline_view(p, &app_id(&state, &p.project, &p.app)?))
            })
        }
        .await,
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRef {
    #[serde(default)]
    pub pipeline_order_id: String,
}

/// 5.6.1 删除流水线 (soft): data = true.
#[utoipa::path(post, path = "/v1/pipelines/deletePipeline", tag = "pipelines", security(("bearer" = [])),
    request_body = PipelineRef, responses((status = 200, body = Object)))]
async fn delete_pipeline(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PipelineRef>,
) -> Response {
    answer(
        async {
            required(&body.pipeline_order_id, "pipelineOrderId")?;
            let pipeline =
                authorized_pipeline(&state, &caller, &body.pipeline_order_id, "pipeline.delete")
                    .await?;
            state
                .pipelines
                .definitions()
                .delete(&pipeline.project, &pipeline.app, &pipeline.id)
                .await?;
            Ok(Value::Bool(true))
        }
        .await,
    )
}
