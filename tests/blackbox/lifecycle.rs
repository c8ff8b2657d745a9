//! Installing, enabling, upgrading, rolling back and removing plugins while Wharf runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use serde_json::json;
use wharf_host::runtime::trust::sign_package;
use wharf_tests::{Server, bundled, fixture};

#[tokio::test]
async fn bundled_plugins_are_installed_and_enabled_on_first_start() {
    let server = Server::start().await;
    for plugin in wharf_tests::BUNDLED {
        let reply = server
            .get(&format!("/api/v1/plugins/{}", plugin.name))
            .await;
        assert_eq!(reply.status, 200, "{}: {:?}", plugin.name, reply.body);
        // One authorizer serves at a time: the second bundled one waits, installed.
        let expected = if plugin.name == "authz-read-only" {
            "installed"
        } else {
            "enabled"
        };
        assert_eq!(reply.body["status"], expected, "{}", plugin.name);
        assert_eq!(reply.body["versions"][0]["source"], "bundled");
        assert!(reply.body["manifest"]["grants"].is_object());
    }
    let hello = server
        .invoke("hello", "step.run", json!({"params": {"name": "Ann"}}))
        .await;
    assert_eq!(
        hello.body["output"]["outputs"]["message"], "Hello, Ann!",
        "{:?}",
        hello.body
    );
}

#[tokio::test]
async fn unsigned_packages_are_refused_until_the_admin_allows_them() {
    let server = Server::start().await;
    let refused = server.install(&fixture("noop")).await;
    refused.assert_problem(422, "unsigned-package");
    server.allow_unsigned().await;
    let installed = server.install(&fixture("noop")).await;
    assert_eq!(installed.status, 201, "{:?}", installed.body);
    assert_eq!(installed.body["status"], "installed");
    assert_eq!(
        installed.body["versions"][0]["signedBy"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn a_package_signed_by_a_trusted_key_installs_and_a_tampered_one_does_not() {
    let server = Server::start().await;
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let public = B64.encode(key.verifying_key().to_bytes());
    let trusted = server
        .post(
            "/api/v1/plugin-trust/keys",
            json!({"id": "acme", "publicKey": public}),
        )
        .await;
    assert_eq!(trusted.status, 201, "{:?}", trusted.body);

    let package = fixture("noop");
    let mut body = package.body();
    body["signature"] = json!({"keyId": "acme", "signature": sign_package(&key, &package.component, &package.manifest)});

    let mut tampered = body.clone();
    tampered["manifest"] = json!(package.manifest.replace("[grants]", "[grants]\nkv = {}"));
    let refused = server.post("/api/v1/plugins", tampered).await;
    refused.assert_problem(422, "bad-signature");

    let mut unknown = body.clone();
    unknown["signature"]["keyId"] = json!("nobody");
    let refused = server.post("/api/v1/plugins", unknown).await;
    assert_eq!(refused.body["code"], "unknown-signing-key");

    let installed = server.post("/api/v1/plugins", body).await;
    assert_eq!(installed.status, 201, "{:?}", installed.body);
    assert_eq!(installed.body["versions"][0]["signedBy"], "acme");
}

#[tokio::test]
async fn a_pinned_digest_must_match() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let mut body = fixture("noop").body();
    body["sha256"] = json!("0".repeat(64));
    let reply = server.post("/api/v1/plugins", body).await;
    reply.assert_field(422, "sha256");
}

#[tokio::test]
async fn a_component_whose_world_differs_from_its_manifest_fails_to_install() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let wrong_world = fixture("noop").with_manifest_line("world", "world = \"authorizer\"");
    let reply = server.install(&wrong_world).await;
    reply.assert_problem(422, "world-mismatch");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("authorizer")
    );

    let wrong_version = fixture("noop").with_manifest_line("version", "version = \"9.9.9\"");
    let reply = server.install(&wrong_version).await;
    reply.assert_problem(422, "meta-mismatch");
    assert_eq!(reply.body["field"], "manifest.version");

    let not_wasm = wharf_tests::Package {
        manifest: fixture("noop").manifest,
        component: b"not wasm".to_vec(),
    };
    let reply = server.install(&not_wasm).await;
    reply.assert_problem(422, "component-invalid");
}

#[tokio::test]
async fn installing_an_existing_id_is_a_conflict() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let reply = server.install(&bundled("hello")).await;
    reply.assert_problem(409, "plugin-exists");
}

#[tokio::test]
async fn enable_disable_and_the_plugin_view() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("noop")).await;
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(view.body["status"], "enabled");
    assert_eq!(
        view.body["grants"]["approved"],
        view.body["grants"]["requested"]
    );
    assert!(view.body["limits"]["memoryBytes"].as_u64().is_some());

    let ok = server.invoke(&id, "meta.info", json!({})).await;
    assert_eq!(ok.body["output"]["id"], id.as_str(), "{:?}", ok.body);

    let disabled = server
        .post(&format!("/api/v1/plugins/{id}/disable"), json!({}))
        .await;
    assert_eq!(disabled.body["status"], "disabled");
    let refused = server.invoke(&id, "meta.info", json!({})).await;
    refused.assert_problem(409, "plugin-not-enabled");

    let enabled = server
        .post(&format!("/api/v1/plugins/{id}/enable"), json!({}))
        .await;
    assert_eq!(enabled.body["status"], "enabled");
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    let kinds: Vec<&str> = view.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["installed", "enabled", "disabled", "enabled"]);
    assert_eq!(
        view.body["stats"]["calls"].as_u64(),
        Some(1),
        "one invoke: the install inspection runs apart, with no grants, and is not the plugin's call"
    );

    let listed = server
        .get("/api/v1/plugins?status=enabled&world=step")
        .await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
}

#[tokio::test]
async fn console_input_errors_name_the_field() {
    let server = Server::start().await;
    let unknown = server.invoke("hello", "catalog.search", json!({})).await;
    unknown.assert_problem(422, "unknown-function");
    let bad = server
        .invoke(
            "hello",
            "step.run",
            json!({"context": {"attempt": "first"}}),
        )
        .await;
    bad.assert_field(422, "input.context.attempt");
    let missing = server
        .invoke("no-such-plugin", "meta.info", json!({}))
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn config_reaches_the_plugin_on_its_next_call() {
    let server = Server::start().await;
    let reply = server
        .put("/api/v1/plugins/hello/config", json!({"greeting": "Ahoy"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let hello = server
        .invoke("hello", "step.run", json!({"params": {"name": "Bo"}}))
        .await;
    assert_eq!(hello.body["output"]["outputs"]["message"], "Ahoy, Bo!");
    let not_object = server
        .put("/api/v1/plugins/hello/config", json!([1, 2]))
        .await;
    not_object.assert_field(422, "config");
}

#[tokio::test]
async fn kv_state_survives_upgrade_and_logs_are_readable() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    for _ in 0..2 {
        server
            .invoke("hello", "step.run", json!({"params": {"name": "Cy"}}))
            .await;
    }
    let v2 = fixture("hello-v2");
    let up = server
        .post("/api/v1/plugins/hello/upgrade", v2.body())
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    assert_eq!(
        (
            up.body["activeVersion"].as_str(),
            up.body["servingVersion"].as_str()
        ),
        (Some("0.2.0"), Some("0.2.0"))
    );
    let third = server
        .invoke("hello", "step.run", json!({"params": {"name": "Cy"}}))
        .await;
    assert_eq!(
        third.body["output"]["outputs"]["count"], 3,
        "{:?}",
        third.body
    );
    let info = server.invoke("hello", "meta.info", json!({})).await;
    assert_eq!(info.body["output"]["version"], "0.2.0");

    let logs = server.get("/api/v1/plugins/hello/logs?limit=10").await;
    let lines = logs.body["items"].as_array().expect("items");
    assert!(
        lines
            .iter()
            .any(|l| l["version"] == "0.2.0" && l["message"].as_str().unwrap_or("").contains("Cy")),
        "{lines:?}"
    );
    let bad_limit = server.get("/api/v1/plugins/hello/logs?limit=0").await;
    bad_limit.assert_field(422, "limit");
}

#[tokio::test]
async fn upgrade_and_rollback_swap_versions_without_failing_a_call() {
    let server = Arc::new(Server::start().await);
    server.allow_unsigned().await;
    let up = server
        .post("/api/v1/plugins/hello/upgrade", fixture("hello-v2").body())
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (server, stop, failures, calls) = (
            server.clone(),
            stop.clone(),
            failures.clone(),
            calls.clone(),
        );
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let reply = server.invoke("hello", "meta.info", json!({})).await;
                calls.fetch_add(1, Ordering::Relaxed);
                if reply.status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for i in 0..10 {
        let target = if i % 2 == 0 { "0.1.0" } else { "0.2.0" };
        let reply = server
            .post("/api/v1/plugins/hello/upgrade", json!({"version": target}))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["servingVersion"], target);
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("caller");
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "calls failed during upgrades"
    );

    let rolled = server
        .post("/api/v1/plugins/hello/rollback", json!({}))
        .await;
    assert_eq!(rolled.status, 200, "{:?}", rolled.body);
    assert_eq!(rolled.body["activeVersion"], "0.1.0");
    let info = server.invoke("hello", "meta.info", json!({})).await;
    assert_eq!(info.body["output"]["version"], "0.1.0");

    let same = server
        .post("/api/v1/plugins/hello/upgrade", json!({"version": "0.1.0"}))
        .await;
    same.assert_problem(409, "already-active");
    let unknown = server
        .post("/api/v1/plugins/hello/upgrade", json!({"version": "7.0.0"}))
        .await;
    unknown.assert_field(422, "version");
    let both = server
        .post(
            "/api/v1/plugins/hello/upgrade",
            json!({"version": "0.2.0", "manifest": "x", "component": "x"}),
        )
        .await;
    assert_eq!(both.status, 422);
}

#[tokio::test]
async fn a_version_cannot_be_reuploaded_with_different_bytes() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let mut forged = fixture("hello-v2");
    forged.component = bundled("hello").component;
    forged.manifest = forged.manifest.clone();
    let first = server
        .post("/api/v1/plugins/hello/upgrade", fixture("hello-v2").body())
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let conflict = server
        .post("/api/v1/plugins/hello/upgrade", forged.body())
        .await;
    conflict.assert_problem(409, "version-conflict");
    let other_id = server
        .post(
            "/api/v1/plugins/http-check/upgrade",
            fixture("hello-v2").body(),
        )
        .await;
    other_id.assert_field(422, "manifest.id");
}

#[tokio::test]
async fn rollback_without_history_is_a_conflict() {
    let server = Server::start().await;
    let reply = server
        .post("/api/v1/plugins/hello/rollback", json!({}))
        .await;
    reply.assert_problem(409, "no-previous-version");
}

#[tokio::test]
async fn uninstall_removes_the_plugin_and_its_data() {
    let server = Server::start().await;
    server
        .invoke("hello", "step.run", json!({"params": {"name": "Di"}}))
        .await;
    let removed = server.delete("/api/v1/plugins/hello").await;
    assert_eq!(removed.status, 204);
    assert_eq!(server.get("/api/v1/plugins/hello").await.status, 404);
    assert_eq!(server.delete("/api/v1/plugins/hello").await.status, 404);
    let gone = server.invoke("hello", "meta.info", json!({})).await;
    assert_eq!(gone.status, 404);

    server.allow_unsigned().await;
    let reinstalled = server.install(&bundled("hello")).await;
    assert_eq!(reinstalled.status, 201, "{:?}", reinstalled.body);
    server.post("/api/v1/plugins/hello/enable", json!({})).await;
    let fresh = server
        .invoke("hello", "step.run", json!({"params": {"name": "Di"}}))
        .await;
    assert_eq!(
        fresh.body["output"]["outputs"]["count"], 1,
        "the kv namespace was removed"
    );
}
