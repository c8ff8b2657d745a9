//! Runs survive `kill -9`: a run killed in the middle of a step resumes where it stood
//! without running a finished step twice (the `step-stamp` fixture's kv counter moves
//! once per executed step), and a run waiting on an approval still waits after a restart.

use serde_json::json;
use wharf_tests::Server;

use super::*;

#[tokio::test]
async fn a_run_killed_mid_step_resumes_without_running_a_finished_step_twice() {
    let mut server = Server::start().await;
    shop(&server).await;
    let stamp = install_stamp(&server).await;
    let id = create_id(
        &server,
        definition(
            "durable",
            vec![
                stage_def(
                    "one",
                    "CODE_BUILD",
                    vec![
                        step_def("first", &stamp, json!({"text": "first"})),
                        step_def("pause", "wait", json!({"seconds": 5})),
                    ],
                ),
                stage_def(
                    "two",
                    "TEST",
                    vec![step_def("second", &stamp, json!({"text": "second"}))],
                ),
            ],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let before = until_step(&server, &id, &run, "pause", &["Running", "Waiting"]).await;
    assert_eq!(step_of(&before, "second")["status"], "Pending");
    let first = step_of(&before, "first").clone();
    assert_eq!(first["status"], "Succeeded");

    server.kill_and_restart().await;

    let done = finished(&server, &id, &run, "Succeeded").await;
    let after = step_of(&done, "first");
    assert_eq!(executions(after, "run").len(), 1, "{after:#}");
    assert_eq!(after["attempt"], 1);
    assert_eq!(after["outputs"], first["outputs"]);
    // The plugin's own counter moved exactly once more: `first` never ran again.
    let counter = |step: &serde_json::Value| step["outputs"]["counter"].as_u64();
    assert_eq!(
        counter(step_of(&done, "second")),
        counter(&first).map(|c| c + 1),
        "{done:#}"
    );
    assert_eq!(step_of(&done, "pause")["status"], "Succeeded");
    assert_eq!(
        executions(step_of(&done, "second"), "run").len(),
        1,
        "{done:#}"
    );
}

#[tokio::test]
async fn a_run_waiting_for_approval_still_waits_after_kill_9_and_goes_on_when_approved() {
    let mut server = Server::start().await;
    shop(&server).await;
    member(&server, "bob", "maintainer", "project:shop").await;
    let id = create_id(
        &server,
        definition(
            "gated",
            vec![stage_def(
                "gate",
                "APPROVAL",
                vec![
                    step_def("approve", "approval", json!({"message": "go?"})),
                    step_def("after", "echo", json!({"text": "went"})),
                ],
            )],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    until_step(&server, &id, &run, "approve", &["Waiting"]).await;

    server.kill_and_restart().await;
    let bob = server.login("bob", "bob-password").await;

    let waiting = get_run(&server, &id, &run).await;
    assert_eq!(waiting["status"], "Waiting", "{waiting:#}");
    assert_eq!(step_of(&waiting, "after")["status"], "Pending");
    let reply = server
        .request(
            "POST",
            &format!("{}/steps/approve/decisions", run_path(&id, &run)),
            Some(json!({"approve": true})),
            Some(&bob),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let done = finished(&server, &id, &run, "Succeeded").await;
    assert_eq!(
        step_of(&done, "approve")["outputs"]["approvedBy"],
        json!(["bob"])
    );
    assert_eq!(step_of(&done, "after")["outputs"]["text"], "went");
}
