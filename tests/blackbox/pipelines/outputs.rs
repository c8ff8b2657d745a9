//! What flows between steps: typed variables, the run's own facts and earlier steps'
//! outputs substituted into later params; a 1 MiB output kept whole (no 4 KB ceiling),
//! left out of the run's JSON but served by `/outputs`, and passed to a later step.

use serde_json::json;
use wharf_tests::{Reply, Server};

use super::*;

/// Asserts a 422 whose field names the run variable `name`.
#[track_caller]
fn assert_variable_refused(reply: &Reply, name: &str) {
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert!(
        reply.body["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("variables") && f.ends_with(name)),
        "the field should name variable {name}: {:?}",
        reply.body
    );
}

#[tokio::test]
async fn variables_run_facts_and_earlier_outputs_are_substituted_into_later_params() {
    let server = Server::start().await;
    shop(&server).await;
    let stamp = install_stamp(&server).await;
    let mut pipeline = definition(
        "facts",
        vec![stage_def(
            "only",
            "CODE_BUILD",
            vec![
                step_def("a", &stamp, json!({"text": "build ${run.number}"})),
                step_def(
                    "b",
                    "echo",
                    json!({"line": "${run.number}/${run.branch}/${vars.tag}/${vars.count}/${vars.dry}",
                           "stamp": "${steps.a.outputs.stamp}", "run": "${run.id}"}),
                ),
            ],
        )],
    );
    pipeline["variables"] = json!([
        {"name": "tag", "type": "string", "default": "1.0", "required": false, "description": ""},
        {"name": "count", "type": "number", "required": true, "description": ""},
        {"name": "dry", "type": "boolean", "default": false, "required": false, "description": ""}
    ]);
    let id = create_id(&server, pipeline).await;

    // Variables are checked when the run starts: present when required, of their type,
    // declared.
    let runs = runs_path(&id);
    let refused = |variables| server.post(&runs, json!({"branch": "main", "variables": variables}));
    assert_variable_refused(&refused(json!({})).await, "count");
    assert_variable_refused(&refused(json!({"count": "many"})).await, "count");
    assert_variable_refused(&refused(json!({"count": 3, "nope": "x"})).await, "nope");
    let runs = server.get(&runs_path(&id)).await;
    assert_eq!(
        runs.body["total"], 0,
        "refused runs are not runs: {:?}",
        runs.body
    );

    let reply = server
        .post(
            &runs_path(&id),
            json!({"branch": "feature-x", "variables": {"count": 3}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let run = reply.body["id"].as_str().expect("id").to_owned();
    let done = finished(&server, &id, &run, "Succeeded").await;
    let b = &step_of(&done, "b")["outputs"];
    assert_eq!(b["line"], "1/feature-x/1.0/3/false", "{b}");
    assert_eq!(b["run"], run.as_str());
    let a = &step_of(&done, "a")["outputs"];
    assert!(a["stamp"].as_str().is_some_and(|s| !s.is_empty()), "{a}");
    assert_eq!(b["stamp"], a["stamp"]);
}

#[tokio::test]
async fn a_one_mebibyte_output_is_kept_whole_and_passed_to_a_later_step() {
    const MIB: usize = 1024 * 1024;
    let server = Server::start().await;
    shop(&server).await;
    let stamp = install_stamp(&server).await;
    let id = create_id(
        &server,
        definition(
            "big",
            vec![stage_def(
                "only",
                "CODE_BUILD",
                vec![
                    step_def("a", &stamp, json!({"text": "big", "padBytes": MIB})),
                    step_def("b", "echo", json!({"pad": "${steps.a.outputs.pad}"})),
                ],
            )],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let done = finished(&server, &id, &run, "Succeeded").await;

    // In the run, outputs above 64 KiB are only a size.
    for name in ["a", "b"] {
        let step = step_of(&done, name);
        assert!(step["outputs"].is_null(), "{name}: outputs inline");
        assert!(
            step["outputsBytes"]
                .as_u64()
                .is_some_and(|n| n >= MIB as u64),
            "{name}: {}",
            step["outputsBytes"]
        );
    }
    // `/outputs` serves them whole, and the later step received the whole value.
    for name in ["a", "b"] {
        let whole = outputs(&server, &id, &run, name).await;
        let pad = whole["pad"].as_str().unwrap_or_default();
        assert_eq!(pad.len(), MIB, "{name}");
        assert!(pad.bytes().all(|b| b == b'x'), "{name}");
    }
}
