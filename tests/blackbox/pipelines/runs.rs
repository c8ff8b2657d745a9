//! Runs: the 3-stage pipeline to success in the embedded cluster, a failed run
//! retried from its failed step, a step's own retries, `onError: continue` and disabled
//! steps, abort in the middle of a step, and the run's event stream.

use std::time::Duration;

use serde_json::{Value, json};
use wharf_tests::{Kubectl, Server};

use super::*;

#[tokio::test]
async fn a_three_stage_pipeline_builds_in_a_job_deploys_in_two_batches_and_checks_health() {
    let server = Server::start().await;
    shop(&server).await;
    let id = create_id(&server, ship(&server)).await;
    let reply = server
        .post(
            &runs_path(&id),
            json!({"branch": "main", "variables": {"tag": "1.25"}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let started = reply.body;
    assert_eq!(
        (
            started["number"].as_u64(),
            started["pipelineVersion"].as_u64(),
            started["startedBy"].as_str(),
            started["branch"].as_str()
        ),
        (Some(1), Some(1), Some("admin"), Some("main")),
        "{started:#}"
    );
    let run = started["id"].as_str().expect("run id").to_owned();

    let done = finished(&server, &id, &run, "Succeeded").await;
    assert_eq!(done["statusCd"], 13);
    assert!(done["finishedAt"].is_string(), "{done:#}");
    let stages: Vec<(String, i64)> = done["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["statusCd"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("build".to_owned(), 13),
            ("deploy".to_owned(), 13),
            ("verify".to_owned(), 13)
        ]
    );
    for (order, (step, plugin)) in [
        ("build", "k8s-job"),
        ("deploy", "image-deploy"),
        ("health", "http-check"),
    ]
    .into_iter()
    .enumerate()
    {
        let step = step_of(&done, step);
        assert_eq!(step["status"], "Succeeded", "{step:#}");
        assert_eq!(step["attempt"], 1, "{step:#}");
        assert_eq!(step["completedOrder"], order as u64 + 1, "{step:#}");
        let runs = executions(step, "run");
        assert!(!runs.is_empty(), "{step:#}");
        for execution in &runs {
            assert_metered(execution, plugin);
        }
        assert_eq!(runs.last().expect("an execution")["outcome"], "done");
    }

    // The build ran as a Job in the cluster, and named the image it "produced".
    let build = &step_of(&done, "build")["outputs"];
    assert_eq!(build["image"], "nginx:1.25", "{build}");
    let job = build["job"].as_str().expect("the job's name");
    let kubectl = Kubectl::for_server(&server).await;
    let listed: Value =
        serde_json::from_str(&kubectl.ok(&["get", "job", job, "-n", NAMESPACE, "-o", "json"]))
            .expect("kubectl prints JSON");
    assert_eq!(listed["status"]["succeeded"], 1, "{listed:#}");

    // The deploy was a change order in two batches of one, asked for by the run's starter.
    let deploy = &step_of(&done, "deploy")["outputs"];
    let change_id = deploy["changeOrder"]
        .as_str()
        .or_else(|| deploy["changeOrder"]["id"].as_str())
        .unwrap_or_else(|| panic!("no change order in {deploy}"));
    let change = crate::rollouts::change(&server, change_id).await;
    assert_eq!(change["state"], "succeeded", "{change:#}");
    assert_eq!(change["requestedBy"], "admin");
    let batches = change["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 2, "{change:#}");
    assert!(
        batches
            .iter()
            .all(|b| b["instNum"] == 1 && b["state"] == "succeeded"),
        "{change:#}"
    );
    crate::market::until_pods(&server, "cart", 2, "nginx:1.25").await;

    // Every step's log lines are kept with the run.
    let logs = server.get(&format!("{}/logs", run_path(&id, &run))).await;
    assert_eq!(logs.status, 200, "{:?}", logs.body);
    let lines = logs.body["items"].as_array().cloned().unwrap_or_default();
    assert!(!lines.is_empty(), "no log lines: {:?}", logs.body);
    for line in &lines {
        assert!(
            ["build", "deploy", "health"].contains(&line["step"].as_str().unwrap_or_default()),
            "{line}"
        );
    }
    let of_build = server
        .get(&format!("{}/logs?step=build", run_path(&id, &run)))
        .await;
    assert!(
        of_build.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|l| l["step"] == "build"),
        "{:?}",
        of_build.body
    );
    let runs = server.get(&runs_path(&id)).await;
    assert_eq!(runs.body["total"], 1, "{:?}", runs.body);
    assert_eq!(runs.body["items"][0]["id"], run.as_str());
}

#[tokio::test]
async fn a_failed_run_is_retried_from_its_failed_step_without_running_earlier_steps_again() {
    let server = Server::start().await;
    shop(&server).await;
    let stamp = install_stamp(&server).await;
    let service = FlakyHttp::start(usize::MAX).await;
    allow_http(&server, "http-check", &service.origin).await;
    let id = create_id(
        &server,
        definition(
            "retry-me",
            vec![
                stage_def(
                    "build",
                    "CODE_BUILD",
                    vec![step_def("stamp", &stamp, json!({"text": "built"}))],
                ),
                stage_def(
                    "verify",
                    "TEST",
                    vec![
                        step_def(
                            "check",
                            "http-check",
                            json!({"url": format!("{}/ready", service.origin),
                                   "expectStatus": 200, "retries": 0}),
                        ),
                        step_def(
                            "after",
                            "echo",
                            json!({"text": "${steps.stamp.outputs.stamp}"}),
                        ),
                    ],
                ),
            ],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let failed = finished(&server, &id, &run, "Failed").await;
    assert_eq!(failed["statusCd"], 14);
    let check = step_of(&failed, "check");
    assert_eq!(check["status"], "Failed", "{check:#}");
    assert_eq!(
        executions(check, "run").last().expect("ran")["outcome"],
        "failed"
    );
    assert_eq!(step_of(&failed, "after")["status"], "Pending");
    let stamped = step_of(&failed, "stamp").clone();
    assert_eq!(stamped["status"], "Succeeded");

    service.heal();
    let reply = server
        .post(&format!("{}/retry", run_path(&id, &run)), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["id"], run.as_str());
    let done = finished(&server, &id, &run, "Succeeded").await;
    assert_eq!(done["number"], 1, "a retry goes on in the same run");

    // The step before the failed one was kept, not run again: one execution, same outputs
    // (its kv counter did not move).
    let stamp_step = step_of(&done, "stamp");
    assert_eq!(stamp_step["attempt"], 1);
    assert_eq!(executions(stamp_step, "run").len(), 1, "{stamp_step:#}");
    assert_eq!(stamp_step["outputs"], stamped["outputs"]);
    let check = step_of(&done, "check");
    assert_eq!(check["status"], "Succeeded");
    assert_eq!(check["attempt"], 2, "{check:#}");
    let attempts: Vec<u64> = executions(check, "run")
        .iter()
        .filter_map(|e| e["attempt"].as_u64())
        .collect();
    assert_eq!(
        (attempts.first(), attempts.last()),
        (Some(&1), Some(&2)),
        "{check:#}"
    );
    assert_eq!(
        step_of(&done, "after")["outputs"]["text"],
        stamped["outputs"]["stamp"]
    );

    // Only failed or aborted runs can be retried.
    let again = server
        .post(&format!("{}/retry", run_path(&id, &run)), json!({}))
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
}

#[tokio::test]
async fn a_step_retries_on_its_own_and_disabled_or_continue_on_error_steps_let_the_run_go_on() {
    let server = Server::start().await;
    shop(&server).await;
    let flaky = FlakyHttp::start(2).await;
    let down = FlakyHttp::start(usize::MAX).await;
    allow_http(&server, "http-check", &flaky.origin).await;
    allow_http(&server, "http-check", &down.origin).await;
    let mut retried = step_def(
        "flaky",
        "http-check",
        json!({"url": flaky.origin, "expectStatus": 200, "retries": 0}),
    );
    retried["retries"] = json!(2);
    retried["retryBackoffSecs"] = json!(1);
    let mut disabled = step_def("skipped", "echo", json!({"text": "never"}));
    disabled["enabled"] = json!(false);
    let mut tolerated = step_def(
        "down",
        "http-check",
        json!({"url": down.origin, "expectStatus": 200, "retries": 0}),
    );
    tolerated["onError"] = json!("continue");
    let id = create_id(
        &server,
        definition(
            "tolerant",
            vec![stage_def(
                "checks",
                "TEST",
                vec![
                    retried,
                    disabled,
                    tolerated,
                    step_def("last", "echo", json!({"text": "reached"})),
                ],
            )],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let done = finished(&server, &id, &run, "Succeeded").await;

    let flaky_step = step_of(&done, "flaky");
    assert_eq!(flaky_step["status"], "Succeeded", "{flaky_step:#}");
    assert_eq!(flaky_step["attempt"], 3, "{flaky_step:#}");
    let outcomes: Vec<&str> = executions(flaky_step, "run")
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "done"], "{flaky_step:#}");
    assert_eq!(flaky.answered(), 3);
    let skipped = step_of(&done, "skipped");
    assert_eq!(skipped["status"], "Skipped", "{skipped:#}");
    assert!(executions(skipped, "run").is_empty());
    assert_eq!(step_of(&done, "down")["status"], "Failed");
    assert_eq!(step_of(&done, "last")["outputs"]["text"], "reached");
}

#[tokio::test]
async fn aborting_a_run_cancels_its_running_step_and_starts_nothing_after_it() {
    let server = Server::start().await;
    shop(&server).await;
    let id = create_id(
        &server,
        definition(
            "long",
            vec![stage_def(
                "hold",
                "TEST",
                vec![
                    step_def("pause", "wait", json!({"seconds": 3600})),
                    step_def("after", "echo", json!({"text": "too late"})),
                ],
            )],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let waiting = until_step(&server, &id, &run, "pause", &["Running", "Waiting"]).await;
    assert!(
        [12, 15].contains(&waiting["statusCd"].as_i64().unwrap_or_default()),
        "{waiting:#}"
    );
    // An unfinished run cannot be rolled back.
    let early = server
        .post(&format!("{}/rollback", run_path(&id, &run)), json!({}))
        .await;
    assert_eq!(early.status, 409, "{:?}", early.body);

    let reply = server
        .post(&format!("{}/abort", run_path(&id, &run)), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let aborted = finished(&server, &id, &run, "Aborted").await;
    assert_eq!(aborted["statusCd"], 14);
    let pause = step_of(&aborted, "pause");
    assert_eq!(pause["status"], "Aborted", "{pause:#}");
    assert_eq!(executions(pause, "cancel").len(), 1, "{pause:#}");
    assert_eq!(step_of(&aborted, "after")["status"], "Pending");
    assert!(executions(step_of(&aborted, "after"), "run").is_empty());
    assert_host_healthy(&server).await;
}

/// Reads a server-sent event stream to its end: (event, data as JSON) in order.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let body = response.text().await.expect("the stream's body");
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|frame| {
            let mut event = "message".to_owned();
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            (!data.is_empty()).then(|| {
                let data = data.join("\n");
                let value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("`{event}` data is not JSON ({e}): {data}"));
                (event, value)
            })
        })
        .collect()
}

#[tokio::test]
async fn the_event_stream_tells_each_step_as_it_changes_and_ends_with_the_runs_end() {
    let server = Server::start().await;
    shop(&server).await;
    let bob = member(&server, "bob", "maintainer", "project:shop").await;
    let id = create_id(
        &server,
        definition(
            "gated",
            vec![stage_def(
                "gate",
                "TEST",
                vec![
                    step_def(
                        "approve",
                        "approval",
                        json!({"approvals": 1, "message": "go?"}),
                    ),
                    step_def("after", "echo", json!({"text": "went"})),
                ],
            )],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    until_step(&server, &id, &run, "approve", &["Waiting"]).await;

    // The stream is open before the decision, so what follows it must come as events.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let response = client
        .get(format!("{}{}/events", server.base, run_path(&id, &run)))
        .bearer_auth(&server.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events requested");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let reading = tokio::spawn(read_events(response));
    let decided = server
        .request(
            "POST",
            &format!("{}/steps/approve/decisions", run_path(&id, &run)),
            Some(json!({"approve": true, "comment": "go"})),
            Some(&bob),
        )
        .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    let events = tokio::time::timeout(Duration::from_secs(120), reading)
        .await
        .expect("the stream ends once the run does")
        .expect("the reader finished");

    let (last_event, last) = events.last().expect("some events");
    assert_eq!(last_event, "run", "{events:?}");
    assert_eq!(last["status"], "Succeeded", "{last:#}");
    assert_eq!(last["id"], run.as_str());
    let after_states: Vec<&str> = events
        .iter()
        .filter(|(event, data)| event == "step" && data["id"] == "after")
        .map(|(_, data)| data["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        after_states.last(),
        Some(&"Succeeded"),
        "the later step's changes came as `step` events: {events:?}"
    );
    assert!(
        events
            .iter()
            .all(|(event, _)| ["log", "step", "run"].contains(&event.as_str())),
        "{events:?}"
    );
}
