//! Seed 001 §5.6 beside Wharf's own routes: runPipeline, pipelineRecorddetail (§6.4 field
//! names, status codes 11–15), listPipelinesPage, pausePipeline, retryPipelineJobRun and
//! deletePipeline, in the seed's `{code, data, msg}` envelope.

use serde_json::{Value, json};
use wharf_tests::Server;

use super::*;

/// Asserts the seed's success envelope; its `data`.
#[track_caller]
fn data(reply: &wharf_tests::Reply) -> Value {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["code"], "200", "{:?}", reply.body);
    assert_eq!(reply.body["msg"], "", "{:?}", reply.body);
    reply.body["data"].clone()
}

async fn detail(server: &Server, record: &str) -> Value {
    data(
        &server
            .get(&format!(
                "/v1/pipelines/pipelineRecorddetail?pipelineRecordId={record}"
            ))
            .await,
    )
}

/// Polls the seed's record detail (bounded: 120 s) until its `statusCd` is `code` (the seed
/// types status codes as strings).
async fn until_status_cd(server: &Server, record: &str, code: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        last = detail(server, record).await;
        if last["statusCd"] == code {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("record {record} never had statusCd {code}: {last:#}");
}

#[tokio::test]
async fn the_seed_routes_run_read_list_pause_retry_and_delete_pipelines() {
    let server = Server::start().await;
    shop(&server).await;
    let mut ship = definition(
        "ship",
        vec![
            stage_def(
                "build",
                "CODE_BUILD",
                vec![step_def("build", "echo", json!({"tag": "${vars.tag}"}))],
            ),
            stage_def(
                "verify",
                "TEST",
                vec![step_def("check", "echo", json!({"ok": "yes"}))],
            ),
        ],
    );
    ship["variables"] = json!([{"name": "tag", "type": "string", "default": "1.0",
                                "required": false, "description": ""}]);
    let pipeline = create_id(&server, ship).await;
    let app = server.get("/api/v1/projects/shop/apps/cart").await.body;

    let record = data(
        &server
            .post(
                "/v1/pipelines/runPipeline",
                json!({"branchName": "release", "pipelineOrderId": pipeline,
                       "variableList": [{"name": "tag", "type": "string", "value": "2.0"}]}),
            )
            .await,
    );
    let record = record
        .as_str()
        .unwrap_or_else(|| panic!("data is the pipelineRecordId: {record}"))
        .to_owned();
    let done = until_status_cd(&server, &record, "13").await;
    for (field, value) in [
        ("pipelineRecordId", json!(record)),
        ("pipelineOrderId", json!(pipeline)),
        ("pipelineOrderName", json!("ship")),
        ("appCode", json!("cart")),
        ("appId", app["id"].clone()),
        ("branchName", json!("release")),
    ] {
        assert_eq!(done[field], value, "{field}: {done:#}");
    }
    assert!(
        done["startTime"].is_string() && done["endTime"].is_string(),
        "{done:#}"
    );
    assert!(done["statusCdName"].is_string(), "{done:#}");
    let stages = done["stageList"].as_array().expect("stageList");
    assert_eq!(stages.len(), 2, "{done:#}");
    for (stage, (name, category)) in stages
        .iter()
        .zip([("build", "CODE_BUILD"), ("verify", "TEST")])
    {
        assert_eq!(
            (
                stage["name"].as_str(),
                stage["category"].as_str(),
                stage["statusCd"].as_str(),
                stage["pipelineRecordId"].as_str()
            ),
            (
                Some(name),
                Some(category),
                Some("13"),
                Some(record.as_str())
            ),
            "{stage}"
        );
        assert!(
            stage["sort"].is_number() && stage["statusCdName"].is_string(),
            "{stage}"
        );
    }
    assert!(stages[0]["sort"].as_i64() < stages[1]["sort"].as_i64());
    // The same run through Wharf's own routes, with the seed's variable.
    let run = get_run(&server, &pipeline, &record).await;
    assert_eq!(run["variables"]["tag"], "2.0");
    assert_eq!(step_of(&run, "build")["outputs"]["tag"], "2.0");

    let page = data(
        &server
            .get("/v1/pipelines/listPipelinesPage?projectId=shop&name=ship&pageNum=1&pageSize=10")
            .await,
    );
    assert_eq!(
        (
            page["pageNum"].as_i64(),
            page["pageSize"].as_i64(),
            page["total"].as_i64()
        ),
        (Some(1), Some(10), Some(1)),
        "{page:#}"
    );
    let list = page["list"].as_array().expect("list");
    assert_eq!(list.len(), 1, "{page:#}");
    assert_eq!(page["size"].as_i64(), Some(1), "{page:#}");
    assert!(list[0].to_string().contains(&pipeline), "{page:#}");
    let none = data(
        &server
            .get("/v1/pipelines/listPipelinesPage?projectId=shop&name=nothing-like-it&pageNum=1&pageSize=10")
            .await,
    );
    assert_eq!(none["total"], 0, "{none:#}");
}

#[tokio::test]
async fn pause_stops_a_seed_run_retry_continues_it_and_a_deleted_pipeline_no_longer_runs() {
    let server = Server::start().await;
    shop(&server).await;
    let pipeline = create_id(
        &server,
        definition(
            "held",
            vec![stage_def(
                "hold",
                "TEST",
                vec![step_def("pause", "wait", json!({"seconds": 3600}))],
            )],
        ),
    )
    .await;
    let record = data(
        &server
            .post(
                "/v1/pipelines/runPipeline",
                json!({"branchName": "main", "pipelineOrderId": pipeline, "variableList": []}),
            )
            .await,
    );
    let record = record.as_str().expect("pipelineRecordId").to_owned();
    until_step(
        &server,
        &pipeline,
        &record,
        "pause",
        &["Running", "Waiting"],
    )
    .await;

    let paused = data(
        &server
            .post(
                "/v1/pipelines/pausePipeline",
                json!({"pipelineRecordId": record}),
            )
            .await,
    );
    assert_eq!(paused, true);
    let stopped = until_status_cd(&server, &record, "14").await;
    assert_eq!(stopped["pipelineRecordId"], record.as_str());
    finished(&server, &pipeline, &record, "Aborted").await;

    let retried = data(
        &server
            .post(
                "/v1/pipelines/retryPipelineJobRun",
                json!({"pipelineRecordId": record}),
            )
            .await,
    );
    assert_eq!(retried, record.as_str());
    let again = until_step(
        &server,
        &pipeline,
        &record,
        "pause",
        &["Running", "Waiting"],
    )
    .await;
    assert_eq!(step_of(&again, "pause")["attempt"], 2, "{again:#}");
    data(
        &server
            .post(
                "/v1/pipelines/pausePipeline",
                json!({"pipelineRecordId": record}),
            )
            .await,
    );
    finished(&server, &pipeline, &record, "Aborted").await;

    let deleted = data(
        &server
            .post(
                "/v1/pipelines/deletePipeline",
                json!({"pipelineOrderId": pipeline}),
            )
            .await,
    );
    assert_eq!(deleted, true);
    assert_not_found(&server.get(&format!("{PIPELINES}/{pipeline}")).await);
    let refused = server
        .post(
            "/v1/pipelines/runPipeline",
            json!({"branchName": "main", "pipelineOrderId": pipeline, "variableList": []}),
        )
        .await;
    assert_eq!(refused.body["code"], "404", "{:?}", refused.body);
    assert!(refused.body["data"].is_null(), "{:?}", refused.body);
    assert!(
        refused.body["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{:?}",
        refused.body
    );
}
