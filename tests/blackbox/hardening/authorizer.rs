//! Hardening (issue 11): see `mod.rs` for what this file proves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use wharf_tests::{Server, eventually, fixture};

async fn audit_records(server: &Server, query: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&{query}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// An authorizer that spins on every decision about an ordinary user (until its 200 ms
/// deadline) fails each of those requests closed, more often than the trap limit, and is
/// still the serving authorizer afterwards: the admin's requests, which it answers, still
/// pass, and the repeated failures are reported once instead of acted on.
#[tokio::test]
async fn a_spinning_authorizer_fails_ordinary_users_closed_and_keeps_serving_the_admin() {
    let server = Server::start_with(&["--plugin-trap-limit", "3"]).await;
    server.allow_unsigned().await;
    let token = server.create_user("olga", false).await;
    let id = server.install_enabled(&fixture("authz-spin")).await;
    for _ in 0..6 {
        server
            .request("GET", "/api/v1/auth/me", None, Some(&token))
            .await
            .assert_problem(503, "authorizer-unavailable");
    }
    let users = server.get("/api/v1/users").await;
    assert_eq!(
        users.status, 200,
        "the admin was locked out: {:?}",
        users.body
    );
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(view.body["status"], "enabled", "{:?}", view.body);
    assert_eq!(view.body["servingVersion"], "0.1.0", "{:?}", view.body);
    assert!(
        view.body["stats"]["timeouts"].as_u64() >= Some(6),
        "{:?}",
        view.body["stats"]
    );
    let query = format!("action=plugin.authorizer-failing&target=plugin:{id}");
    assert!(
        eventually(|| async { audit_records(&server, &query).await.len() == 1 }).await,
        "six failures past a limit of three are reported once: {:?}",
        audit_records(&server, &query).await
    );
    let auto_disabled = audit_records(&server, "action=plugin.auto-disable").await;
    assert!(auto_disabled.is_empty(), "{auto_disabled:?}");
}

/// With one slot for plugin calls, a long-running step invocation holds it and another
/// waits behind it. A user's first request, which the authorizer must decide, is answered
/// while the first invocation is still running (authorization has slots of its own), and
/// a plugin call that cannot get a slot within its deadline fails on its own.
#[tokio::test]
async fn saturated_plugin_calls_do_not_hold_up_authorization() {
    let server = Server::start_with(&["--plugin-slots", "1"]).await;
    server.allow_unsigned().await;
    let token = server.create_user("petra", false).await;
    let mut slow = fixture("loop");
    slow.manifest.push_str("\n[limits]\ntimeout-ms = 5000\n");
    let slow = server.install_enabled(&slow).await;
    let quick = server.install_enabled(&fixture("noop")).await;
    // The admin's decisions for the invocations are made (and cached) now, so the
    // invocations below only compete for the plugin-call slot.
    for id in [&slow, &quick] {
        let info = server.invoke(id, "meta.info", json!({})).await;
        assert_eq!(info.status, 200, "{:?}", info.body);
    }

    let first_done = AtomicBool::new(false);
    let first = async {
        let reply = server
            .invoke(&slow, "step.run", json!({"params": {}}))
            .await;
        first_done.store(true, Ordering::SeqCst);
        reply
    };
    // Pauses order the requests: the first invocation holds the slot, a second one queues
    // for it, then the user asks, then a quick plugin call (2 s deadline) queues too.
    let pause = || tokio::time::sleep(Duration::from_millis(500));
    let later = async {
        pause().await;
        let second = server.invoke(&slow, "step.run", json!({"params": {}}));
        let meanwhile = async {
            pause().await;
            let me = server
                .request("GET", "/api/v1/auth/me", None, Some(&token))
                .await;
            let first_finished = first_done.load(Ordering::SeqCst);
            pause().await;
            let queued = server
                .invoke(&quick, "step.run", json!({"params": {}}))
                .await;
            (me, first_finished, queued)
        };
        tokio::join!(second, meanwhile)
    };
    let (first, (_second, (me, first_finished, queued))) = tokio::join!(first, later);
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert!(
        !first_finished,
        "the user's authorization waited for plugin calls to end"
    );
    first.assert_problem(504, "plugin-timeout");
    queued.assert_problem(503, "plugin-unavailable");
}
