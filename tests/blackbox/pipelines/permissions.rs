//! Who may do what with a pipeline (seed 001 §5.12): a USER_DEFINED pipeline refuses the
//! project's developers and honours only members bound at the pipeline itself; what a
//! step does on Wharf is authorized as the user who started the run.

use serde_json::{Value, json};
use wharf_tests::Server;

use super::*;

fn echo_pipeline(name: &str, mode: &str) -> Value {
    let mut pipeline = definition(
        name,
        vec![stage_def(
            "only",
            "CODE_BUILD",
            vec![step_def("say", "echo", json!({"text": "hi"}))],
        )],
    );
    pipeline["permissionMode"] = json!(mode);
    pipeline
}

#[tokio::test]
async fn a_user_defined_pipeline_refuses_a_project_developer_until_bound_at_the_pipeline() {
    let server = Server::start().await;
    shop(&server).await;
    let dave = member(&server, "dave", "developer", "project:shop").await;
    let open = create_id(&server, echo_pipeline("open", "DEFAULT")).await;
    let closed = create(&server, echo_pipeline("closed", "USER_DEFINED")).await;
    assert_eq!(closed["permissionMode"], "USER_DEFINED");
    let closed = closed["id"].as_str().expect("id").to_owned();
    let scope = format!("project:shop/pipeline:{closed}");
    let mode = server
        .get(&format!("/api/v1/authz/pipeline-mode?scope={scope}"))
        .await;
    assert_eq!(mode.body["mode"], "USER_DEFINED", "{:?}", mode.body);

    // DEFAULT: the project's developers may run it.
    let reply = start_as(&server, &dave, &open, json!({"branch": "main"})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    // USER_DEFINED: the project role stops at the pipeline's door.
    start_as(&server, &dave, &closed, json!({"branch": "main"}))
        .await
        .assert_problem(403, "forbidden");
    server
        .request("GET", &format!("{PIPELINES}/{closed}"), None, Some(&dave))
        .await
        .assert_problem(403, "forbidden");

    bind(&server, &dave, "pipeline-runner", &scope).await;
    let reply = start_as(&server, &dave, &closed, json!({"branch": "main"})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["startedBy"], "dave");
    let run = reply.body["id"].as_str().expect("id").to_owned();
    finished(&server, &closed, &run, "Succeeded").await;
    // A runner runs; editing and rolling back are for editors.
    server
        .request(
            "PUT",
            &format!("{PIPELINES}/{closed}"),
            Some(echo_pipeline("closed", "USER_DEFINED")),
            Some(&dave),
        )
        .await
        .assert_problem(403, "forbidden");
    server
        .request(
            "POST",
            &format!("{}/rollback", run_path(&closed, &run)),
            Some(json!({})),
            Some(&dave),
        )
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_step_deploys_as_the_user_who_started_the_run_never_as_the_plugin() {
    let server = Server::start().await;
    shop(&server).await;
    let id = create_id(
        &server,
        definition(
            "ship",
            vec![stage_def(
                "deploy",
                "IMAGE_DEPLOY",
                vec![step_def(
                    "deploy",
                    "image-deploy",
                    json!({"project": "shop", "app": "cart", "env": "dev",
                           "image": "nginx:1.25", "replicas": 1}),
                )],
            )],
        ),
    )
    .await;
    // Rita may run this pipeline and nothing else: not deploy cart herself.
    let rita = member(
        &server,
        "rita",
        "pipeline-runner",
        &format!("project:shop/pipeline:{id}"),
    )
    .await;
    let reply = start_as(&server, &rita, &id, json!({"branch": "main"})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let run = reply.body["id"].as_str().expect("id").to_owned();
    let failed = finished(&server, &id, &run, "Failed").await;
    let deploy = step_of(&failed, "deploy");
    assert_eq!(deploy["status"], "Failed", "{deploy:#}");
    let message = deploy["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        message.contains("denied")
            || message.contains("not allowed")
            || message.contains("forbidden"),
        "{deploy:#}"
    );
    let changes = server
        .get("/api/v1/projects/shop/change-orders?app=cart")
        .await;
    assert_eq!(changes.body["total"], 0, "{:?}", changes.body);

    // The admin running the same pipeline deploys.
    let run = start(&server, &id).await;
    finished(&server, &id, &run, "Succeeded").await;
    let changes = server
        .get("/api/v1/projects/shop/change-orders?app=cart")
        .await;
    assert_eq!(changes.body["total"], 1, "{:?}", changes.body);
    assert_eq!(changes.body["items"][0]["requestedBy"], "admin");
}
