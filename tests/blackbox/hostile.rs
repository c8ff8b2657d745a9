//! Hostile plugins: each is stopped, refused or capped, and the host keeps serving.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_tests::{Server, eventually, fixture};

/// The host still answers, and a well-behaved plugin still works.
async fn assert_host_healthy(server: &Server) {
    assert_eq!(
        server.request("GET", "/healthz", None, None).await.status,
        200
    );
    let hello = server
        .invoke("hello", "step.run", json!({"params": {"name": "Still"}}))
        .await;
    assert_eq!(hello.status, 200, "{:?}", hello.body);
    assert_eq!(hello.body["output"]["outcome"], "done");
}

/// A one-route HTTP server on loopback answering `200 ok` to a bounded number of requests.
async fn local_http_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        for _ in 0..32 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    (port, task)
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_deadline_and_the_host_stays_responsive() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("loop")).await;
    let spinning = server.invoke(&id, "step.run", json!({"params": {}}));
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_host_healthy(&server).await;
    };
    let (reply, ()) = tokio::join!(spinning, meanwhile);
    reply.assert_problem(504, "plugin-timeout");
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(view.body["stats"]["timeouts"], 1);
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn a_fuel_budget_stops_a_loop_deterministically_before_its_deadline() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let mut budgeted = fixture("loop");
    budgeted
        .manifest
        .push_str("\n[limits]\nfuel = 5000000\ntimeout-ms = 30000\n");
    let id = server.install_enabled(&budgeted).await;
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(view.body["limits"]["fuel"], 5_000_000);
    let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
    reply.assert_problem(502, "plugin-trapped");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("fuel"),
        "{:?}",
        reply.body
    );
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert!(
        view.body["stats"]["fuelUsed"].as_u64().unwrap_or(0) >= 5_000_000,
        "{:?}",
        view.body["stats"]
    );
    assert_eq!(view.body["stats"]["timeouts"], 0);
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_its_limit() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("memory-bomb")).await;
    let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
    reply.assert_problem(502, "plugin-trapped");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("memory limit"),
        "{:?}",
        reply.body
    );
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    let peak = view.body["stats"]["peakMemoryBytes"].as_u64().unwrap_or(0);
    assert!(peak > 0 && peak <= 8 * 1024 * 1024, "peak {peak}");
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn a_panic_is_a_trap_with_its_message_in_the_log() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("panic")).await;
    let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
    reply.assert_problem(502, "plugin-trapped");
    let logs = server.get(&format!("/api/v1/plugins/{id}/logs")).await;
    let text = logs.body["items"].to_string();
    assert!(text.contains("panicked"), "{text}");
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn a_plugin_that_keeps_trapping_is_disabled_automatically() {
    let server = Server::start_with(&["--plugin-trap-limit", "3"]).await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("panic")).await;
    for _ in 0..3 {
        let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
        assert_eq!(reply.status, 502);
    }
    let refused = server.invoke(&id, "step.run", json!({"params": {}})).await;
    assert_eq!(
        refused.body["code"], "plugin-not-enabled",
        "{:?}",
        refused.body
    );
    let path = format!("/api/v1/plugins/{id}");
    assert!(
        eventually(|| async { server.get(&path).await.body["status"] == "disabled" }).await,
        "the auto-disable was not recorded"
    );
    let view = server.get(&path).await;
    assert!(
        view.body["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains("auto-disabled")
    );
    assert!(
        view.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "auto-disabled")
    );
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn an_ungranted_import_is_refused_at_enable_naming_the_import() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let package = fixture("ungranted-import");
    let installed = server.install(&package).await;
    assert_eq!(installed.status, 201, "{:?}", installed.body);
    let id = package.id();
    let reply = server
        .post(&format!("/api/v1/plugins/{id}/enable"), json!({}))
        .await;
    reply.assert_problem(422, "ungranted-import");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("wharf:host/kv@0.1.0"),
        "{:?}",
        reply.body
    );
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_ne!(view.body["status"], "enabled");

    let granted = server
        .post(
            &format!("/api/v1/plugins/{id}/enable"),
            json!({"grants": {"log": {}, "kv": {}}}),
        )
        .await;
    assert_eq!(
        granted.status, 200,
        "granting kv makes it enable: {:?}",
        granted.body
    );
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn outbound_http_is_denied_unless_allow_listed() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let (port, _http) = local_http_server().await;
    let url = format!("http://127.0.0.1:{port}/health");

    let id = server.install_enabled(&fixture("http-denied")).await;
    let denied = server
        .invoke(&id, "step.run", json!({"params": {"url": url}}))
        .await;
    assert_eq!(denied.status, 200, "{:?}", denied.body);
    assert_eq!(
        denied.body["output"]["outcome"], "failed",
        "{:?}",
        denied.body
    );
    assert!(
        denied.body["output"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("denied"),
        "{:?}",
        denied.body
    );
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(view.body["stats"]["httpDenied"], 1);

    // The bundled probe, granted exactly this host and port, reaches it.
    let grant =
        json!({"grants": {"log": {}, "http": {"allow": [format!("http://127.0.0.1:{port}")]}}});
    let enabled = server
        .post("/api/v1/plugins/http-check/enable", grant)
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    let probe = server
        .invoke("http-check", "step.run", json!({"params": {"url": url}}))
        .await;
    assert_eq!(probe.body["output"]["outcome"], "done", "{:?}", probe.body);
    assert_eq!(probe.body["output"]["outputs"]["status"], 200);
    let elsewhere = server
        .invoke(
            "http-check",
            "step.run",
            json!({"params": {"url": "http://127.0.0.1:9/"}}),
        )
        .await;
    assert_eq!(
        elsewhere.body["output"]["outcome"], "failed",
        "{:?}",
        elsewhere.body
    );

    let bad_grant = server
        .post(
            "/api/v1/plugins/http-check/enable",
            json!({"grants": {"http": {"allow": ["ftp://x"]}}}),
        )
        .await;
    bad_grant.assert_field(422, "grants.http.allow[0]");
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn a_host_call_flood_is_capped() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("flood")).await;
    let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body["output"]["outputs"]["kvLimited"], true,
        "{:?}",
        reply.body
    );
    let logs = server
        .get(&format!("/api/v1/plugins/{id}/logs?limit=2000"))
        .await;
    let text = logs.body["items"].to_string();
    assert!(text.contains("log lines dropped"), "{text}");
    assert!(text.contains("host calls refused"), "{text}");
    assert_host_healthy(&server).await;
}

#[tokio::test]
async fn a_huge_output_is_capped() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("huge-output")).await;
    let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
    reply.assert_problem(502, "plugin-output-too-large");
    assert_host_healthy(&server).await;
}
