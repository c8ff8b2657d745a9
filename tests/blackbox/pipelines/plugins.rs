//! Step types are plugins: a third-party step (the `step-stamp` fixture) installed while
//! the server runs is usable by the next pipeline saved and run, without a restart; a
//! step plugin exceeding its memory limit fails its step and leaves the host serving; a
//! recorded step replays against its recorded host results and says whether it decides
//! the same.

use serde_json::{Value, json};
use wharf_tests::{Server, fixture};

use super::*;

fn one_step(name: &str, id: &str, kind: &str, params: Value) -> Value {
    definition(
        name,
        vec![stage_def(
            "only",
            "CODE_BUILD",
            vec![step_def(id, kind, params)],
        )],
    )
}

#[tokio::test]
async fn a_step_plugin_installed_at_run_time_is_used_by_a_new_run_without_a_restart() {
    let server = Server::start().await;
    shop(&server).await;
    let kind = fixture("step-stamp").id();
    server
        .post(
            PIPELINES,
            one_step("stamped", "stamp", &kind, json!({"text": "hello"})),
        )
        .await
        .assert_field(422, "stages[0].steps[0].type");

    let installed = install_stamp(&server).await;
    assert_eq!(installed, kind);
    let version = server.get(&format!("/api/v1/plugins/{kind}")).await.body["version"]
        .as_str()
        .map(str::to_owned);
    let id = create_id(
        &server,
        one_step("stamped", "stamp", &kind, json!({"text": "hello"})),
    )
    .await;
    let run = start(&server, &id).await;
    let done = finished(&server, &id, &run, "Succeeded").await;
    let step = step_of(&done, "stamp");
    let execution = executions(step, "run")[0];
    assert_metered(execution, &kind);
    if let Some(version) = version {
        assert_eq!(execution["plugin"], format!("{kind}@{version}"));
    }
    let outputs = &step["outputs"];
    assert!(
        outputs["stamp"].as_str().is_some_and(|s| !s.is_empty()),
        "{outputs}"
    );
    assert!(outputs["nonce"].is_null(), "not random: {outputs}");
    let counter = outputs["counter"].as_u64().expect("a counter");

    // The plugin keeps its state between runs: its counter goes on.
    let again = start(&server, &id).await;
    let done = finished(&server, &id, &again, "Succeeded").await;
    assert_eq!(
        step_of(&done, "stamp")["outputs"]["counter"].as_u64(),
        Some(counter + 1)
    );
}

#[tokio::test]
async fn a_step_plugin_exceeding_its_memory_limit_fails_its_step_not_the_host() {
    let server = Server::start().await;
    shop(&server).await;
    server.allow_unsigned().await;
    let bomb = server.install_enabled(&fixture("memory-bomb")).await;
    let mut pipeline = one_step("bomb", "bomb", &bomb, json!({}));
    pipeline["stages"][0]["steps"]
        .as_array_mut()
        .expect("steps")
        .push(step_def("after", "echo", json!({"text": "unreached"})));
    let id = create_id(&server, pipeline).await;
    let run = start(&server, &id).await;
    let failed = finished(&server, &id, &run, "Failed").await;
    let step = step_of(&failed, "bomb");
    assert_eq!(step["status"], "Failed", "{step:#}");
    let execution = executions(step, "run")
        .last()
        .copied()
        .cloned()
        .expect("it ran");
    assert!(
        ["error", "failed"].contains(&execution["outcome"].as_str().unwrap_or_default()),
        "{execution}"
    );
    assert!(
        execution["plugin"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{bomb}@"))),
        "{execution}"
    );
    assert_eq!(step_of(&failed, "after")["status"], "Pending");

    assert_host_healthy(&server).await;
    let fine = create_id(
        &server,
        one_step("fine", "say", "echo", json!({"text": "still here"})),
    )
    .await;
    let run = start(&server, &fine).await;
    let done = finished(&server, &fine, &run, "Succeeded").await;
    assert_eq!(step_of(&done, "say")["outputs"]["text"], "still here");
}

#[tokio::test]
async fn a_replayed_step_decides_the_same_unless_it_is_nondeterministic() {
    let server = Server::start().await;
    shop(&server).await;
    let stamp = install_stamp(&server).await;
    let id = create_id(
        &server,
        definition(
            "replayed",
            vec![stage_def(
                "only",
                "CODE_BUILD",
                vec![
                    step_def("steady", &stamp, json!({"text": "same"})),
                    step_def("dice", &stamp, json!({"text": "dice", "random": true})),
                ],
            )],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let done = finished(&server, &id, &run, "Succeeded").await;
    assert!(
        step_of(&done, "dice")["outputs"]["nonce"].is_string(),
        "{done:#}"
    );
    let steps = format!("{}/steps", run_path(&id, &run));
    let server_ref = &server;
    let replay = |step: &'static str| {
        let path = format!("{steps}/{step}/replay");
        async move { server_ref.post(&path, json!({})).await }
    };
    let calls = |replay: &Value| replay["hostCalls"].as_u64().unwrap_or(0);

    // Its kv counter came from a recorded host call: replayed, it reads the same value.
    let steady = replay("steady").await;
    assert_eq!(steady.status, 200, "{:?}", steady.body);
    assert_eq!(steady.body["same"], true, "{:?}", steady.body);
    assert!(steady.body["divergence"].is_null(), "{:?}", steady.body);
    assert_eq!(steady.body["recorded"], steady.body["replayed"]);
    assert_eq!(steady.body["attempt"], 1);
    assert!(calls(&steady.body) >= 1, "{:?}", steady.body);

    // A random nonce is not a host call the replay can answer: the outcome differs.
    let dice = replay("dice").await;
    assert_eq!(dice.status, 200, "{:?}", dice.body);
    assert_eq!(dice.body["same"], false, "{:?}", dice.body);
    assert!(
        dice.body["divergence"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{:?}",
        dice.body
    );
    assert_ne!(dice.body["recorded"], dice.body["replayed"]);

    // Replaying changes nothing: the run stays as it was, and the plugin's kv was not
    // written (the next real run's counter follows the last real one).
    let after = get_run(&server, &id, &run).await;
    assert_eq!(after["steps"], done["steps"]);
    let last = step_of(&done, "dice")["outputs"]["counter"].as_u64();
    let next = start(&server, &id).await;
    let next = finished(&server, &id, &next, "Succeeded").await;
    assert_eq!(
        step_of(&next, "steady")["outputs"]["counter"].as_u64(),
        last.map(|c| c + 1)
    );
}
