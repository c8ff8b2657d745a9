//! Change orders on the embedded cluster: batched rollouts (MANUAL and AUTO), a rollout
//! that fails and is rolled back with the old pods serving, one change in flight per
//! deployment, approval by another user, `kill -9` in the middle of a rollout, and the
//! CLI path a new user takes.

use std::time::Duration;

use serde_json::{Value, json};
use wharf_tests::{Reply, Server};

const DEPLOY: &str = "/api/v1/projects/shop/apps/cart/deployments/dev";

/// A project `shop` with an app `cart` and an environment `dev` bound to a fresh
/// namespace of the embedded cluster.
pub(crate) async fn shop(server: &Server, approval: bool) {
    let reply = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = server
        .post(
            "/api/v1/projects/shop/environments",
            json!({"envCode": "dev", "envName": "Development", "envType": "DEVELOP",
                   "approvalRequired": approval}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = server
        .post(
            "/api/v1/projects/shop/environments/dev/bindings",
            json!({"cluster": "embedded", "namespace": "shop-dev", "createNamespace": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = server
        .post(
            "/api/v1/projects/shop/apps",
            json!({"name": "cart", "category": "MICRO_SERVICE"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

pub(crate) fn strategy(batches: &[u32], mode: &str, wait: Option<u32>) -> Value {
    let list: Vec<Value> = batches
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"batchSeq": i + 1, "instNum": n}))
        .collect();
    let mut strategy = json!({"batchList": list, "betweenBatchProcessingMode": mode});
    if let Some(wait) = wait {
        strategy["batchWaitTime"] = json!(wait);
    }
    strategy
}

pub(crate) async fn deploy(server: &Server, body: Value) -> String {
    let reply = server.post(&format!("{DEPLOY}/deploy"), body).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    reply.body["changeOrderId"]
        .as_str()
        .expect("changeOrderId")
        .to_owned()
}

pub(crate) async fn change(server: &Server, id: &str) -> Value {
    let reply = server.get(&format!("/api/v1/change-orders/{id}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// Polls a change order (bounded: 60 s) until it is in `state`.
pub(crate) async fn until_state(server: &Server, id: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = change(server, id).await;
        if last["state"] == state {
            return last;
        }
        assert!(
            !(last["state"] == "failed" && state != "failed"),
            "change order failed: {last:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("change order {id} never reached {state}: {last:#}");
}

/// Ready pods per revision, read from the cluster through Wharf's change order pods.
pub(crate) async fn pods(server: &Server) -> Vec<(u64, bool)> {
    let kubectl = wharf_tests::Kubectl::for_server(server).await;
    let client = kubectl.kube_client().await;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "shop-dev");
    let list = api
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=cart"))
        .await
        .expect("pods listed");
    let mut pods: Vec<(u64, bool)> = list
        .items
        .into_iter()
        .map(|pod| {
            let revision = pod.metadata.labels.as_ref().expect("labels")["wharf.dev/revision"]
                .parse()
                .expect("revision label");
            let ready = pod
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            (revision, ready)
        })
        .collect();
    pods.sort();
    pods
}

pub(crate) fn count(pods: &[(u64, bool)], revision: u64) -> usize {
    pods.iter()
        .filter(|(r, ready)| *r == revision && *ready)
        .count()
}

/// Deploys revision 1 (`nginx:1.24`, 3 replicas, one batch) and waits for it.
async fn first_revision(server: &Server) {
    let id = deploy(server, json!({"image": "nginx:1.24", "replicas": 3})).await;
    until_state(server, &id, "succeeded").await;
}

#[tokio::test]
async fn a_manual_rollout_moves_one_batch_per_next_batch_and_blocks_other_changes() {
    let server = Server::start().await;
    shop(&server, false).await;
    first_revision(&server).await;
    let id = deploy(
        &server,
        json!({"image": "nginx:1.25", "replicas": 3, "deployVer": "1.25",
               "deploymentStrategy": strategy(&[1, 1, 1], "MANUAL", None)}),
    )
    .await;

    let paused = until_state(&server, &id, "paused_between_batches").await;
    assert_eq!(paused["batches"][0]["state"], "succeeded");
    assert_eq!(paused["batches"][1]["state"], "pending");
    assert_eq!(
        paused["batches"][0]["pods"].as_array().map(Vec::len),
        Some(1)
    );
    let now = pods(&server).await;
    assert_eq!((count(&now, 1), count(&now, 2)), (2, 1), "{now:?}");

    // One change in flight: a second deploy and a scale are refused, naming it.
    for (path, body) in [
        ("deploy", json!({"image": "nginx:1.26", "replicas": 3})),
        ("scale", json!({"replicas": 5})),
    ] {
        let reply = server.post(&format!("{DEPLOY}/{path}"), body).await;
        reply.assert_problem(409, "change-in-flight");
        assert_eq!(reply.body["changeOrderId"], id.as_str());
    }
    let reply = server
        .post(&format!("{DEPLOY}/rollback"), json!({"revision": 1}))
        .await;
    reply.assert_problem(409, "change-in-flight");

    let reply = server
        .post(&format!("/api/v1/change-orders/{id}/next-batch"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let paused = until_state(&server, &id, "paused_between_batches").await;
    if paused["batches"][1]["state"] != "succeeded" {
        panic!("batch 2 should be done: {paused:#}");
    }
    let now = pods(&server).await;
    assert_eq!((count(&now, 1), count(&now, 2)), (1, 2), "{now:?}");
    server
        .post(&format!("/api/v1/change-orders/{id}/next-batch"), json!({}))
        .await;
    let done = until_state(&server, &id, "succeeded").await;
    assert!(
        done["batches"]
            .as_array()
            .expect("batches")
            .iter()
            .all(|b| b["state"] == "succeeded" && b["startedAt"].is_string())
    );
    assert_eq!(done["batches"][1]["startedBy"], "admin");
    let yaml = done["resources"][0]["yaml"]
        .as_str()
        .expect("rendered YAML");
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("nginx:1.25"),
        "{yaml}"
    );
    let now = pods(&server).await;
    assert_eq!((count(&now, 1), count(&now, 2)), (0, 3), "{now:?}");

    // A next-batch on a finished change order is a conflict, not a silent success.
    server
        .post(&format!("/api/v1/change-orders/{id}/next-batch"), json!({}))
        .await
        .assert_problem(409, "change-order-state");

    let history = server.get(&format!("{DEPLOY}/history")).await;
    let items = history.body["items"].as_array().expect("history");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["revision"], 2);
    assert_eq!(items[0]["current"], true);
    assert_eq!(items[1]["image"], "nginx:1.24");
    let deployment = server.get(DEPLOY).await;
    assert_eq!(deployment.body["stableRevision"], 2);
    assert_eq!(deployment.body["status"], "SUCCEEDED");
    assert!(deployment.body["activeChange"].is_null());
}

#[tokio::test]
async fn an_auto_rollout_continues_after_the_wait_on_its_own() {
    let server = Server::start().await;
    shop(&server, false).await;
    first_revision(&server).await;
    let id = deploy(
        &server,
        json!({"image": "nginx:1.25", "replicas": 3,
               "deploymentStrategy": strategy(&[1, 2], "AUTO", Some(1))}),
    )
    .await;
    let done = until_state(&server, &id, "succeeded").await;
    assert_eq!(done["batches"][1]["startedBy"], "auto");
    assert!(
        done["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|s| s["message"]
                .as_str()
                .is_some_and(|m| m.contains("batch wait over")))
    );
    let now = pods(&server).await;
    assert_eq!((count(&now, 1), count(&now, 2)), (0, 3), "{now:?}");
}

#[tokio::test]
async fn a_rollout_whose_pods_never_get_ready_fails_and_rolls_back_to_the_old_pods() {
    let server = Server::start().await;
    shop(&server, false).await;
    first_revision(&server).await;
    let before = pods(&server).await;
    let id = deploy(
        &server,
        json!({"image": "registry.local/cart:never-ready", "replicas": 3, "timeoutSeconds": 2,
               "deploymentStrategy": strategy(&[1, 2], "MANUAL", None)}),
    )
    .await;
    let failed = until_state(&server, &id, "failed").await;
    assert_eq!(failed["batches"][0]["state"], "failed");
    let message = failed["error"].as_str().expect("error");
    assert!(message.contains("batch 1 timed out"), "{message}");
    let pod = &failed["batches"][0]["pods"][0];
    assert_eq!(pod["ready"], false, "{pod}");
    // The old version keeps serving with what the first batch left it.
    let now = pods(&server).await;
    assert_eq!(count(&now, 1), 2, "{now:?}");
    let kubectl = wharf_tests::Kubectl::for_server(&server).await;
    let old_pods = |kubectl: &wharf_tests::Kubectl| {
        let names = kubectl.ok(&[
            "get",
            "pods",
            "-n",
            "shop-dev",
            "-l",
            "wharf.dev/revision=1",
            "-o",
            "name",
        ]);
        names.lines().map(str::to_owned).collect::<Vec<String>>()
    };
    let survivors = old_pods(&kubectl);
    assert_eq!(survivors.len(), 2, "{survivors:?}");
    let deployment = server.get(DEPLOY).await;
    assert_eq!(deployment.body["status"], "FAILED");

    let reply = server
        .post(&format!("/api/v1/change-orders/{id}/rollback"), json!({}))
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let rollback = reply.body["changeOrderId"].as_str().expect("id").to_owned();
    assert_ne!(rollback, id);
    let done = until_state(&server, &rollback, "succeeded").await;
    assert_eq!(done["kind"], "ROLLBACK");
    assert_eq!(done["rollbackOf"], id.as_str());
    let original = change(&server, &id).await;
    assert_eq!(original["state"], "rolled_back");
    assert_eq!(original["rolledBackBy"], rollback.as_str());
    let now = pods(&server).await;
    assert_eq!(
        (count(&now, 1), now.iter().filter(|(r, _)| *r == 2).count()),
        (3, 0),
        "{now:?}"
    );
    // The two old pods that served throughout are still there: only one was added.
    let after = old_pods(&kubectl);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        survivors.iter().all(|p| after.contains(p)),
        "{survivors:?} vs {after:?}"
    );
    assert_eq!(before.len(), 3);
    let deployment = server.get(DEPLOY).await;
    assert_eq!(deployment.body["stableRevision"], 1);
    assert_eq!(deployment.body["status"], "SUCCEEDED");

    // Rolling back what is already rolled back has nothing left to undo.
    server
        .post(&format!("/api/v1/change-orders/{id}/rollback"), json!({}))
        .await
        .assert_problem(409, "nothing-to-roll-back");
}

async fn user_id(server: &Server, token: &str) -> String {
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(token))
        .await;
    me.body["id"]
        .as_str()
        .or_else(|| me.body["user"]["id"].as_str())
        .unwrap_or_else(|| panic!("no id in {:?}", me.body))
        .to_owned()
}

async fn maintainer(server: &Server, name: &str) -> String {
    let token = server.create_user(name, false).await;
    let id = user_id(server, &token).await;
    let reply = server
        .post(
            "/api/v1/authz/bindings",
            json!({"subject": format!("user:{id}"), "role": "maintainer", "scope": "project:shop"}),
        )
        .await;
    assert!(
        reply.status == 200 || reply.status == 201,
        "{:?}",
        reply.body
    );
    token
}

async fn post_as(server: &Server, token: &str, path: &str, body: Value) -> Reply {
    server.request("POST", path, Some(body), Some(token)).await
}

#[tokio::test]
async fn approval_needs_a_second_user_and_can_be_delegated_or_rejected() {
    let server = Server::start().await;
    shop(&server, true).await;
    let alice = maintainer(&server, "alice").await;
    let bob = maintainer(&server, "bob").await;
    let carol = maintainer(&server, "carol").await;

    let reply = post_as(
        &server,
        &alice,
        &format!("{DEPLOY}/deploy"),
        json!({"image": "nginx:1.24", "replicas": 2, "description": "first release",
               "ticket": {"level": "A", "checklist": "smoke test", "plannedAt": "2026-12-01T08:00:00Z"}}),
    )
    .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!(reply.body["state"], "waiting_approval");
    let id = reply.body["changeOrderId"].as_str().expect("id").to_owned();
    let approve = format!("/api/v1/change-orders/{id}/approve");

    post_as(&server, &alice, &approve, json!({"comment": "mine"}))
        .await
        .assert_problem(403, "self-approval");
    let queue = server
        .get("/api/v1/projects/shop/change-orders?state=waiting_approval")
        .await;
    assert_eq!(queue.body["total"], 1, "{:?}", queue.body);
    let reply = post_as(&server, &bob, &approve, json!({"comment": "looks good"})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let done = until_state(&server, &id, "succeeded").await;
    assert_eq!(done["approval"]["decidedBy"], "bob");
    assert_eq!(done["approval"]["level"], "A");
    assert_eq!(done["approval"]["comment"], "looks good");

    // Delegated to carol: bob may no longer decide, carol rejects.
    let reply = post_as(
        &server,
        &alice,
        &format!("{DEPLOY}/scale"),
        json!({"replicas": 3}),
    )
    .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let id = reply.body["changeOrderId"].as_str().expect("id").to_owned();
    let reply = post_as(
        &server,
        &bob,
        &format!("/api/v1/change-orders/{id}/delegate"),
        json!({"user": "carol"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    post_as(
        &server,
        &bob,
        &format!("/api/v1/change-orders/{id}/approve"),
        json!({}),
    )
    .await
    .assert_problem(403, "not-assignee");
    let reply = post_as(
        &server,
        &carol,
        &format!("/api/v1/change-orders/{id}/reject"),
        json!({"comment": "not now"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["state"], "rejected");
    let deployment = server.get(DEPLOY).await;
    assert_eq!(deployment.body["replicas"], 2);
    assert!(deployment.body["activeChange"].is_null());

    // A viewer cannot approve at all: the authorizer refuses the route.
    let viewer = server.create_user("victor", false).await;
    let reply = post_as(
        &server,
        &alice,
        &format!("{DEPLOY}/scale"),
        json!({"replicas": 4}),
    )
    .await;
    let id = reply.body["changeOrderId"].as_str().expect("id").to_owned();
    post_as(
        &server,
        &viewer,
        &format!("/api/v1/change-orders/{id}/approve"),
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_rollout_resumes_where_it_stood_after_kill_9() {
    let mut server = Server::start().await;
    shop(&server, false).await;
    first_revision(&server).await;
    let manual = deploy(
        &server,
        json!({"image": "nginx:1.25", "replicas": 3,
               "deploymentStrategy": strategy(&[1, 1, 1], "MANUAL", None)}),
    )
    .await;
    until_state(&server, &manual, "paused_between_batches").await;
    let before = pods(&server).await;

    server.kill_and_restart().await;
    let paused = change(&server, &manual).await;
    assert_eq!(paused["state"], "paused_between_batches");
    assert_eq!(paused["batches"][0]["state"], "succeeded");
    assert_eq!(paused["batches"][1]["state"], "pending");
    assert_eq!(pods(&server).await, before, "a restart changed the pods");
    for _ in 0..2 {
        let reply = server
            .post(
                &format!("/api/v1/change-orders/{manual}/next-batch"),
                json!({}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let state = loop {
            let c = change(&server, &manual).await;
            if c["state"] != "running" {
                break c["state"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            state == "paused_between_batches" || state == "succeeded",
            "{state}"
        );
    }
    let done = until_state(&server, &manual, "succeeded").await;
    let timeline = done["timeline"].to_string();
    assert!(timeline.contains("Wharf restarted"), "{timeline}");

    // An AUTO rollout killed while it waits between batches finishes on its own.
    let auto = deploy(
        &server,
        json!({"image": "nginx:1.26", "replicas": 3,
               "deploymentStrategy": strategy(&[1, 2], "AUTO", Some(2))}),
    )
    .await;
    let paused = until_state(&server, &auto, "paused_between_batches").await;
    assert!(paused["resumeAt"].is_string());
    server.kill_and_restart().await;
    let done = until_state(&server, &auto, "succeeded").await;
    assert_eq!(done["batches"][1]["startedBy"], "auto");
    let now = pods(&server).await;
    assert_eq!(count(&now, 3), 3, "{now:?}");
    assert_eq!(now.len(), 3, "{now:?}");
}

pub(crate) fn cli_ok(server: &Server, args: &[&str]) -> String {
    let output = server.cli(args);
    assert!(
        output.status.success(),
        "wharf {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn a_new_user_deploys_in_three_manual_batches_from_the_cli_and_rolls_back() {
    let server = Server::start().await;
    // The README's steps, all from the CLI.
    cli_ok(&server, &["project", "create", "shop", "--name", "Shop"]);
    cli_ok(
        &server,
        &[
            "env",
            "create",
            "dev",
            "--project",
            "shop",
            "--name",
            "Development",
            "--type",
            "DEVELOP",
        ],
    );
    cli_ok(
        &server,
        &[
            "env",
            "bind",
            "dev",
            "--project",
            "shop",
            "--namespace",
            "shop-dev",
            "--create-namespace",
        ],
    );
    cli_ok(
        &server,
        &[
            "app",
            "create",
            "shop",
            "cart",
            "--category",
            "MICRO_SERVICE",
        ],
    );
    let out = cli_ok(
        &server,
        &[
            "deploy",
            "shop",
            "cart",
            "dev",
            "--image",
            "nginx:1.24",
            "--replicas",
            "3",
        ],
    );
    assert!(out.contains("succeeded") || out.contains("serves"), "{out}");
    let out = cli_ok(
        &server,
        &[
            "deploy",
            "shop",
            "cart",
            "dev",
            "--image",
            "nginx:1.25",
            "--replicas",
            "3",
            "--batches",
            "3",
            "--manual",
        ],
    );
    assert!(out.contains("wharf change next-batch"), "{out}");
    let id = out
        .split_whitespace()
        .skip_while(|w| *w != "order")
        .nth(1)
        .expect("change order id printed")
        .to_owned();
    let out = cli_ok(&server, &["change", "next-batch", &id]);
    assert!(out.contains("batch 2"), "{out}");
    let out = cli_ok(&server, &["change", "next-batch", &id]);
    assert!(out.contains("succeeded") || out.contains("serves"), "{out}");
    let out = cli_ok(&server, &["change", "rollback", &id]);
    assert!(out.contains("revision 1"), "{out}");
    let out = cli_ok(&server, &["change", "history", "shop", "cart", "dev"]);
    assert_eq!(out.matches("ROLLBACK").count(), 1, "{out}");
    let out = cli_ok(&server, &["change", "get", &id]);
    assert!(out.contains("rolled_back"), "{out}");

    // Every step is in the audit log, the engine's ends included.
    let audit = server
        .get("/api/v1/audit?target=project:shop/app:cart&pageSize=500")
        .await;
    let actions: Vec<String> = audit.body["items"]
        .as_array()
        .expect("audit items")
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    for action in [
        "deploy.create",
        "deploy.next-batch",
        "deploy.rollback",
        "change-order.finish",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
}
