//! Pipeline definitions: checked when saved (errors name the stage, step and field),
//! versioned on update (each version readable), listed by app and by project with name
//! filters and paging, soft-deleted (then 404 and never run).

use serde_json::{Value, json};
use wharf_tests::Server;

use super::*;

/// A definition whose only stage holds `steps`.
fn one_stage(steps: Vec<Value>) -> Value {
    definition("checked", vec![stage_def("only", "CODE_BUILD", steps)])
}

#[tokio::test]
async fn a_saved_definition_names_the_stage_step_and_field_it_gets_wrong() {
    let server = Server::start().await;
    shop(&server).await;
    let echo = step_def("first", "echo", json!({"text": "hi"}));

    // A type that is no enabled step plugin (nor the native echo).
    server
        .post(
            PIPELINES,
            one_stage(vec![step_def("first", "no-such-step", json!({}))]),
        )
        .await
        .assert_field(422, "stages[0].steps[0].type");
    // Params are checked against the plugin's schema: `wait` counts seconds.
    server
        .post(
            PIPELINES,
            one_stage(vec![
                echo.clone(),
                step_def("pause", "wait", json!({"seconds": "ten"})),
            ]),
        )
        .await
        .assert_field(422, "stages[0].steps[1].params.seconds");
    // The second stage's step: the index counts stages too.
    let mut two_stages = one_stage(vec![echo.clone()]);
    two_stages["stages"]
        .as_array_mut()
        .expect("stages")
        .push(stage_def(
            "later",
            "TEST",
            vec![step_def("check", "http-check", json!({"url": 42}))],
        ));
    server
        .post(PIPELINES, two_stages)
        .await
        .assert_field(422, "stages[1].steps[0].params.url");
    // A reference to a step that does not come earlier names the param holding it.
    server
        .post(
            PIPELINES,
            one_stage(vec![
                step_def(
                    "first",
                    "echo",
                    json!({"text": "${steps.second.outputs.text}"}),
                ),
                step_def("second", "echo", json!({"text": "hi"})),
            ]),
        )
        .await
        .assert_field(422, "stages[0].steps[0].params.text");
    // Step ids: the pattern, and unique across the pipeline.
    server
        .post(
            PIPELINES,
            one_stage(vec![step_def("Not_An_Id", "echo", json!({}))]),
        )
        .await
        .assert_field(422, "stages[0].steps[0].id");
    let reply = server
        .post(PIPELINES, one_stage(vec![echo.clone(), echo.clone()]))
        .await;
    reply.assert_field(422, "stages[0].steps[1].id");
    // Variables are typed; onError is fail or continue.
    let mut bad_variable = one_stage(vec![echo.clone()]);
    bad_variable["variables"] = json!([{"name": "when", "type": "date"}]);
    server
        .post(PIPELINES, bad_variable)
        .await
        .assert_field(422, "variables[0].type");
    let mut bad_on_error = echo.clone();
    bad_on_error["onError"] = json!("shrug");
    server
        .post(PIPELINES, one_stage(vec![bad_on_error]))
        .await
        .assert_field(422, "stages[0].steps[0].onError");

    // Nothing refused was stored.
    let list = server.get(PIPELINES).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(list.body["total"], 0, "{:?}", list.body);
}

#[tokio::test]
async fn an_update_is_a_new_version_and_a_run_keeps_the_version_it_started_with() {
    let server = Server::start().await;
    shop(&server).await;
    let first = create(
        &server,
        one_stage(vec![step_def("say", "echo", json!({"text": "one"}))]),
    )
    .await;
    assert_eq!(first["version"], 1, "{first:#}");
    assert_eq!(
        (
            first["project"].as_str(),
            first["app"].as_str(),
            first["createdBy"].as_str()
        ),
        (Some("shop"), Some("cart"), Some("admin"))
    );
    let id = first["id"].as_str().expect("id").to_owned();
    let path = format!("{PIPELINES}/{id}");

    // A run started on version 1 keeps it, even when the pipeline changes under it.
    let run = start(&server, &id).await;
    let reply = server
        .put(
            &path,
            one_stage(vec![step_def("say", "echo", json!({"text": "two"}))]),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["version"], 2, "{:?}", reply.body);
    assert_eq!(reply.body["id"], id.as_str());
    let done = finished(&server, &id, &run, "Succeeded").await;
    assert_eq!(done["pipelineVersion"], 1);
    assert_eq!(step_of(&done, "say")["outputs"]["text"], "one");
    let second = start(&server, &id).await;
    let done = finished(&server, &id, &second, "Succeeded").await;
    assert_eq!(done["pipelineVersion"], 2);
    assert_eq!(step_of(&done, "say")["outputs"]["text"], "two");

    // Each version stays readable.
    let v1 = server.get(&format!("{path}/versions/1")).await;
    assert_eq!(v1.status, 200, "{:?}", v1.body);
    assert_eq!(v1.body["stages"][0]["steps"][0]["params"]["text"], "one");
    let latest = server.get(&path).await;
    assert_eq!(latest.body["version"], 2);
    assert_eq!(
        latest.body["stages"][0]["steps"][0]["params"]["text"],
        "two"
    );
    assert_not_found(&server.get(&format!("{path}/versions/3")).await);
}

#[tokio::test]
async fn pipelines_are_listed_by_app_and_project_and_a_deleted_one_is_gone_and_cannot_run() {
    let server = Server::start().await;
    shop(&server).await;
    let reply = server
        .post(
            "/api/v1/projects/shop/apps",
            json!({"name": "web", "category": "MICRO_SERVICE"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let echo = || vec![step_def("say", "echo", json!({"text": "hi"}))];
    for name in ["nightly", "release-a", "release-b"] {
        create(
            &server,
            definition(name, vec![stage_def("only", "CODE_BUILD", echo())]),
        )
        .await;
    }
    let web = server
        .post(
            "/api/v1/projects/shop/apps/web/pipelines",
            definition("release-web", vec![stage_def("only", "CODE_BUILD", echo())]),
        )
        .await;
    assert_eq!(web.status, 201, "{:?}", web.body);
    assert_eq!(web.body["app"], "web");

    let names = |page: &Value| -> Vec<String> {
        let mut names: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    };
    let of_cart = server.get(PIPELINES).await;
    assert_eq!(of_cart.body["total"], 3, "{:?}", of_cart.body);
    let releases = server.get(&format!("{PIPELINES}?name=release")).await;
    assert_eq!(names(&releases.body), ["release-a", "release-b"]);
    let of_project = server.get("/api/v1/projects/shop/pipelines").await;
    assert_eq!(of_project.body["total"], 4, "{:?}", of_project.body);
    let paged = server
        .get("/api/v1/projects/shop/pipelines?name=release&page=2&pageSize=2")
        .await;
    assert_eq!(paged.body["total"], 3, "{:?}", paged.body);
    assert_eq!(
        paged.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        paged.body
    );

    let nightly = of_cart.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["name"] == "nightly")
        .expect("nightly listed")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("{PIPELINES}/{nightly}");
    let deleted = server.delete(&path).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_not_found(&server.get(&path).await);
    assert_not_found(
        &server
            .post(&runs_path(&nightly), json!({"branch": "main"}))
            .await,
    );
    let of_cart = server.get(PIPELINES).await;
    assert_eq!(names(&of_cart.body), ["release-a", "release-b"]);
    // A pipeline of an app that does not exist is not found either.
    assert_not_found(
        &server
            .get("/api/v1/projects/shop/apps/nowhere/pipelines")
            .await,
    );
}
