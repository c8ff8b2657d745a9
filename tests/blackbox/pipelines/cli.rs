//! The "done" story from a terminal: define the 3-stage pipeline from a file, run
//! it and watch each step live, see the app deployed, read every step's plugin and
//! metering in `status`, roll the run back (the deploy is undone), and find the steps
//! with their plugin id@version and metering in the audit log. Also: a run that fails
//! makes `run --watch` exit non-zero, and a refused definition read from stdin shows the
//! field the server named.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use wharf_tests::{Server, TempDir, wharf_bin};

use super::*;
use crate::rollouts::cli_ok;

/// Runs the CLI with `stdin` as its standard input.
fn cli_with_stdin(server: &Server, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(wharf_bin())
        .args(args)
        .env("WHARF_SERVER", &server.base)
        .env("WHARF_TOKEN", &server.token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the wharf CLI");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("writing stdin");
    drop(input);
    child.wait_with_output().expect("the CLI's output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_user_defines_runs_watches_and_rolls_back_the_three_stage_pipeline_from_the_cli() {
    let server = Server::start().await;
    shop(&server).await;
    let dir = TempDir::new("pipeline-file");
    let file = dir.path().join("pipeline.json");
    std::fs::write(&file, ship(&server).to_string()).expect("writing the definition");
    let file = file.to_str().expect("a UTF-8 path");

    let created: Value = serde_json::from_str(&cli_ok(
        &server,
        &[
            "pipeline", "create", "shop", "cart", "--file", file, "--json",
        ],
    ))
    .expect("create --json prints the pipeline");
    let id = created["id"].as_str().expect("id").to_owned();
    let listed = cli_ok(&server, &["pipeline", "list", "shop"]);
    assert!(listed.contains("ship") && listed.contains(&id), "{listed}");
    let shown = cli_ok(&server, &["pipeline", "show", "shop", "cart", "ship"]);
    for needle in ["k8s-job", "image-deploy", "http-check", "CODE_BUILD"] {
        assert!(shown.contains(needle), "{needle} missing from:\n{shown}");
    }

    // Named by name, watched to its end: a line per step change (stdout is no terminal).
    let watched = cli_ok(
        &server,
        &[
            "pipeline", "run", "shop", "cart", "ship", "--branch", "main", "--var", "tag=1.25",
            "--watch",
        ],
    );
    for line in [
        "build/build: Succeeded",
        "deploy/deploy: Succeeded",
        "verify/health: Succeeded",
        "run #1 Succeeded",
    ] {
        assert!(watched.contains(line), "{line:?} missing from:\n{watched}");
    }
    assert!(
        watched.find("build/build: Succeeded") < watched.find("verify/health: Succeeded"),
        "{watched}"
    );
    crate::market::until_pods(&server, "cart", 2, "nginx:1.25").await;

    // Every step with its plugin and metering.
    let status = cli_ok(&server, &["pipeline", "status", "shop", "cart", &id, "1"]);
    for needle in [
        "STAGE",
        "FUEL",
        "PEAK MEMORY",
        "k8s-job@",
        "image-deploy@",
        "http-check@",
        "MiB",
    ] {
        assert!(status.contains(needle), "{needle} missing from:\n{status}");
    }
    let runs = cli_ok(&server, &["pipeline", "runs", "shop", "cart", &id]);
    assert!(
        runs.contains("Succeeded") && runs.contains("admin"),
        "{runs}"
    );
    let outputs: Value = serde_json::from_str(&cli_ok(
        &server,
        &["pipeline", "outputs", "shop", "cart", &id, "1", "build"],
    ))
    .expect("outputs are JSON");
    assert_eq!(outputs["image"], "nginx:1.25");
    let logs = cli_ok(&server, &["pipeline", "logs", "shop", "cart", &id, "#1"]);
    assert!(!logs.trim().is_empty(), "no log lines");

    // Rolled back: cart was not deployed before the run, so it is removed.
    let rolled = cli_ok(
        &server,
        &["pipeline", "rollback", "shop", "cart", &id, "1", "--watch"],
    );
    assert!(rolled.contains("run #1 RolledBack"), "{rolled}");
    assert!(rolled.contains("deploy/deploy: Compensated"), "{rolled}");
    crate::market::until_no_pods(&server, "cart").await;
    let status = cli_ok(&server, &["pipeline", "status", "shop", "cart", &id, "1"]);
    assert!(
        status.matches("Compensated").count() >= 3 && !status.contains("CompensationFailed"),
        "{status}"
    );

    // The audit log names each step's plugin with its version, and its metering.
    let records = audit(&server, "action=pipeline").await;
    for plugin in ["k8s-job", "image-deploy", "http-check"] {
        let metered = records.iter().find(|r| {
            r["plugin"]
                .as_str()
                .is_some_and(|p| p.starts_with(&format!("{plugin}@")))
        });
        let record = metered
            .unwrap_or_else(|| panic!("no pipeline record names {plugin}@version: {records:#?}"));
        let whole = record.to_string();
        assert!(
            whole.contains("fuel") && whole.contains("peakMemoryBytes"),
            "{record:#}"
        );
        assert!(
            record["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("project:shop")),
            "{record:#}"
        );
    }
    for action in ["pipeline.create", "pipeline.run", "pipeline.rollback"] {
        assert!(
            records.iter().any(|r| r["action"] == action),
            "{action} missing: {records:#?}"
        );
    }
}

#[tokio::test]
async fn a_failing_run_makes_watch_exit_non_zero_and_a_refused_definition_names_its_field() {
    let server = Server::start().await;
    shop(&server).await;
    // Nothing listens on the discard port of loopback: the check fails.
    allow_http(&server, "http-check", "http://127.0.0.1:9").await;
    let failing = definition(
        "doomed",
        vec![stage_def(
            "verify",
            "TEST",
            vec![step_def(
                "check",
                "http-check",
                json!({"url": "http://127.0.0.1:9/", "expectStatus": 200, "retries": 0}),
            )],
        )],
    );
    let created = cli_with_stdin(
        &server,
        &[
            "pipeline", "create", "shop", "cart", "--file", "-", "--json",
        ],
        &failing.to_string(),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let id = serde_json::from_str::<Value>(&text(&created.stdout)).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let watched = server.cli(&["pipeline", "run", "shop", "cart", &id, "--watch"]);
    assert!(!watched.status.success(), "{}", text(&watched.stdout));
    let (out, err) = (text(&watched.stdout), text(&watched.stderr));
    assert!(out.contains("verify/check: Failed"), "{out}");
    assert!(err.contains("ended Failed"), "{err}");
    // `watch` of the ended run says the same.
    let again = server.cli(&["pipeline", "watch", "shop", "cart", &id, "1"]);
    assert!(!again.status.success(), "{}", text(&again.stdout));

    let mut refused = failing.clone();
    refused["stages"][0]["steps"][0]["type"] = json!("no-such-step");
    let output = cli_with_stdin(
        &server,
        &["pipeline", "create", "shop", "cart", "--file", "-"],
        &refused.to_string(),
    );
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(
        err.contains("HTTP 422") && err.contains("field stages[0].steps[0].type"),
        "{err}"
    );
}
