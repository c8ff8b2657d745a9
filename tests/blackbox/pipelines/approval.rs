//! Approval steps: the run waits (status 15) until a user holding `pipeline.approve`
//! other than its starter decides; the starter's own decision is refused
//! (`self-approval`), a decision on a step that is not waiting is a conflict, and a
//! rejection fails the step and the run.

use serde_json::{Value, json};
use wharf_tests::{Reply, Server};

use super::*;

fn gated() -> Value {
    definition(
        "gated",
        vec![
            stage_def(
                "gate",
                "APPROVAL",
                vec![step_def(
                    "approve",
                    "approval",
                    json!({"approvals": 1, "message": "ship cart to dev?"}),
                )],
            ),
            stage_def(
                "after",
                "TEST",
                vec![step_def("done", "echo", json!({"text": "shipped"}))],
            ),
        ],
    )
}

async fn decide(
    server: &Server,
    token: &str,
    pipeline: &str,
    run: &str,
    step: &str,
    body: Value,
) -> Reply {
    server
        .request(
            "POST",
            &format!("{}/steps/{step}/decisions", run_path(pipeline, run)),
            Some(body),
            Some(token),
        )
        .await
}

#[tokio::test]
async fn another_user_approves_a_waiting_step_and_the_starter_may_not() {
    let server = Server::start().await;
    shop(&server).await;
    let alice = member(&server, "alice", "maintainer", "project:shop").await;
    let bob = member(&server, "bob", "maintainer", "project:shop").await;
    let victor = member(&server, "victor", "viewer", "project:shop").await;
    let id = create_id(&server, gated()).await;
    let reply = start_as(&server, &alice, &id, json!({"branch": "main"})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["startedBy"], "alice");
    let run = reply.body["id"].as_str().expect("id").to_owned();

    let waiting = until_step(&server, &id, &run, "approve", &["Waiting"]).await;
    assert_eq!(waiting["status"], "Waiting", "{waiting:#}");
    assert_eq!(waiting["statusCd"], 15);
    assert!(
        step_of(&waiting, "approve")["message"]
            .as_str()
            .is_some_and(|m| m.contains("ship cart to dev?")),
        "{waiting:#}"
    );

    let yes = json!({"approve": true, "comment": "mine"});
    decide(&server, &alice, &id, &run, "approve", yes.clone())
        .await
        .assert_problem(403, "self-approval");
    decide(&server, &victor, &id, &run, "approve", yes.clone())
        .await
        .assert_problem(403, "forbidden");
    decide(&server, &bob, &id, &run, "done", yes.clone())
        .await
        .assert_problem(409, "step-not-waiting");
    let reply = decide(
        &server,
        &bob,
        &id,
        &run,
        "approve",
        json!({"approve": true, "comment": "looks good"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    let done = finished(&server, &id, &run, "Succeeded").await;
    assert_eq!(
        step_of(&done, "approve")["outputs"]["approvedBy"],
        json!(["bob"])
    );
    assert_eq!(step_of(&done, "done")["status"], "Succeeded");
    // Once decided, the step waits no more.
    decide(&server, &bob, &id, &run, "approve", yes)
        .await
        .assert_problem(409, "step-not-waiting");
}

#[tokio::test]
async fn a_rejection_fails_the_approval_step_and_the_run() {
    let server = Server::start().await;
    shop(&server).await;
    let bob = member(&server, "bob", "maintainer", "project:shop").await;
    let id = create_id(&server, gated()).await;
    let run = start(&server, &id).await;
    until_step(&server, &id, &run, "approve", &["Waiting"]).await;
    let reply = decide(
        &server,
        &bob,
        &id,
        &run,
        "approve",
        json!({"approve": false, "comment": "not today"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let failed = finished(&server, &id, &run, "Failed").await;
    assert_eq!(failed["statusCd"], 14);
    assert_eq!(step_of(&failed, "approve")["status"], "Failed");
    assert_eq!(step_of(&failed, "done")["status"], "Pending");
}
