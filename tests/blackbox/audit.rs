//! The audit log: every mutation, every credential handed out and every denied attempt
//! leaves exactly one record (unauthenticated denials: counted ones, see hardening).

use serde_json::{Value, json};
use wharf_host::api::routes::{Access, ROUTES, is_audited};
use wharf_tests::{Server, eventually, fixture};

use crate::api_surface::{assert_no_server_error, concrete, ends_session};

async fn records(server: &Server, query: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&{query}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

fn is_seed_envelope(body: &serde_json::Value) -> bool {
    body.get("msg").is_some() && body.get("data").is_some()
}

fn expected_outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        401 | 403 => "denied",
        _ => "error",
    }
}

#[tokio::test]
async fn each_audited_route_leaves_exactly_one_record_with_actor_and_outcome() {
    let server = Server::start().await;
    for route in ROUTES.iter().filter(|r| is_audited(r)) {
        let before = records(&server, &format!("action={}", route.action))
            .await
            .len();
        let path = concrete(route.path);
        let token = if ends_session(route.action) {
            server.login("admin", wharf_tests::ADMIN_PASSWORD).await
        } else {
            server.token.clone()
        };
        let reply = server
            .request(route.method, &path, Some(json!({})), Some(&token))
            .await;
        assert_no_server_error(route.method, route.path, &reply);
        let after = records(&server, &format!("action={}", route.action)).await;
        assert_eq!(
            after.len(),
            before + 1,
            "{} {path} ({}) left {} records",
            route.method,
            route.action,
            after.len() - before
        );
        let record = &after[0];
        let actor = if route.access == Access::Public {
            "anonymous"
        } else {
            "admin"
        };
        assert_eq!(record["actor"]["name"], actor, "{} {path}", route.method);
        assert_eq!(
            record["outcome"],
            expected_outcome(reply.status),
            "{} {path}: {:?}",
            route.method,
            reply.body
        );
        assert!(
            record["requestId"].is_string() && record["sourceAddress"] == "127.0.0.1",
            "{record}"
        );
        if reply.status >= 400 && is_seed_envelope(&reply.body) {
            // Seed 001's `{"code": "<status>", "data", "msg"}`: the record still names
            // Wharf's problem code.
            assert_eq!(reply.body["code"], reply.status.to_string(), "{path}");
            assert!(
                record["errorCode"].as_str().is_some_and(|c| !c.is_empty()),
                "{} {path}: {record}",
                route.method
            );
        } else if reply.status >= 400 {
            assert_eq!(
                record["errorCode"], reply.body["code"],
                "{} {path}",
                route.method
            );
        }
    }
}

#[tokio::test]
async fn denied_attempts_are_recorded_without_a_token_too() {
    // Unauthenticated denials are written when their counting window closes.
    let server = Server::start_with(&["--audit-denial-window-secs", "1"]).await;
    let denied = server
        .request("POST", "/api/v1/plugins/hello/disable", None, None)
        .await;
    assert_eq!(denied.status, 401);
    let read = server
        .request("GET", "/api/v1/plugins", None, Some("wharf_forged"))
        .await;
    assert_eq!(read.status, 401);
    assert!(
        eventually(|| async {
            let found = records(&server, "outcome=denied").await;
            found.iter().any(|r| {
                r["action"] == "plugin.disable"
                    && r["actor"]["kind"] == "anonymous"
                    && r["target"] == "plugin:hello"
                    && r["count"] == 1
            }) && found.iter().any(|r| r["action"] == "plugin.list")
        })
        .await
    );
    assert_eq!(
        server.get("/api/v1/plugins/hello").await.body["status"],
        "enabled",
        "the denied attempt changed nothing"
    );
}

#[tokio::test]
async fn updates_record_before_and_after_and_the_plugin_that_acted() {
    let server = Server::start().await;
    server
        .put("/api/v1/plugins/hello/config", json!({"greeting": "Hi"}))
        .await;
    let found = records(
        &server,
        "action=plugin.configure&target=plugin:hello&outcome=ok",
    )
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["before"]["config"], json!({}));
    // Settings are recorded as a digest per key, never as values (issue 11).
    let digest = wharf_host::runtime::trust::sha256_hex(br#""Hi""#);
    assert_eq!(
        found[0]["after"]["config"],
        json!({"greeting": format!("sha256:{digest}")})
    );
    assert_eq!(found[0]["plugin"], "hello@0.1.0");

    let first_start = records(&server, "actor=wharf&action=plugin.install").await;
    assert!(
        first_start
            .iter()
            .any(|r| r["target"] == "plugin:hello" && r["actor"]["kind"] == "system")
    );
}

#[tokio::test]
async fn an_auto_disable_is_audited_as_the_system() {
    let server = Server::start_with(&["--plugin-trap-limit", "1"]).await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("panic")).await;
    server.invoke(&id, "step.run", json!({"params": {}})).await;
    let query = format!("action=plugin.auto-disable&target=plugin:{id}");
    assert!(eventually(|| async { records(&server, &query).await.len() == 1 }).await);
    let record = &records(&server, &query).await[0];
    assert_eq!(record["actor"]["kind"], "system");
    assert_eq!(record["plugin"], format!("{id}@0.1.0"));
}

#[tokio::test]
async fn the_log_exports_as_json_lines_and_filters_are_validated() {
    let server = Server::start().await;
    server
        .put("/api/v1/plugins/hello/config", json!({"greeting": "Yo"}))
        .await;
    let export = server.get("/api/v1/audit/export?action=plugin.").await;
    assert_eq!(export.status, 200);
    assert_eq!(export.content_type, "application/x-ndjson");
    let text = export
        .body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| export.body.to_string());
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|r| r["action"].as_str().unwrap_or("").starts_with("plugin."))
    );

    server
        .get("/api/v1/audit?outcome=maybe")
        .await
        .assert_field(422, "outcome");
    server
        .get("/api/v1/audit?from=yesterday")
        .await
        .assert_field(422, "from");
    server
        .get("/api/v1/audit?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z")
        .await
        .assert_field(422, "from");
    let window = server
        .get("/api/v1/audit?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z")
        .await;
    assert_eq!(window.body["items"], json!([]));
    assert!(window.body.get("nextCursor").is_none(), "{:?}", window.body);
    assert_eq!(
        server
            .request("DELETE", "/api/v1/audit", None, Some(&server.token))
            .await
            .status,
        405,
        "no route deletes audit records"
    );
}

#[tokio::test]
async fn the_cli_lists_and_exports_the_audit_log() {
    let server = Server::start().await;
    server
        .put("/api/v1/plugins/hello/config", json!({"greeting": "Hoi"}))
        .await;
    let list = server.cli(&["audit", "list", "--action", "plugin.configure"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(
        table.contains("plugin.configure") && table.contains("plugin:hello"),
        "{table}"
    );
    let export = server.cli(&["audit", "export", "--outcome", "ok"]);
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(
        text.lines().count() >= 1 && text.lines().all(|l| l.contains(r#""outcome":"ok""#)),
        "{text}"
    );
    let bad = server.cli(&["audit", "list", "--outcome", "maybe"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("outcome"));
}
